"""Where the captured native-tool outputs live: ``tests/fixtures/native``.

They are published captures of real devices, copied byte for byte from the team's
``shared/fixtures`` with their provenance (``SOURCES.md`` beside them), so a clone of this
repository runs its parser tests with nothing beside it; ``BENCH_FIXTURES`` points elsewhere
(e.g. at a larger set of captures).
"""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES = Path(
    os.environ.get("BENCH_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures" / "native")
)


def fixture_text(relative: str) -> str:
    """The text of one fixture file, e.g. ``benchmark_model/tflite_benchmark_model_8.txt``."""
    return (FIXTURES / relative).read_text(encoding="utf-8")
