"""One diagnosis per cause: a run's flags grouped by what most likely raised them.

A flag on every row is a flag nobody reads. The flags stay per row (``runs.csv``, ``bench results
--flags``); what a reader is shown after a run is the handful of causes behind them, each with the
evidence the run recorded and one piece of advice:

* **a busy machine**: the variance flags on rows whose processes ran while other programs took
  CPU time (load average above the runner's own threads, or a hypervisor's steal time);
* **throttling**: ``THROTTLED`` with the probe's slowdown and the temperature rise;
* **clocks that move**: ``CLOCKS_UNLOCKED`` with the governors read;
* **too few samples**: ``FEW_SAMPLES`` (``--quick``, a slow device);
* **processes that disagree for a reason the probes cannot see**: the variance flags where the
  load and steal were low, with the spread of the process medians;
* every other flag, as itself.

Pure: rows in, diagnoses out; rendering is the CLI's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from benchharness.results.schema import RunRow
from benchharness.stats.summary import FLAG_ADVICE

#: Load average the machine may carry beyond the runner's own threads before it counts as busy:
#: half a core of other work shifts a 2-thread inference on 2 cores by tens of per cent.
BUSY_EXTRA_LOAD = 0.5
#: Steal above this share of CPU time (%) during a process is a neighbour on the host.
BUSY_STEAL_PCT = 5.0
#: The flags that say the processes or their samples spread more than a quiet device gives.
VARIANCE_FLAGS = (
    "HIGH_IQR", "VERY_HIGH_IQR", "HIGH_CV", "EXTREME", "DRIFT", "PROCESS_VARIANCE", "MULTIMODAL",
)  # fmt: skip
#: Rows whose modes a diagnosis names: the rest are in the table's lines above it (a whole zoo on a
#: shared VM has a dozen or more, which would bury the advice).
MODES_SHOWN = 3
#: The causes, in the order they are printed.
BUSY, THROTTLED, CLOCKS, FEW_SAMPLES, UNEXPLAINED, EMULATED, OPS_OFF = (
    "busy machine", "throttled device", "clocks unlocked", "few samples", "processes disagree",
    "emulated", "operator sums off",
)  # fmt: skip
#: A profiled pass whose run median is this far from the row's median ran at another speed
#: (``ondevice/profile_pass.PROFILE_AGREE_REL``, the bound the runner retries to).
PASS_SPEED_REL = 0.15


@dataclass(frozen=True)
class Diagnosis:
    """One cause: which rows it explains, which of their flags, the evidence and the advice."""

    cause: str
    rows: int
    of: int
    flags: tuple[str, ...]
    evidence: str
    advice: str
    where: tuple[str, ...] = field(default=())

    def line(self) -> str:
        """The diagnosis as one plain sentence, for a log."""
        return (
            f"{self.rows} of {self.of} rows ({', '.join(self.flags)}): {self.evidence}. "
            f"{self.advice}"
        )


def _range(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    low, high = min(values), max(values)
    return (
        fmt.format(low)
        if round(low, 1) == round(high, 1)
        else f"{fmt.format(low)}-{fmt.format(high)}"
    )


def _extra_load(row: RunRow) -> float | None:
    loads = [v for v in (row.loadavg_start, row.loadavg_end, row.loadavg_max) if v is not None]
    if not loads:
        return None
    return max(loads) - float(row.threads or 1)


def is_busy(row: RunRow) -> bool:
    """Whether other programs took CPU time while the row's processes ran (as recorded)."""
    extra = _extra_load(row)
    if extra is not None and extra > BUSY_EXTRA_LOAD:
        return True
    return row.steal_pct is not None and row.steal_pct > BUSY_STEAL_PCT


def _spread_pct(row: RunRow) -> float | None:
    medians = row.process_medians_ms
    if len(medians) < 2 or min(medians) <= 0:
        return None
    return (max(medians) / min(medians) - 1.0) * 100.0


def _where(rows: Sequence[RunRow]) -> tuple[str, ...]:
    return tuple(f"{r.device} {r.model} {r.format}" for r in rows)


def _busy(rows: Sequence[RunRow], total: int) -> Diagnosis:
    loads = [v for r in rows for v in (r.loadavg_start, r.loadavg_end, r.loadavg_max) if v]
    steal = [r.steal_pct for r in rows if r.steal_pct is not None]
    cpus = sorted({r.cpus for r in rows if r.cpus})
    parts = []
    spreads = [s for r in rows if (s := _spread_pct(r)) is not None]
    if spreads:
        parts.append(f"runner processes disagree by {_range(spreads, '{:.0f}')} %")
    if loads:
        on = f" on {'/'.join(str(c) for c in cpus)} cores" if cpus else ""
        parts.append(f"the load average was {_range(loads)}{on} during the run")
    if steal and max(steal) > BUSY_STEAL_PCT:
        parts.append(f"the hypervisor took up to {max(steal):.0f} % of CPU time (steal)")
    return Diagnosis(
        cause=BUSY, rows=len(rows), of=total, flags=_flags_of(rows, VARIANCE_FLAGS),
        evidence="; ".join(parts) + ": other programs were running",
        advice="Close them (or run on a quiet machine), or pin the runner with --affinity.",
        where=_where(rows),
    )  # fmt: skip


