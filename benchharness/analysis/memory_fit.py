"""``bench check --run``: does what a run measured fit a device's memory, and does the estimate?

The estimate side is the run's own static figures (``model_bytes``, ``activation_bytes`` of each
artifact) against the profile's ``max_model_bytes``, ``max_activation_bytes`` and
``max_total_bytes``, as ``plan/fit.py`` judges a model before a run. The measured side is the
row's ``mem_peak_bytes`` (``results/memory_columns.py``) against the device's memory budget:
a measured peak cannot be split into weights and activations, so it is held against the one
memory that holds both (``max_total_bytes``; without it, the sum of the weight and activation
limits). Each row says which side failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchharness.plan.fit import Violation, fmt_bytes
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.schema import RunRow

#: What a row's verdict names: nothing failed, one side, both, or nothing could be judged.
FAILED_NONE = "-"
FAILED_ESTIMATE = "estimate"
FAILED_MEASURED = "measured"
FAILED_BOTH = "both"


def memory_budget(profile: DeviceProfile) -> int | None:
    """The one memory a measured peak must fit: ``max_total_bytes``, else the weight and
    activation limits together when both are set; None when the profile sets no such budget."""
    if profile.max_total_bytes is not None:
        return profile.max_total_bytes
    if profile.max_model_bytes is not None and profile.max_activation_bytes is not None:
        return profile.max_model_bytes + profile.max_activation_bytes
    return None


@dataclass
class MeasuredFit:
    """One measured row of a run against one device's limits."""

    device: str  # the profile judged against
    measured_on: str  # the row's device
    model: str
    format: str
    precision: str
    runtime: str
    estimate_bytes: int | None
    peak_bytes: int | None
    source: str | None
    budget_bytes: int | None
    estimate_violations: list[Violation] = field(default_factory=list)
    #: some limit of the profile met a figure of the row
    estimate_judged: bool = False

    @property
    def estimate_fits(self) -> bool | None:
        return not self.estimate_violations if self.estimate_judged else None

    @property
    def measured_fits(self) -> bool | None:
        if self.peak_bytes is None or self.budget_bytes is None:
            return None
        return self.peak_bytes <= self.budget_bytes

    @property
    def failed(self) -> str:
        est, meas = self.estimate_fits is False, self.measured_fits is False
        if est and meas:
            return FAILED_BOTH
        return FAILED_ESTIMATE if est else FAILED_MEASURED if meas else FAILED_NONE

    @property
    def fits(self) -> bool:
        return self.failed == FAILED_NONE

    def reasons(self) -> list[str]:
        out = [f"estimate: {v.describe()}" for v in self.estimate_violations]
        if self.measured_fits is False:
            assert self.peak_bytes is not None and self.budget_bytes is not None
            out.append(
                f"measured: peak {fmt_bytes(self.peak_bytes)} ({self.source}) > budget "
                f"{fmt_bytes(self.budget_bytes)}: over by "
                f"{fmt_bytes(self.peak_bytes - self.budget_bytes)} "
                f"({self.peak_bytes / self.budget_bytes:.2f}x)"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(estimate_fits=self.estimate_fits, measured_fits=self.measured_fits,
                    failed=self.failed, fits=self.fits, reasons=self.reasons())  # fmt: skip
        return data


def _estimate_violations(
    profile: DeviceProfile, row: RunRow
) -> tuple[list[Violation], bool]:
    """The static figures' violations, and whether any limit met a figure at all."""
    weights, acts = row.model_bytes, row.activation_bytes
    limits = [
        (kind, limit, actual)
        for kind, limit, actual in (
            ("model_bytes", profile.max_model_bytes, weights),
            ("activation_bytes", profile.max_activation_bytes, acts),
            ("total_bytes", profile.max_total_bytes, row.mem_estimate_bytes),
        )
        if limit is not None and actual is not None
    ]
    return [Violation(k, lim, int(a)) for k, lim, a in limits if a > lim], bool(limits)


def check_run(profile: DeviceProfile, rows: Sequence[RunRow]) -> list[MeasuredFit]:
    """Every measured row (status ok or partial) of a run against ``profile``."""
    budget = memory_budget(profile)
    out = []
    for row in rows:
        if row.status not in ("ok", "partial"):
            continue
        violations, judged = _estimate_violations(profile, row)
        out.append(
            MeasuredFit(
                device=profile.name,
                measured_on=row.device,
                model=row.model,
                format=row.format,
                precision=row.precision,
                runtime=row.runtime or "",
                estimate_bytes=row.mem_estimate_bytes,
                peak_bytes=row.mem_peak_bytes,
                source=row.mem_source,
                budget_bytes=budget,
                estimate_violations=violations,
                estimate_judged=judged,
            )
        )
    return out
