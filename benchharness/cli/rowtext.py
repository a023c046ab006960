"""How one measured row reads as text: its median's interval, its processes, the modes they fell
into, and the line a log gets when its job finishes. Shared by the summary table and the progress
of ``bench run``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchharness.cli import common

if TYPE_CHECKING:
    from benchharness.results.schema import RunRow

#: ``process_stop`` of a job that hit --max-processes before its interval reached --target-ci
#: (``stats.intervals.STOP_CAP``, not imported: that module loads scipy, which showing a
#: table does not need). The only stop worth a word: the others are the asked-for outcome.
STOP_CAP = "max_processes"
#: Status of a row whose job still has processes to run (``results/rows``): not yet a result.
PARTIAL = "partial"
#: The flag of a row whose process medians fall into modes (``stats.summary``, not imported for
#: the same reason as STOP_CAP): only such a row's ``modes`` are shown.
MULTIMODAL = "MULTIMODAL"


def interval_pct(row: RunRow) -> float | None:
    """Half the width of the row's 95 % interval of the median (else its 99 % one), as a
    percentage of the median; None when the row has neither or no median."""
    median = row.median_ms
    if median is None or median <= 0:
        return None
    for low, high in ((row.ci95_low_ms, row.ci95_high_ms), (row.ci99_low_ms, row.ci99_high_ms)):
        if low is not None and high is not None:
            return (high - low) / 2.0 / median * 100.0
    return None


def fmt_interval(row: RunRow) -> str:
    """``±14 %`` (two significant digits below 10 %), or "" when the row has no interval."""
    pct = interval_pct(row)
    if pct is None:
        return ""
    digits = 0 if pct >= 10 else 1 if pct >= 1 else 2
    return f"±{pct:.{digits}f} %"


def fmt_processes(row: RunRow) -> str:
    """The runner processes the row's median stands on, ``(max)`` when the cap ended them
    before the interval was narrow enough; "" when the row ran none."""
    if row.processes is None:
        return ""
    return f"{row.processes} (max)" if row.process_stop == STOP_CAP else str(row.processes)


def fmt_modes(row: RunRow) -> str:
    """``modes 4.03 ms (30 %), 6.71 ms (70 %)`` for a MULTIMODAL row; "" for any other, and for
    a damaged ``modes`` cell (a table of results is no place to fail on one)."""
    if MULTIMODAL not in row.flag_list:
        return ""
    try:
        found = row.mode_list
    except ValueError:
        return ""
    if not found:
        return ""
    shown = ", ".join(f"{common.fmt(m.median_ms)} ms ({m.share * 100:.0f} %)" for m in found)
    return f"modes {shown}"


def is_finished(row: RunRow) -> bool:
    """Whether the row is its job's last: a ``partial`` one has processes still to come."""
    return row.status != PARTIAL


def job_line(device: str, row: RunRow) -> str:
    """One plain line for a finished job: what it measured, how sure, on how many processes and
    how long it took (``wall_s``)."""
    what = f"{device} {row.model} {row.format} {row.precision}".rstrip()
    took = f" in {row.wall_s:.1f} s" if row.wall_s is not None else ""
    if not row.ok or row.median_ms is None:
        why = f": {row.error}" if row.error else ""
        return f"{what}: {row.status or 'failed'}{why}{took}"
    interval = fmt_interval(row)
    result = f"{common.fmt(row.median_ms)} ms" + (f" {interval}" if interval else "")
    if row.processes is not None:
        plural = "" if row.processes == 1 else "es"
        cap = " (max)" if row.process_stop == STOP_CAP else ""
        result += f", {row.processes} process{plural}{cap}"
    modes = fmt_modes(row)
    if modes:
        result += f", {modes}"
    return f"{what}: {result}{took}"
