"""Compare two runs (docs/method.md "Comparing two runs").

Rows of ``runs.csv`` are matched by (model, format, precision, input_shape); each match gets the
ratio of medians B/A with a 95 % CI and a two-sided p-value, both from Welch's t on the log
process medians (the processes are the independent units; with one process a side, a bootstrap CI
and a Mann-Whitney test on the raw samples, noted as optimistic), and a verdict.
Only results measured on the same setup (the device fingerprint) are compared unless the caller
allows a mismatch. ``gate`` turns a comparison into the CI pass/fail of ``--fail-on``.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from scipy import stats as sps

from benchharness.errors import ResultsError, UsageError
from benchharness.results.store import RunStore

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
UNRELIABLE_FLAGS: frozenset[str] = frozenset(
    {"HIGH_IQR", "VERY_HIGH_IQR", "DRIFT", "THROTTLED", "PROCESS_VARIANCE"}
)
#: Flags whose effect a test on process medians already carries in its variance: a process that
#: drifted, processes that disagree, or a wide bulk inside the processes all move the process
#: medians the test compares (rows written before DRIFT was read per process saw the processes
#: differ, not a drift). A wide IQR undermines a test on raw samples, not one on process
#: medians: on this project's VM HIGH_IQR marked 13 of 34 quiet rows, and voided a 1.7x
#: slowdown at p < 1e-4. THROTTLED stays: heat biases every process alike, which no variance shows.
PROCESS_LEVEL_FLAGS: frozenset[str] = frozenset(
    {"PROCESS_VARIANCE", "DRIFT", "HIGH_IQR", "VERY_HIGH_IQR"}
)
#: Flags reported beside a verdict without overturning it (see UNRELIABLE_FLAGS).
TAIL_FLAGS: frozenset[str] = frozenset({"EXTREME", "HIGH_CV"})

#: Columns that identify what was measured; rows match on these.
MATCH_KEY: tuple[str, ...] = ("model", "format", "precision", "input_shape")
#: Columns that identify where and how it was measured; they must agree for a fair comparison.
FINGERPRINT: tuple[str, ...] = (
    "device",
    "runtime",
    "runtime_version",
    "threads",
    "format",
    "precision",
    "cpu_model",
)
#: When one run holds several rows with the same match key (several devices or thread counts),
#: they are paired on these as well.
DISAMBIGUATE: tuple[str, ...] = ("device", "runtime", "provider", "threads")

VERDICTS: tuple[str, ...] = ("slower", "faster", "same", "unreliable")

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
    test: str  # "processes-welch", "samples" or "none": what the test ran on
    verdict: str
    flags_a: list[str] = field(default_factory=list)
    flags_b: list[str] = field(default_factory=list)
    fingerprint_diff: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model} [{self.format}/{self.precision}]"

    def significant_slowdown(self, threshold: float, *, include_unreliable: bool = False) -> bool:
        """p < ALPHA and B slower than A by at least ``threshold`` (a fraction, 0.05 = 5 %)."""
        if self.ratio is None or self.p_value is None:
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
        return _finite(asdict(self))

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


def pair_names(ra: Mapping[str, Any], rb: Mapping[str, Any]) -> PairNames:
    return PairNames(
        model=str(ra.get("model") or ""),
        format=str(ra.get("format") or ""),
        precision=str(ra.get("precision") or ""),
        device_a=str(ra.get("device") or ""),
        device_b=str(rb.get("device") or ""),
    )


def _split(text: Any) -> list[str]:
    return [part.strip() for part in str(text or "").split(";") if part.strip()]


def _key(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(row.get(c) or "").strip() for c in columns)


def _group_samples(
    sample_rows: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, ...], dict[str, list[tuple[int, float]]]]:
    """Samples by job id (and by device/model/format/precision for rows without one)."""
    grouped: dict[tuple[str, ...], dict[str, list[tuple[int, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in sample_rows:
        latency = row.get("latency_ms")
        if latency is None:
            continue
        index = row.get("index") or 0
        process = str(row.get("process") or "0")
        job = str(row.get("job_id") or "").strip()
        entry = (index, latency)
        if job:
            grouped[("job", job)][process].append(entry)
        grouped[("key", *_key(row, ("device", "model", "format", "precision")))][process].append(
            entry
        )
    return grouped


def _samples_for(
    row: Mapping[str, Any], grouped: Mapping[tuple[str, ...], dict[str, list[tuple[int, float]]]]
) -> dict[str, list[float]]:
    """The row's samples per process, in measurement order."""
    job = str(row.get("job_id") or "").strip()
    by_process = grouped.get(("job", job)) if job else None
    if by_process is None:
        by_process = grouped.get(("key", *_key(row, ("device", "model", "format", "precision"))))
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

    The same statistic as a row's interval (``analysis/intervals``): processes are the
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


