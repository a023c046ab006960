"""What ``bench import`` reads from outside is bounded before it is read whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.errors import ParseError
from benchharness.export import cache
from benchharness.results import importer


def test_a_file_over_the_limit_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    log.write_bytes(b"x" * 2048)
    with pytest.raises(ParseError, match=r"huge\.log"):
        importer._read(log, "log", 1024)
    assert importer._read(log, "log", 4096) == "x" * 2048


@pytest.mark.parametrize(
    "sidecar",
    ['{"sha256": "x"}', "[1, 2]", '{"format": 1, "precision": "fp32", "sha256": "x"}',
     '{"format": "onnx", "precision": "fp32", "sha256": "x", "tolerance": "tight"}', "{" * 5000],
)  # fmt: skip
def test_a_damaged_cache_sidecar_is_a_miss_not_a_crash(tmp_path: Path, sidecar: str) -> None:
    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(b"model")
    (tmp_path / "m.onnx.json").write_text(sidecar)
    assert cache.lookup(artifact) is None
