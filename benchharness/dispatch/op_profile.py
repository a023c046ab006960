"""A job's per-operator rows: the runner's profile fetched from the device, joined to cost.

The joining itself is ``parse/op_join``; this module gets the profile's data to it (an ORT trace
file is pulled from the device and removed there by ``dispatch/fetch``; an ETDump likewise, in
``dispatch/etdump_ops``) and names the job.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from benchharness.cost.artifact_cost import graph_cost_or_none
from benchharness.dispatch.etdump_ops import etdump_ops
from benchharness.dispatch.fetch import ProfileKind, checked, fetch_profile
from benchharness.dispatch.session import DeviceSession
from benchharness.errors import HarnessError, ParseError
from benchharness.ondevice import protocol
from benchharness.ondevice.protocol import RunnerResult
from benchharness.parse.op_join import litert_rows, ort_rows
from benchharness.plan.artifacts import Artifact
from benchharness.results.rows import op_rows
from benchharness.results.schema import OpRow

#: The traces our runners have ORT write: ``ort_profile_*.json``, ``ort-<hash>_*.json``.
ORT_TRACE = ProfileKind(".json", prefix="ort")


@dataclass
class OpsOutcome:
    """The operator rows of one job, their summed time over end-to-end, or why there are none."""

    rows: list[OpRow] = field(default_factory=list)
    sum_ratio: float | None = None
    error: str | None = None


def collect_ops(session: DeviceSession, artifact: Artifact, result: RunnerResult) -> OpsOutcome:
    """The operator rows of ``result``'s profile (never raises for a bad profile)."""
    profile = result.profile
    if artifact.path is None or profile is None:
        return OpsOutcome(error="no profile")
    if not profile.source:
        return OpsOutcome(error=profile.error or "no profile")
    cost = graph_cost_or_none(artifact.path, artifact.format, artifact.sha256)
    try:
        if profile.source == protocol.ORT_PROFILE:
            if not profile.profile_file:
                raise ParseError("the ORT profile names no file")
            text = _fetch(session, profile.profile_file)
            rows = ort_rows(text, profile.warmup_runs or 0, cost, profile.node_cost_us)
        elif profile.source == protocol.ETDUMP_PROFILE:
            rows = litert_rows(etdump_ops(session, artifact.path, profile), cost)
        else:
            rows = litert_rows(profile.ops, cost)
    except (HarnessError, OSError, KeyError, ValueError) as exc:
        return OpsOutcome(error=f"{type(exc).__name__}: {exc}")
    base = {
        "device": session.profile.name,
        "model": artifact.model,
        "format": artifact.format,
        "precision": artifact.precision,
        "runtime": result.runtime,
    }
    # native tools print no samples: their result names the end-to-end figure to compare with
    e2e = statistics.median(result.samples_ms) if result.samples_ms else result.ops_reference_ms
    ops = op_rows(rows, base)
    op_sum_ms = sum(r.median_us or 0.0 for r in ops) / 1e3
    ratio = op_sum_ms / e2e if e2e and e2e > 0 else None
    return OpsOutcome(rows=ops, sum_ratio=ratio)


def _fetch(session: DeviceSession, remote: str) -> str:
    """The profile's text; pulled from the device and removed there when the device is remote."""

    def read(path: Path) -> str:
        return checked(path, "ORT profile").read_text(encoding="utf-8")

    text = fetch_profile(session, remote, ORT_TRACE, read)
    if not text.strip():
        where = "" if session.local else " pulled from the device"
        raise ParseError(f"the ORT profile {remote}{where} is empty")
    return text
