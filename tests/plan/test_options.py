"""The run's settings as run.json's ``request`` section stores them, and as --resume reads them:
nested since the options and method were nested, flat before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchharness.api import RunRequest
from benchharness.errors import UsageError
from benchharness.ondevice.protocol import WARMUP_CALIBRATED, WARMUP_FULL
from benchharness.plan.options import DEFAULT_JOB_TIMEOUT_S, Method, RunOptions

ASKED = RunRequest(
    devices=("pi", "phone"),
    models="resnet18,mobilenet_v2",
    formats=("onnx",),
    options=RunOptions(
        method=Method(
            quick=True, min_n=20, min_s=0.2, max_s=30.0, warmup_min_s=0.1, warmup=WARMUP_FULL
        ),
        threads=2,
        affinity="f0",
        processes=3,
        profile_ops=False,
        timeout_s=90.0,
        seed=7,
        max_processes=7,
        process_ci_rel=0.03,
    ),
    input_shape="1x3x160x160",
    results_dir=Path("out"),
    precisions=("fp32", "int8-dynamic"),
    resolutions=(128, 160),
    widths=(0.5, 1.0),
    force=True,
    scheduler="tcp://farm:8786",
    manifest="kernels.toml",
)

#: ``ASKED`` as run.json stored a request before its options and method were nested.
FLAT: dict[str, Any] = {
    "devices": ["pi", "phone"], "models": "resnet18,mobilenet_v2", "formats": ["onnx"],
    "threads": 2, "affinity": "f0", "quick": True, "processes": 3,
    "input_shape": "1x3x160x160", "profile_ops": False, "resume": None, "timeout_s": 90.0,
    "min_n": 20, "min_s": 0.2, "max_s": 30.0, "warmup_min_s": 0.1, "warmup": "full", "seed": 7,
    "results_dir": "out", "precisions": ["fp32", "int8-dynamic"], "calibration": None,
    "resolutions": [128, 160], "widths": [0.5, 1.0], "force": True,
    "scheduler": "tcp://farm:8786", "max_processes": 7, "process_ci_rel": 0.03,
    "manifest": "kernels.toml",
}  # fmt: skip


def test_a_stored_request_reads_back_as_it_was_asked() -> None:
    stored = json.loads(json.dumps(ASKED.to_json()))  # through JSON, as run.json holds it
    assert stored["options"]["method"] == {
        "quick": True, "min_n": 20, "min_s": 0.2, "max_s": 30.0, "warmup_min_s": 0.1,
        "warmup": "full",
    }  # fmt: skip
    assert RunRequest.from_json(stored, RunRequest()) == ASKED


def test_a_flat_request_of_an_older_run_reads_back_the_same() -> None:
    assert RunRequest.from_json(FLAT, RunRequest()) == ASKED


def test_a_flat_request_without_a_timeout_gets_the_default() -> None:
    read = RunRequest.from_json({**FLAT, "timeout_s": None}, RunRequest())
    assert read.options.timeout_s == DEFAULT_JOB_TIMEOUT_S


def test_what_a_stored_request_lacks_is_the_base_requests() -> None:
    base = RunRequest(options=RunOptions(method=Method(min_n=9), max_processes=4))
    read = RunRequest.from_json({"models": "m"}, base)
    assert read.models == "m"
    assert read.options.method.min_n == 9 and read.options.max_processes == 4
    assert read.devices == ("local",) and read.formats == ("onnx", "tflite")


def test_quick_fixes_one_process_unless_a_count_is_given() -> None:
    assert RunOptions(method=Method(quick=True)).n_processes == 1
    assert RunOptions(method=Method(quick=True), processes=3).n_processes == 3


def test_a_run_stored_before_the_calibrated_warmup_reads_back_calibrated() -> None:
    # its first restored process has no settle point: the next one runs the full rule and
    # calibrates the rest (dispatch/warmup.py), so resuming it is safe
    flat = {k: v for k, v in FLAT.items() if k != "warmup"}
    assert RunRequest.from_json(flat, RunRequest()).options.method.warmup == WARMUP_CALIBRATED
    assert Method().warmup == WARMUP_CALIBRATED


def test_an_unknown_warmup_is_refused_naming_the_choices() -> None:
    with pytest.raises(UsageError, match="calibrated, full"):
        Method(warmup="fast")
