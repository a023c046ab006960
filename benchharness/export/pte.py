"""torch -> ExecuTorch ``.pte`` through the XNNPACK partitioner, with its ETRecord beside it.

The program is ``torch.export.export`` -> ``to_edge_transform_and_lower(partitioner=
[XnnpackPartitioner()])`` -> ``to_executorch()``, ExecuTorch's documented path to XNNPACK on a
CPU. Operators XNNPACK does not take stay in the program as calls to ExecuTorch's own kernels;
``ondevice/pte_file.py`` names them from the written file.

The ETRecord (``<artifact>.etrecord``) holds the edge-dialect program before partitioning, with
the debug handles that ETDump events carry: the devtools ``Inspector`` needs it to read a
profile, and ``cost/pte_cost.py`` counts the operators' MACs, FLOPs and bytes on it.

``int8-static`` quantises before lowering, with the PT2E flow and ExecuTorch's XNNPACK quantizer
(symmetric, per-channel weights, int8 activations calibrated on ``Calibration`` batches), so the
quantised convolutions and matrix products lower into XNNPACK's int8 kernels.

ExecuTorch is imported here only, and only when a ``.pte`` is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchharness.errors import ExportError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The ETRecord's name beside its program: the same stem.
ETRECORD_SUFFIX = ".etrecord"
#: Precisions the ``pte`` format is exported at.
PTE_PRECISIONS = ("fp32", "int8-static")
#: The hint of every "ExecuTorch is missing" error.
INSTALL_HINT = "pip install 'benchharness[pte]' (the README's setup installs it)"


def etrecord_path(pte: Path) -> Path:
    return Path(pte).with_suffix(ETRECORD_SUFFIX)


def _modules() -> tuple[Any, Any]:
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError as exc:
        raise ExportError(f"ExecuTorch is not installed ({exc}); {INSTALL_HINT}") from exc
    return XnnpackPartitioner, to_edge_transform_and_lower


def _quantized(
    model: nn.Module, example: torch.Tensor, batches: Sequence[np.ndarray]
) -> torch.export.ExportedProgram:
    """The model quantised with PT2E and the XNNPACK quantizer, exported again for lowering."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    )
    captured = torch.export.export(model, (example,)).module()
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for batch in batches:
            prepared(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
    converted = convert_pt2e(prepared)
    return torch.export.export(converted, (example,))


def to_pte(
    model: nn.Module,
    example: torch.Tensor,
    out: Path,
    *,
    precision: str = "fp32",
    calibration: Sequence[np.ndarray] = (),
) -> None:
    """Write the lowered program to ``out`` and its ETRecord beside it (both or neither)."""
    import torch

    partitioner_cls, lower = _modules()
    if precision not in PTE_PRECISIONS:
        raise ExportError(
            f"the pte format is exported at {', '.join(PTE_PRECISIONS)}, not {precision}"
        )
    tmp = out.with_suffix(".pte.part")
    record = etrecord_path(out)
    tmp_record = record.with_suffix(ETRECORD_SUFFIX + ".part")
    try:
        if precision == "int8-static":
            if not calibration:
                raise ExportError("int8-static needs calibration batches")
            program = _quantized(model, example, calibration)
        else:
            program = torch.export.export(model, (example,))
        edge = lower(program, partitioner=[partitioner_cls()], generate_etrecord=True)
        executorch_program = edge.to_executorch()
        with tmp.open("wb") as fh:
            executorch_program.write_to_file(fh)
        executorch_program.get_etrecord().save(str(tmp_record))
        os.replace(tmp_record, record)
        os.replace(tmp, out)
    except ExportError:
        raise
    except Exception as exc:  # torch.export and the lowering raise many types
        record.unlink(missing_ok=True)
        raise ExportError(
            f"ExecuTorch export failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
        tmp_record.unlink(missing_ok=True)


def executorch_version() -> str | None:
    """The installed ExecuTorch's version, or None (for cache keys: no import of the package)."""
    from importlib import metadata

    try:
        return metadata.version("executorch")
    except metadata.PackageNotFoundError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else repr(exc)
