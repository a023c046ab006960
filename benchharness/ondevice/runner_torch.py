"""The device-side runner's torch format: a ``torch.export`` program run eagerly with PyTorch.

``runner.py`` imports this module always (it imports nothing heavy itself) and torch only when a
torch job runs, so a device without torch runs the other formats as before. On a CUDA GPU each
timed inference is read from a pair of CUDA events, synchronised before reading (docs/method.md, GPU
delegates).

Shipped to devices beside the runner: standard library, numpy and torch only, nothing from
``benchharness``, Python 3.8 compatible at runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# siblings on the device, not a package
import protocol

#: Nanoseconds per millisecond, as CUDA events report elapsed time in ms.
NS_PER_MS = 1_000_000


class CudaEventTimer:
    """Times one call on the current CUDA stream with an event pair (docs/method.md: on a GPU,
    synchronise before reading the time, or use device events).

    The events are made once and reused: ``synchronize`` on the end event before reading makes
    both complete, so re-recording them for the next call is safe. The host's clock would see
    only the kernel launches of an asynchronous call, not the GPU work.
    """

    def __init__(self, torch: Any) -> None:
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def time_ns(self, call: Any) -> int:
        self.start.record()
        call()
        self.end.record()
        self.end.synchronize()
        return int(self.start.elapsed_time(self.end) * NS_PER_MS)


class TorchRunner:
    """PyTorch eager: the ``torch.export`` program saved with ``torch.export.save`` (a .pt2
    archive), unlifted to a module and called under ``torch.inference_mode``; on ``cuda`` when
    this torch sees a GPU, else on the CPU. No per-operator profile (ops rows stay empty)."""

    runtime = "torch"

    def __init__(
        self, path: str, threads: int, np: Any, make_inputs: Callable[..., Any], loaded: Any = None
    ) -> None:
        try:
            import torch
        except ImportError as exc:
            raise RuntimeError(
                f"the torch format needs torch on the device ({exc}): python3 -m pip install "
                "torch (the version that exported the models: .pt2 archives are not portable "
                "across torch versions)"
            ) from exc

        if loaded is not None:
            loaded()
        self.torch = torch
        self.np = np
        self.version = torch.__version__
        if threads > 0:
            torch.set_num_threads(threads)
        cuda = bool(torch.cuda.is_available())
        self.device = "cuda" if cuda else "cpu"
        self.provider = f"cuda:{torch.cuda.get_device_name()}" if cuda else "cpu"
        self.accelerated = cuda
        # a file object, not the path: the host pushes artifacts as <hash>.torch, and
        # torch.export warns about any file name that does not end in .pt2
        with open(path, "rb") as fh:
            program = torch.export.load(fh)
        specs = _torch_input_specs(torch, np, program)
        if cuda:
            program = _to_device(program, self.device)
        self.module = program.module()
        arrays = make_inputs(np, [(name, shape, np_dtype) for name, shape, np_dtype, _ in specs])
        self.inputs = [
            torch.from_numpy(array).to(device=self.device, dtype=spec[3])
            for (_, array), spec in zip(arrays, specs, strict=True)
        ]
        # held for the life of this process (it does nothing else): entering the mode per call
        # would put its cost inside the timed region
        self._mode = torch.inference_mode()
        self._mode.__enter__()
        self._timer = CudaEventTimer(torch) if cuda else None
        # measure() times with this when set, with its own clock when None
        self.device_timer = self._timed_on_gpu if cuda else None
        self.last: Any = None

    def _call(self) -> None:
        self.last = self.module(*self.inputs)

    def run(self) -> None:
        self._call()
        if self._timer is not None:
            # the cold inference is timed with the host clock, so it must see the GPU finish
            self.torch.cuda.synchronize()

    def _timed_on_gpu(self) -> int:
        assert self._timer is not None
        return self._timer.time_ns(self._call)

    def outputs(self) -> list[Any]:
        if self._timer is not None:
            self.torch.cuda.synchronize()
        return [t.detach().cpu().numpy() for t in _tensors(self.torch, self.last)]

    def profile(self, runs: int, workdir: str) -> protocol.Profile:
        return protocol.Profile(error="no per-operator profile for the torch format")


def _torch_input_specs(torch: Any, np: Any, program: Any) -> list[tuple[str, Any, Any, Any]]:
    """Name, shape, numpy dtype and torch dtype of each user input, from the program's
    placeholders (in call order)."""
    user = set(program.graph_signature.user_inputs)
    specs = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in user:
            continue
        val = node.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            raise RuntimeError(f"the program's input {node.name} is not a tensor")
        try:
            dtype = torch.empty(0, dtype=val.dtype).numpy().dtype
        except TypeError:  # no numpy twin (bfloat16): fed as float32, cast on the way in
            dtype = np.float32
        specs.append((node.name, [int(d) for d in val.shape], dtype, val.dtype))
    return specs


def _to_device(program: Any, device: str) -> Any:
    """The program with weights and constants on ``device``; its own pass where torch has one
    (it also moves tensors the graph creates), else the unlifted module's ``to``."""
    try:
        from torch.export.passes import move_to_device_pass
    except ImportError:
        return _ModuleOnDevice(program, device)
    return move_to_device_pass(program, device)


class _ModuleOnDevice:
    """Older torch without ``move_to_device_pass``: ``module()`` moved with ``to``."""

    def __init__(self, program: Any, device: str) -> None:
        self.program = program
        self.device = device

    def module(self) -> Any:
        return self.program.module().to(self.device)


def _tensors(torch: Any, out: Any) -> list[Any]:
    """The tensors of a model's output, however nested in tuples, lists and dicts."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(torch, item)]
    return []
