"""Numeric check of an exported artifact against the PyTorch model it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchharness.errors import HarnessError, ModelFileError, VerificationError

#: A floor only for all-zero outputs: random-weight models can have logits near 1e-10, and any
#: larger absolute allowance would let an export that outputs zeros pass.
FP32_ATOL = 1e-12
#: FP32 exports differ from eager PyTorch only by operator order and fused kernels: relative to
#: the largest output magnitude, since random-weight outputs vary in scale by orders of magnitude.
FP32_RTOL = 1e-3

#: Tolerance of each precision: (absolute, relative to the largest output magnitude). The
#: absolute part is only FP32's floor for all-zero outputs. The relative parts sit above the
#: largest errors measured on the zoo with its seeded weights (``zoo/init_weights.py``; fp16:
#: 1.3 % of the output scale, mobilenetv1_100; int8: 44 %, efficientnet_b0 int8-static ONNX, most
#: models 5-30 %), so a working variant passes and a broken one (outputs of zeros, a lost layer:
#: errors of the output's own size) fails. A random-weight network carries quantisation noise to
#: its outputs undamped, where a trained one's margins hide it; the builders' own untrained
#: weights erred far less only because their outputs barely depended on the input.
TOLERANCES: dict[str, tuple[float, float]] = {
    "fp32": (FP32_ATOL, FP32_RTOL),
    "fp16": (FP32_ATOL, 3e-2),
    "int8-dynamic": (FP32_ATOL, 0.6),
    "int8-static": (FP32_ATOL, 0.6),
}


def tolerance(reference: np.ndarray, precision: str = "fp32") -> float:
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    if precision not in TOLERANCES:
        raise ValueError(f"no tolerance defined for precision {precision}")
    atol, rtol = TOLERANCES[precision]
    return atol + rtol * scale


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for bad files
        raise ModelFileError(f"ONNX Runtime cannot load {path}: {exc}") from exc
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: x})[0])


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"LiteRT cannot load {path}: {exc}") from exc
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], _to_input(x, detail))
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    return _from_output(np.asarray(interpreter.get_tensor(out["index"])), out)


def run_torch(path: Path, x: np.ndarray) -> np.ndarray:
    """The first output of a torch.export archive, run eagerly on the CPU."""
    import torch

    try:
        with path.open("rb") as fh:  # a file object: torch warns about names not ending in .pt2
            program = torch.export.load(fh)
        module = program.module()
    except Exception as exc:  # torch raises many types for bad archives
        raise ModelFileError(f"torch.export cannot load {path}: {exc}") from exc
    try:
        with torch.inference_mode():
            out = module(torch.from_numpy(x))
    except Exception as exc:  # an archive that loads but cannot run is as unusable
        raise ModelFileError(f"the torch.export program {path} does not run: {exc}") from exc
    first = out[0] if isinstance(out, (tuple, list)) else out
    return np.asarray(first.detach().numpy())


def run_pte(path: Path, x: np.ndarray) -> np.ndarray:
    """The first output of an ExecuTorch program's ``forward`` (or only) method."""
    try:
        import torch
        from executorch.runtime import Runtime
    except ImportError as exc:
        raise ModelFileError(
            f"ExecuTorch is not installed ({exc}); run the README's setup"
        ) from exc
    try:
        program = Runtime.get().load_program(path)
        names = sorted(program.method_names)
        method = program.load_method("forward" if "forward" in names else names[0])
    except Exception as exc:  # the runtime raises RuntimeError and others for bad programs
        raise ModelFileError(f"ExecuTorch cannot load {path}: {exc}") from exc
    if method is None:
        raise ModelFileError(f"ExecuTorch loaded no method from {path}")
    try:
        out = method.execute([torch.from_numpy(np.ascontiguousarray(x))])
    except Exception as exc:  # a program that loads but cannot run is as unusable
        raise ModelFileError(f"the ExecuTorch program {path} does not run: {exc}") from exc
    return np.asarray(out[0].detach().numpy())


def _to_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Quantise a float feed for a full-integer model's int8/uint8 input (scale, zero point)."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.asarray(np.clip(np.round(x / scale + zero), info.min, info.max), dtype=dtype)
    return x.astype(dtype)


def _from_output(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Dequantise a full-integer model's output, so it compares with the float reference."""
    scale, zero = detail.get("quantization", (0.0, 0))
    if np.issubdtype(y.dtype, np.integer) and scale:
        return np.asarray((y.astype(np.float32) - zero) * np.float32(scale), dtype=np.float32)
    return y


#: The runtime each format is verified with, as messages name it.
RUNTIMES = {"onnx": "onnxruntime", "tflite": "LiteRT", "torch": "torch", "pte": "executorch"}


def max_abs_error(path: Path, fmt: str, x: np.ndarray, reference: np.ndarray) -> float:
    """The largest absolute difference from PyTorch's output; VerificationError when the
    artifact loads but its runtime fails to run it (that model fails, the run goes on)."""
    runners = {"onnx": run_onnx, "tflite": run_tflite, "torch": run_torch, "pte": run_pte}
    try:
        out = runners[fmt](path, x)
    except HarnessError:
        raise
    except Exception as exc:  # each runtime raises its own types for a model it cannot run
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise VerificationError(
            f"the exported {fmt} model loads but fails to run in {RUNTIMES[fmt]} "
            f"({type(exc).__name__}: {first}); it is not benchmarked"
        ) from exc
    if out.shape != reference.shape:
        out = out.reshape(reference.shape)
    return float(np.max(np.abs(out.astype(np.float64) - reference.astype(np.float64))))
