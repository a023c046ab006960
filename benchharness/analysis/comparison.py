"""Compare two runs (docs/method.md "Comparing two runs").

Rows of ``runs.csv`` are matched by (model, format, precision, input_shape); each match gets the
ratio of medians B/A with a 95 % CI and a two-sided p-value, both from Welch's t on the log
process medians (the processes are the independent units; with one process a side, a bootstrap CI
and a Mann-Whitney test on the raw samples, noted as optimistic), and a verdict. Where a side's
process medians fall into modes, ``analysis/mode_compare.py`` compares modes instead: a different
mixture of the same modes is ``same modes``, never a change; modes that moved are tested within
modes.
Only results measured on the same setup (the device fingerprint) are compared unless the caller
allows a mismatch. ``gate`` turns a comparison into the CI pass/fail of ``--fail-on``
(``analysis/gates.py`` says which matches failed it, and why).

The comparison takes rows, not run folders: ``analysis/compare_stored.py`` loads the two stores.

Over 600 lines on purpose: matching, the test (Welch on process medians or the one-process
fallback), the interval of the ratio, the flags that void or only note a pair, the verdict and
the geometric mean are one statistical procedure whose pieces share the same per-side figures;
the gates, the loading and the memory comparison already live apart.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import numpy as np
from scipy import stats as sps

from benchharness.analysis.mode_compare import (
    MIXTURE_VERDICT,
    ModeComparison,
    compare_modes,
    mode_verdict,
)
from benchharness.errors import ResultsError, UsageError
from benchharness.results.schema import RunRow, SampleRow

#: A change is called only below this p-value (docs/method.md): 1 % keeps false alarms rare in CI.
ALPHA = 0.01
#: A change is called only when the ratio moved by at least this much (docs/method.md default 5 %).
DEFAULT_THRESHOLD = 0.05
#: Bootstrap draws per comparison: enough for stable 2.5/97.5 percentiles, fast for many models.
BOOTSTRAP_RESAMPLES = 2000
#: Fixed seed: the same two runs always give the same CI (reproducible reports and CI logs).
BOOTSTRAP_SEED = 20240601
#: Confidence of the ratio's bootstrap interval (docs/method.md: 95 %).
BOOTSTRAP_CONFIDENCE = 0.95
#: Flags that make a result too shaky to call a change on: a spread of the bulk of the samples
#: (IQR), a trend, heat, or processes that disagree. Not EXTREME or HIGH_CV: they are about the
#: tails (a few percent of outliers, the mean and std they pull), which the median and the rank
#: tests below hardly feel; with them, nearly every pair on a busy machine was "unreliable" and
#: the CI gate never fired. They stay in the row and in the notes. FEW_SAMPLES and CLOCKS_UNLOCKED
#: only describe the setup; the spread they may cause shows up in the flags listed here.
#: MULTIMODAL voids a test on raw samples; with process medians the modes are compared
#: (``mode_compare``).
UNRELIABLE_FLAGS: frozenset[str] = frozenset(
    {"HIGH_IQR", "VERY_HIGH_IQR", "DRIFT", "THROTTLED", "PROCESS_VARIANCE", "MULTIMODAL"}
)
#: Flags whose effect a test on process medians already carries in its variance: a process that
#: drifted, processes that disagree, or a wide bulk inside the processes all move the process
#: medians the test compares (rows written before DRIFT was read per process saw the processes
#: differ, not a drift). A wide IQR undermines a test on raw samples, not one on process
#: medians: on this project's VM HIGH_IQR marked 13 of 34 quiet rows, and voided a 1.7x
#: slowdown at p < 1e-4. THROTTLED stays: heat biases every process alike, which no variance shows.
PROCESS_LEVEL_FLAGS: frozenset[str] = frozenset(
    {"PROCESS_VARIANCE", "DRIFT", "HIGH_IQR", "VERY_HIGH_IQR", "MULTIMODAL"}
)
#: Flags reported beside a verdict without overturning it (see UNRELIABLE_FLAGS).
TAIL_FLAGS: frozenset[str] = frozenset({"EXTREME", "HIGH_CV"})
#: A row measured under CPU translation (qemu-user, Rosetta) times the translator, not the
#: device: against a native row no change is ever called, not even with ``allow_mismatch`` or
#: ``include_unreliable`` (two emulated rows compare as any two rows do).
EMULATED_FLAG = "EMULATED"

#: Columns that identify what was measured; rows match on these (``_match_key``).
MATCH_KEY: tuple[str, ...] = ("model", "format", "precision", "input_shape")
#: Columns that identify where and how it was measured; they must agree for a fair comparison
#: (``_fingerprint``).
FINGERPRINT: tuple[str, ...] = (
    "device",
    "runtime",
    "runtime_version",
    "threads",
    "format",
    "precision",
    "cpu_model",
    "arch",
)
#: Fingerprint columns a row written before they existed leaves empty: compared only when both
#: rows have them, so an older run of the same machine still compares with a new one.
RECENT_FINGERPRINT: frozenset[str] = frozenset({"arch"})
#: When one run holds several rows with the same match key (several devices or thread counts),
#: they are paired on these as well (``_settings_key``).
DISAMBIGUATE: tuple[str, ...] = ("device", "runtime", "provider", "threads")

VERDICTS: tuple[str, ...] = ("slower", "faster", "same", MIXTURE_VERDICT, "unreliable")

_FAIL_ON_RE = re.compile(
    r"^\s*(?:(?P<metric>[a-z_0-9]+)\s*:)?\s*(?P<value>[0-9.]+)\s*(?P<pct>%?)\s*$"
)
#: What ``--fail-on`` can gate on; the median is docs/method.md's headline number.
GATE_METRICS: tuple[str, ...] = ("median",)


@dataclass
class Match:
    """One model measured in both runs, and what changed."""

    model: str
    format: str
    precision: str
    input_shape: str
    device_a: str
    device_b: str
    median_a_ms: float | None
    median_b_ms: float | None
    n_a: int
    n_b: int
    processes_a: int
    processes_b: int
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str  # "processes-welch", "processes-modes", "samples" or "none": what it ran on
    verdict: str
    flags_a: list[str] = field(default_factory=list)
    flags_b: list[str] = field(default_factory=list)
    fingerprint_diff: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model} [{self.format}/{self.precision}]"

    def significant_slowdown(self, threshold: float, *, include_unreliable: bool = False) -> bool:
        """p < ALPHA and B slower than A by at least ``threshold`` (a fraction, 0.05 = 5 %);
        never between an emulated and a native row (``EMULATED_FLAG``), nor for a different
        mixture of the same modes (``MIXTURE_VERDICT``), however their medians differ."""
        if self.ratio is None or self.p_value is None or self.verdict == MIXTURE_VERDICT:
            return False
        if emulation_mismatch(self.flags_a, self.flags_b):
            return False
        if self.verdict == "unreliable" and not include_unreliable:
            return False
        return self.p_value < ALPHA and self.ratio >= 1.0 + threshold


@dataclass
class Comparison:
    """The comparison of run B against run A."""

    run_a: str
    run_b: str
    threshold: float
    matches: list[Match]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    geomean_ratio: float | None = None
    geomean_n: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _finite(asdict(self))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: replace them with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def parse_threshold(text: str) -> float:
    """``"5%"`` or ``"0.05"`` -> 0.05. A bare number above 1 is refused as ambiguous."""
    m = _FAIL_ON_RE.match(text)
    if m is None or m.group("metric"):
        raise UsageError(f"threshold {text!r} is not a percentage: write e.g. 5% or 0.05")
    return _fraction(m.group("value"), bool(m.group("pct")), text)


def _fraction(value: str, pct: bool, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{text!r}: {value!r} is not a number; write e.g. median:5%") from None
    if pct:
        number /= 100.0
    elif number >= 1.0:
        raise UsageError(f"{text!r} is ambiguous: write {value}% or {number / 100:g}")
    if not 0.0 <= number < 10.0:
        raise UsageError(f"{text!r}: the threshold must be a positive percentage")
    return number


def metric_threshold(text: str, metric: str) -> float | None:
    """``"peak_mem:10%"`` -> 0.10 for ``metric`` ``peak_mem``; None when ``text`` is no
    ``METRIC:PERCENT`` of that metric (another gate's spec)."""
    m = _FAIL_ON_RE.match(text)
    if m is None or m.group("metric") != metric:
        return None
    return _fraction(m.group("value"), bool(m.group("pct")), text)


def parse_fail_on(text: str) -> float:
    """``"median:5%"`` -> 0.05: the slowdown of the median beyond which ``gate`` fails."""
    m = _FAIL_ON_RE.match(text)
    if m is None:
        raise UsageError(f"--fail-on {text!r} not understood: write METRIC:PERCENT, e.g. median:5%")
    metric = m.group("metric") or "median"
    if metric not in GATE_METRICS:
        raise UsageError(
            f"--fail-on {text!r}: cannot gate on {metric!r}; supported: {', '.join(GATE_METRICS)}"
        )
    return _fraction(m.group("value"), bool(m.group("pct")), text)


def gate(result: Comparison, threshold: float, *, include_unreliable: bool = False) -> bool:
    """True when some model got significantly slower by more than ``threshold`` (CI must fail).

    Unreliable matches (flagged on either side) do not fail the gate unless
    ``include_unreliable``: a noisy machine should not fail CI, and the CLI warns about them.
    ``same modes`` matches never do: their medians moved with the mixture, not the modes.
    """
    return any(
        m.significant_slowdown(threshold, include_unreliable=include_unreliable)
        for m in result.matches
    )


class PairNames(TypedDict):
    """What every comparison's match says of its two rows: A's model key and both devices."""

    model: str
    format: str
    precision: str
    device_a: str
    device_b: str


def pair_names(ra: RunRow, rb: RunRow) -> PairNames:
    return PairNames(
        model=ra.model,
        format=ra.format,
        precision=ra.precision,
        device_a=ra.device,
        device_b=rb.device,
    )


#: Per process (its number, as text), the (index, latency) of each of its samples.
_ByProcess = dict[str, list[tuple[int, float]]]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def _text(value: object) -> str:
    """A cell as the text rows are matched on: an absent cell (None, "") is ""."""
    return str(value or "").strip()


def _match_key(row: RunRow) -> tuple[str, ...]:
    """What was measured (``MATCH_KEY``)."""
    return tuple(_text(v) for v in (row.model, row.format, row.precision, row.input_shape))


def _settings_key(row: RunRow) -> tuple[str, ...]:
    """Where and with what it was measured, to tell apart rows of one key (``DISAMBIGUATE``)."""
    return tuple(_text(v) for v in (row.device, row.runtime, row.provider, row.threads))


def _fingerprint(row: RunRow) -> dict[str, str]:
    """The setup that must agree for a fair comparison (``FINGERPRINT``), column -> text."""
    return {
        "device": _text(row.device),
        "runtime": _text(row.runtime),
        "runtime_version": _text(row.runtime_version),
        "threads": _text(row.threads),
        "format": _text(row.format),
        "precision": _text(row.precision),
        "cpu_model": _text(row.cpu_model),
        # the machine the runner ran as, and the translator when one ran it: x86_64 -> aarch64
        "arch": _text(row.arch) + (f" ({row.emulated})" if row.arch and row.emulated else ""),
    }


def _sample_key(row: RunRow | SampleRow) -> tuple[str, ...]:
    """The samples of a row without a job id are found by device, model, format, precision."""
    return ("key", *(_text(v) for v in (row.device, row.model, row.format, row.precision)))


def _group_samples(sample_rows: Sequence[SampleRow]) -> dict[tuple[str, ...], _ByProcess]:
    """Samples by job id (and by device/model/format/precision for rows without one)."""
    grouped: dict[tuple[str, ...], _ByProcess] = defaultdict(lambda: defaultdict(list))
    for row in sample_rows:
        if row.latency_ms is None:
            continue
        process = str(row.process or "0")
        entry = (row.index or 0, row.latency_ms)
        job = row.job_id.strip()
        if job:
            grouped[("job", job)][process].append(entry)
        grouped[_sample_key(row)][process].append(entry)
    return grouped


def _samples_for(
    row: RunRow, grouped: Mapping[tuple[str, ...], _ByProcess]
) -> dict[str, list[float]]:
    """The row's samples per process, in measurement order."""
    job = row.job_id.strip()
    by_process = grouped.get(("job", job)) if job else None
    if by_process is None:
        by_process = grouped.get(_sample_key(row))
    if not by_process:
        return {}
    return {p: [v for _, v in sorted(entries)] for p, entries in sorted(by_process.items())}


def _bootstrap_medians(sorted_x: np.ndarray, rng: np.random.Generator, draws: int) -> np.ndarray:
    """``draws`` medians of bootstrap resamples of ``sorted_x`` (pooled, i.i.d. resampling).

    Drawn from the exact bootstrap distribution instead of materialising resamples: the lower
    median of a size-n resample is <= x_(j) exactly when at least k = ceil(n/2) resampled values
    are <= x_(j), and that count is Binomial(n, j/n). Same distribution as resampling, but
    O(n + draws log n) instead of O(draws * n), which matters for the 10^5-10^6 samples of fast
    models. (For even n this is the lower median; the difference is one order statistic.)
    """
    n = sorted_x.size
    k = (n + 1) // 2
    j = np.arange(1, n + 1)
    cdf = sps.binom.sf(k - 1, n, j / n)  # P(median* <= x_(j)), nondecreasing, last = 1
    cdf[-1] = 1.0
    idx = np.searchsorted(cdf, rng.random(draws), side="left")
    return sorted_x[np.minimum(idx, n - 1)]


def _ratio_ci(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator
) -> tuple[float | None, float | None]:
    ma = _bootstrap_medians(np.sort(a), rng, BOOTSTRAP_RESAMPLES)
    mb = _bootstrap_medians(np.sort(b), rng, BOOTSTRAP_RESAMPLES)
    if np.any(ma <= 0):
        return None, None
    ratios = mb / ma
    tail = (1.0 - BOOTSTRAP_CONFIDENCE) / 2.0 * 100.0
    lo, hi = np.percentile(ratios, [tail, 100.0 - tail])
    return float(lo), float(hi)


def welch_log(
    pm_a: Sequence[float], pm_b: Sequence[float], confidence: float = BOOTSTRAP_CONFIDENCE
) -> tuple[float, float]:
    """Welch's t on log process medians: the two-sided p of "B and A have the same level", and
    the half-width (log units) of the ``confidence`` interval of log(B/A).

    The same statistic as a row's interval (``stats/intervals``): processes are the
    independent units, and a ratio is a difference of logs. With 5 against 5 processes it reaches
    p < 0.01 where a rank test could not (its best is 2/252 = 0.008, complete separation)."""
    la, lb = np.log(np.asarray(pm_a, dtype=float)), np.log(np.asarray(pm_b, dtype=float))
    va, vb = la.var(ddof=1) / la.size, lb.var(ddof=1) / lb.size
    se = math.sqrt(va + vb)
    diff = float(lb.mean() - la.mean())
    if se == 0:  # no spread at all: the t statistic is undefined
        return (0.0 if diff != 0 else 1.0), 0.0
    df = (va + vb) ** 2 / (va**2 / (la.size - 1) + vb**2 / (lb.size - 1))
    p = float(2.0 * sps.t.sf(abs(diff) / se, df))
    return p, float(sps.t.ppf(0.5 + confidence / 2.0, df)) * se


def _fingerprint_diff(a: RunRow, b: RunRow) -> dict[str, list[str]]:
    fa, fb = _fingerprint(a), _fingerprint(b)
    return {
        col: [fa[col], fb[col]]
        for col in fa
        if fa[col] != fb[col] and (col not in RECENT_FINGERPRINT or (fa[col] and fb[col]))
    }


def _pair_rows(
    runs_a: Sequence[RunRow], runs_b: Sequence[RunRow]
) -> tuple[list[tuple[RunRow, RunRow]], list[str], list[str]]:
    """Pairs of rows measuring the same thing, and the labels found on one side only."""

    def ok_rows(rows: Sequence[RunRow]) -> dict[tuple[str, ...], list[RunRow]]:
        by_key: dict[tuple[str, ...], list[RunRow]] = defaultdict(list)
        for row in rows:
            if (row.status.strip() or "ok") == "ok":  # a row without a status counts as ok
                by_key[_match_key(row)].append(row)
        return by_key

    def label(row: RunRow) -> str:
        device = row.device.strip()
        return "/".join(v for v in _match_key(row) if v) + (f" on {device}" if device else "")

    a_by, b_by = ok_rows(runs_a), ok_rows(runs_b)
    pairs: list[tuple[RunRow, RunRow]] = []
    only_a: list[str] = []
    only_b: list[str] = []
    for key in list(a_by) + [k for k in b_by if k not in a_by]:
        rows_a, rows_b = a_by.get(key, []), b_by.get(key, [])
        if len(rows_a) == 1 and len(rows_b) == 1:
            pairs.append((rows_a[0], rows_b[0]))
            continue
        # several devices/settings per key: pair on the settings, leave the rest unmatched
        rest_b = list(rows_b)
        for ra in rows_a:
            partner = next((rb for rb in rest_b if _settings_key(rb) == _settings_key(ra)), None)
            if partner is None:
                only_a.append(label(ra))
            else:
                rest_b.remove(partner)
                pairs.append((ra, partner))
        only_b.extend(label(rb) for rb in rest_b)
    return pairs, only_a, only_b


def pair_rows(
    runs_a: Sequence[RunRow], runs_b: Sequence[RunRow]
) -> tuple[list[tuple[RunRow, RunRow]], list[str], list[str]]:
    """The pairing every comparison shares (latency here, memory in ``memory_compare``)."""
    return _pair_rows(runs_a, runs_b)


@dataclass(frozen=True, eq=False)  # eq=False: an array field has no truth value to compare
class _Side:
    """One run's side of a pair: its row, its raw samples and what they give."""

    row: RunRow
    pooled: np.ndarray  # every raw sample (empty when samples.csv has none for the row)
    median: float | None  # of the pooled samples, else the row's
    process_medians: list[float]

    @property
    def count(self) -> int:
        return int(self.pooled.size) if self.pooled.size else int(self.row.n or 0)

    @property
    def processes(self) -> int:
        return max(len(self.process_medians), 1 if self.pooled.size else 0)


def _side(row: RunRow, by_process: dict[str, list[float]]) -> _Side:
    pooled = np.asarray([v for vs in by_process.values() for v in vs], dtype=float)
    if len(by_process) >= 2:
        process_medians = [float(np.median(v)) for v in by_process.values() if v]
    else:
        process_medians = [float(v) for v in row.process_medians_ms]
    return _Side(
        row=row,
        pooled=pooled,
        median=float(np.median(pooled)) if pooled.size else row.median_ms,
        process_medians=process_medians,
    )


@dataclass(frozen=True)
class _Test:
    """The test of a change and its interval: which test ran, its p-value, and why."""

    test: str  # "processes-welch", "processes-modes", "samples" or "none"
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    notes: tuple[str, ...] = ()


def _test_change(a: _Side, b: _Side, ratio: float | None, rng: np.random.Generator) -> _Test:
    """Welch's t on the log process medians where both sides have two or more, else a rank
    test on the raw samples (optimistic), else none; with the ratio's interval."""
    pm_a, pm_b = a.process_medians, b.process_medians
    both_pooled = bool(a.pooled.size and b.pooled.size)
    if len(pm_a) >= 2 and len(pm_b) >= 2 and min(pm_a + pm_b) > 0:
        p_value, half = welch_log(pm_a, pm_b)
        ci_low = ci_high = None
        if ratio is not None:
            ci_low, ci_high = ratio * math.exp(-half), ratio * math.exp(half)
            if both_pooled:
                # never narrower than the samples alone allow (processes that agree by chance)
                lo, hi = _ratio_ci(a.pooled, b.pooled, rng)
                ci_low = min(ci_low, lo) if lo is not None else ci_low
                ci_high = max(ci_high, hi) if hi is not None else ci_high
        note = "Welch's t-test on log process medians (processes are what repeats)"
        return _Test("processes-welch", p_value, ci_low, ci_high, (note,))
    if both_pooled:
        ci_low, ci_high = _ratio_ci(a.pooled, b.pooled, rng) if ratio is not None else (None, None)
        p_value = float(sps.mannwhitneyu(b.pooled, a.pooled, alternative="two-sided").pvalue)
        note = "one process: tested raw samples, which are autocorrelated, so p is optimistic"
        return _Test("samples", p_value, ci_low, ci_high, (note,))
    if ratio is not None:
        return _Test("none", notes=("no raw samples on one side: no CI and no test",))
    return _Test("none")


@dataclass(frozen=True)
class _Flags:
    """The two rows' flags, sorted by what they do to a verdict."""

    shaky: list[str]  # void a call (UNRELIABLE_FLAGS the test does not carry)
    carried: list[str]  # in the variance of the process test (PROCESS_LEVEL_FLAGS)
    tails: list[str]  # noted beside the verdict (TAIL_FLAGS)


def _sort_flags(flags_a: list[str], flags_b: list[str], test: str) -> _Flags:
    raised = set(flags_a) | set(flags_b)
    shaky = sorted(raised & UNRELIABLE_FLAGS)
    carried: list[str] = []
    if test.startswith("processes"):
        # process-to-process differences are the test's own noise now, not a reason to give up
        carried = [f for f in shaky if f in PROCESS_LEVEL_FLAGS]
        shaky = [f for f in shaky if f not in PROCESS_LEVEL_FLAGS]
    return _Flags(shaky=shaky, carried=carried, tails=sorted(raised & TAIL_FLAGS))


def emulation_mismatch(flags_a: Sequence[str], flags_b: Sequence[str]) -> str | None:
    """Why no change may be called when exactly one side ran under CPU translation, or None."""
    a, b = EMULATED_FLAG in flags_a, EMULATED_FLAG in flags_b
    if a == b:
        return None
    return (
        f"{EMULATED_FLAG} on {'A' if a else 'B'} only: one row was measured under CPU "
        "translation and the other natively, so their ratio times the translator; no change "
        "is called"
    )


def _verdict(
    ratio: float | None, p_value: float | None, shaky: list[str], threshold: float
) -> tuple[str, str | None]:
    """The verdict on a tested change, and the note that explains an unreliable one."""
    if ratio is None or p_value is None:
        return "unreliable", None  # the ratio or the test already said why
    if shaky:
        return "unreliable", f"flagged: {', '.join(shaky)}"
    if p_value < ALPHA and ratio >= 1.0 + threshold:
        return "slower", None
    if p_value < ALPHA and ratio <= 1.0 - threshold:
        return "faster", None
    if abs(ratio - 1.0) >= threshold:
        # moved past the threshold but not significant: neither a change nor "same"
        return "unreliable", (
            f"moved {ratio - 1.0:+.1%} but p = {p_value:.2g} >= {ALPHA}: measure more processes "
            "(--processes 10, or a tighter --target-ci) to decide"
        )
    return "same", None


def _modes(a: _Side, b: _Side, tested: _Test, threshold: float) -> ModeComparison | None:
    """The two sides' modes, where their process medians were tested (``mode_compare``)."""
    if tested.test != "processes-welch":
        return None
    return compare_modes(a.process_medians, b.process_medians, threshold)


def _compare_pair(
    ra: RunRow,
    rb: RunRow,
    samples_a: dict[str, list[float]],
    samples_b: dict[str, list[float]],
    threshold: float,
    rng: np.random.Generator,
) -> Match:
    a, b = _side(ra, samples_a), _side(rb, samples_b)
    notes: list[str] = []
    ratio: float | None = None
    if a.median is not None and b.median is not None and a.median > 0:
        ratio = b.median / a.median
    else:
        notes.append("no usable median on one side")
    tested = _test_change(a, b, ratio, rng)
    modes = _modes(a, b, tested, threshold)
    if modes is not None and modes.shift is not None:
        # the modes moved: the change is measured within them, whatever their mixture
        shift = modes.shift
        ratio = shift.ratio
        tested = _Test("processes-modes", shift.p_value, shift.ci_low, shift.ci_high)
    notes.extend(tested.notes)
    flags_a, flags_b = _split(ra.flags), _split(rb.flags)
    flags = _sort_flags(flags_a, flags_b, tested.test)
    carried = [f for f in flags.carried if modes is None or f != "MULTIMODAL"]
    if carried:
        notes.append(f"{', '.join(carried)}: in the process medians' variance the test uses")
    verdict, why = _verdict(ratio, tested.p_value, flags.shaky, threshold)
    if modes is not None:
        notes.append(modes.note)
        moded = mode_verdict(modes, verdict) if not flags.shaky else verdict
        if moded != verdict:
            verdict, why = moded, None
    emulated = emulation_mismatch(flags_a, flags_b)
    if emulated:
        verdict, why = "unreliable", emulated
    if why:
        notes.append(why)
    if flags.tails and verdict != "unreliable":
        notes.append(
            f"outliers in the tails ({', '.join(flags.tails)}); the median and the test hold"
        )
    return Match(
        **pair_names(ra, rb),
        input_shape=ra.input_shape or "",
        median_a_ms=a.median,
        median_b_ms=b.median,
        n_a=a.count,
        n_b=b.count,
        processes_a=a.processes,
        processes_b=b.processes,
        ratio=ratio,
        ci_low=tested.ci_low,
        ci_high=tested.ci_high,
        p_value=tested.p_value,
        test=tested.test,
        verdict=verdict,
        flags_a=flags_a,
        flags_b=flags_b,
        fingerprint_diff=_fingerprint_diff(ra, rb),
        notes=notes,
    )


def _setup_warnings(matches: Sequence[Match]) -> list[str]:
    """One line per match whose two rows were measured on different setups."""
    warnings: list[str] = []
    for m in matches:
        if m.fingerprint_diff:
            diffs = ", ".join(
                f"{c} {a or '?'} -> {b or '?'}" for c, (a, b) in m.fingerprint_diff.items()
            )
            warnings.append(f"{m.label}: different setup: {diffs}")
    return warnings


def _geomean_ratio(matches: Sequence[Match]) -> tuple[float | None, int]:
    """The geometric mean of the matches' ratios B/A, and how many it is over."""
    ratios = [m.ratio for m in matches if m.ratio is not None and m.ratio > 0]
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    return geomean, len(ratios)


def compare_runs(
    runs_a: Sequence[RunRow],
    samples_a: Sequence[SampleRow],
    runs_b: Sequence[RunRow],
    samples_b: Sequence[SampleRow],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    allow_mismatch: bool = False,
    run_a: str = "A",
    run_b: str = "B",
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Compare run B against run A from their ``runs.csv`` and ``samples.csv`` rows.

    Raises ``UsageError`` when matched rows were measured on different setups (device
    fingerprint) unless ``allow_mismatch``, and ``ResultsError`` when nothing matches.
    """
    if threshold < 0:
        raise UsageError(f"threshold {threshold} is negative; give a fraction such as 0.05")
    pairs, only_a, only_b = _pair_rows(runs_a, runs_b)
    if not pairs:
        raise ResultsError(
            f"runs {run_a} and {run_b} have no successful measurement in common "
            f"(only in {run_a}: {', '.join(only_a) or 'nothing'}; "
            f"only in {run_b}: {', '.join(only_b) or 'nothing'})"
        )
    grouped_a, grouped_b = _group_samples(samples_a), _group_samples(samples_b)
    rng = np.random.default_rng(seed)
    matches = [
        _compare_pair(
            ra, rb, _samples_for(ra, grouped_a), _samples_for(rb, grouped_b), threshold, rng
        )
        for ra, rb in pairs
    ]
    warnings = _setup_warnings(matches)
    if warnings and not allow_mismatch:
        raise UsageError(
            f"runs {run_a} and {run_b} were measured on different setups, so a difference would "
            "measure the setup, not the change:\n  "
            + "\n  ".join(warnings)
            + "\nPass --allow-mismatch (allow_mismatch=True) to compare them anyway."
        )
    for missing, side in ((only_a, run_a), (only_b, run_b)):
        if missing:
            warnings.append(f"only in {side}: {', '.join(missing)}")
    geomean, geomean_n = _geomean_ratio(matches)
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        threshold=threshold,
        matches=matches,
        only_a=only_a,
        only_b=only_b,
        warnings=warnings,
        geomean_ratio=geomean,
        geomean_n=geomean_n,
    )
