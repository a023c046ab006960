"""The worker's artifact cache: a file named by its hash, hashed again on every use; a program's
ETRecord beside it; bounded, the least recently used out, never one being measured."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from benchharness.errors import FarmError, UsageError
from benchharness.farm import artifact_cache as artifacts
from benchharness.plan.artifacts import Artifact


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(artifacts.FARM_CACHE_ENV, str(tmp_path / "farm"))
    monkeypatch.delenv(artifacts.MAX_BYTES_ENV, raising=False)
    return tmp_path / "farm"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _used(path: Path, at: float) -> None:
    os.utime(path, (at, at))


def test_stored_bytes_are_found_by_hash_and_format(cache: Path) -> None:
    data = b"\x08\x07onnx model bytes"
    sha = _sha(data)
    assert artifacts.missing([(sha, "onnx", ())]) == [sha]
    path = Path(artifacts.store(sha, "onnx", data))
    assert path.parent == cache and path.read_bytes() == data
    assert artifacts.present(sha, "onnx") == path
    assert artifacts.missing([(sha, "onnx", ()), (sha, "tflite", ())]) == [sha]  # another format
    assert artifacts.cached_path(sha, "torch").suffix == ".pt2"


def test_damaged_bytes_are_refused_and_leave_nothing(cache: Path) -> None:
    sha = _sha(b"the real model")
    with pytest.raises(FarmError, match="arrived damaged"):
        artifacts.store(sha, "tflite", b"the real mode")
    assert artifacts.present(sha, "tflite") is None
    assert not cache.exists() or not any(cache.iterdir())


def test_a_file_changed_after_it_was_checked_is_removed_on_use(cache: Path) -> None:
    data = b"model bytes" * 100
    sha = _sha(data)
    path = Path(artifacts.store(sha, "onnx", data))
    path.write_bytes(b"X" + data[1:])  # same size, other bytes: a presence check would pass
    assert artifacts.present(sha, "onnx") is None
    assert not path.exists(), "a damaged file must go, so it is sent again"
    assert artifacts.missing([(sha, "onnx", ())]) == [sha]


def test_a_program_s_etrecord_is_kept_and_checked_beside_it(cache: Path) -> None:
    program, record = b"PTE program", b"ETRecord bytes"
    sha, record_sha = _sha(program), _sha(record)
    wanted = [(sha, "pte", (".etrecord",))]
    artifacts.store(sha, "pte", program)
    assert artifacts.missing(wanted) == [sha], "a program without its ETRecord is incomplete"
    with pytest.raises(FarmError, match="arrived damaged"):
        artifacts.store_companion(sha, ".etrecord", record_sha, record + b"!")
    with pytest.raises(FarmError, match="not a companion"):
        artifacts.store_companion(sha, ".py", record_sha, record)
    artifacts.store_companion(sha, ".etrecord", record_sha, record)
    assert artifacts.missing(wanted) == []
    path = artifacts.present(sha, "pte")
    assert path is not None and path.with_suffix(".etrecord").read_bytes() == record
    path.with_suffix(".etrecord").write_bytes(b"changed")
    assert artifacts.present(sha, "pte") is None and not any(cache.iterdir())


def test_the_coordinator_sends_a_program_with_its_etrecord(tmp_path: Path) -> None:
    program = tmp_path / "m.pte"
    program.write_bytes(b"PTE")
    a = Artifact(model="m", source="zoo", input_shape="1x3x8x8", format="pte", precision="fp32",
                 path=program, sha256=_sha(b"PTE"))  # fmt: skip
    assert artifacts.wants([a])[a.sha256][1] == (a.sha256, "pte", ())
    program.with_suffix(".etrecord").write_bytes(b"R")
    assert artifacts.wants([a])[a.sha256][1] == (a.sha256, "pte", (".etrecord",))


def test_the_cache_keeps_to_its_bound_least_recently_used_out(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = {name: name.encode() * 100 for name in ("old", "mid", "new")}  # 300 bytes each
    shas = {name: _sha(data) for name, data in blobs.items()}
    for i, name in enumerate(blobs):
        _used(Path(artifacts.store(shas[name], "onnx", blobs[name])), 1000.0 + i)
    assert artifacts.evict(limit=10_000) == []
    # "old" was used last: "mid" is now the least recently used
    assert artifacts.present(shas["old"], "onnx") is not None
    with artifacts.pinned(shas["mid"]):
        assert artifacts.evict(limit=600) == [shas["new"]], "a pinned artifact stays"
    assert artifacts.evict(limit=300) == [shas["mid"]]
    assert [p.name for p in cache.iterdir()] == [f"{shas['old']}.onnx"]

    monkeypatch.setenv(artifacts.MAX_BYTES_ENV, "500")
    assert artifacts.max_bytes() == 500
    extra = b"x" * 400
    artifacts.store(_sha(extra), "tflite", extra)  # over the bound: the older one leaves
    assert sorted(p.suffix for p in cache.iterdir()) == [".tflite"]
    monkeypatch.setenv(artifacts.MAX_BYTES_ENV, "lots")
    with pytest.raises(UsageError, match=artifacts.MAX_BYTES_ENV):
        artifacts.max_bytes()