def _flags_of(rows: Sequence[RunRow], among: Sequence[str]) -> tuple[str, ...]:
    seen = {f for r in rows for f in r.flag_list}
    return tuple(f for f in among if f in seen)


def _throttled(rows: Sequence[RunRow], total: int) -> Diagnosis:
    ratios = [r.throttle_ratio for r in rows if r.throttle_ratio is not None]
    rises = [
        r.temp_end_c - r.temp_start_c
        for r in rows
        if r.temp_end_c is not None and r.temp_start_c is not None
    ]
    parts = []
    if ratios:
        slower = _range([(x - 1) * 100 for x in ratios], "{:.0f}")
        parts.append(f"the throttle probe ran {slower} % slower after the model")
    if rises:
        parts.append(f"the temperature rose by {_range(rises)} °C")
    return Diagnosis(
        cause=THROTTLED, rows=len(rows), of=total, flags=("THROTTLED",),
        evidence="; ".join(parts) or "the device slowed down during the model",
        advice=FLAG_ADVICE["THROTTLED"][0].upper() + FLAG_ADVICE["THROTTLED"][1:] + ".",
        where=_where(rows),
    )  # fmt: skip


def _clocks(rows: Sequence[RunRow], total: int) -> Diagnosis:
    governors = sorted({r.governor for r in rows if r.governor})
    return Diagnosis(
        cause=CLOCKS, rows=len(rows), of=total, flags=("CLOCKS_UNLOCKED",),
        evidence=f"the CPU governor was {', '.join(governors) or 'not performance'}",
        advice="Set the governor to 'performance', or ask for fixed performance mode in the "
        "device profile.",
        where=_where(rows),
    )  # fmt: skip


def _few(rows: Sequence[RunRow], total: int) -> Diagnosis:
    ns = [float(r.n) for r in rows if r.n is not None]
    return Diagnosis(
        cause=FEW_SAMPLES, rows=len(rows), of=total, flags=("FEW_SAMPLES",),
        evidence=f"{_range(ns, '{:.0f}')} inferences were measured, under the 64 a p90 needs"
        if ns else "too few inferences were measured for a p90",
        advice="Drop --quick, or give slow models more time (--min-s).",
        where=_where(rows),
    )  # fmt: skip


def _modes_text(rows: Sequence[RunRow]) -> str:
    """``their processes fall into modes (mobilenet_v2: 4.03 ms 30 %, 6.71 ms 70 %)``."""
    shown = []
    for r in rows[:MODES_SHOWN]:
        try:
            found = r.mode_list
        except ValueError:  # a damaged cell: the flag alone still says it
            found = ()
        if found:
            levels = ", ".join(f"{m.median_ms:.3g} ms {m.share * 100:.0f} %" for m in found)
            shown.append(f"{r.model}: {levels}")
    more = f"; {len(rows) - MODES_SHOWN} more rows" if len(rows) > MODES_SHOWN else ""
    return "their processes fall into modes" + (f" ({'; '.join(shown)}{more})" if shown else "")


def _unexplained(rows: Sequence[RunRow], total: int) -> Diagnosis:
    spreads = [s for r in rows if (s := _spread_pct(r)) is not None]
    multimodal = [r for r in rows if "MULTIMODAL" in r.flag_list]
    evidence = (
        f"runner processes disagree by {_range(spreads, '{:.0f}')} % while the load and steal "
        "time stayed low"
        if spreads
        else "the samples spread more than a quiet device gives, with low load"
    )
    if multimodal:
        evidence += "; " + _modes_text(multimodal)
    return Diagnosis(
        cause=UNEXPLAINED, rows=len(rows), of=total, flags=_flags_of(rows, VARIANCE_FLAGS),
        evidence=evidence,
        advice="Pin the runner with --affinity and use more processes (--max-processes); "
        "see 'Processes that fall into modes' in docs/method.md.",
        where=_where(rows),
    )  # fmt: skip


def _emulated(rows: Sequence[RunRow], total: int) -> Diagnosis:
    ran = sorted({f"{r.arch or '?'} code translated by {r.emulated or '?'}" for r in rows})
    hosts = sorted({r.cpu_model for r in rows if r.cpu_model})
    on = f" (cpu_model {'; '.join(hosts)})" if hosts else ""
    return Diagnosis(
        cause=EMULATED, rows=len(rows), of=total, flags=("EMULATED",),
        evidence=f"the runner ran as {'; '.join(ran)}{on}: every timing is the translator's",
        advice="Read these rows for what ran (operators, memory, errors), never for speed; "
        "compare them only with rows emulated the same way, and measure speed on the native "
        "device (or a native Python: `python -c 'import platform; print(platform.machine())'`).",
        where=_where(rows),
    )  # fmt: skip


