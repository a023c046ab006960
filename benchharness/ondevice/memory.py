"""Resident memory of the runner process, read around (never inside) the timed region.

Shipped to devices beside the runner; standard library only, nothing from ``benchharness`` (the
host imports it as ``benchharness.ondevice.memory``), Python 3.8 at runtime.

What is read (docs/method.md "Memory"), from ``/proc/self/status`` on Linux and Android:

* ``VmRSS`` before the runtime's library is imported (the interpreter, numpy and the runner:
  the baseline), once it is imported, and once the session or interpreter exists (init);
* the high-water mark over the inferences. Where the kernel lets a process reset its own
  ``VmHWM`` (writing ``5`` to ``/proc/self/clear_refs``, Linux 4.0+), it is reset right after
  the init reading, so ``VmHWM`` after the last inference is exactly the highest resident size
  of the inferences (cold, warm-up and timed). Where the write is refused (older kernels, an
  SELinux policy), ``VmHWM`` is the whole life's mark: if the inferences raised it past its value
  at init it is still exact, otherwise the peak is given as the larger of the resident sizes at
  init and after the last inference, a lower bound. ``MemoryProbe.reset`` says which it was.

Part of what the runtime adds is its own code, paged in from its shared libraries as the session
is built and the kernels first run: file-backed memory a device keeps in flash, not in the RAM a
model budget is about. ``code_bytes`` is that part: the growth of ``RssFile`` from the imported
runtime to the last inference, less the model file's own mapped pages (``/proc/self/smaps``).

Each reading is one small file read (a fraction of a millisecond), the last one also reads
``smaps`` (tens of milliseconds in a large process), all after the last timed inference or
before the first; ``read_ms`` adds them up.
"""

from __future__ import annotations

import os
import time
from typing import Any

STATUS_PATH = "/proc/self/status"
CLEAR_REFS_PATH = "/proc/self/clear_refs"
MAPS_PATH = "/proc/self/maps"
SMAPS_PATH = "/proc/self/smaps"
#: The ``clear_refs`` value that resets the peak resident size to the current one (proc(5)).
RESET_PEAK = "5"
#: ``/proc/self/status`` gives sizes in kB (KiB).
KIB = 1024


def status_fields(path: str = STATUS_PATH) -> dict[str, int]:
    """The kB sizes of ``/proc/self/status`` (VmRSS, VmHWM, RssFile, ...) in bytes; {} if none."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            found[key] = int(parts[0]) * KIB
    return found


def read_status(path: str = STATUS_PATH) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of this process in bytes; None where the file or a field is missing."""
    found = status_fields(path)
    if "VmRSS" not in found or "VmHWM" not in found:
        return None
    return found["VmRSS"], found["VmHWM"]


