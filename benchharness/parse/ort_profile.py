"""ONNX Runtime JSON profiles (``SessionOptions.enable_profiling`` or perf_test ``-p``).

A profile is a JSON array of Chrome-trace events. Every inference is a ``model_run`` Session event;
every node executed in it leaves ``<node>_fence_before``, ``<node>_kernel_time`` and
``<node>_fence_after`` Node events. Profiles pasted into issues and logs are often cut off in
the middle of an event, so the loader keeps every complete event object it can find.

A profile comes from a device or a user's file, so the loader trusts nothing in it: the text is
at most MAX_PROFILE_CHARS, nested at most MAX_JSON_DEPTH deep, holds no number JSON cannot hold
exactly (``NaN``, ``1e999``, integers of hundreds of digits), and every event's fields have
their types and ranges; anything else is a ParseError naming the event, field and expectation.
The other functions here take the events the loader returned.
"""

from __future__ import annotations

import json
import math
import operator
import re
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from benchharness.errors import ParseError, UsageError
from benchharness.parse.logtext import not_a_log_error, quote
from benchharness.parse.optable import OpTime, with_shares

TOOL = "an ONNX Runtime profile"
#: What the messages call the profile when the caller names no file.
UNNAMED = "the profile"

#: A longer text is no profile: as much as the harness fetches of one from a device
#: (``dispatch/fetch.MAX_PROFILE_BYTES``); 50 profiled runs of a large model are a few MB.
MAX_PROFILE_CHARS = 256 * 2**20
#: ORT's events nest 6 deep at most (array, event, args, a shape list, a shape, its dims): 32
#: leaves room and stays far below the depth at which ``json`` runs out of stack.
MAX_JSON_DEPTH = 32
#: Digits of the longest integer read: a timestamp in ns since 1970 has 19; ``int()`` of
#: thousands of digits is slow and Python refuses more than 4300.
MAX_INT_DIGITS = 24
#: Longest event name or category: a node's name is a path in the graph, a few hundred at most.
MAX_NAME_CHARS = 4096
#: Work the recovery of an excerpt may spend, in characters decoded per character of text: each
#: failed attempt at an object decodes up to where it breaks, and garbled text could make every
#: one of them run to the end.
RECOVERY_WORK_FACTOR = 64

#: Name suffix of the event that times a node's kernel (the fences around it are not the op).
KERNEL_SUFFIX = "_kernel_time"
#: Name of the Session event that spans one whole inference.
MODEL_RUN = "model_run"

#: ORT's kernels that run a graph operator of another type, and that type: its fusions with a
#: following activation (every CPU), the quantized convolution it fuses from Q/DQ pairs, and the
#: NHWC kernels its layout transformer makes on ARM (x86's NCHWc kernels keep the name ``Conv``).
ORT_KERNEL_TYPES = {
    "FusedConv": "Conv",
    "FusedGemm": "Gemm",
    "FusedMatMul": "MatMul",
    "QLinearConv": "Conv",
    "NhwcConv": "Conv",
    "NhwcFusedConv": "Conv",
    "NhwcMaxPool": "MaxPool",
}
#: ``_token_<k>``: what ORT's graph transformers append to the name of a node they re-create (an
#: NHWC convolution on ARM keeps its graph node's name before it; inserted reorders and
#: transposes had no graph name to keep).
_TOKEN_SUFFIX_RE = re.compile(r"_token_\d+$")
#: Prefix ORT gives a node it fused with its activation, before the first node's name.
FUSED_PREFIX = "fused "


def graph_type(kernel_type: str) -> str:
    """The graph operator type an ORT kernel type runs (``NhwcFusedConv`` -> ``Conv``)."""
    return ORT_KERNEL_TYPES.get(kernel_type, kernel_type)


def graph_name(kernel_name: str) -> str:
    """The graph node name an ORT kernel name carries (``fused a``, ``a_token_3`` -> ``a``); a
    node the runtime made keeps a name the graph does not hold."""
    return _TOKEN_SUFFIX_RE.sub("", kernel_name.removeprefix(FUSED_PREFIX))


# Partitions compiled by an EP run as one node named after the EP and a hash, e.g.
# ``NnapiExecutionProvider_Nnapi_1234_18_0`` or DirectML's ``DmlFusedNode_0_41``.
_EP_PARTITION_RE = re.compile(r"^(?P<family>(?P<ep>[A-Za-z0-9]+ExecutionProvider)_[A-Za-z0-9]+)_")
_FUSED_NODE_RE = re.compile(r"^(?P<family>[A-Za-z0-9]+FusedNode)(?:_\d+)+$")


# ------------------------------------------------------------------------------- loading