def _fingerprint_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[str]]:
    diff: dict[str, list[str]] = {}
    for col in FINGERPRINT:
        va, vb = str(a.get(col) or "").strip(), str(b.get(col) or "").strip()
        if va != vb:
            diff[col] = [va, vb]
    return diff


def _pair_rows(
    runs_a: Sequence[Mapping[str, Any]], runs_b: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[Mapping[str, Any], Mapping[str, Any]]], list[str], list[str]]:
    """Pairs of rows measuring the same thing, and the labels found on one side only."""

    def ok_rows(
        rows: Sequence[Mapping[str, Any]],
    ) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
        by_key: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            if str(row.get("status") or "ok").strip() == "ok":
                by_key[_key(row, MATCH_KEY)].append(row)
        return by_key

    def label(row: Mapping[str, Any]) -> str:
        device = str(row.get("device") or "").strip()
        return "/".join(v for v in _key(row, MATCH_KEY) if v) + (f" on {device}" if device else "")

    a_by, b_by = ok_rows(runs_a), ok_rows(runs_b)
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
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
            partner = next(
                (rb for rb in rest_b if _key(rb, DISAMBIGUATE) == _key(ra, DISAMBIGUATE)), None
            )
            if partner is None:
                only_a.append(label(ra))
            else:
                rest_b.remove(partner)
                pairs.append((ra, partner))
        only_b.extend(label(rb) for rb in rest_b)
    return pairs, only_a, only_b


def pair_rows(
    runs_a: Sequence[Mapping[str, Any]], runs_b: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[Mapping[str, Any], Mapping[str, Any]]], list[str], list[str]]:
    """The pairing every comparison shares (latency here, memory in ``memory_compare``)."""
    return _pair_rows(runs_a, runs_b)


