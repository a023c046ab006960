"""``bench cache prune``: entries unused for longer than the age go whole, the rest and every
file that is no entry's stay, and a cache hit keeps an entry young (file times set by hand: no
clock is waited on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchharness.errors import ExportError
from benchharness.export import cache
from benchharness.export.prune import SECONDS_PER_DAY, prune

ROOT = Path(__file__).resolve().parents[2]
NOW = 2_000_000_000.0
OLD_KEY, NEW_KEY = "0123456789abcdef", "fedcba9876543210"


def _entry(root: Path, model: str, key: str, age_days: float, suffixes: tuple[str, ...]) -> list[Path]:
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix in suffixes:
        path = folder / f"{model}-{key}{suffix}"
        path.write_bytes(b"x" * 100)
        when = NOW - age_days * SECONDS_PER_DAY
        os.utime(path, (when, when))
        paths.append(path)
    return paths


def test_old_entries_go_whole_and_young_ones_stay(tmp_path: Path) -> None:
    old = _entry(tmp_path, "resnet34", OLD_KEY, 40, (".onnx", ".onnx.json", ".onnx.lock", ".cost.json"))
    young = _entry(tmp_path, "resnet34", NEW_KEY, 2, (".tflite", ".tflite.json"))
    # an entry with one recent file (an export in progress, a hit's touched sidecar) is in use
    mixed = _entry(tmp_path, "mobilenet_v2", OLD_KEY, 90, (".pte", ".etrecord"))
    mixed += _entry(tmp_path, "mobilenet_v2", OLD_KEY, 0.1, (".pte.json",))
    stranger = tmp_path / "export.log"
    stranger.write_text("log")
    other = tmp_path / "resnet34" / "notes.txt"
    other.write_text("mine")
    os.utime(other, (0, 0))
    result = prune(tmp_path, 30, now=NOW)
    assert (result.removed_entries, result.removed_files, result.removed_bytes) == (1, 4, 400)
    assert (result.kept_entries, result.kept_bytes) == (2, 500)
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in young + mixed + [stranger, other])


def test_age_zero_removes_every_entry_and_bad_input_is_an_export_error(tmp_path: Path) -> None:
    _entry(tmp_path, "m", OLD_KEY, 0.5, (".onnx",))
    assert prune(tmp_path, 0, now=NOW).removed_entries == 1
    with pytest.raises(ExportError, match="no export cache"):
        prune(tmp_path / "missing", 30, now=NOW)
    with pytest.raises(ExportError, match="0 days or more"):
        prune(tmp_path, -1, now=NOW)


def test_a_cache_hit_keeps_its_entry_young(tmp_path: Path) -> None:
    (artifact,) = _entry(tmp_path, "m", OLD_KEY, 0, (".onnx",))
    side = cache.record_path(artifact)
    side.write_text(json.dumps({"format": "onnx", "precision": "fp32",
                                "sha256": cache.sha256_file(artifact)}))  # fmt: skip
    long_ago = time.time() - 400 * SECONDS_PER_DAY
    for path in (artifact, side):
        os.utime(path, (long_ago, long_ago))
    assert cache.lookup(artifact) is not None
    assert side.stat().st_mtime > long_ago + 399 * SECONDS_PER_DAY  # the hit touched it
    result = prune(tmp_path, 30)
    assert (result.kept_entries, result.removed_entries) == (1, 0) and artifact.exists()


def test_the_cli_prunes_the_cache_bench_cache_dir_names(tmp_path: Path) -> None:
    (gone,) = _entry(tmp_path, "m", OLD_KEY, 0, (".onnx",))
    long_ago = time.time() - 400 * SECONDS_PER_DAY
    os.utime(gone, (long_ago, long_ago))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchharness.cli", "cache", "prune", "--older-than", "30",
         "--json"], capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["removed_entries"] == 1 and data["cache"] == str(tmp_path) and not gone.exists()
    env["BENCH_CACHE_DIR"] = str(tmp_path / "missing")
    proc = subprocess.run([sys.executable, "-m", "benchharness.cli", "cache", "prune"],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.startswith("ExportError: no export cache")
    assert "Traceback" not in proc.stderr
