"""ORT JSON profiles: loading (whole, cut off, legacy) and per-node aggregation over runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchharness.errors import ParseError, UsageError
from benchharness.parse.ort_profile import (
    aggregate_node_times,
    load_profile_events,
    model_run_durations_us,
)
from tests.runners.fixtures import fixture_text

P1 = "ort_profile/ort_profile_1.json"
P2 = "ort_profile/ort_profile_2.json"
P3 = "ort_profile/ort_profile_3.json"


def ev(name: str, ts: float, dur: float, cat: str = "Node", **args: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"cat": cat, "pid": 1, "tid": 1, "dur": dur, "ts": ts, "ph": "X"}
    event["name"] = name
    if args:
        event["args"] = args
    return event


def kernel(node: str, ts: float, dur: float, op: str, idx: int) -> dict[str, Any]:
    return ev(f"{node}_kernel_time", ts, dur, op_name=op, provider="CPUExecutionProvider",
              node_index=str(idx))  # fmt: skip


def three_runs() -> list[dict[str, Any]]:
    """Three inferences of Conv -> Relu (Relu called twice in run 2); times in us."""
    events = [ev("session_initialization", 0, 50, cat="Session")]
    conv = [100.0, 40.0, 44.0]
    relu = [(30.0,), (10.0, 5.0), (12.0,)]
    for r in range(3):
        start = 1000.0 * (r + 1)
        events.append(ev("model_run", start, 500, cat="Session"))
        events.append(ev("Conv_0_fence_before", start + 1, 0, op_name="Conv"))
        events.append(kernel("Conv_0", start + 2, conv[r], "Conv", 0))
        for k, dur in enumerate(relu[r]):
            events.append(kernel("Relu_1", start + 200 + 50 * k, dur, "Relu", 1))
    events.append(kernel("Stray", 9000, 7, "Add", 2))  # outside every model_run
    return events


def test_fixture_1_complete_array_without_args() -> None:
    events = load_profile_events(fixture_text(P1))
    assert len(events) == 9
    assert model_run_durations_us(events) == [31038.0]
    ops = aggregate_node_times(events)
    assert [o.op_name for o in ops] == [
        "DmlFusedNode_0_41", "DmlFusedNode_4_63", "DmlFusedNode_3_62", "/0/0.0/STFT",
        "DmlFusedNode_1_43", "/1/prenet/prenet.1/lstm/LSTM", "DmlFusedNode_2_45",
    ]  # fmt: skip
    assert [o.op_index for o in ops] == list(range(7))
    # a fused DirectML partition is one row named after its kind; no args: no op type to tell
    assert ops[0].op_type == "DmlFusedNode" and ops[3].op_type == ""
    assert ops[6].per_run_us == 8298.0 and ops[6].statistic == "median"
    assert sum(o.per_run_us for o in ops) == 10329.0
    assert ops[6].share == pytest.approx(8298 / 10329)
    assert all(o.calls == 1 and o.runs == 1 for o in ops)


def test_fixture_2_truncated_excerpt_with_modern_args() -> None:
    text = fixture_text(P2)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    events = load_profile_events(text)
    assert [e["name"] for e in events] == [
        "model_loading_uri",
        "session_initialization",
        "/model/attn_mask_reformat/attn_mask_subgraph/Shape_kernel_time",
    ]
    assert events[1]["dur"] == 1431772
    (op,) = aggregate_node_times(events)
    assert op.op_name == "/model/attn_mask_reformat/attn_mask_subgraph/Shape"
    assert (op.op_type, op.provider, op.node_index, op.per_run_us) == (
        "Shape", "DmlExecutionProvider", 3, 69.0,
    )  # fmt: skip
    assert model_run_durations_us(events) == []


def test_fixture_3_legacy_names_without_node() -> None:
    events = load_profile_events(fixture_text(P3))
    assert [e["name"] for e in events][2:] == [
        "_fence_before", "_kernel_time", "_fence_after", "_fence_before",
    ]  # fmt: skip
    (op,) = aggregate_node_times(events)
    assert (op.op_name, op.op_type, op.per_run_us) == ("Conv_0", "Conv", 12944.0)


def test_fixture_1_cut_in_the_middle_keeps_the_complete_events() -> None:
    text = fixture_text(P1)
    cut = text.index('"/1/prenet') + 5
    events = load_profile_events(text[:cut])
    assert [e["dur"] for e in events] == [378, 150, 193, 661, 541]


def test_median_over_runs_of_per_run_sums_skipping_warmup() -> None:
    events = three_runs()
    assert model_run_durations_us(events) == [500.0, 500.0, 500.0]
    conv, relu = aggregate_node_times(events)
    assert (conv.op_name, conv.op_type, conv.per_run_us, conv.runs) == ("Conv_0", "Conv", 44, 3)
    # Relu: per-run sums 30, 15, 12 -> median 15; calls per run 1, 2, 1 -> 1
    assert (relu.per_run_us, relu.calls, relu.node_index) == (15.0, 1, 1)
    assert relu.provider == "CPUExecutionProvider"
    warm = aggregate_node_times(events, skip_first_runs=1)
    assert [o.per_run_us for o in warm] == [42.0, 13.5]
    assert [o.runs for o in warm] == [2, 2]
    assert warm[0].share == pytest.approx(42.0 / 55.5)


def test_order_follows_first_execution_and_fused_ep_partitions_are_one_row() -> None:
    name = "NnapiExecutionProvider_Nnapi_15598934766138005491_18_0"
    events = [
        ev("model_run", 0, 1000, cat="Session"),
        kernel("Softmax_9", 800, 5, "Softmax", 9),
        ev(f"{name}_kernel_time", 10, 700),
        kernel("Input_0", 5, 3, "Cast", 0),
    ]
    ops = aggregate_node_times(events)
    assert [o.op_name for o in ops] == ["Input_0", name, "Softmax_9"]
    assert ops[1].op_type == "NnapiExecutionProvider_Nnapi"
    assert ops[1].provider == "NnapiExecutionProvider" and ops[1].per_run_us == 700


def test_trace_events_object_is_accepted() -> None:
    text = json.dumps({"traceEvents": three_runs()})
    assert len(load_profile_events(text)) == len(three_runs())


def test_too_many_skipped_runs_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="3 run"):
        aggregate_node_times(three_runs(), skip_first_runs=3)


def test_text_without_events_raises_parse_error_naming_the_line() -> None:
    with pytest.raises(ParseError, match=r"line 2: .*'not json'"):
        load_profile_events("\nnot json\n{broken")


# ---------------------------------------------------------------- hostile profiles


def _profile(**changes: Any) -> str:
    """three_runs() as JSON, its third event (a kernel) with ``changes``."""
    events = three_runs()
    events[2].update(changes)
    return json.dumps(events)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dur": "fast"}, "dur"),
        ({"dur": -7}, "dur"),
        ({"dur": True}, "dur"),
        ({"ts": -1.5}, "ts"),
        ({"ts": [1]}, "ts"),
        ({"cat": 7}, "cat"),
        ({"args": "x"}, "args"),
        ({"name": "n" * 100_000}, "name"),
    ],
)
def test_an_event_field_of_the_wrong_type_or_range_names_the_event_and_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ParseError, match=rf"event 2 .*field '{field}': expected"):
        events = load_profile_events(_profile(**changes))
        aggregate_node_times(events)  # "dur": "fast" was a ValueError here


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000])
def test_a_number_json_cannot_hold_exactly_is_refused_anywhere(literal: str) -> None:
    text = _profile(dur=12345).replace("12345", literal)
    with pytest.raises(ParseError, match="number"):
        load_profile_events(text)
    # also inside args, which the loader hands on (op_join reads parameter_size as int)
    text = _profile(args={"parameter_size": 12345}).replace("12345", literal)
    with pytest.raises(ParseError, match="number"):
        load_profile_events(text)


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_nesting_is_refused_not_a_recursion_error(depth: int, cut: bool) -> None:
    nested = "[" * depth + "]" * depth
    text = _profile(args={"deep": "PLACE"}).replace('"PLACE"', nested)
    if cut:  # an excerpt: the loader then looks for every complete object
        text = text[: len(text) - 3]
    with pytest.raises(ParseError, match="nest"):
        load_profile_events(text)


def test_a_profile_longer_than_any_real_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchharness.parse import ort_profile

    text = json.dumps(three_runs())
    monkeypatch.setattr(ort_profile, "MAX_PROFILE_CHARS", len(text) - 1)
    with pytest.raises(ParseError, match="characters"):
        load_profile_events(text)


def test_the_message_names_the_file_when_told_it() -> None:
    with pytest.raises(ParseError, match=r"^/tmp/p\.json: event 2 .*'dur'"):
        load_profile_events(_profile(dur="fast"), source="/tmp/p.json")


def test_an_object_begun_inside_a_string_cannot_nest_past_the_check() -> None:
    """The nesting check skips strings; the recovery of an excerpt decodes from every brace, one
    inside a string too, so this once reached json's recursion limit."""
    text = '[{"name": "x{"k":' + "[" * 5000 + ', "ts": 1'
    with pytest.raises(ParseError, match="nest"):
        load_profile_events(text)