def _compare_pair(
    ra: Mapping[str, Any],
    rb: Mapping[str, Any],
    samples_a: dict[str, list[float]],
    samples_b: dict[str, list[float]],
    threshold: float,
    rng: np.random.Generator,
) -> Match:
    notes: list[str] = []
    pooled_a = np.asarray([v for vs in samples_a.values() for v in vs], dtype=float)
    pooled_b = np.asarray([v for vs in samples_b.values() for v in vs], dtype=float)
    med_a = float(np.median(pooled_a)) if pooled_a.size else ra.get("median_ms")
    med_b = float(np.median(pooled_b)) if pooled_b.size else rb.get("median_ms")

    def process_medians(row: Mapping[str, Any], by_process: dict[str, list[float]]) -> list[float]:
        if len(by_process) >= 2:
            return [float(np.median(v)) for v in by_process.values() if v]
        return [float(v) for v in row.get("process_medians_ms") or []]

    pm_a, pm_b = process_medians(ra, samples_a), process_medians(rb, samples_b)

    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    if med_a is not None and med_b is not None and med_a > 0:
        ratio = med_b / med_a
    else:
        notes.append("no usable median on one side")
    p_value: float | None = None
    test = "none"
    if len(pm_a) >= 2 and len(pm_b) >= 2 and min(pm_a + pm_b) > 0:
        p_value, half = welch_log(pm_a, pm_b)
        test = "processes-welch"
        notes.append("Welch's t-test on log process medians (processes are what repeats)")
        if ratio is not None:
            ci_low, ci_high = ratio * math.exp(-half), ratio * math.exp(half)
            if pooled_a.size and pooled_b.size:
                # never narrower than the samples alone allow (processes that agree by chance)
                lo, hi = _ratio_ci(pooled_a, pooled_b, rng)
                ci_low = min(ci_low, lo) if lo is not None else ci_low
                ci_high = max(ci_high, hi) if hi is not None else ci_high
    elif pooled_a.size and pooled_b.size:
        if ratio is not None:
            ci_low, ci_high = _ratio_ci(pooled_a, pooled_b, rng)
        p_value = float(sps.mannwhitneyu(pooled_b, pooled_a, alternative="two-sided").pvalue)
        test = "samples"
        notes.append(
            "one process: tested raw samples, which are autocorrelated, so p is optimistic"
        )
    elif ratio is not None:
        notes.append("no raw samples on one side: no CI and no test")

    flags_a, flags_b = _split(ra.get("flags")), _split(rb.get("flags"))
    shaky = sorted((set(flags_a) | set(flags_b)) & UNRELIABLE_FLAGS)
    if test.startswith("processes"):
        # process-to-process differences are the test's own noise now, not a reason to give up
        carried = [f for f in shaky if f in PROCESS_LEVEL_FLAGS]
        shaky = [f for f in shaky if f not in PROCESS_LEVEL_FLAGS]
        if carried:
            notes.append(f"{', '.join(carried)}: in the process medians' variance the test uses")
    tails = sorted((set(flags_a) | set(flags_b)) & TAIL_FLAGS)
    if ratio is None or p_value is None:
        verdict = "unreliable"
        if not notes:
            notes.append("cannot test the change without raw samples or process medians")
    elif shaky:
        verdict = "unreliable"
        notes.append(f"flagged: {', '.join(shaky)}")
    elif p_value < ALPHA and ratio >= 1.0 + threshold:
        verdict = "slower"
    elif p_value < ALPHA and ratio <= 1.0 - threshold:
        verdict = "faster"
    elif abs(ratio - 1.0) >= threshold:
        # moved past the threshold but not significant: neither a change nor "same"
        verdict = "unreliable"
        notes.append(
            f"moved {ratio - 1.0:+.1%} but p = {p_value:.2g} >= {ALPHA}: measure more processes "
            "(--processes 10, or a tighter --target-ci) to decide"
        )
    else:
        verdict = "same"
    if tails and verdict != "unreliable":
        notes.append(f"outliers in the tails ({', '.join(tails)}); the median and the test hold")

    def count(row: Mapping[str, Any], pooled: np.ndarray) -> int:
        if pooled.size:
            return int(pooled.size)
        return int(row.get("n") or 0)

    return Match(
        **pair_names(ra, rb),
        input_shape=str(ra.get("input_shape") or ""),
        median_a_ms=med_a,
        median_b_ms=med_b,
        n_a=count(ra, pooled_a),
        n_b=count(rb, pooled_b),
        processes_a=max(len(pm_a), 1 if pooled_a.size else 0),
        processes_b=max(len(pm_b), 1 if pooled_b.size else 0),
        ratio=ratio,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        test=test,
        verdict=verdict,
        flags_a=flags_a,
        flags_b=flags_b,
        fingerprint_diff=_fingerprint_diff(ra, rb),
        notes=notes,
    )


def compare_runs(
    runs_a: Sequence[Mapping[str, Any]],
    samples_a: Sequence[Mapping[str, Any]],
    runs_b: Sequence[Mapping[str, Any]],
    samples_b: Sequence[Mapping[str, Any]],
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

    warnings: list[str] = []
    for m in matches:
        if m.fingerprint_diff:
            diffs = ", ".join(
                f"{c} {a or '?'} -> {b or '?'}" for c, (a, b) in m.fingerprint_diff.items()
            )
            warnings.append(f"{m.label}: different setup: {diffs}")
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

    ratios = [m.ratio for m in matches if m.ratio is not None and m.ratio > 0]
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        threshold=threshold,
        matches=matches,
        only_a=only_a,
        only_b=only_b,
        warnings=warnings,
        geomean_ratio=geomean,
        geomean_n=len(ratios),
    )


def compare_run_ids(
    results_dir: Path,
    run_a: str,
    run_b: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    allow_mismatch: bool = False,
) -> Comparison:
    """Load two run folders (ids under ``results_dir`` or paths) and compare B against A."""
    store_a = RunStore.open(results_dir, run_a)
    store_b = RunStore.open(results_dir, run_b)
    return compare_runs(
        store_a.runs,
        store_a.samples,
        store_b.runs,
        store_b.samples,
        threshold=threshold,
        allow_mismatch=allow_mismatch,
        run_a=store_a.run_id,
        run_b=store_b.run_id,
    )
