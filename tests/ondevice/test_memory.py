"""The runner's memory probe: real runner processes on models whose allocation is known, the
kernel's peak reset on this machine, and the readings' arithmetic on stand-in ``/proc`` files
(a kernel that refuses ``clear_refs`` cannot be had here, so that path reads files the test
writes)."""

from __future__ import annotations

import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness.ondevice import memory, protocol
from benchharness.runners.python import RUNNER_DIR, RUNNER_SCRIPT
from tests.support.memory_models import FLOAT_BYTES, onnx_model, tflite_model

#: Elements of the large tensor: 16 MiB of float32, far above any noise, quick to build and run.
BIG_N = 4 << 20
#: The small twin: the same graph with a tensor of no size.
SMALL_N = 16
#: A fresh process's resident size varies by a few pages from one start to the next (up to
#: 8 KiB seen here, on the small twin), so a rise is asserted within this much of the tensor:
#: 1.5 % of it, and 64 pages.
PAGE_NOISE = 256 * 1024
#: Short measuring: the probe is under test, not the method.
FAST = ["--threads", "1", "--preset", "quick", "--min-n", "5", "--min-s", "0",
        "--warmup-min-s", "0", "--warmup-min-n", "1"]  # fmt: skip
BUILDERS = {"onnx": onnx_model, "tflite": tflite_model}


def run_runner(model: Path, fmt: str, *extra: str) -> protocol.RunnerResult:
    argv = [sys.executable, str(RUNNER_DIR / RUNNER_SCRIPT), "--model", str(model),
            "--format", fmt, *FAST, *extra]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    result = protocol.decode(out.stdout)
    assert result is not None and result.ok, (out.stdout[-2000:], out.stderr[-2000:])
    return result


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("memory-models")


@pytest.mark.parametrize("kind", ["constant", "intermediate"])
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_peak_rises_by_at_least_the_tensor_the_model_holds(
    fmt: str, kind: str, models: Path
) -> None:
    build = BUILDERS[fmt]
    small = run_runner(build(models / f"{kind}-small.{fmt}", SMALL_N, kind), fmt).memory
    big = run_runner(build(models / f"{kind}-big.{fmt}", BIG_N, kind), fmt).memory
    tensor = BIG_N * FLOAT_BYTES
    assert small is not None and big is not None
    assert small.peak_bytes is not None and big.peak_bytes is not None
    assert big.source == small.source and big.source in (protocol.MEM_VMHWM, protocol.MEM_RSS_DELTA)
    assert big.peak_bytes - small.peak_bytes >= tensor - PAGE_NOISE, (small, big)
    assert big.runtime_load_bytes and big.baseline_bytes  # importing the runtime costs memory
    assert big.read_ms is not None and big.read_ms > 0
    if kind == "intermediate":
        # made by the first inference, not at init: the peak over the inferences holds it
        assert big.init_bytes is not None and big.peak_bytes - big.init_bytes >= tensor
    assert big.code_bytes is not None  # the runtime's code paged in on the way
    if fmt == "tflite":
        # the model file is mapped: its pages (the constant's 16 MiB) are data, not code
        assert big.code_bytes < tensor
        assert big.tensor_bytes is not None
        if kind == "intermediate":  # TILE runs on TFLite's kernel: the tensor is the arena's
            assert big.tensor_bytes >= tensor
        else:  # the constant is read in place from the mapped file: not an allocation
            assert big.tensor_bytes < tensor
    else:
        assert big.tensor_bytes is None  # ONNX Runtime gives Python no figure of its own


def test_no_memory_flag_skips_the_readings(models: Path) -> None:
    result = run_runner(onnx_model(models / "off.onnx", SMALL_N, "constant"), "onnx", "--no-memory")
    assert result.memory is None and result.samples_ms


def test_this_kernel_resets_the_peak_or_says_it_cannot() -> None:
    before = memory.read_status()
    if before is None:
        pytest.skip("no /proc/self/status VmRSS/VmHWM here")
    block = b"\x01" * (64 << 20)  # every byte written: 64 MiB resident, then given back
    high = memory.read_status()
    del block
    assert high is not None and high[1] >= before[0] + (64 << 20)
    if not memory.reset_peak():
        pytest.skip("this kernel refuses /proc/self/clear_refs: the runner reports rss-delta")
    rss, hwm = memory.read_status() or (0, 0)
    assert hwm < high[1] and hwm - rss < 1 << 20, "VmHWM was not reset to VmRSS"


# ---------------------------------------------------------------- the arithmetic, on files


def _status(path: Path, rss_kb: int, hwm_kb: int) -> None:
    path.write_text(f"Name:\tpython3\nVmHWM:\t{hwm_kb:8d} kB\nVmRSS:\t{rss_kb:8d} kB\n")


def _probe(tmp_path: Path, readings: list[tuple[int, int]], clear_refs: Path) -> memory.MemoryProbe:
    status = tmp_path / "status"
    _status(status, *readings[0])
    probe = memory.MemoryProbe(str(status), str(clear_refs))
    for step, (rss, hwm) in zip((probe.loaded, probe.init, probe.end), readings[1:], strict=True):
        _status(status, rss, hwm)
        step()
    return probe


