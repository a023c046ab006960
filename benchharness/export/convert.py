"""torch -> ONNX, torch -> TFLite and torch -> ``torch.export`` (.pt2) conversions, with the
converters' chatter kept off screen."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from benchharness.errors import ExportError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Opset of the ONNX exports: supported by onnxruntime >= 1.20 and by the dynamo exporter.
ONNX_OPSET = 18


@contextlib.contextmanager
def quiet_fds(log_path: Path | None) -> Iterator[None]:
    """Send fd 1 and 2 (where C++ converters write) to a log file for the duration.

    The CLI writes its display through duplicates of the original descriptors, so it stays visible.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    target: IO[bytes]
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        target = open(log_path, "ab")  # noqa: SIM115 - closed below, after the fds are restored
    else:
        target = tempfile.TemporaryFile()  # noqa: SIM115 - closed below as well
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        target.close()


def to_onnx(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    import torch

    tmp = out.with_suffix(".onnx.part")
    try:
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["output"],
            external_data=False,
            verbose=False,
        )
        if program is None:
            raise ExportError("torch.onnx.export returned no program")
        program.save(str(tmp), external_data=False)
        os.replace(tmp, out)
    except ExportError:
        raise
    except Exception as exc:  # the exporter raises many types; all mean "could not export"
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def to_torch(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    """The ``torch.export`` program of ``model``, saved with ``torch.export.save`` (a .pt2 archive
    that a device's torch loads and runs eagerly, without the model's Python source)."""
    import torch

    tmp = out.with_suffix(".pt2.part")
    try:
        program = torch.export.export(model, (example,))
        # a file object: torch.export.save warns about any file name that does not end in .pt2
        with tmp.open("wb") as fh:
            torch.export.save(program, fh)
        os.replace(tmp, out)
    except Exception as exc:  # torch.export raises many types; all mean "could not export"
        raise ExportError(f"torch.export failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def to_tflite(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    tmp = out.with_suffix(".tflite.part")
    try:
        import litert_torch

        edge_model = litert_torch.convert(model, (example,))
        edge_model.export(str(tmp))
        os.replace(tmp, out)
    except ImportError as exc:
        raise ExportError(f"litert-torch is not installed ({exc}); run the README's setup") from exc
    except Exception as exc:  # converter failures come as many types
        raise ExportError(
            f"TFLite conversion failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else repr(exc)
