"""The results schema: one typed record per CSV row, and the cells they are written as.

``RunRow`` (``runs.csv``), ``OpRow`` (``ops.csv``) and ``SampleRow`` (``samples.csv``) are the
schema. Their fields, in order, are the CSV columns; each field's type is its column's type
(``int``, ``float``, ``list[float]`` written ``;``-separated, or text), so one definition gives the
header, the typed reload and what every reader may ask for. Readers use attributes: a misspelt
column is a mypy error, never a silent ``None``.

An empty cell reads back as ``None`` (a list as ``[]``); the text columns every row has (its
identity, status and error) as ``""``. A NaN or infinite value is written as an empty cell, and a
cell that holds one (``nan``, ``inf``, ``1e999``), or an integer past 64 bits, is refused on
reading. Rows are built from a mapping of column values with ``from_values`` (an unknown column is
a programming error and raises ``KeyError``), and read from a CSV with ``from_cells`` (a cell that
is not its column's type is a ``ResultsError`` naming the file, the line and the column).

Cells that a spreadsheet would run as a formula are written with a leading ``'`` and read back
without it (OWASP's CSV-injection advice).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from benchharness.errors import ResultsError
from benchharness.stats.modes import Mode, parse_modes

#: Bumped whenever a column changes meaning or disappears, or a version's readers need to know
#: that its columns exist (2: measured memory, ``results/memory_columns.py``); older folders
#: are migrated on load (``results/store.MIGRATIONS``), never rewritten unless a resumed run
#: writes them again.
SCHEMA_VERSION = 2

#: Leading characters that make a spreadsheet evaluate a cell (OWASP's CSV injection list).
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")
#: The prefix that makes such a cell plain text in every spreadsheet; taken off on reading.
TEXT_QUOTE = "'"

#: The integers an ``int`` column holds: a signed 64-bit integer, as in every other CSV reader.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: Column kinds, read off each field's annotation.
INT, FLOAT, LIST, TEXT, REQUIRED_TEXT = "int", "float", "list", "text", "required-text"
_KINDS = {
    "int | None": INT,
    "float | None": FLOAT,
    "list[float]": LIST,
    "str | None": TEXT,
    "str": REQUIRED_TEXT,
}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _needs_quote(text: str) -> bool:
    """Whether a text cell would run as a formula in a spreadsheet (a number would not)."""
    if text.startswith(TEXT_QUOTE):
        return text[1:].startswith(FORMULA_CHARS)  # keeps the round trip exact
    return text.startswith(FORMULA_CHARS) and not _is_number(text)


def cell(value: Any) -> str:
    """One value as its CSV cell: None, NaN and infinities empty, lists ``;``-joined, formulas
    quoted."""
    if value is None:
        return ""
    if isinstance(value, float):
        # no measurement is NaN or infinite: such a value is a missing one, and a cell that
        # said ``inf`` would not read back (parse_cell)
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (list, tuple)):
        return ";".join(cell(v) for v in value)
    text = str(value)
    if isinstance(value, str) and _needs_quote(text):
        return TEXT_QUOTE + text
    return text


def _finite(text: str) -> float:
    """``float(text)``, ValueError unless finite: ``nan``, ``inf`` and ``1e999`` are no value
    any column holds, and would reach every reader as one."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _int64(text: str) -> int:
    """``int(text)`` (``12.0`` too, as another tool may write it), ValueError unless it fits a
    signed 64-bit column: no count or size is larger, and a larger one overflows every reader
    that makes it a float."""
    try:
        value = int(text)
    except ValueError:
        number = float(text)  # a whole number written as 12.0 by another tool
        if not number.is_integer():
            raise
        value = int(number)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{text!r} does not fit 64 bits")
    return value


def parse_cell(kind: str, text: str | None) -> Any:
    """One cell as its column's kind: empty is None (``[]``, ``""``); ValueError if not a
    (finite) number."""
    if text is None or text == "":
        return {LIST: [], REQUIRED_TEXT: ""}.get(kind)
    if kind == INT:
        return _int64(text)
    if kind == FLOAT:
        return _finite(text)
    if kind == LIST:
        return [_finite(v) for v in text.split(";") if v]
    if text.startswith(TEXT_QUOTE) and text[1:].startswith(FORMULA_CHARS):
        return text[1:]  # the quote cell() put before a formula-looking text
    return text