def test_refused_reset_with_a_peak_the_inferences_raised(tmp_path: Path) -> None:
    # before 30 MiB, loaded 50, init 60 (life's mark 70 from loading), the inferences reach 90
    readings = [(30720, 30720), (51200, 56320), (61440, 71680), (65536, 92160)]
    probe = _probe(tmp_path, readings, clear_refs=tmp_path)  # a directory: the write fails
    assert probe.reset is False
    assert probe.fields() == {
        "baseline_bytes": 30720 * 1024, "runtime_load_bytes": 20480 * 1024,
        "init_bytes": 10240 * 1024, "peak_bytes": (92160 - 51200) * 1024,
        "code_bytes": None,  # the stand-in status has no RssFile
        "read_ms": probe.read_ns / 1e6,
    }  # fmt: skip


def test_refused_reset_below_the_loading_peak_is_a_lower_bound(tmp_path: Path) -> None:
    # the life's mark (80 MiB) was set while loading; the inferences stayed under it
    readings = [(30720, 30720), (51200, 56320), (61440, 81920), (63488, 81920)]
    probe = _probe(tmp_path, readings, clear_refs=tmp_path)
    assert probe.fields()["peak_bytes"] == (63488 - 51200) * 1024  # the larger resident size


def test_allowed_reset_reads_the_inferences_mark(tmp_path: Path) -> None:
    clear_refs = tmp_path / "clear_refs"
    clear_refs.write_text("")
    readings = [(30720, 30720), (51200, 56320), (61440, 81920), (63488, 66560)]
    probe = _probe(tmp_path, readings, clear_refs=clear_refs)
    assert probe.reset is True and clear_refs.read_text() == memory.RESET_PEAK
    assert probe.fields()["peak_bytes"] == (66560 - 51200) * 1024


def test_code_bytes_leave_out_the_model_files_pages(tmp_path: Path) -> None:
    status, smaps = tmp_path / "status", tmp_path / "smaps"
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    status.write_text("VmHWM:\t 1000 kB\nVmRSS:\t 1000 kB\nRssFile:\t  400 kB\n")
    probe = memory.MemoryProbe(str(status), str(tmp_path), model_path=str(model),
                               smaps_path=str(smaps))  # fmt: skip
    probe.loaded()
    probe.init()
    # 900 kB more file-backed memory, 600 kB of it the model's mapping, in two parts
    status.write_text("VmHWM:\t 3000 kB\nVmRSS:\t 2900 kB\nRssFile:\t 1300 kB\n")
    smaps.write_text(
        f"7f00-7f10 r--s 00000000 fe:00 12 {model}\nSize: 64 kB\nRss:  400 kB\n"
        "7f20-7f30 r-xp 00000000 fe:00 13 /usr/lib/libfoo.so\nRss:  300 kB\n"
        f"7f40-7f50 r--s 00010000 fe:00 12 {model}\nRss:  200 kB\nVmFlags: rd sh\n"
        "7f60-7f70 rw-p 00000000 00:00 0\nRss:  50 kB\n"
    )
    probe.end()
    assert probe.fields()["code_bytes"] == (900 - 600) * 1024


def test_no_status_file_is_an_error_not_a_guess(tmp_path: Path) -> None:
    probe = memory.MemoryProbe(str(tmp_path / "absent"), str(tmp_path))
    probe.loaded()
    probe.init()
    probe.end()
    fields = probe.fields()
    assert "error" in fields and "peak_bytes" not in fields


def test_union_counts_overlaps_once() -> None:
    assert memory.union_bytes([(0, 10), (5, 15), (20, 30), (22, 25)]) == 25
    assert memory.union_bytes([]) == 0


def test_mapped_ranges_find_a_mapped_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\0" * (4 * mmap.PAGESIZE))
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        ranges = memory.mapped_ranges(str(path))
        assert len(mapped) == 4 * mmap.PAGESIZE
        assert sum(hi - lo for lo, hi in ranges) >= 4 * mmap.PAGESIZE
    assert memory.mapped_ranges(str(tmp_path / "not-mapped")) == []


# ---------------------------------------------------------------- the protocol


def test_memory_round_trips_and_is_checked_field_by_field() -> None:
    mem = protocol.Memory(source=protocol.MEM_VMHWM, peak_bytes=123, init_bytes=7, read_ms=0.1)
    result = protocol.RunnerResult(samples_ms=[1.0], memory=mem)
    assert protocol.decode(protocol.encode(result)) == result
    bad = protocol.encode(result).replace('"peak_bytes": 123', '"peak_bytes": -1')
    with pytest.raises(protocol.ProtocolError, match=r"result\.memory\.peak_bytes"):
        protocol.decode(bad)
    without = protocol.encode(protocol.RunnerResult(samples_ms=[1.0]))
    decoded = protocol.decode(without)
    assert decoded is not None and decoded.memory is None
