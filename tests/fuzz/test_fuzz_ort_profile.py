"""Fuzzing the ONNX Runtime profile reader: every input gives operator times or is refused as
the harness's own error, never another exception (a ValueError, a RecursionError), within the
deadline; what is read holds finite times >= 0.

Inputs are the captures of ``tests/fixtures/native/ort_profile`` and the parser tests' three-run
profile, as JSON documents with values replaced, dropped or added (huge and negative numbers,
``NaN``, ``1e999``, deep nesting, the wrong types), cut anywhere (an excerpt, read by the
recovery of complete records), damaged byte by byte, and random JSON structures.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from benchharness.errors import HarnessError
from benchharness.parse.op_join import ort_rows
from benchharness.parse.ort_profile import (
    aggregate_node_times,
    load_profile_events,
    model_run_durations_us,
)
from tests.fuzz.budget import ci_share
from tests.fuzz.mutations import json_values, mutated_bytes, mutated_json, paths, record, render
from tests.fuzz.refusals import record_refusal
from tests.parse.test_ort_profile import three_runs
from tests.runners.fixtures import FIXTURES

#: Inputs per test under the ci profile (tests/fuzz/budget.py).
EXAMPLES = 80

READER = "ORT profile"


@functools.cache
def seed_texts() -> tuple[str, ...]:
    files = sorted((FIXTURES / "ort_profile").glob("*.json"))
    return (*(p.read_text(encoding="utf-8") for p in files), json.dumps(three_runs()))


@functools.cache
def seed_docs() -> tuple[list[Any], ...]:
    """Each seed as a JSON document: an excerpt as the events recovered from it."""
    return tuple(load_profile_events(text) for text in seed_texts())


@functools.cache
def seed_paths(k: int) -> list[tuple[str | int, ...]]:
    return paths(seed_docs()[k])


@st.composite
def mutated_profile(draw: st.DrawFn) -> str:
    k = draw(st.integers(0, len(seed_docs()) - 1))
    return draw(mutated_json(seed_docs()[k], seed_paths(k)))


@st.composite
def excerpt(draw: st.DrawFn) -> str:
    """A seed, or a mutation of it, cut anywhere: read by the recovery of complete records."""
    text = draw(st.one_of(st.sampled_from(seed_texts()), mutated_profile()))
    return text[: draw(st.integers(0, len(text)))]


@st.composite
def damaged_bytes(draw: st.DrawFn) -> str:
    raw = draw(mutated_bytes(draw(st.sampled_from(seed_texts())).encode("utf-8")))
    return raw.decode("utf-8", errors="replace")


def read_or_refuse(text: str) -> None:
    """Read ``text`` as ``bench import --profile-json`` and the ops collection do: a harness
    error is a refusal; anything else fails the test. What is read must be in range."""
    try:
        events = load_profile_events(text)
        durations = model_run_durations_us(events)
        ops = aggregate_node_times(events, skip_first_runs=1 if len(durations) > 1 else 0)
        rows = ort_rows(text, 1, None)
    except HarnessError as exc:
        record_refusal(READER, exc)
        return
    record(READER, None)
    assert all(math.isfinite(d) and d >= 0 for d in durations), durations
    for op in ops:
        assert math.isfinite(op.per_run_us) and op.per_run_us >= 0, op
        assert op.share is None or 0 <= op.share <= 1 + 1e-9, op
    for row in rows:
        numbers = [v for v in row.values() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in numbers), row


def test_the_seeds_are_read() -> None:
    for text in seed_texts():
        read_or_refuse(text)


@ci_share(EXAMPLES)
@given(text=st.one_of(mutated_profile(), excerpt(), damaged_bytes()))
def test_mutated_profiles(text: str) -> None:
    read_or_refuse(text)


@ci_share(EXAMPLES)
@given(body=json_values, wrap=st.booleans())
def test_random_structures(body: Any, wrap: bool) -> None:
    read_or_refuse(render({"traceEvents": body} if wrap else body))