def _ops_off(rows: Sequence[RunRow], total: int) -> Diagnosis:
    """Why the operator times do not add up: the profiled process sat in another mode than the
    row's median, its pass ran at another speed than its own timed loop (the machine changed
    between them), or the pass ran at that speed with time no operator event holds."""
    mode, moved, gaps, tries = [], [], [], []
    for r in rows:
        if not (r.ops_run_ms and r.median_ms and r.ops_sum_ratio is not None):
            continue
        speed = r.ops_run_ms / r.median_ms
        # another speed explains the sums only where it moved them the same way (a pass slower
        # than the timed loop whose operators add up to less is time between operators)
        if abs(speed - 1) > PASS_SPEED_REL and (speed > 1) == (r.ops_sum_ratio > 1):
            # the first process runs the pass: where its own median was at the pass's speed, it
            # is that process that sat apart from the row, not its pass from its loop
            own = r.process_medians_ms[0] / r.median_ms if r.process_medians_ms else None
            if own is not None and len(r.process_medians_ms) > 1 and abs(own / speed - 1) <= (
                PASS_SPEED_REL
            ):
                mode.append(own)
            else:
                moved.append(speed)
                tries += [float(r.ops_attempts)] if r.ops_attempts else []
        else:
            gaps.append(r.ops_sum_ratio / speed)
    sums = [r.ops_sum_ratio for r in rows if r.ops_sum_ratio is not None]
    parts = [f"summed operator times are {_range(sums, '{:.2f}')} of the end-to-end median"]
    if mode:
        parts.append(
            f"in {len(mode)} the profiled process itself ran at {_range(mode, '{:.2f}')}x the "
            "row's median, its pass at its speed: the table describes that process's mode"
        )
    if moved:
        after = f" after {_range(tries, '{:.0f}')} passes" if tries else ""
        parts.append(
            f"in {len(moved)} the profiled pass itself ran at {_range(moved, '{:.2f}')}x the timed "
            f"median{after}: the machine changed between the passes (modes, a neighbour)"
        )
    if gaps:
        parts.append(
            f"in {len(gaps)} the operators hold {_range(gaps, '{:.2f}')} of the profiled runs' "
            "own time: the rest is the runtime's between operators (invoke glue, partitions, "
            "sub-microsecond operators the profiler truncates)"
        )
    return Diagnosis(
        cause=OPS_OFF, rows=len(rows), of=total, flags=("OPS_SUM_OFF",),
        evidence="; ".join(parts),
        advice="Read these operator tables as shares of the model, not milliseconds; rerun a "
        "model whose pass ran at another speed on a quieter machine (or with --threads 1).",
        where=_where(rows),
    )  # fmt: skip


def diagnose(rows: Sequence[RunRow]) -> list[Diagnosis]:
    """The causes behind the flags of a run's rows, most rows first within the fixed order."""
    measured = [r for r in rows if r.flag_list]
    total = len(rows)
    out: list[Diagnosis] = []
    variance = [r for r in measured if any(f in VARIANCE_FLAGS for f in r.flag_list)]
    busy = [r for r in variance if is_busy(r)]
    if busy:
        out.append(_busy(busy, total))
    if throttled := [r for r in measured if "THROTTLED" in r.flag_list]:
        out.append(_throttled(throttled, total))
    if clocks := [r for r in measured if "CLOCKS_UNLOCKED" in r.flag_list]:
        out.append(_clocks(clocks, total))
    if few := [r for r in measured if "FEW_SAMPLES" in r.flag_list]:
        out.append(_few(few, total))
    if quiet := [r for r in variance if not is_busy(r)]:
        out.append(_unexplained(quiet, total))
    if emulated := [r for r in measured if "EMULATED" in r.flag_list]:
        out.append(_emulated(emulated, total))
    if off := [r for r in measured if "OPS_SUM_OFF" in r.flag_list]:
        out.append(_ops_off(off, total))
    known = set(VARIANCE_FLAGS) | {
        "THROTTLED", "CLOCKS_UNLOCKED", "FEW_SAMPLES", "EMULATED", "OPS_SUM_OFF",
    }  # fmt: skip
    others = sorted({f for r in measured for f in r.flag_list} - known)
    for flag in others:
        hit = [r for r in measured if flag in r.flag_list]
        out.append(
            Diagnosis(
                cause=flag.lower().replace("_", " "),
                rows=len(hit),
                of=total,
                flags=(flag,),
                evidence=f"{len(hit)} rows raised {flag}",
                advice=FLAG_ADVICE.get(flag, "see docs/method.md"),
                where=_where(hit),
            )
        )
    return out
