"""The predictor file read as hostile: bounded bytes, bounded JSON, and a schema of every field.

A predictor file (``results/predictors/DEVICE.json.gz``) may be truncated, edited by hand, copied
from another harness or crafted. ``read_predictor_json`` reads at most ``MAX_FILE_BYTES`` of it
(decompressed: a gzip bomb stops there) and parses it; ``check_predictor`` then walks the layout
``Predictor.to_json`` writes (``FILE_VERSION`` 2; version 1, before the network stage, is read
too) and refuses anything else as a
``PredictorError`` naming the file, the field (``formats.onnx.regressors.Conv.trees.trees[3]
.left[5]``) and what it should hold. What passes is safe for the ``from_json`` builders and for
predicting: numbers are finite and in range, text and nesting are bounded, and every tree's
children lie after their parent inside its arrays, so a prediction walks each tree in at most as
many steps as it has nodes.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from pathlib import Path
from typing import IO, Any

from benchharness.errors import PredictorError
from benchharness.predict.conformal import MAX_LOG_WIDTH
from benchharness.predict.network_cal import SLOPE_RANGE
from benchharness.predict.regress import LEGACY_TERMS, LINEAR_TERMS

#: What a predictor file says it is, and the layout version this harness writes and reads.
FILE_KIND = "benchharness-latency-predictor"
FILE_VERSION = 2
#: The most bytes a predictor file may hold once decompressed: a whole zoo's build is a few MB
#: (150 small trees per kernel type), so 128 MiB is damage or a bomb, never a predictor.
MAX_FILE_BYTES = 128 << 20
#: Longest text a field may hold (names, keys, versions; the longest are paths in ``build``).
MAX_TEXT = 4096
#: Deepest nesting of the free-form fields (``fingerprint``, ``build``, ``stats``); what the
#: harness writes there is two levels deep.
MAX_DEPTH = 8
#: Largest integer a count or size may be: what a signed 64-bit column holds.
MAX_INT = 2**63 - 1
#: ``seed`` goes to scikit-learn's ``random_state``, which takes 32-bit seeds.
MAX_SEED = 2**32 - 1
#: A tree leaf's children, as scikit-learn writes them.
LEAF = -1
#: How much of a wrong value a message quotes.
SHOWN_CHARS = 60
#: Largest kernel sum a network stage may be fitted up to: a day per inference is no network's.
MAX_NETWORK_MS = 86_400_000.0
#: Gzip's magic bytes, which tell a compressed file from plain JSON whatever its name.
GZIP_MAGIC = b"\x1f\x8b"


class At:
    """Where in one predictor file a value lies, for the message that refuses it."""

    def __init__(self, file: Path, field: str = "") -> None:
        self.file = file
        self.field = field

    def key(self, name: str) -> At:
        part = name if name.isidentifier() else json.dumps(name[:SHOWN_CHARS])
        return At(self.file, f"{self.field}.{part}" if self.field else part)

    def index(self, i: int) -> At:
        return At(self.file, f"{self.field}[{i}]")

    def error(self, expected: str, value: object) -> PredictorError:
        return PredictorError(
            f"the predictor {self.file} is damaged at {self.field or 'its top level'}: expected "
            f"{expected}, found {_shown(value)}; rebuild it with `bench predictor build`"
        )


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else ""
    if not text:
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"


# --- reading the bytes --------------------------------------------------------------------------


def read_predictor_json(path: Path) -> Any:
    """The parsed JSON of a predictor file (gzip or plain), read within ``MAX_FILE_BYTES``."""
    try:
        with path.open("rb") as fh:
            raw = _read_bounded(fh)
    except FileNotFoundError:
        raise PredictorError(
            f"no predictor file {path}; build one with `bench predictor build`"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip: bad header, truncated, bad CRC
        raise PredictorError(f"cannot read the predictor {path}: {exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise PredictorError(
            f"the predictor {path} is larger than {MAX_FILE_BYTES >> 20} MiB (decompressed); "
            "no predictor is that large: the file is damaged, rebuild it"
        )
    try:
        return json.loads(raw)
    except RecursionError:
        raise PredictorError(
            f"the predictor {path} is damaged: its JSON is nested deeper than any predictor"
        ) from None
    except ValueError as exc:  # not UTF-8, not JSON, an integer of thousands of digits
        raise PredictorError(f"cannot read the predictor {path}: {exc}") from exc


def _read_bounded(fh: IO[bytes]) -> bytes:
    """At most ``MAX_FILE_BYTES + 1`` bytes of the file, decompressed where it is gzip; the one
    byte more tells a file at the limit from one past it without reading the rest."""
    magic = fh.read(len(GZIP_MAGIC))
    fh.seek(0)
    if magic == GZIP_MAGIC:
        with gzip.GzipFile(fileobj=fh) as unzipped:
            return unzipped.read(MAX_FILE_BYTES + 1)
    return fh.read(MAX_FILE_BYTES + 1)


# --- values -------------------------------------------------------------------------------------


def obj(value: Any, at: At) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise at.error("a JSON object", value)
    for name in value:
        text(name, at.key(name))
    return value


def arr(value: Any, at: At, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise at.error("a JSON array" if length is None else f"an array of {length}", value)
    if length is not None and len(value) != length:
        raise at.error(f"an array of {length}", f"{len(value)} items")
    return value


def text(value: Any, at: At) -> str:
    if not isinstance(value, str):
        raise at.error("text", value)
    if len(value) > MAX_TEXT:
        raise at.error(f"text of at most {MAX_TEXT} characters", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (``\ud800``): no terminal or file takes it
        raise at.error("text in UTF-8", value) from None
    return value


def integer(value: Any, at: At, low: int = 0, high: int = MAX_INT) -> int:
    # bool is an int to Python, never to this file
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise at.error(f"an integer from {low} to {high}", value)
    return value


def number(value: Any, at: At, low: float = -math.inf) -> float:
    """A finite number (JSON ``1e999`` reads as infinity, ``NaN`` as NaN: both refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise at.error("a number", value)
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise at.error(f"a number of at most {MAX_INT}", value)
    if not math.isfinite(value) or value < low:
        raise at.error("a finite number" + (f" >= {low:g}" if low > -math.inf else ""), value)
    return float(value)


def free(value: Any, at: At, depth: int = 0) -> None:
    """A free-form JSON value (``fingerprint``, ``build``): bounded nesting, text and numbers."""
    if depth > MAX_DEPTH:
        raise at.error(f"nesting of at most {MAX_DEPTH} levels", value)
    if isinstance(value, dict):
        for name, item in obj(value, at).items():
            free(item, at.key(name), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            free(item, at.index(i), depth + 1)
    elif isinstance(value, str):
        text(value, at)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number(value, at)


# --- the layout ---------------------------------------------------------------------------------


def check_predictor(data: Any, path: Path) -> dict[str, Any]:
    """``data`` if it is a predictor of a version this harness reads; else PredictorError."""
    top = At(path)
    if not isinstance(data, dict) or data.get("kind") != FILE_KIND:
        raise PredictorError(f"{path} is not a benchharness latency predictor")
    version = integer(data.get("version"), top.key("version"), 1)
    if version > FILE_VERSION:
        harness = data.get("harness_version")
        by = _shown(harness) if isinstance(harness, str) else "unknown"
        raise PredictorError(
            f"{path} is a version {version} predictor; this harness reads version "
            f"{FILE_VERSION}: use the harness that built it ({by}) or newer"
        )
    _fingerprint(data.get("fingerprint"), top.key("fingerprint"))
    free(obj(data.get("build", {}), top.key("build")), top.key("build"))
    integer(data.get("seed", 0), top.key("seed"), 0, MAX_SEED)
    if "harness_version" in data:
        text(data["harness_version"], top.key("harness_version"))
    formats = top.key("formats")
    for fmt, model in obj(data.get("formats"), formats).items():
        _format_model(model, formats.key(fmt))
    samples = top.key("samples")
    for i, sample in enumerate(arr(data.get("samples", []), samples)):
        _sample(sample, samples.index(i))
    points = top.key("points")
    for i, point in enumerate(arr(data.get("points", []), points)):
        _point(point, points.index(i))
    networks = top.key("networks")
    for i, network in enumerate(arr(data.get("networks", []), networks)):
        _network_point(network, networks.index(i))
    return data


def _fingerprint(value: Any, at: At) -> None:
    free(obj(value, at), at)
    runtimes = at.key("runtimes")
    for fmt, runtime in obj(value.get("runtimes", {}), runtimes).items():
        obj(runtime, runtimes.key(fmt))  # flat_fingerprint asks each for runtime and version


def _format_model(value: Any, at: At) -> None:
    model = obj(value, at)
    _calibration(model.get("calibration"), at.key("calibration"))
    _evidence(model.get("evidence"), at.key("evidence"))
    pairs = at.key("pairs")
    for i, pair in enumerate(arr(model.get("pairs"), pairs)):
        _pair(pair, pairs.index(i))
    regressors = at.key("regressors")
    for key, regressor in obj(model.get("regressors"), regressors).items():
        _regressor(regressor, regressors.key(key))
    if "band" in model:  # files written before intervals have none
        _band(model["band"], at.key("band"))
    if "network" in model:  # version 1 files, and builds without measured networks, have none
        _network_stage(model["network"], at.key("network"))


def _network_stage(value: Any, at: At) -> None:
    stage = obj(value, at)
    low, high = SLOPE_RANGE
    slope = number(stage.get("slope"), at.key("slope"))
    if not low <= slope <= high:
        raise at.key("slope").error(f"a slope from {low:g} to {high:g}", slope)
    # the factor is exp of the intercept: a bound keeps it a finite, non-zero number
    intercept = number(stage.get("intercept"), at.key("intercept"))
    if abs(intercept) > MAX_LOG_WIDTH:
        raise at.key("intercept").error(f"at most {MAX_LOG_WIDTH:g} in size", intercept)
    low_ms = number(stage.get("low_ms"), at.key("low_ms"), 0.0)
    if number(stage.get("high_ms"), at.key("high_ms"), low_ms) > MAX_NETWORK_MS:
        raise at.key("high_ms").error(f"at most {MAX_NETWORK_MS:g} ms", stage["high_ms"])
    if low_ms <= 0 and stage["high_ms"] > 0:
        raise at.key("low_ms").error("a positive kernel sum", low_ms)
    for name in ("n", "families"):
        integer(stage.get(name, 0), at.key(name))
    if stage.get("q") is not None:  # null: unbounded
        _log_width(stage["q"], at.key("q"))


def _band(value: Any, at: At) -> None:
    band = obj(value, at)
    coverage = number(band.get("coverage"), at.key("coverage"), 0.0)
    if not 0.0 < coverage < 1.0:
        raise at.key("coverage").error("a share between 0 and 1", coverage)
    widths = at.key("kernel_q")
    for key, q in obj(band.get("kernel_q", {}), widths).items():
        _log_width(q, widths.key(key))
    if band.get("pooled_q") is not None:  # null: unbounded
        _log_width(band["pooled_q"], at.key("pooled_q"))
    if band.get("model_q") is not None:
        number(band["model_q"], at.key("model_q"), 0.0)  # a multiplier: conformal.py caps its use
    for name in ("kernel_scores", "model_scores"):
        integer(band.get(name, 0), at.key(name))


def _log_width(value: Any, at: At) -> None:
    if number(value, at, 0.0) > MAX_LOG_WIDTH:
        raise at.error(f"a log-scale width of at most {MAX_LOG_WIDTH:g}", value)


def _calibration(value: Any, at: At) -> None:
    cal = obj(value, at)
    number(cal.get("scale"), at.key("scale"), 0.0)
    number(cal.get("per_row_us"), at.key("per_row_us"))
    number(cal.get("offset_us"), at.key("offset_us"), 0.0)  # Calibration.fit keeps it >= 0
    integer(cal.get("n", 0), at.key("n"))


#: Evidence tables: how many texts lead each entry (the rest are two counts).
_EVIDENCE_KEYS = {"down": 3, "up": 2, "alone": 1}


def _evidence(value: Any, at: At) -> None:
    evidence = obj(value, at)
    for name, n_texts in _EVIDENCE_KEYS.items():
        table = at.key(name)
        for i, entry in enumerate(arr(evidence.get(name, []), table)):
            where = table.index(i)
            items = arr(entry, where, n_texts + 2)
            for j, item in enumerate(items[:n_texts]):
                text(item, where.index(j))
            for j, item in enumerate(items[n_texts:], start=n_texts):
                integer(item, where.index(j))


def _pair(value: Any, at: At) -> None:
    pair = obj(value, at)
    for name in ("format", "first", "second"):
        text(pair.get(name), at.key(name))
    for name in ("t1_us", "t2_us", "t12_us"):
        number(pair.get(name), at.key(name), 0.0)


def _regressor(value: Any, at: At) -> None:
    reg = obj(value, at)
    text(reg.get("key"), at.key("key"))
    columns = at.key("columns")
    n_columns = len(arr(reg.get("columns"), columns))
    for i, column in enumerate(reg["columns"]):
        text(column, columns.index(i))
    integer(reg.get("n"), at.key("n"))
    terms = at.key("terms")
    names = arr(reg.get("terms", list(LEGACY_TERMS)), terms)  # older files named none
    for i, name in enumerate(names):
        if name not in LINEAR_TERMS:
            raise terms.index(i).error(f"one of {', '.join(LINEAR_TERMS)}", name)
    linear = arr(reg.get("linear", []), at.key("linear"))
    if linear:  # Regressor.base multiplies the constant and every term by these
        arr(linear, at.key("linear"), 1 + len(names))
        for i, c in enumerate(linear):
            number(c, at.key("linear").index(i), 0.0)  # non-negative least squares
    stats = at.key("stats")
    for name, stat in obj(reg.get("stats", {}), stats).items():
        number(stat, stats.key(name))
    trees = reg.get("trees")
    if trees is not None:
        _trees(trees, at.key("trees"), n_columns)


def _trees(value: Any, at: At, n_columns: int) -> None:
    ensemble = obj(value, at)
    number(ensemble.get("base"), at.key("base"))
    number(ensemble.get("rate"), at.key("rate"))
    trees = at.key("trees")
    for i, tree in enumerate(arr(ensemble.get("trees"), trees)):
        _tree(tree, trees.index(i), n_columns)


#: The arrays of one tree, one entry per node.
_TREE_ARRAYS = ("feature", "threshold", "left", "right", "value")


def _tree(value: Any, at: At, n_columns: int) -> None:
    """One tree: equal arrays, a leaf's children both ``LEAF``, an inner node's both after it
    (scikit-learn numbers a node before its children), so the walk from the root ends in at
    most as many steps as the tree has nodes, and features the regressor's columns."""
    tree = obj(value, at)
    arrays = {name: arr(tree.get(name), at.key(name)) for name in _TREE_ARRAYS}
    n = len(arrays["left"])
    if n == 0:
        raise at.key("left").error("at least one node", arrays["left"])
    for name, values in arrays.items():
        arr(values, at.key(name), n)
    for name in ("threshold", "value"):
        for i, v in enumerate(arrays[name]):
            number(v, at.key(name).index(i))
    for i in range(n):
        left = integer(arrays["left"][i], at.key("left").index(i), LEAF, n - 1)
        right = integer(arrays["right"][i], at.key("right").index(i), LEAF, n - 1)
        if left == LEAF and right == LEAF:
            integer(arrays["feature"][i], at.key("feature").index(i), -MAX_INT)  # unused
            continue
        for name, child in (("left", left), ("right", right)):
            if child <= i:
                raise (
                    at.key(name)
                    .index(i)
                    .error(f"a child after node {i} (up to {n - 1}), or {LEAF} on a leaf", child)
                )
        integer(arrays["feature"][i], at.key("feature").index(i), 0, n_columns - 1)


def _sample(value: Any, at: At) -> None:
    """``[format, key, features, time_us, origin, model, rows]`` (``Sample.to_json``)."""
    fmt, key, features, time_us, origin, model, rows = arr(value, at, 7)
    for i, item in ((0, fmt), (1, key), (4, origin), (5, model)):
        text(item, at.index(i))
    for name, v in obj(features, at.index(2)).items():
        number(v, at.index(2).key(name))
    number(time_us, at.index(3), 0.0)
    integer(rows, at.index(6))


def _network_point(value: Any, at: At) -> None:
    """``[format, model, family, e2e_ms, kernel_ms, run_id]`` (``NetworkPoint.to_json``)."""
    items = arr(value, at, 6)
    for i in (0, 1, 2, 5):
        text(items[i], at.index(i))
    for i in (3, 4):
        number(items[i], at.index(i), 0.0)


def _point(value: Any, at: At) -> None:
    """``[format, model, origin, sum_us, rows, e2e_us, macs, bytes]`` (``Point.to_json``)."""
    items = arr(value, at, 8)
    for i in (0, 1, 2):
        text(items[i], at.index(i))
    for i in (3, 5):
        number(items[i], at.index(i), 0.0)
    for i in (4, 6, 7):
        integer(items[i], at.index(i))
