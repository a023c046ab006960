"""What broke on the emulated ARM64 board, each checked where it can be on this host.

Inside a root without /sys/devices/system/cpu, XNNPACK's cpuinfo cannot start: LiteRT's
interpreter then ran every op on TFLite's reference kernels without a word (the row still said
XNNPACK, ~3x slower), and its CompiledModel, which the per-operator profiler drives, refused
with a bare RuntimeFailure. The row now names the kernels that ran, the profile's error says why
it has no operators, and a profile is never empty without saying so."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from benchharness.ondevice import litert_profiler as lp
from tests.ondevice.shipped import load_runner


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    """runner.py imported as the device imports it: its siblings flat on the path."""
    return load_runner("bh_arm_runner")


class _Interpreter:
    def __init__(self, ops: list[str] | None) -> None:
        self.ops = ops

    def _get_ops_details(self) -> list[dict[str, Any]]:
        if self.ops is None:
            raise AttributeError("no such API in this runtime")
        return [{"op_name": name} for name in self.ops]


def test_the_row_names_the_kernels_that_ran(runner: ModuleType) -> None:
    delegated = _Interpreter(["CONV_2D", "FULLY_CONNECTED", "DELEGATE"])
    assert runner.xnnpack_applied(delegated) is True
    assert runner.xnnpack_applied(_Interpreter(["CONV_2D", "FULLY_CONNECTED"])) is False
    assert runner.xnnpack_applied(_Interpreter(None)) is None


def test_xnnpack_applies_on_this_host(runner: ModuleType, tiny_artifacts: dict) -> None:
    model = str(tiny_artifacts["tflite"].path)
    import numpy as np

    litert = runner.LiteRtRunner(model, 1, np)
    assert litert.provider == "XNNPACK"


def test_a_compiled_model_refused_for_want_of_cpu_lists_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(lp, "_CPU_LISTS", (str(tmp_path / "possible"), str(tmp_path / "present")))
    assert "XNNPACK cannot start" in lp._cpu_lists_hint()
    (tmp_path / "possible").write_text("0-1\n")
    assert lp._cpu_lists_hint() == ""


def test_only_delegate_nodes_is_an_error_not_an_empty_profile() -> None:
    # the delegate's own kernel node (index past the graph), and no operator of its
    node = lp._Event("TfLiteXNNPackDelegate", lp._EV_OPERATOR, 100, 7, 0)
    with pytest.raises(lp.LiteRtProfilerError, match="only delegate kernel nodes"):
        lp._summarise([[node]], [1.0], [["CONV_2D"]], 0, 1, "xnnpack")
    with pytest.raises(lp.LiteRtProfilerError, match="no per-operator events"):
        lp._summarise([[]], [1.0], [["CONV_2D"]], 0, 1, "xnnpack")


def test_the_runner_never_returns_an_empty_profile(
    runner: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = ModuleType("litert_profiler")
    fake.available = lambda: True  # type: ignore[attr-defined]
    fake.profile_ops = lambda *a, **k: {"ops": [], "run_ms": [1.0]}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litert_profiler", fake)
    litert = runner.LiteRtRunner.__new__(runner.LiteRtRunner)
    litert.path, litert.threads, litert.feeds = "m.tflite", 1, []
    profile = litert.profile(50, "")
    assert profile.source is None and profile.error and "no operator rows" in profile.error