class Record:
    """What the three row types share: their columns, kinds, and the CSV round trip."""

    __slots__ = ()
    _kinds: ClassVar[dict[str, str]]

    @classmethod
    def kinds(cls) -> dict[str, str]:
        """Column name -> kind, in column order."""
        cached = cls.__dict__.get("_kinds")
        if cached is None:
            cached = {f.name: _KINDS[str(f.type)] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
            cls._kinds = cached
        return cached

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(cls.kinds())

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Self:
        """A row from column values as code holds them (numbers, lists, text, None), each
        normalised as it would read back from disk, so a row in memory and one reloaded are
        alike. KeyError names a column the schema does not have."""
        kinds = cls.kinds()
        unknown = [k for k in values if k not in kinds]
        if unknown:
            raise KeyError(f"{cls.__name__} has no column {', '.join(sorted(unknown))}")
        return cls(**{k: parse_cell(kinds[k], cell(v)) for k, v in values.items()})

    @classmethod
    def from_cells(cls, cells: Mapping[str, str | None], where: str) -> Self:
        """A row from the text cells of a CSV line (``where`` names the file and line).
        Columns the schema does not know are left out; a number column that does not hold a
        number is a ResultsError."""
        kinds = cls.kinds()
        values: dict[str, Any] = {}
        for column, text in cells.items():
            kind = kinds.get(column)
            if kind is None:
                continue
            try:
                values[column] = parse_cell(kind, text)
            except ValueError:
                raise ResultsError(
                    f"{where}, column {column}: expected a number, got {text!r}; "
                    "the file was edited or damaged"
                ) from None
        return cls(**values)

    def cells(self) -> list[str]:
        """The row's CSV cells, in column order."""
        return [cell(getattr(self, c)) for c in self.kinds()]

    def as_dict(self) -> dict[str, Any]:
        """The row as plain data (``--json``), in column order."""
        return {c: getattr(self, c) for c in self.kinds()}

    def replace(self, **changes: Any) -> Self:
        """A copy with some columns changed, each normalised as ``from_values`` does."""
        kinds = self.kinds()
        normalised = {k: parse_cell(kinds[k], cell(v)) for k, v in changes.items()}
        return dataclasses.replace(self, **normalised)  # type: ignore[type-var]


@dataclass(kw_only=True, slots=True)
class RunRow(Record):
    """One ``runs.csv`` row: a device x artifact x settings measurement, its statistics, the
    environment it ran in and its outcome (``status`` ``ok``, ``partial`` or ``failed``, and
    why in ``error``). Columns are described in ``results/README.md``."""

    schema_version: int | None = None
    run_id: str = ""
    job_id: str = ""
    device: str = ""
    transport: str = ""
    runtime: str | None = None
    runtime_version: str | None = None
    provider: str | None = None
    format: str = ""
    precision: str = ""
    model: str = ""
    source: str | None = None
    input_shape: str | None = None
    threads: int | None = None
    affinity: str | None = None
    status: str = ""
    error: str = ""
    n: int | None = None
    warmup_n: int | None = None
    processes: int | None = None
    load_ms: float | None = None
    cold_ms: float | None = None
    median_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    iqr_ms: float | None = None
    mad_ms: float | None = None
    cv: float | None = None
    ci99_low_ms: float | None = None
    ci99_high_ms: float | None = None
    process_medians_ms: list[float] = field(default_factory=list)
    flags: str = ""
    macs: int | None = None
    flops: int | None = None
    params: int | None = None
    model_bytes: int | None = None
    activation_bytes: int | None = None
    gmacs_per_s: float | None = None
    max_abs_err: float | None = None
    tolerance: float | None = None
    ops_sum_ratio: float | None = None
    artifact_sha256: str | None = None
    artifact: str | None = None
    cpu_model: str | None = None
    governor: str | None = None
    max_freq_mhz: float | None = None
    temp_start_c: float | None = None
    temp_end_c: float | None = None
    loadavg_start: float | None = None
    harness_version: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    wall_s: float | None = None
    cooldown_s: float | None = None
    cooldown_temp_c: float | None = None
    stats_source: str | None = None
    mem_source: str | None = None
    mem_init_bytes: int | None = None
    mem_peak_bytes: int | None = None
    mem_estimate_bytes: int | None = None
    mem_baseline_bytes: int | None = None
    mem_runtime_load_bytes: int | None = None
    mem_tensor_bytes: int | None = None
    mem_code_bytes: int | None = None
    worker_host: str | None = None
    worker_device: str | None = None
    ci95_low_ms: float | None = None
    ci95_high_ms: float | None = None
    ci_method: str | None = None
    process_stop: str | None = None
    throttle_ratio: float | None = None
    ops_node_cost_us: float | None = None
    #: the machine's load across the job: the last process's closing load average, the highest
    #: any probe read, and the largest share (%) of CPU time a hypervisor gave to other guests
    #: during one process (``probe.steal_share``); empty where the device cannot tell
    loadavg_end: float | None = None
    loadavg_max: float | None = None
    steal_pct: float | None = None
    #: online CPUs of the device as the first probe read them (what a load average is against)
    cpus: int | None = None
    #: why the job has no operator rows when its per-operator pass failed (empty otherwise)
    ops_error: str | None = None
    #: the machine the runner ran as (``aarch64``, ``x86_64``), and the CPU translation it ran
    #: under where the probe saw one (``qemu-user``, ``rosetta``): such a row is never native
    arch: str | None = None
    emulated: str | None = None
    #: the source model's work beside the artifact's own (``macs``, ``params`` are the graph's):
    #: its MACs, params and convolutions + matrix products, and the artifact's; how the model was
    #: initialised before export (``seeded-normal/v1 seed 0``, ``builder``); and what the graph
    #: lost when it runs less than its model (the row then carries ``GRAPH_FOLDED``)
    source_macs: int | None = None
    source_params: int | None = None
    source_compute_ops: int | None = None
    compute_ops: int | None = None
    init: str | None = None
    folded: str | None = None
    #: the levels the process medians fall into when they form modes (``stats/modes``; the row
    #: then carries ``MULTIMODAL``): ``median_ms:share`` per mode, ascending, ``;``-separated,
    #: e.g. ``4.03:0.3;6.71:0.7``; empty for one level. Appended, no new schema version: an
    #: older folder reads it empty, which is what it would have said of one level
    modes: str | None = None
    #: the warm-up of each process, counted (docs/method.md, warm-up calibrated once per job):
    #: ``mode:count`` per ``protocol.WARMUP_MODES`` in that order, ``;``-separated, e.g.
    #: ``full:1;calibrated:8;calibrated+full:1``; where the job's latency settled in the first
    #: process whose full rule saw it settle (warm-up inferences, and seconds of them); and the
    #: calibrated count its later processes ran. Appended, no new schema version: empty in an
    #: older folder and for a native tool, whose warm-up is its own
    warmup_mode: str | None = None
    warmup_settle_n: int | None = None
    warmup_settle_s: float | None = None
    warmup_target_n: int | None = None
    #: the kept profiled pass's speed: the median of its runs, or for ORT, whose profiled runs
    #: hold the profiler's own work, its median run's operator time less the profiler's cost
    #: (``protocol.Profile.pass_ms``; set against ``median_ms``, it says whether
    #: the operators were timed at the speed the row was: ``OPS_SUM_OFF``) and how many passes
    #: the process ran to get one at that speed (``ondevice/profile_pass.PROFILE_ATTEMPTS``).
    #: Appended, no new schema version: empty in an older folder and where no pass ran
    ops_run_ms: float | None = None
    ops_attempts: int | None = None

    @property
    def flag_list(self) -> list[str]:
        """The row's flags (``flags`` is ``;``-separated, as written)."""
        return [f for f in self.flags.split(";") if f]

    @property
    def mode_list(self) -> tuple[Mode, ...]:
        """The row's modes (``modes`` parsed; counts from ``processes``); ValueError for a
        damaged cell."""
        return parse_modes(self.modes, self.processes or 0)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def runs_its_model(self) -> bool:
        """False when the artifact's graph lost work its model defines (``GRAPH_FOLDED``): its
        latency is not the model's, so nothing should learn from or be judged against it."""
        return not self.folded and "GRAPH_FOLDED" not in self.flag_list


@dataclass(kw_only=True, slots=True)
class OpRow(Record):
    """One ``ops.csv`` row: an operator of a measured artifact, its time and its cost."""

    schema_version: int | None = None
    run_id: str = ""
    job_id: str = ""
    device: str = ""
    model: str = ""
    format: str = ""
    precision: str = ""
    runtime: str | None = None
    op_index: int | None = None
    op_name: str = ""
    op_type: str = ""
    calls: int | None = None
    median_us: float | None = None
    share: float | None = None
    macs: int | None = None
    flops: int | None = None
    params: int | None = None
    bytes: int | None = None
    graph_ops: str | None = None
    median_raw_us: float | None = None


@dataclass(kw_only=True, slots=True)
class SampleRow(Record):
    """One ``samples.csv`` row: one timed inference of one runner process."""

    schema_version: int | None = None
    run_id: str = ""
    job_id: str = ""
    device: str = ""
    model: str = ""
    format: str = ""
    precision: str = ""
    process: int | None = None
    index: int | None = None
    latency_ms: float | None = None


RUNS_COLUMNS = RunRow.columns()
OPS_COLUMNS = OpRow.columns()
SAMPLES_COLUMNS = SampleRow.columns()
