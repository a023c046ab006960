"""``bench ops``: where an artifact's time goes, operator by operator and per operator type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchharness.errors import ResultsError

#: Operators shown in the "top by time" table: enough to cover most of a CNN's time.
DEFAULT_TOP = 15


def op_summary(
    ops: Sequence[dict[str, Any]], *, model: str, fmt: str | None = None, top: int = DEFAULT_TOP
) -> list[dict[str, Any]]:
    """One summary per (device, format) profile of ``model``: top ops and the per-type table."""
    rows = [o for o in ops if o.get("model") == model and (fmt is None or o.get("format") == fmt)]
    if not rows:
        known = sorted({str(o.get("model")) for o in ops})
        raise ResultsError(
            f"no operator rows for model {model!r}"
            + (f" in format {fmt}" if fmt else "")
            + (f"; models with operator rows: {', '.join(known)}" if known else
               "; the run was made with --no-ops or its profiler was unavailable")
        )  # fmt: skip
    out = []
    for key in sorted({(str(o.get("device")), str(o.get("format"))) for o in rows}):
        part = [o for o in rows if (str(o.get("device")), str(o.get("format"))) == key]
        t_total = sum((o.get("median_us") or 0.0) for o in part)
        m_total = sum((o.get("macs") or 0.0) for o in part)
        b_total = sum((o.get("bytes") or 0.0) for o in part)
        types: dict[str, dict[str, float]] = {}
        for o in part:
            t = types.setdefault(
                str(o.get("op_type") or "?"), {"count": 0, "us": 0.0, "macs": 0.0, "bytes": 0.0}
            )
            t["count"] += 1
            t["us"] += o.get("median_us") or 0.0
            t["macs"] += o.get("macs") or 0.0
            t["bytes"] += o.get("bytes") or 0.0
        by_type = [
            {
                "op_type": name,
                "count": int(v["count"]),
                "time_us": v["us"],
                "time_share": v["us"] / t_total if t_total else None,
                "macs_share": v["macs"] / m_total if m_total else None,
                "bytes_share": v["bytes"] / b_total if b_total else None,
                "gmacs_per_s": (v["macs"] / (v["us"] / 1e6) / 1e9)
                if v["us"] > 0 and v["macs"]
                else None,
            }
            for name, v in types.items()
        ]
        by_type.sort(key=lambda r: -float(r["time_us"] or 0.0))
        top_ops = sorted(part, key=lambda o: -(o.get("median_us") or 0.0))[:top]
        out.append(
            {
                "device": key[0],
                "format": key[1],
                "model": model,
                "total_us": t_total,
                "top": [
                    {
                        k: o.get(k)
                        for k in (
                            "op_index",
                            "op_name",
                            "op_type",
                            "median_us",
                            "share",
                            "macs",
                            "bytes",
                        )
                    }
                    for o in top_ops
                ],
                "by_type": by_type,
            }
        )
    return out
