"""The device-side runner's ExecuTorch format: a ``.pte`` program on ExecuTorch's pybindings.

Imported by ``runner.py`` only for ``--format pte``, so a device without ExecuTorch runs the other
formats as before. It needs ``executorch`` (its pybindings import torch as well) and numpy.

Timing, as docs/method.md asks: the program and its method are loaded once; each timed call is
``method.execute()`` alone. ExecuTorch's memory planning may reuse the input's buffer for
activations (a program's planned input is overwritten during the run), so the input is copied in
with ``set_inputs`` before every inference, outside the timed region, as ExecuTorch's own
``executor_runner`` prepares its inputs outside its timer.

Threads: ExecuTorch's thread pool (the one XNNPACK runs on) is reset to the count asked for and
read back; a pool of another size is an error, so the row's ``threads`` is what ran.

Per-operator pass: a second load of the program with ETDump enabled runs ``warmup`` + ``runs``
inferences and writes the ETDump to the work directory; the host pulls it and reads it with the
devtools Inspector and the ETRecord it keeps beside the artifact (``parse/etdump.py``).

Shipped to devices beside the runner: standard library, numpy and the runtime only, nothing from
``benchharness``, Python 3.8 compatible at runtime.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

# siblings on the device, not a package
import protocol
import pte_file

#: ExecuTorch ScalarType codes (runtime/core/portable_type/scalar_type.h) -> numpy dtype names.
SCALAR_TYPES = {
    0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
    7: "float64", 11: "bool",
}  # fmt: skip
#: The method the harness exports and runs; a program without it runs its first method.
DEFAULT_METHOD = "forward"
#: Inferences before the profiled ones (the profiled program is a fresh load).
PROFILE_WARMUP_RUNS = 5
#: ETDump file name in the work directory: the host removes only files named so.
ETDUMP_PREFIX = "etdump-"
ETDUMP_SUFFIX = ".etdp"
#: ExecuTorch's compiled bindings, and the public module that re-exports them.
PYBINDINGS_EXTENSION = "executorch.extension.pybindings._C"
PYBINDINGS_MODULE = "executorch.extension.pybindings.portable_lib"


def _version() -> str:
    try:
        from importlib import metadata

        return metadata.version("executorch")
    except Exception:
        try:
            from executorch.version import __version__

            return str(__version__)
        except Exception:
            return "unknown"


def import_runtime() -> Any:
    """ExecuTorch's pybindings (they import torch), imported before the load is timed."""
    try:
        import torch  # noqa: F401 - the pybindings need it loaded first
    except ImportError as exc:
        raise RuntimeError(
            f"the pte format needs torch beside ExecuTorch on the device ({exc}): python3 -m pip "
            "install executorch (the version that exported the models)"
        ) from exc
    import importlib

    try:
        # the extension itself: ``portable_lib`` only re-exports it, after importing ExecuTorch's
        # whole compiler (``exir``, 2.3 of its 3.3 s on this project's machine) for one warning
        extension = importlib.import_module(PYBINDINGS_EXTENSION)
        if hasattr(extension, "_load_program"):
            return extension
    except ImportError:
        pass  # another packaging of ExecuTorch: its public module below
    try:
        return importlib.import_module(PYBINDINGS_MODULE)
    except ImportError as exc:
        raise RuntimeError(
            f"the pte format needs ExecuTorch on the device ({exc}): python3 -m pip install "
            "executorch (the version that exported the models)"
        ) from exc


class ExecuTorchRunner:
    runtime = "executorch"

    def __init__(
        self, path: str, threads: int, np: Any, make_inputs: Callable[..., list[Any]]
    ) -> None:
        import torch

        portable_lib = import_runtime()
        self.et = portable_lib
        self.torch = torch
        self.np = np
        self.path = path
        self.version = _version()
        summary = pte_file.summarize_file(path)
        self.provider = summary.provider
        self.accelerated = False
        if threads > 0:
            portable_lib._unsafe_reset_threadpool(threads)
            got = int(portable_lib._threadpool_get_thread_count())
            if got != threads:
                raise RuntimeError(f"ExecuTorch's thread pool has {got} threads, not {threads}")
        self.method_name = (
            DEFAULT_METHOD
            if DEFAULT_METHOD in summary.methods or not summary.methods
            else summary.methods[0]
        )
        self.program = portable_lib._load_program(path, enable_etdump=False, debug_buffer_size=0)
        self.method = self.program.load_method(self.method_name)
        meta = self.method.method_meta()
        specs = []
        for i in range(meta.num_inputs()):
            info = meta.input_tensor_meta(i)
            code = int(info.dtype())
            if code not in SCALAR_TYPES:
                raise RuntimeError(f"input {i} has ExecuTorch scalar type {code}, not supported")
            specs.append((f"input{i}", list(info.sizes()), np.dtype(SCALAR_TYPES[code])))
        self.inputs = [torch.from_numpy(a) for _, a in make_inputs(np, specs)]
        # measure() times with this: the input copy stays outside the timed region
        self.device_timer = self._timed

    def run(self) -> None:
        self.method.set_inputs(self.inputs)
        self.method.execute()

    def _timed(self) -> int:
        self.method.set_inputs(self.inputs)
        t0 = time.perf_counter_ns()
        self.method.execute()
        return time.perf_counter_ns() - t0

    def outputs(self) -> list[Any]:
        outs = self.method.get_outputs()
        return [
            self.np.asarray(o.detach().numpy()) for o in outs if isinstance(o, self.torch.Tensor)
        ]

    def profile(self, runs: int, workdir: str) -> protocol.Profile:
        program = self.et._load_program(self.path, enable_etdump=True, debug_buffer_size=0)
        method = program.load_method(self.method_name)
        run_ms = []
        for i in range(PROFILE_WARMUP_RUNS + runs):
            method.set_inputs(self.inputs)
            t0 = time.perf_counter_ns()
            method.execute()
            if i >= PROFILE_WARMUP_RUNS:
                run_ms.append((time.perf_counter_ns() - t0) / 1e6)
        etdump = os.path.join(workdir, f"{ETDUMP_PREFIX}{os.getpid()}{ETDUMP_SUFFIX}")
        debug = etdump + ".debug"
        program.write_etdump_result_to_file(etdump, debug)
        if os.path.exists(debug):  # no debug buffer was asked for: the file holds nothing
            os.remove(debug)
        return protocol.Profile(
            source=protocol.ETDUMP_PROFILE,
            profile_file=os.path.abspath(etdump),
            warmup_runs=PROFILE_WARMUP_RUNS,
            runs=runs,
            run_ms=run_ms,
        )
