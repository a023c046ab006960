"""Fuzzing the ETDump reader's alignment: whatever events the Inspector hands over (any names,
durations, debug handles, delegate marks) become operator rows or a ParseError, never another
exception, within the deadline; the rows hold finite times >= 0.

The events are drawn as the Inspector's objects (``SimpleNamespace`` stand-ins, as in
``tests/parse/test_etdump.py``) against a random edge graph: the Inspector itself is
ExecuTorch's, and a real ETDump needs an export to make, so its file format is left to it.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from benchharness.cost.pte_cost import EdgeOp
from benchharness.errors import ParseError
from benchharness.parse.etdump import (
    DELEGATE_CALL,
    METHOD_EXECUTE,
    NATIVE_CALL_PREFIX,
    OPERATOR_CALL,
    TFLITE_KIND,
    align_events,
)
from tests.fuzz.budget import ci_share
from tests.fuzz.mutations import record
from tests.fuzz.refusals import record_refusal

#: Inputs per test under the ci profile (tests/fuzz/budget.py).
EXAMPLES = 80

READER = "ETDump events"

#: Names an event may have: the instructions the aligner tells apart, XNNPACK's operators, junk.
NAMES = [
    METHOD_EXECUTE, DELEGATE_CALL, OPERATOR_CALL, f"{NATIVE_CALL_PREFIX}add.out",
    "Convolution (NHWC, F32) IGEMM #1", "Add (ND) #1", "Transpose (ND, X32) #1",
    "Fully Connected (NC, F32) GEMM #2", "", "x" * 5000,
]  # fmt: skip
OP_TYPES = [*sorted(TFLITE_KIND)[:12], "aten.cumsum", "aten.weird"]

durations = st.one_of(
    st.floats(min_value=0, max_value=1e3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1.0, 0, 1, True, None, "fast", 1e300]),
)
handles = st.one_of(
    st.none(),
    st.integers(-2, 12),
    st.lists(st.one_of(st.integers(-2, 12), st.text(max_size=2), st.none()), max_size=5),
    st.sampled_from(["3", 2.5, {"a": 1}]),
)


@st.composite
def events(draw: st.DrawFn) -> list[SimpleNamespace]:
    out = []
    for _ in range(draw(st.integers(0, 12))):
        out.append(
            SimpleNamespace(
                name=draw(st.sampled_from(NAMES)),
                perf_data=SimpleNamespace(raw=draw(st.lists(durations, max_size=6))),
                debug_handles=draw(handles),
                is_delegated_op=draw(st.booleans()),
                op_types=draw(st.lists(st.sampled_from([*OP_TYPES, "", "a.b.c"]), max_size=2)),
                delegate_backend_name=draw(st.sampled_from([None, "XnnpackBackend", ""])),
            )
        )
    return out


@st.composite
def graphs(draw: st.DrawFn) -> list[EdgeOp]:
    n = draw(st.integers(0, 10))
    return [
        EdgeOp(
            i,
            f"node{i}",
            draw(st.sampled_from(OP_TYPES)),
            draw(st.one_of(st.none(), st.integers(0, 12))),
            None,
        )
        for i in range(n)
    ]


def _finite(value: Any) -> bool:
    return value is None or (math.isfinite(value) and value >= 0)


@ci_share(EXAMPLES)
@given(evs=events(), ops=graphs(), warmup=st.integers(0, 3))
def test_random_events_align_or_are_refused(
    evs: list[SimpleNamespace], ops: list[EdgeOp], warmup: int
) -> None:
    try:
        profile = align_events(evs, ops, warmup)
    except ParseError as exc:
        record_refusal(READER, exc)
        return
    record(READER, None)
    assert _finite(profile.execute_ms)
    for row in profile.ops:
        assert _finite(row.median_us), row
        assert row.op_index is None or row.op_index >= -1, row
