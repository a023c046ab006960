"""ONNX Runtime JSON profiles (``SessionOptions.enable_profiling`` or perf_test ``-p``).

A profile is a JSON array of Chrome-trace events. Every inference is a ``model_run`` Session event;
every node executed in it leaves ``<node>_fence_before``, ``<node>_kernel_time`` and
``<node>_fence_after`` Node events. Profiles pasted into issues and logs are often cut off in
the middle of an event, so the loader keeps every complete event object it can find.
"""

from __future__ import annotations

import json
import re
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchharness.errors import UsageError
from benchharness.parse.logtext import not_a_log_error
from benchharness.parse.optable import OpTime, with_shares

TOOL = "an ONNX Runtime profile"

#: Name suffix of the event that times a node's kernel (the fences around it are not the op).
KERNEL_SUFFIX = "_kernel_time"
#: Name of the Session event that spans one whole inference.
MODEL_RUN = "model_run"

# Partitions compiled by an EP run as one node named after the EP and a hash, e.g.
# ``NnapiExecutionProvider_Nnapi_1234_18_0`` or DirectML's ``DmlFusedNode_0_41``.
_EP_PARTITION_RE = re.compile(r"^(?P<family>(?P<ep>[A-Za-z0-9]+ExecutionProvider)_[A-Za-z0-9]+)_")
_FUSED_NODE_RE = re.compile(r"^(?P<family>[A-Za-z0-9]+FusedNode)(?:_\d+)+$")


def _is_event(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and isinstance(value.get("ts"), (int, float))
    )


def _recover_objects(text: str) -> list[dict[str, Any]]:
    """Every complete event object in ``text``, skipping a record cut off or garbled."""
    decoder = json.JSONDecoder()
    events: list[dict[str, Any]] = []
    pos = text.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            # a broken record: look for the next object start (its nested objects are no
            # events, so they are dropped by the name/ts check below)
            pos = text.find("{", pos + 1)
            continue
        if _is_event(value):
            events.append(value)
        pos = text.find("{", end)
    return events


def load_profile_events(text: str) -> list[dict[str, Any]]:
    """The events of a profile: a JSON array, a ``{"traceEvents": [...]}`` object, or an excerpt.

    Raises ParseError, naming the first line, when the text holds no complete event.
    """
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        data = data.get("traceEvents")
    complete = isinstance(data, list)
    events = [e for e in data if _is_event(e)] if complete else _recover_objects(text)
    if not events:
        raise not_a_log_error(TOOL, text.splitlines())
    return events


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