#: JSON's string literals (one cut off by the end of an excerpt too): brackets inside are text.
_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
#: Anything but a bracket, to be dropped before counting the nesting.
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _nesting(text: str) -> int:
    """How deep the brackets of ``text`` nest (outside strings), counting a closer without its
    opener (an excerpt starts mid-record) as nothing."""
    brackets = _NOT_BRACKET_RE.sub("", _JSON_STRING_RE.sub('""', text))
    if not brackets:
        return 0
    level = list(accumulate(_BRACKET_STEP[c] for c in brackets))
    # the walk held at zero: its height is the level less the lowest level reached before
    floor = accumulate(level, min, initial=0)
    return int(max(map(operator.sub, level, floor)))


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"the number {quote(text)} is beyond what a float holds")
    return value


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ParseError(f"the number {quote(text)} has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _json_constant(text: str) -> float:
    raise ParseError(f"{text} is no number (JSON has no {text})")


#: A decoder that refuses what JSON cannot hold exactly (``json`` itself reads them as floats).
_DECODER = json.JSONDecoder(
    parse_float=_json_float, parse_int=_json_int, parse_constant=_json_constant
)


def _looks_like_event(value: object) -> bool:
    """An object with a name and a time: a trace event, whose fields must then be right."""
    return isinstance(value, dict) and "name" in value and "ts" in value


def _recover_objects(text: str) -> list[dict[str, Any]]:
    """Every complete event object in ``text``, skipping a record cut off or garbled; ParseError
    when the text is so garbled that looking costs more than RECOVERY_WORK_FACTOR per character."""
    events: list[dict[str, Any]] = []
    budget = RECOVERY_WORK_FACTOR * max(len(text), 1)
    pos = text.find("{")
    while pos != -1:
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except RecursionError:
            # an object begun inside a string, whose brackets the nesting check did not count
            raise ParseError(f"brackets nest deeper than {MAX_JSON_DEPTH}") from None
        except json.JSONDecodeError as exc:
            # a broken record: look for the next object start (its nested objects are no
            # events, so they are dropped by the name/ts check below)
            budget -= exc.pos - pos + 1
            if budget < 0:
                raise ParseError(
                    "too garbled to recover events from (no complete record in reach)"
                ) from None
            pos = text.find("{", pos + 1)
            continue
        if _looks_like_event(value):
            events.append(value)
        pos = text.find("{", end)
    return events


def _decode(text: str) -> list[Any]:
    """The records of ``text``: its array, its ``traceEvents``, or every complete object of an
    excerpt. ParseError beyond the bounds."""
    if len(text) > MAX_PROFILE_CHARS:
        raise ParseError(f"{len(text)} characters is no profile (at most {MAX_PROFILE_CHARS})")
    depth = _nesting(text)
    if depth > MAX_JSON_DEPTH:
        raise ParseError(f"brackets nest {depth} deep; a profile nests at most {MAX_JSON_DEPTH}")
    try:
        data: Any = _DECODER.decode(text)
    except json.JSONDecodeError:
        return _recover_objects(text)
    if isinstance(data, dict):
        data = data.get("traceEvents")
    return data if isinstance(data, list) else []


def _is_time(value: object) -> bool:
    """A time in µs: a number >= 0 (finite: the decoder refuses the others)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _event_problem(event: dict[str, Any]) -> tuple[str, str] | None:
    """(field, expectation) of the first wrong field of a trace event, or None."""
    name = event.get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        return "name", f"a string of at most {MAX_NAME_CHARS} characters"
    for key in ("ts", "dur"):
        if (key in event or key == "ts") and not _is_time(event.get(key)):
            return key, "a finite number of microseconds >= 0"
    cat = event.get("cat")
    if cat is not None and (not isinstance(cat, str) or len(cat) > MAX_NAME_CHARS):
        return "cat", f"a string of at most {MAX_NAME_CHARS} characters"
    args = event.get("args")
    if args is not None and not isinstance(args, dict):
        return "args", "an object"
    return None


def _checked_events(records: Sequence[Any], source: str) -> list[dict[str, Any]]:
    """The trace events among ``records``, each one's fields checked (ParseError naming it)."""
    events = []
    for index, record in enumerate(records):
        if not _looks_like_event(record):
            continue  # metadata and other records: no event of ours
        problem = _event_problem(record)
        if problem is not None:
            key, expected = problem
            raise ParseError(
                f"{source}: event {index} ({quote(str(record.get('name')))}): field '{key}': "
                f"expected {expected}, got {quote(repr(record.get(key)))}"
            )
        events.append(record)
    return events


def load_profile_events(text: str, *, source: str = UNNAMED) -> list[dict[str, Any]]:
    """The events of a profile: a JSON array, a ``{"traceEvents": [...]}`` object, or an excerpt.

    Raises ParseError naming ``source`` (the file, when the caller knows it) and what is wrong:
    the first line when the text holds no complete event, the event and field when one is
    malformed, or the bound the text goes past.
    """
    try:
        records = _decode(text)
    except ParseError as exc:
        raise ParseError(f"{source}: {exc}") from None
    events = _checked_events(records, source)
    if not events:
        raise ParseError(f"{source}: {not_a_log_error(TOOL, text.splitlines())}")
    return events


# ------------------------------------------------------------------------------- reading


def model_run_durations_us(events: Sequence[dict[str, Any]]) -> list[float]:
    """Duration of every ``model_run`` (one inference as ORT timed it), in order."""
    runs = [e for e in events if e.get("name") == MODEL_RUN and "dur" in e]
    runs.sort(key=lambda e: float(e["ts"]))
    return [float(e["dur"]) for e in runs]


def _op_type_and_provider(node: str, args: dict[str, Any]) -> tuple[str, str]:
    provider = str(args.get("provider", ""))
    m = _EP_PARTITION_RE.match(node)
    if m:
        return m.group("family"), provider or m.group("ep")
    m = _FUSED_NODE_RE.match(node)
    if m:
        return m.group("family"), provider
    return str(args.get("op_name", "")), provider


def _node_index(args: dict[str, Any]) -> int | None:
    value = args.get("node_index")
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


@dataclass
class _Node:
    op_type: str
    provider: str
    node_index: int | None
    per_run: dict[int, list[float]] = field(default_factory=dict)  # run -> [time_us, calls]


def _run_of(ts: float, starts: list[float], ends: list[float]) -> int | None:
    i = bisect_right(starts, ts) - 1
    if i >= 0 and ts <= ends[i]:
        return i
    return None


def aggregate_node_times(
    events: Sequence[dict[str, Any]], *, skip_first_runs: int = 0
) -> list[OpTime]:
    """Per node: kernel time summed over its calls in each run, then the median over runs (us).

    Runs are the ``model_run`` events; kernel events outside every run are dropped. A profile
    with no ``model_run`` (an excerpt) counts as one run. ``skip_first_runs`` leaves out warm-up
    runs. Nodes are ordered by first execution. Legacy profiles (ORT 0.4) give no node names;
    their nodes are named ``<op type>_<k>``, ``k`` being the node's position in its run.
    A node missing from some runs is summarised over the runs it ran in.
    """
    if skip_first_runs < 0:
        raise UsageError(f"skip_first_runs must not be negative, not {skip_first_runs}")
    ordered = sorted(events, key=lambda e: float(e["ts"]))
    runs = [e for e in ordered if e.get("name") == MODEL_RUN and "dur" in e]
    starts = [float(e["ts"]) for e in runs]
    ends = [float(e["ts"]) + float(e["dur"]) for e in runs]
    available = max(len(runs), 1)
    if skip_first_runs >= available:
        raise UsageError(
            f"the profile holds {available} run(s); skipping {skip_first_runs} leaves none"
        )
    nodes: dict[str, _Node] = {}
    unnamed_seen: dict[int, int] = {}
    for event in ordered:
        name = event["name"]
        if event.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX) or "dur" not in event:
            continue
        run = _run_of(float(event["ts"]), starts, ends) if runs else 0
        if run is None or run < skip_first_runs:
            continue
        args: dict[str, Any] = event.get("args") or {}
        if not isinstance(args, dict):
            args = {}
        node = name.removesuffix(KERNEL_SUFFIX)
        op_type, provider = _op_type_and_provider(node, args)
        if not node:
            position = unnamed_seen.get(run, 0)
            unnamed_seen[run] = position + 1
            node = f"{op_type or 'node'}_{position}"
        entry = nodes.get(node)
        if entry is None:
            entry = nodes[node] = _Node(op_type, provider, _node_index(args))
        totals = entry.per_run.setdefault(run, [0.0, 0.0])
        totals[0] += float(event["dur"])
        totals[1] += 1
    ops = [
        OpTime(
            op_index=i,
            op_name=name,
            op_type=entry.op_type,
            per_run_us=statistics.median(t[0] for t in entry.per_run.values()),
            statistic="median",
            calls=round(statistics.median(t[1] for t in entry.per_run.values())),
            provider=entry.provider,
            node_index=entry.node_index,
            runs=len(entry.per_run),
        )
        for i, (name, entry) in enumerate(nodes.items())  # first-execution order
    ]
    return with_shares(ops)


__all__ = [
    "aggregate_node_times",
    "load_profile_events",
    "model_run_durations_us",
]
