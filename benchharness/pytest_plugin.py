"""``pytest --benchmark``: latency benchmarks of zoo models as pytest tests.

With ``--benchmark`` the plugin adds one test per model x format (``test_model_latency[NAME-FMT]``);
without it nothing is added, so a plain ``pytest`` run is untouched. A test of your own can ask for
the ``bench_case`` fixture to get the same parametrisation; such tests are skipped (with a reason)
unless ``--benchmark`` is given.

How the numbers get into pytest-benchmark
-----------------------------------------
Timing in the pytest process would break docs/method.md (timing happens inside a fresh runner
process
on the device, after warm-up, until the stopping rule holds), so the plugin measures exactly as
``bench run`` does: :func:`benchharness.api.run` exports, costs, dispatches and stores all
selected cases in one run folder (models interleaved, R processes each). The first benchmark test
to run starts that run; each test then hands its measured samples to pytest-benchmark through its
public API:

* every case carries ``@pytest.mark.benchmark(timer=ReplayClock)`` (the documented per-test timer
  override), and
* the test calls ``benchmark.pedantic(clock.tick, setup=clock.rewind, rounds=len(samples))``:
  ``setup`` sets the fake clock to 0 outside the timed region, ``tick`` moves it forward by the
  next measured sample, so each round's duration *is* one runner sample, bit for bit.

pytest-benchmark therefore computes its usual statistics from the device's samples, and its own
options (``--benchmark-json``, ``--benchmark-autosave``, ``--benchmark-compare``,
``--benchmark-compare-fail``, ``--benchmark-histogram``) work unchanged; no private attribute is
touched. MACs, GMAC/s, flags and the results folder go into ``benchmark.extra_info``, and the run
folder can be turned into a report with ``bench report RUN_ID -o report.html``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from benchharness.results.schema import RunRow
    from benchharness.results.store import RunStore

#: The default model set: two small models, so ``pytest --benchmark`` finishes in a minute or two.
DEFAULT_MODELS = "student_net,dw_resnet18"
#: The default formats: both runtimes the harness ships runners for.
DEFAULT_FORMATS = "onnx,tflite"
DEFAULT_DEVICE = "local"
#: The marker every generated case carries, so ``-m benchharness`` selects them.
MARKER = "benchharness"
#: Reason shown for ``bench_case`` tests in a run without ``--benchmark``.
SKIP_REASON = "latency benchmark: run with `pytest --benchmark` to measure"
#: pytest-benchmark's group of a case: one table per device and format.
GROUP_FORMAT = "{device} {format}"

#: The ``extra_info`` figures that are counts (the others are reported as floats).
WHOLE_FIGURES = frozenset({"macs", "flops", "params", "n"})

_SESSION_KEY = pytest.StashKey["BenchSession"]()


class ShakyMeasurementWarning(UserWarning):
    """A measurement raised docs/method.md flags (HIGH_IQR, DRIFT, ...); its numbers are shaky."""


class ReplayClock:
    """A pytest-benchmark timer that replays durations measured elsewhere.

    pytest-benchmark reads the timer before and after each round of ``pedantic``; ``rewind`` (the
    round's ``setup``, untimed) puts the clock at 0 and ``tick`` (the timed target) moves it to the
    next sample, so the round lasts exactly that sample.
    """

    def __init__(self) -> None:
        # pytest-benchmark records the timer by name in its JSON and report header
        self.__name__ = "replayed_device_samples"
        self._now = 0.0
        self._pending: list[float] = []

    def load(self, seconds: Sequence[float]) -> None:
        self._pending = list(reversed(seconds))

    def __call__(self) -> float:
        return self._now

    def rewind(self) -> None:
        self._now = 0.0

    def tick(self) -> None:
        self._now = self._pending.pop()

    def __repr__(self) -> str:
        return self.__name__


@dataclass(frozen=True)
class BenchCase:
    """One model in one format on one device: the parameter of a benchmark test."""

    model: str
    format: str
    device: str
    selector: str  # what resolves to this model for ``bench run --models``
    clock: ReplayClock = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.model}-{self.format}"


@dataclass
class Measurement:
    """What the run measured for one case (a runs.csv row and its raw samples)."""

    case: BenchCase
    row: RunRow
    samples_ms: list[float]
    run_id: str
    results_path: Path

    @property
    def ok(self) -> bool:
        return self.row.ok

    def number(self, column: str) -> float | None:
        """A numeric column by its name, as a float (None when empty or not a number): for a
        test that names the column at run time; code that knows it reads ``row.<column>``."""
        value = self.row.as_dict().get(column)
        try:
            return float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    @property
    def median_ms(self) -> float | None:
        return self.row.median_ms

    @property
    def flags(self) -> list[str]:
        return self.row.flag_list

    def extra_info(self) -> dict[str, Any]:
        """What goes into pytest-benchmark's ``extra_info`` (and so its JSON)."""
        r = self.row
        info: dict[str, Any] = {
            "model": self.case.model,
            "format": self.case.format,
            "device": self.case.device,
            "run_id": self.run_id,
            "results": str(self.results_path),
            "flags": self.flags,
        }
        described: dict[str, str | int | None] = {
            "runtime": r.runtime, "runtime_version": r.runtime_version, "provider": r.provider,
            "precision": r.precision, "input_shape": r.input_shape, "threads": r.threads,
            "processes": r.processes,
        }  # fmt: skip
        info.update({k: v for k, v in described.items() if v not in (None, "")})
        figures: dict[str, float | None] = {
            "macs": r.macs, "flops": r.flops, "params": r.params, "model_bytes": r.model_bytes,
            "gmacs_per_s": r.gmacs_per_s, "median_ms": r.median_ms, "p90_ms": r.p90_ms,
            "iqr_ms": r.iqr_ms, "ci99_low_ms": r.ci99_low_ms, "ci99_high_ms": r.ci99_high_ms,
            "cold_ms": r.cold_ms, "n": r.n,
        }  # fmt: skip
        for name, value in figures.items():
            if value is not None:
                info[name] = int(value) if name in WHOLE_FIGURES else float(value)
        macs, median = r.macs, r.median_ms
        if "gmacs_per_s" not in info and macs and median:
            info["gmacs_per_s"] = macs / (median / 1e3) / 1e9
        return info


@dataclass(frozen=True)
class BenchOptions:
    enabled: bool
    models: str
    formats: tuple[str, ...]
    device: str
    quick: bool
    min_s: float | None
    warmup_min_s: float | None
    results_dir: Path

    @classmethod
    def from_config(cls, config: pytest.Config) -> BenchOptions:
        formats = tuple(
            f.strip() for f in config.getoption("bench_formats").split(",") if f.strip()
        )
        results = config.getoption("bench_results_dir") or os.environ.get(
            "BENCH_RESULTS_DIR", "results"
        )
        return cls(
            enabled=bool(config.getoption("bench_enabled")),
            models=config.getoption("bench_models"),
            formats=formats,
            device=config.getoption("bench_device"),
            quick=bool(config.getoption("bench_quick")),
            min_s=config.getoption("bench_min_time"),
            warmup_min_s=config.getoption("bench_warmup_time"),
            results_dir=Path(results),
        )


class BenchSession:
    """Measures every selected case in one ``bench run``-style run, the first time it is asked."""

    def __init__(self, options: BenchOptions) -> None:
        self.options = options
        self.store: RunStore | None = None
        self.error: str | None = None
        self.all_cases: list[BenchCase] = []  # every case --bench-models/--bench-formats name
        self.cases: list[BenchCase] = []  # the cases selected and measured

    def run(self, cases: Sequence[BenchCase]) -> None:
        from benchharness.api import RunRequest, run
        from benchharness.errors import HarnessError
        from benchharness.plan.options import Method, RunOptions

        self.cases = list(cases)
        models = list(dict.fromkeys(c.selector for c in cases))
        formats = tuple(dict.fromkeys(c.format for c in cases))
        method = Method(
            quick=self.options.quick,
            min_s=self.options.min_s,
            warmup_min_s=self.options.warmup_min_s,
        )
        request = RunRequest(
            devices=(self.options.device,),
            models=",".join(models),
            formats=formats,
            options=RunOptions(method=method),
            results_dir=self.options.results_dir,
        )
        try:
            self.store = run(request)
        except HarnessError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        if self.store is not None:
            self.store.meta["via"] = "pytest --benchmark"
            self.store.write_meta()

    def measure(self, case: BenchCase, session: pytest.Session) -> Measurement:
        """This case's result; the first call measures every case selected in the session."""
        if self.store is None and self.error is None:
            self.run(_selected_cases(session) or [case])
        return self.result(case)

    def result(self, case: BenchCase) -> Measurement:
        if self.error is not None:
            pytest.fail(f"the benchmark run failed: {self.error}", pytrace=False)
        assert self.store is not None
        rows = [
            r
            for r in self.store.runs
            if r.model == case.model and r.format == case.format and r.device == case.device
        ]
        if not rows:
            pytest.fail(f"{case.id}: the run {self.store.run_id} has no row for it", pytrace=False)
        row = rows[-1]
        samples = [
            s.latency_ms
            for s in self.store.samples
            if s.job_id == row.job_id and s.latency_ms is not None
        ]
        return Measurement(case, row, samples, self.store.run_id, self.store.path)


# ----------------------------------------------------------------------------- hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("benchharness", "benchharness latency benchmarks")
    group.addoption(
        "--benchmark",
        action="store_true",
        dest="bench_enabled",
        help="Measure zoo models with the benchharness pipeline (one test per model x format).",
    )
    group.addoption(
        "--bench-models",
        dest="bench_models",
        default=DEFAULT_MODELS,
        help=f"all | a,b | module:function | path.onnx | path.tflite (default {DEFAULT_MODELS}).",
    )
    group.addoption(
        "--bench-formats",
        dest="bench_formats",
        default=DEFAULT_FORMATS,
        help=f"Formats to export and time (default {DEFAULT_FORMATS}).",
    )
    group.addoption(
        "--bench-device",
        dest="bench_device",
        default=DEFAULT_DEVICE,
        help="Device profile name or .toml path (default local).",
    )
    group.addoption(
        "--bench-quick",
        dest="bench_quick",
        action="store_true",
        help="docs/method.md's quick preset: 64 inferences and 5 s, one process.",
    )
    group.addoption(
        "--bench-min-time",
        dest="bench_min_time",
        type=float,
        default=None,
        help=(
            "Seconds of measuring per process (smoke runs; shorter than docs/method.md's default)."
        ),
    )
    group.addoption(
        "--bench-warmup-time",
        dest="bench_warmup_time",
        type=float,
        default=None,
        help="Minimum warm-up seconds (smoke runs; shorter than docs/method.md's default).",
    )
    group.addoption(
        "--bench-results-dir",
        dest="bench_results_dir",
        default=None,
        help="Where the run folder goes (default $BENCH_RESULTS_DIR or results).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a benchharness latency benchmark case")
    session = BenchSession(BenchOptions.from_config(config))
    if session.options.enabled:
        # resolved once, here, so a bad --bench-* value is a usage error before collection
        session.all_cases = _cases(session.options)
    config.stash[_SESSION_KEY] = session
    config.pluginmanager.register(_CaseHooks(), "benchharness-cases")


def _cases(options: BenchOptions) -> list[BenchCase]:
    from benchharness.errors import HarnessError
    from benchharness.export.pipeline import FORMATS
    from benchharness.zoo.registry import ArtifactRef, resolve_models

    bad = [f for f in options.formats if f not in FORMATS]
    if bad or not options.formats:
        raise pytest.UsageError(f"--bench-formats: choose from {', '.join(FORMATS)}")
    cases: dict[tuple[str, str], BenchCase] = {}
    for token in (t.strip() for t in options.models.split(",") if t.strip()):
        try:
            refs = resolve_models(token)
        except HarnessError as exc:
            raise pytest.UsageError(f"--bench-models {options.models!r}: {exc}") from exc
        for ref in refs:
            selector = ref.name if token == "all" else token
            formats = (ref.format,) if isinstance(ref, ArtifactRef) else options.formats
            for fmt in formats:
                case = BenchCase(ref.name, fmt, options.device, selector, ReplayClock())
                cases.setdefault((case.model, fmt), case)
    if not cases:
        raise pytest.UsageError("--bench-models is empty; give 'all', zoo names or module:function")
    return list(cases.values())


class _CaseHooks:
    """Parametrises ``bench_case``; a separate plugin object, not a module-level hook, because
    this module is also collected as a test module (for ``test_model_latency``) and pytest would
    otherwise call a module-level ``pytest_generate_tests`` twice for its tests."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "bench_case" not in metafunc.fixturenames:
            return
        session: BenchSession = metafunc.config.stash[_SESSION_KEY]
        if not session.options.enabled:
            skip = pytest.mark.skip(reason=SKIP_REASON)
            metafunc.parametrize("bench_case", [pytest.param(None, marks=skip, id="no-benchmark")])
            return
        params = [
            pytest.param(
                case,
                id=case.id,
                marks=(
                    pytest.mark.benchharness,
                    pytest.mark.benchmark(
                        timer=case.clock,
                        group=GROUP_FORMAT.format(device=case.device, format=case.format),
                    ),
                ),
            )
            for case in session.all_cases
        ]
        metafunc.parametrize("bench_case", params)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With --benchmark, add this module's ``test_model_latency`` cases to the collection.

    tryfirst: the cases join before -k/-m deselection and pytest-benchmark's own skip options.
    """
    if not config.stash[_SESSION_KEY].options.enabled:
        return
    here = Path(__file__)
    if any(getattr(item, "path", None) == here for item in items):
        return  # the user named this file on the command line: collected already
    module = pytest.Module.from_parent(session, path=here)
    items.extend(i for i in session.genitems(module) if isinstance(i, pytest.Item))


def _selected_cases(session: pytest.Session) -> list[BenchCase]:
    cases: dict[tuple[str, str, str], BenchCase] = {}
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("bench_case") if callspec is not None else None
        if isinstance(case, BenchCase):
            cases.setdefault((case.model, case.format, case.device), case)
    return list(cases.values())


@pytest.fixture(scope="session")
def bench_session(request: pytest.FixtureRequest) -> BenchSession:
    """The run behind every benchmark test; it starts when the first test asks for a result."""
    session: BenchSession = request.config.stash[_SESSION_KEY]
    return session


@pytest.fixture()
def bench_measurement(
    bench_case: BenchCase, bench_session: BenchSession, request: pytest.FixtureRequest
) -> Measurement:
    """The measured result of this test's case (runs every selected case the first time)."""
    return bench_session.measure(bench_case, request.session)


def record(benchmark: Any, measurement: Measurement) -> None:
    """Hand a measurement's samples to pytest-benchmark (see the module docstring)."""
    benchmark.extra_info.update(measurement.extra_info())
    clock = measurement.case.clock
    clock.load([ms / 1e3 for ms in measurement.samples_ms])
    benchmark.pedantic(
        clock.tick, setup=clock.rewind, rounds=len(measurement.samples_ms), iterations=1
    )


def test_model_latency(
    benchmark: Any,
    bench_case: BenchCase,
    bench_session: BenchSession,
    request: pytest.FixtureRequest,
) -> None:
    """One zoo model in one format on the device: fails if the harness could not measure it."""
    m = bench_session.measure(bench_case, request.session)
    if not m.ok:
        pytest.fail(
            f"{m.case.id} on {m.case.device}: {m.row.status}: {m.row.error}",
            pytrace=False,
        )
    if not m.samples_ms:
        pytest.fail(f"{m.case.id}: no samples in {m.results_path / 'samples.csv'}", pytrace=False)
    if m.flags:
        warnings.warn(
            ShakyMeasurementWarning(f"{m.case.id} on {m.case.device}: {', '.join(m.flags)}"),
            stacklevel=1,
        )
    record(benchmark, m)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session: BenchSession = config.stash[_SESSION_KEY]
    if session.store is not None:
        rid = session.store.run_id
        terminalreporter.write_sep("-", "benchharness")
        terminalreporter.write_line(f"results: {session.store.path}")
        terminalreporter.write_line(
            f"report:  bench report {rid} --results-dir {session.options.results_dir} "
            "-o report.html"
        )
    elif session.error is not None:
        terminalreporter.write_line(f"benchharness: the run failed: {session.error}")


__all__ = [
    "BenchCase",
    "BenchSession",
    "Measurement",
    "ReplayClock",
    "ShakyMeasurementWarning",
    "bench_measurement",
    "bench_session",
    "record",
]
