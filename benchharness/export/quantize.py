"""Compressed variants of an FP32 artifact: FP16 weights and INT8 post-training quantisation.

Every variant is made from the verified FP32 artifact of the same format (which the cache keeps
beside it), and is then verified against the FP32 PyTorch model like any other export.

Precisions (``--precision``):

``fp32``
    The plain export.
``fp16``
    TFLite: weights stored as float16 and dequantised to float32 before use (ai-edge-quantizer's
    float-casting, weight-only); CPU kernels compute in float32, a GPU delegate in float16.
    ONNX: the whole graph in float16 (initializers and activations; onnxruntime's float16
    converter), with float32 inputs and outputs so feeds stay unchanged.
``int8-dynamic``
    Dynamic-range quantisation: weights int8 (per channel), activations float32 and quantised
    on the fly by the kernels. TFLite: ai-edge-quantizer ``dynamic_wi8_afp32``; ONNX:
    ``onnxruntime.quantization.quantize_dynamic`` (ConvInteger / MatMulInteger). No calibration.
``int8-static`` (alias ``int8``)
    Full-integer static quantisation: weights int8 per channel, activations int8 with ranges from
    a calibration set (random normal inputs, or the user's ``.npy``). TFLite: ai-edge-quantizer
    ``static_wi8_ai8``, whose graph inputs and outputs are int8 too (feeds are quantised with the
    input's scale and zero point); ONNX: ``quantize_static`` in QDQ format, int8 activations and
    weights, float32 inputs and outputs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchharness.errors import ExportError, UsageError

#: Every precision the export pipeline can produce, in the order tables list them.
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-static")
#: Short names users type; ``int8`` means full-integer static, the INT8 that NPUs and DSPs run.
ALIASES = {"int8": "int8-static", "dynamic": "int8-dynamic", "static": "int8-static"}

#: Bytes of one weight element at each precision (biases and scales are a rounding error beside
#: the weights, so they are charged like the weights).
WEIGHT_BYTES = {"fp32": 4, "fp16": 2, "int8-dynamic": 1, "int8-static": 1}
#: Bytes of one activation element: dynamic-range INT8 keeps activations in float32.
ACTIVATION_BYTES = {"fp32": 4, "fp16": 2, "int8-dynamic": 4, "int8-static": 1}

#: Random calibration batches: min/max of random-normal inputs settle within a few batches; more
#: only lengthens the export.
DEFAULT_CALIBRATION_SAMPLES = 16
#: Seed of the random calibration set; distinct from the verification input's seed, so the
#: numeric check is not done on data the quantiser has seen.
CALIBRATION_SEED = 4321
#: ai-edge-quantizer's calibrator defaults to 16 threads; the harness host may be a laptop.
TFLITE_CALIBRATION_THREADS = max(1, min(4, os.cpu_count() or 1))
#: The TFLite signature the litert-torch converter writes.
TFLITE_SIGNATURE = "serving_default"


def canonical_precision(name: str) -> str:
    """``int8`` -> ``int8-static`` etc.; an unknown name comes back unchanged, to be refused."""
    text = name.strip().lower()
    return ALIASES.get(text, text)


def parse_precisions(text: str) -> tuple[str, ...]:
    """``fp32,int8`` -> ``("fp32", "int8-static")``, de-duplicated, in the order given."""
    out: list[str] = []
    for item in text.split(","):
        if not item.strip():
            continue
        name = canonical_precision(item)
        if name not in PRECISIONS:
            choices = ", ".join([*PRECISIONS, *ALIASES])
            raise UsageError(f"--precision {item.strip()!r} is not known; choose from {choices}")
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError(f"--precision {text!r} is empty; choose from {', '.join(PRECISIONS)}")
    return tuple(out)


@dataclass(frozen=True)
class Calibration:
    """The calibration set of ``int8-static``: random normal batches, or a user's ``.npy``.

    A ``.npy`` holds either one batch of the model's input shape or a stack of them along a new
    first axis (``(K, *input_shape)``), or ``K`` single samples (``(K, *input_shape[1:])``).
    """

    samples: int = DEFAULT_CALIBRATION_SAMPLES
    seed: int = CALIBRATION_SEED
    npy: Path | None = None

    def fingerprint(self) -> dict[str, Any]:
        """What changes the calibrated bytes; goes into the cache key of int8-static artifacts."""
        if self.npy is not None:
            return {"calibration": {"npy_sha256": _sha256(self.npy)}}
        return {"calibration": {"random_normal": self.samples, "seed": self.seed}}

    def batches(self, input_shape: Sequence[int]) -> list[np.ndarray]:
        shape = tuple(input_shape)
        if self.npy is None:
            rng = np.random.default_rng(self.seed)
            return [rng.standard_normal(shape).astype(np.float32) for _ in range(self.samples)]
        try:
            data = np.load(self.npy, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read calibration data {self.npy}: {exc}") from exc
        data = np.asarray(data, dtype=np.float32)
        if data.shape == shape:
            return [data]
        if data.shape[1:] == shape:
            return [b for b in data]
        if shape and shape[0] == 1 and data.shape[1:] == shape[1:]:
            return [b[None, ...] for b in data]
        raise UsageError(
            f"calibration data {self.npy} has shape {data.shape}; the model takes {shape}: give "
            f"{shape}, (K, *{shape}) or (K, *{shape[1:]})"
        )


def key_extra(precision: str, calibration: Calibration | None) -> dict[str, Any]:
    """Extra cache-key fields of a precision: only int8-static depends on more than its name."""
    if precision != "int8-static":
        return {}
    return (calibration or Calibration()).fingerprint()


def quantize(
    fmt: str,
    src: Path,
    dst: Path,
    precision: str,
    *,
    input_shape: Sequence[int],
    calibration: Calibration | None = None,
) -> None:
    """Write the ``precision`` variant of the FP32 artifact ``src`` to ``dst`` (atomically)."""
    if precision not in PRECISIONS or precision == "fp32":
        raise ExportError(f"no quantisation for precision {precision!r}")
    calibration = calibration or Calibration()
    tmp = dst.with_name(dst.name + ".part")
    try:
        if fmt == "onnx":
            _onnx(src, tmp, precision, input_shape, calibration)
        elif fmt == "tflite":
            _tflite(src, tmp, precision, input_shape, calibration)
        else:
            raise ExportError(f"no quantisation for format {fmt!r}")
        os.replace(tmp, dst)
    except (ExportError, UsageError):
        raise
    except ImportError as exc:
        raise ExportError(f"{precision} {fmt} needs a package that is missing: {exc}") from exc
    except Exception as exc:  # the quantisers raise many types; all mean "could not quantise"
        first = str(exc).strip().splitlines()
        raise ExportError(
            f"{precision} quantisation of the {fmt} model failed: {type(exc).__name__}: "
            f"{first[0][:300] if first else ''}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- ONNX (onnxruntime.quantization)


def _onnx(src: Path, dst: Path, precision: str, shape: Sequence[int], calib: Calibration) -> None:
    import onnx

    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(model, str(dst))
        return
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp:
        prepared = _onnx_preprocess(src, Path(tmp) / "prepared.onnx")
        if precision == "int8-dynamic":
            quantize_dynamic(str(prepared), str(dst), weight_type=QuantType.QInt8, per_channel=True)
            return
        reader = _reader(calib.batches(shape), _onnx_input_name(prepared))
        # S8S8 in QDQ form: onnxruntime's recommended first choice on x86-64 and ARM CPUs
        quantize_static(
            str(prepared),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )


def _onnx_preprocess(src: Path, out: Path) -> Path:
    """Shape inference and graph clean-up that onnxruntime asks for before quantising.

    Some graphs defeat the symbolic shape inference; the unprocessed model quantises too, only
    with fewer fusions, so that is the fallback.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(out))
    except Exception:  # any failure here only costs fusions
        shutil.copyfile(src, out)
    return out


