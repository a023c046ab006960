"""What the scripts in ``benchmarks/`` share: the checkout on sys.path, exports, runs, tables.

The scripts are run from a checkout (``.venv/bin/python benchmarks/NAME.py``), so this module is
imported as a sibling file, not as part of a package.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout wins over an installed copy of the package
    sys.path.insert(0, str(ROOT))

from benchharness.api import RunRequest, run  # noqa: E402
from benchharness.export.cache import cache_dir  # noqa: E402
from benchharness.export.pipeline import export_model  # noqa: E402
from benchharness.plan.options import Method, RunOptions  # noqa: E402
from benchharness.results.store import RunStore  # noqa: E402
from benchharness.zoo.registry import ArtifactRef, parse_shape, resolve_models  # noqa: E402

#: A few zoo models from well under 1 ms to over 10 ms on a laptop-class CPU, so both halves of
#: the overhead goal (absolute below 1 ms, relative above) and both runtimes are exercised.
DEFAULT_MODELS = "dw_resnet18,mobilenet_v3_small,mobilenet_v2,resnet18"
#: The models of issue 5's repeatability and sensitivity checks: one heavy, one light.
RUN_MODELS = "resnet18,mobilenet_v2"
#: Issue 14's repeatability goal: two models over 10 ms / 3 ms and two around 1 ms.
REPEAT_MODELS = "resnet18,mobilenet_v2,shufflenet_v2_x0_5,dw_resnet18"


def export_paths(
    models: str, formats: Sequence[str], input_shape: str | None = None
) -> list[tuple[str, str, Path]]:
    """(model, format, artifact) for every model and format, exported through the package's
    pipeline (verified and cached, so a second call costs seconds); a failed export is fatal."""
    out: list[tuple[str, str, Path]] = []
    shape = parse_shape(input_shape) if input_shape else None
    for ref in resolve_models(models, input_shape=shape):
        if isinstance(ref, ArtifactRef):
            if ref.format in formats:
                out.append((ref.name, ref.format, ref.path))
            continue
        for outcome in export_model(ref, list(formats), log_path=cache_dir() / "export.log"):
            if outcome.entry is None:
                raise SystemExit(
                    f"export of {ref.name} to {outcome.format} failed: {outcome.error}"
                )
            out.append((ref.name, outcome.format, outcome.entry.path))
    return out


def bench_run(request: RunRequest) -> RunStore:
    """``bench run`` through the library (no progress display), failing loudly on failed rows."""
    store = run(request)
    bad = [f"{r.model}/{r.format}: {r.error}" for r in store.runs if not r.ok]
    if bad:
        raise SystemExit(f"run {store.run_id} has failed rows: " + "; ".join(bad))
    return store


def run_request(args: Any, *, quick: bool = False) -> RunRequest:
    """The ``bench run`` request the scripts' shared options describe."""
    return RunRequest(
        models=args.models,
        formats=tuple(f for f in args.formats.split(",") if f),
        options=RunOptions(method=Method(quick=quick), threads=args.threads),
        input_shape=args.input_shape,
        results_dir=args.results_dir,
    )


def with_options(request: RunRequest, **changes: Any) -> RunRequest:
    """``request`` with some of its run-wide options changed."""
    return replace(request, options=replace(request.options, **changes))


def with_method(request: RunRequest, **changes: Any) -> RunRequest:
    """``request`` with some of its measuring method changed."""
    return with_options(request, method=replace(request.options.method, **changes))


#: The method before issue 14, as run-time options: 3 processes of >= 100 inferences and >= 10 s
#: (its in-process adaptive extension never extended on this machine: the 99 % CI of the median
#: was within 1 % at the minimums for every zoo model), 120 s cap.
BEFORE_PROCESSES = 3
BEFORE_MIN_N, BEFORE_MIN_S, BEFORE_MAX_S = 100, 10.0, 120.0


def before_request(request: RunRequest, before: bool) -> RunRequest:
    """With ``--before``: the method the issue started from, to set against the current one."""
    if not before:
        return request
    request = with_options(request, processes=BEFORE_PROCESSES)
    return with_method(request, min_n=BEFORE_MIN_N, min_s=BEFORE_MIN_S, max_s=BEFORE_MAX_S)


def fast_request(request: RunRequest, fast: bool) -> RunRequest:
    """With ``--fast`` (smoke tests of the scripts themselves): tiny measuring settings, and two
    processes, so the statistics across processes are exercised too."""
    if not fast:
        return request
    method = Method(quick=False, min_s=0.2, min_n=20, max_s=1.0, warmup_min_s=0.1)
    return with_options(request, method=method, processes=2, profile_ops=False)


def num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def median(values: Iterable[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def fmt(value: Any) -> str:
    """Four significant digits (0.02134 ms and 35.56 ms alike), whole numbers from 1000."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table (first column left, the rest right-aligned)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))
