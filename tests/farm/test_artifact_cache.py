"""The worker's artifact cache: a file named by its hash exists only once its bytes match it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from benchharness.errors import FarmError
from benchharness.farm import artifact_cache as artifacts


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(artifacts.FARM_CACHE_ENV, str(tmp_path / "farm"))
    return tmp_path / "farm"


def test_stored_bytes_are_found_by_hash_and_format(cache: Path) -> None:
    data = b"\x08\x07onnx model bytes"
    sha = hashlib.sha256(data).hexdigest()
    assert artifacts.missing([(sha, "onnx")]) == [sha]
    path = Path(artifacts.store(sha, "onnx", data))
    assert path.parent == cache and path.read_bytes() == data
    assert artifacts.present(sha, "onnx") == path
    assert artifacts.missing([(sha, "onnx"), (sha, "tflite")]) == [sha]  # another format
    assert artifacts.cached_path(sha, "torch").suffix == ".pt2"


def test_damaged_bytes_are_refused_and_leave_nothing(cache: Path) -> None:
    sha = hashlib.sha256(b"the real model").hexdigest()
    with pytest.raises(FarmError, match="arrived damaged"):
        artifacts.store(sha, "tflite", b"the real mode")
    assert artifacts.present(sha, "tflite") is None
    assert not cache.exists() or not any(cache.iterdir())
