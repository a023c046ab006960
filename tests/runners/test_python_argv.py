"""The python runner's command line as the host builds it from one process's settings."""

from __future__ import annotations

from benchharness.plan.options import Method
from benchharness.runners.python import RunnerSettings, runner_argv


def _argv(settings: RunnerSettings) -> list[str]:
    return runner_argv("python3", "/w/runner", "/w/m.onnx", settings, None)


def _value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_a_calibrated_process_is_given_its_warmup_count() -> None:
    argv = _argv(RunnerSettings(fmt="onnx", warmup_target_n=80))
    assert _value(argv, "--warmup-target-n") == "80"


def test_a_process_without_a_calibration_runs_the_full_rule() -> None:
    argv = _argv(RunnerSettings(fmt="onnx"))
    assert "--warmup-target-n" not in argv


def test_the_warmup_minimums_still_travel_for_the_full_rule() -> None:
    argv = _argv(RunnerSettings(fmt="onnx", method=Method(warmup_min_s=0.25), warmup_target_n=60))
    assert _value(argv, "--warmup-min-s") == "0.25"
    assert _value(argv, "--warmup-target-n") == "60"