def _onnx_input_name(path: Path) -> str:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    name: str = next(i.name for i in graph.input if i.name not in initializers)
    return name


def _reader(batches: list[np.ndarray], name: str) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {name: batch}

    return _Batches()


# ---------------------------------------------------------------- TFLite (ai-edge-quantizer)


def _tflite(src: Path, dst: Path, precision: str, shape: Sequence[int], calib: Calibration) -> None:
    from ai_edge_quantizer import qtyping, quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    if precision == "fp16":
        q = quantizer.Quantizer(str(src))
        q.add_weight_only_config(
            regex=".*",
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            num_bits=16,
            algorithm_key=AlgorithmName.FLOAT_CASTING,
        )
    elif precision == "int8-dynamic":
        q = quantizer.Quantizer(str(src), recipe.dynamic_wi8_afp32())
    else:
        q = quantizer.Quantizer(str(src), recipe.static_wi8_ai8())
    result = None
    if q.need_calibration:
        signature, input_name = _tflite_signature(src)
        data = [{input_name: b} for b in calib.batches(shape)]
        result = q.calibrate({signature: data}, num_threads=TFLITE_CALIBRATION_THREADS)
    quantized = q.quantize(result, enable_progress_report=False).quantized_model
    if quantized is None:
        raise ExportError("ai-edge-quantizer returned no model")
    dst.write_bytes(bytes(quantized))


def _tflite_signature(path: Path) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(path)).get_signature_list()
    key = TFLITE_SIGNATURE if TFLITE_SIGNATURE in signatures else next(iter(signatures), None)
    if key is None or not signatures[key]["inputs"]:
        raise ExportError(f"{path} has no signature with inputs to calibrate")
    return key, signatures[key]["inputs"][0]


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot read calibration data {path}: {exc.strerror or exc}") from exc
