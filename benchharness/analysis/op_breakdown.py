"""``bench ops``: where an artifact's time goes, operator by operator and per operator type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchharness.errors import ResultsError
from benchharness.results.schema import OpRow

#: Operators shown in the "top by time" table: enough to cover most of a CNN's time.
DEFAULT_TOP = 15


@dataclass
class TypeShare:
    """One operator type of a profile: its time next to its share of MACs and bytes."""

    op_type: str
    count: int
    time_us: float
    time_share: float | None
    macs_share: float | None
    bytes_share: float | None
    gmacs_per_s: float | None


@dataclass
class OpSummary:
    """One (device, format) profile of a model: its slowest operators and its types."""

    device: str
    format: str
    model: str
    total_us: float
    top: list[OpRow]  # by time, slowest first
    by_type: list[TypeShare]  # by time, slowest first

    def to_dict(self) -> dict[str, Any]:
        """``bench ops --json``: the operators with the columns the table shows."""
        return {
            "device": self.device,
            "format": self.format,
            "model": self.model,
            "total_us": self.total_us,
            "top": [_top_dict(o) for o in self.top],
            "by_type": [asdict(t) for t in self.by_type],
        }


def _top_dict(o: OpRow) -> dict[str, Any]:
    return {
        "op_index": o.op_index,
        "op_name": o.op_name,
        "op_type": o.op_type,
        "median_us": o.median_us,
        "share": o.share,
        "macs": o.macs,
        "bytes": o.bytes,
    }


@dataclass
class _TypeTotals:
    count: int = 0
    us: float = 0.0
    macs: float = 0.0
    bytes: float = 0.0

    def add(self, o: OpRow) -> None:
        self.count += 1
        self.us += o.median_us or 0.0
        self.macs += o.macs or 0.0
        self.bytes += o.bytes or 0.0


def _by_type(part: Sequence[OpRow]) -> list[TypeShare]:
    """Time, MACs and bytes per operator type, as shares of the profile's totals."""
    t_total = sum((o.median_us or 0.0) for o in part)
    m_total = sum((o.macs or 0.0) for o in part)
    b_total = sum((o.bytes or 0.0) for o in part)
    totals: dict[str, _TypeTotals] = {}
    for o in part:
        totals.setdefault(o.op_type or "?", _TypeTotals()).add(o)
    shares = [
        TypeShare(
            op_type=name,
            count=v.count,
            time_us=v.us,
            time_share=v.us / t_total if t_total else None,
            macs_share=v.macs / m_total if m_total else None,
            bytes_share=v.bytes / b_total if b_total else None,
            gmacs_per_s=(v.macs / (v.us / 1e6) / 1e9) if v.us > 0 and v.macs else None,
        )
        for name, v in totals.items()
    ]
    shares.sort(key=lambda t: -t.time_us)
    return shares


def op_summary(
    ops: Sequence[OpRow], *, model: str, fmt: str | None = None, top: int = DEFAULT_TOP
) -> list[OpSummary]:
    """One summary per (device, format) profile of ``model``: top ops and the per-type table."""
    rows = [o for o in ops if o.model == model and (fmt is None or o.format == fmt)]
    if not rows:
        known = sorted({o.model for o in ops})
        raise ResultsError(
            f"no operator rows for model {model!r}"
            + (f" in format {fmt}" if fmt else "")
            + (f"; models with operator rows: {', '.join(known)}" if known else
               "; the run was made with --no-ops or its profiler was unavailable")
        )  # fmt: skip
    out = []
    for device, format_name in sorted({(o.device, o.format) for o in rows}):
        part = [o for o in rows if (o.device, o.format) == (device, format_name)]
        out.append(
            OpSummary(
                device=device,
                format=format_name,
                model=model,
                total_us=sum((o.median_us or 0.0) for o in part),
                top=sorted(part, key=lambda o: -(o.median_us or 0.0))[:top],
                by_type=_by_type(part),
            )
        )
    return out
