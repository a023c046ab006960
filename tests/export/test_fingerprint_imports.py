"""The cache key of an installed package's builder is its version, read without importing it:
``find_spec`` of a dotted name imports the parents, and ``torchvision.models`` meant importing
torch (2.4 s of every `bench run`'s start here, with every artifact already cached)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from benchharness.export.cache import builder_fingerprint
found = builder_fingerprint("torchvision.models:resnet18")
print(json.dumps({"found": found, "torch": "torch" in sys.modules,
                  "torchvision": "torchvision" in sys.modules}))
"""


def test_an_installed_builder_is_fingerprinted_by_version_without_importing_it() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["found"] == f"torchvision=={metadata.version('torchvision')}"
    assert not seen["torchvision"] and not seen["torch"], seen
