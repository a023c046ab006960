"""The folder shipped to devices works on its own: no module of it imports ``benchharness``, and
the runner, copied alone into an empty folder, times a real model in a python where importing
``benchharness`` fails."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchharness.ondevice.protocol import decode
from benchharness.plan.options import Method
from benchharness.runners import python as python_runner
from benchharness.runners.python import RUNNER_DIR, RUNNER_FILES, RunnerSettings

#: Makes ``import benchharness`` (and any submodule) fail, as on a device that has no package.
BLOCK = "import sys; sys.modules['benchharness'] = None; "


def test_no_shipped_module_imports_the_package() -> None:
    assert {"runner.py", "method.py", "probe.py", "protocol.py"} <= set(RUNNER_FILES)
    for name in RUNNER_FILES:
        tree = ast.parse((RUNNER_DIR / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import"
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert "benchharness" not in roots, f"{name} imports benchharness"


def test_the_copied_folder_runs_with_the_package_off_the_path(
    tiny_artifacts: dict, tmp_path: Path
) -> None:
    device = tmp_path / "device"
    device.mkdir()
    for name in RUNNER_FILES:
        shutil.copy(RUNNER_DIR / name, device / name)
    model = tiny_artifacts["onnx"].path
    settings = RunnerSettings(fmt="onnx", method=Method(quick=True, min_n=20, min_s=0.1), threads=1)
    argv = python_runner.runner_argv(sys.executable, str(device), str(model), settings, None)
    script, *args = argv[1:]
    code = (
        BLOCK
        + f"import runpy; sys.argv = {[script, *args]!r}; "
        + (f"sys.path.insert(0, {str(device)!r}); runpy.run_path({script!r}, run_name='__main__')")
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    result = decode(proc.stdout)
    assert result is not None, proc.stderr[-2000:]
    assert result.ok, (result.error, result.traceback)
    assert result.runtime == "onnxruntime" and len(result.samples_ms) >= 20
    assert result.env_start is not None and result.env_start.cpus
    json.loads(result.to_json())