def mapped_rss(path: str, smaps_path: str = SMAPS_PATH) -> int | None:
    """Resident bytes of the mappings of the file at ``path``; None if smaps cannot be read."""
    target = os.path.realpath(path)
    total, inside = 0, False
    try:
        with open(smaps_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                head = line.split(None, 5)
                if head and "-" in head[0] and not head[0].endswith(":"):
                    inside = len(head) == 6 and head[5].strip() == target
                elif inside and line.startswith("Rss:"):
                    total += int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        return None
    return total


def reset_peak(path: str = CLEAR_REFS_PATH) -> bool:
    """Reset this process's ``VmHWM`` to its ``VmRSS``; False where the kernel refuses."""
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(RESET_PEAK)
        return True
    except OSError:
        return False


class MemoryProbe:
    """The readings of one runner process, in the order the runner takes them.

    The ``before`` reading is taken at construction; then ``loaded()`` once the runtime's module is
    imported, ``init()`` once the session exists and its inputs are bound (this resets the peak
    where allowed), ``end()`` after the last timed inference. ``fields()`` gives the
    ``protocol.Memory`` figures: the baseline (absolute), what importing the runtime added, and
    init and peak *above the imported runtime*, so they are the model's own memory in that
    runtime (its weights, arena, activations, packed kernels), comparable to the estimate.
    """

    def __init__(
        self,
        status_path: str = STATUS_PATH,
        clear_refs_path: str = CLEAR_REFS_PATH,
        clock: Any = time.perf_counter_ns,
        model_path: str | None = None,
        smaps_path: str = SMAPS_PATH,
    ) -> None:
        self.status_path = status_path
        self.clear_refs_path = clear_refs_path
        self.clock = clock
        self.model_path = model_path
        self.smaps_path = smaps_path
        self.read_ns = 0
        #: what the ``loaded`` reading took: it runs inside the session's load time, which the
        #: runner gives without it
        self.loaded_ns = 0
        self.reset: bool | None = None
        self.readings: dict[str, tuple[int, int] | None] = {}
        #: file-backed resident bytes other than the model file's, at "loaded" and "end"
        self.file_rss: dict[str, int | None] = {}
        self._read("before")

    def _read(self, name: str, files: bool = False, model: bool = False) -> tuple[int, int] | None:
        t0 = self.clock()
        found = status_fields(self.status_path)
        value = (found["VmRSS"], found["VmHWM"]) if "VmRSS" in found and "VmHWM" in found else None
        self.readings[name] = value
        if files:
            # smaps is read once, at the end: the model is not mapped before the session exists,
            # and "loaded" is taken inside the session's load time, where a long read would show
            mapped = (
                mapped_rss(self.model_path, self.smaps_path) if model and self.model_path else 0
            )
            rss_file = found.get("RssFile")
            self.file_rss[name] = (
                rss_file - mapped if rss_file is not None and mapped is not None else None
            )
        self.read_ns += self.clock() - t0
        return value

    def loaded(self) -> None:
        t0 = self.clock()
        self._read("loaded", files=True)
        self.loaded_ns = self.clock() - t0

    def init(self) -> None:
        self._read("init")
        t0 = self.clock()
        self.reset = reset_peak(self.clear_refs_path)
        self.read_ns += self.clock() - t0

    def end(self) -> None:
        self._read("end", files=True, model=True)

    def code_bytes(self) -> int | None:
        """The runtime's code paged in between its import and the last inference."""
        start, end = self.file_rss.get("loaded"), self.file_rss.get("end")
        return None if start is None or end is None else max(0, end - start)

    @property
    def available(self) -> bool:
        return all(self.readings.get(k) is not None for k in ("before", "loaded", "init", "end"))

    def peak_resident(self) -> int | None:
        """The highest resident size of the inferences, in bytes (exact when ``reset``)."""
        init, end = self.readings.get("init"), self.readings.get("end")
        if init is None or end is None:
            return None
        if self.reset:
            return max(end[1], init[0])
        if end[1] > init[1]:
            return end[1]  # the inferences raised the life's mark: it is theirs
        return max(init[0], end[0])

    def fields(self) -> dict[str, Any]:
        """``protocol.Memory`` keyword arguments (without ``source``, which the runner names)."""
        read_ms = self.read_ns / 1e6
        if not self.available:
            return {"error": f"{self.status_path} has no VmRSS/VmHWM here", "read_ms": read_ms}
        before, loaded, init = (self.readings[k] for k in ("before", "loaded", "init"))
        assert before is not None and loaded is not None and init is not None
        peak = self.peak_resident()
        assert peak is not None
        return {
            "baseline_bytes": before[0],
            "runtime_load_bytes": max(0, loaded[0] - before[0]),
            "init_bytes": max(0, init[0] - loaded[0]),
            "peak_bytes": max(0, peak - loaded[0]),
            "code_bytes": self.code_bytes(),
            "read_ms": read_ms,
        }


# ---------------------------------------------------------------- the runtime's own figure


def runtime_tensor_bytes(runner: Any) -> int | None:
    """The runtime's own figure of its tensor memory (a runner's ``tensor_bytes()``, which
    only LiteRT's has); None where there is none or it cannot be read, never an error."""
    figure = getattr(runner, "tensor_bytes", None)
    if figure is None:
        return None
    try:
        value = figure()
    except Exception:  # a figure the runtime cannot give must not lose the measurement
        return None
    return int(value) if value is not None else None


def mapped_ranges(path: str, maps_path: str = MAPS_PATH) -> list[tuple[int, int]]:
    """Address ranges where the file at ``path`` is mapped into this process."""
    target = os.path.realpath(path)
    ranges = []
    try:
        with open(maps_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].strip() == target:
                    lo, _, hi = parts[0].partition("-")
                    ranges.append((int(lo, 16), int(hi, 16)))
    except (OSError, ValueError):
        return []
    return ranges


def union_bytes(spans: list[tuple[int, int]]) -> int:
    """Bytes covered by half-open address ranges, overlaps counted once."""
    total, reach = 0, None
    for lo, hi in sorted(spans):
        if reach is None or lo >= reach:
            total += hi - lo
            reach = hi
        elif hi > reach:
            total += hi - reach
            reach = hi
    return total


def litert_tensor_bytes(
    interpreter: Any, model_path: str, maps_path: str = MAPS_PATH
) -> int | None:
    """Bytes of the tensor buffers a LiteRT/TFLite ``Interpreter`` allocated for this model.

    Every tensor the interpreter gives a buffer, except constants read in place from the
    memory-mapped model file; tensors the planner lays over one another (in-place reuse) count
    once. Tensors inside a delegate's partition have no interpreter buffer (XNNPACK keeps them in
    its own workspace), so this is the interpreter's share, not the delegate's. None when the
    model file is not memory-mapped (constants could not be told from allocations).
    """
    mapped = mapped_ranges(model_path, maps_path)
    if not mapped:
        return None
    spans = []
    for detail in interpreter.get_tensor_details():
        try:
            view = interpreter.tensor(detail["index"])()
        except ValueError:  # no buffer: a delegate's internal tensor
            continue
        start, size = int(view.ctypes.data), int(view.nbytes)
        del view  # the interpreter refuses to run while a view of its buffers is alive
        if size and not any(lo <= start < hi for lo, hi in mapped):
            spans.append((start, start + size))
    return union_bytes(spans)
