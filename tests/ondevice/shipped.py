"""The shipped runner imported as a device imports it: its siblings flat on ``sys.path``."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from benchharness.runners.python import RUNNER_DIR


def load_runner(module_name: str) -> ModuleType:
    """``ondevice/runner.py`` as the module ``module_name``, its sibling modules importable."""
    sys.path.insert(0, str(RUNNER_DIR))
    try:
        spec = importlib.util.spec_from_file_location(module_name, RUNNER_DIR / "runner.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(RUNNER_DIR))
    return module
