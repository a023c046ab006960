"""Sensitivity of ``bench compare``: no change must read "same", a real 5-10 % slowdown "slower".

Three ``bench run --device local`` runs through the library, then two comparisons:

* A against A2, the same configuration twice: the verdict must be ``same``;
* A against B, the same models made genuinely slower: by default the same model with ~7 % more
  input pixels (``--input-shape``, e.g. 224x224 -> 232x232, so ~7 % more MACs), or with
  ``--b-threads N`` the same model on fewer threads, or with ``--b-width W`` the model at width
  multiplier W (mobilenet_v2 at 1.05: +6 % MACs; the pixel route overshoots on stride-32 models:
  224 -> 232 grows the last feature map from 7x7 to 8x8, +14-27 % measured). The verdict must be
  ``slower`` and significant.

``runs.csv`` rows are matched on (model, format, precision, input_shape), so B's rows are
presented under A's input shape, as the same model after a code change would be; with
``--b-threads`` the differing thread count is allowed (``allow_mismatch``). Prints the verdicts,
ratios of medians with their 95 % CIs and the Mann-Whitney p-values.

Issue 14's goals: ``--models mobilenet_v2,mobilenet_v3_large --b-width 1.05`` calls all four
pairs ``slower`` with p < 0.01 and the same configuration ``same``; ``--models mobilenet_v2
--b-threads 1 --threads 2`` calls 1 thread against 2 ``slower``. ``--before`` measures with the
method the issue started from (3 processes of >= 10 s).

Run from the repository root on a quiet machine::

    .venv/bin/python benchmarks/sensitivity.py --models mobilenet_v2,mobilenet_v3_large \
        --b-width 1.05                                                  # 3 runs, ~5 min
    .venv/bin/python benchmarks/sensitivity.py --models mobilenet_v2 --b-threads 1 \
        --threads 2                                                     # 3 runs, ~3 min
    .venv/bin/python benchmarks/sensitivity.py                          # 3 runs, ~5 min
    .venv/bin/python benchmarks/sensitivity.py --fast --formats onnx \\
        --models tests.support.tiny:tiny_cnn                            # smoke, ~30 s
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import common

from benchharness.analysis.comparison import (
    DEFAULT_THRESHOLD,
    Comparison,
    compare_runs,
    parse_threshold,
)
from benchharness.api import RunRequest
from benchharness.results.schema import RunRow, SampleRow

#: Extra input pixels of B: 7 % more pixels (more work than that on stride-32 nets, see above).
DEFAULT_PIXEL_FACTOR = 1.07


def bigger_shape(shape: str | None, pixel_factor: float) -> str:
    """``1x3x224x224`` -> ``1x3x232x232`` for 7 % more pixels (H and W grow by the square root)."""
    if not shape:
        raise SystemExit("--input-shape slowdown needs the rows' input shapes; use --b-threads")
    dims = [int(d) for d in shape.split("x")]
    if len(dims) != 4:
        raise SystemExit(f"--input-shape slowdown needs NCHW inputs, got {shape}; use --b-threads")
    grow = math.sqrt(pixel_factor)
    return "x".join(str(d) for d in (*dims[:2], round(dims[2] * grow), round(dims[3] * grow)))


def run_b(
    request: RunRequest, a_rows: list[RunRow], args: argparse.Namespace
) -> tuple[list[RunRow], list[SampleRow], dict[str, str | None]]:
    """B's rows and samples, its rows presented under A's input shape."""
    if args.b_threads:
        store = common.bench_run(common.with_options(request, threads=args.b_threads))
        return store.runs, store.samples, {}
    if args.b_width:
        # the variant is named "model@w1.05": presented under the plain name, as after a change
        store = common.bench_run(replace(request, widths=(args.b_width,)))
        renamed = {r.model: r.model.split("@")[0] for r in store.runs}
        return (
            [r.replace(model=renamed[r.model]) for r in store.runs],
            [x.replace(model=renamed.get(x.model, x.model)) for x in store.samples],
            {v: k for k, v in renamed.items()},
        )
    shape_of = {r.model: r.input_shape for r in a_rows}
    groups: dict[str, list[str]] = {}
    for model, shape in shape_of.items():
        groups.setdefault(bigger_shape(shape, args.pixel_factor), []).append(model)
    runs: list[RunRow] = []
    samples: list[SampleRow] = []
    grown: dict[str, str | None] = {}
    for shape, models in groups.items():
        models_arg = request.models or ""
        if len(groups) > 1:  # models of different input sizes: one B run per size
            asked = models_arg.split(",")
            models_arg = ",".join(m for m in asked if m.split(":")[-1] in models)
        store = common.bench_run(replace(request, models=models_arg, input_shape=shape))
        for row in store.runs:
            grown[row.model] = row.input_shape
            runs.append(row.replace(input_shape=shape_of[row.model]))
        samples.extend(store.samples)
    return runs, samples, grown


def report(name: str, expected: str, result: Comparison) -> list[dict[str, Any]]:
    return [
        {"comparison": name, "model": m.model, "format": m.format, "a_ms": m.median_a_ms,
         "b_ms": m.median_b_ms, "ratio": m.ratio, "ci_low": m.ci_low, "ci_high": m.ci_high,
         "p_value": m.p_value, "verdict": m.verdict, "expected": expected,
         "as_expected": m.verdict == expected, "flags": sorted(set(m.flags_a) | set(m.flags_b)),
         "notes": m.notes}
        for m in result.matches
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default=common.RUN_MODELS)
    p.add_argument("--formats", default="onnx,tflite")
    p.add_argument("--input-shape", default=None, help="e.g. 1x3x160x160 (default: the zoo's)")
    p.add_argument("--quick", action="store_true", help="measure each run with --quick")
    p.add_argument("--threads", type=int, default=None, help="threads of A, A2 (and B)")
    p.add_argument("--pixel-factor", type=float, default=DEFAULT_PIXEL_FACTOR)
    p.add_argument("--b-threads", type=int, default=None, help="slow B by threads, not pixels")
    p.add_argument(
        "--b-width",
        type=float,
        default=None,
        help="slow B by a width multiplier, e.g. 1.05 (+6 %% MACs on mobilenet_v2)",
    )
    p.add_argument("--threshold", default=None, help="compare's threshold (default 5%%)")
    p.add_argument("--before", action="store_true", help="the method before issue 14")
    p.add_argument("--fast", action="store_true", help="tiny settings: smoke-test this script")
    p.add_argument(
        "--results-dir", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    threshold = parse_threshold(args.threshold) if args.threshold else DEFAULT_THRESHOLD
    request = common.run_request(args, quick=args.quick)
    request = common.before_request(request, args.before)
    request = common.fast_request(request, args.fast)
    print("run A ...", file=sys.stderr)
    a = common.bench_run(request)
    print("run A2 (same configuration) ...", file=sys.stderr)
    a2 = common.bench_run(request)
    how = (
        f"threads {args.b_threads}"
        if args.b_threads
        else f"width x{args.b_width}"
        if args.b_width
        else f"x{args.pixel_factor} pixels"
    )
    print(f"run B ({how}) ...", file=sys.stderr)
    b_runs, b_samples, grown = run_b(request, a.runs, args)

    same = compare_runs(a.runs, a.samples, a2.runs, a2.samples, threshold=threshold,
                        run_a=a.run_id, run_b=a2.run_id)  # fmt: skip
    slower = compare_runs(a.runs, a.samples, b_runs, b_samples, threshold=threshold,
                          allow_mismatch=bool(args.b_threads), run_a=a.run_id,
                          run_b="B")  # fmt: skip
    rows = report("A2 vs A (same config)", "same", same) + report(f"B vs A ({how})", "slower",
                                                                   slower)  # fmt: skip
    if args.json:
        common.print_json({"run_a": a.run_id, "run_a2": a2.run_id, "b_input_shapes": grown,
                           "threshold": threshold, "rows": rows})  # fmt: skip
    else:
        print(f"A {a.run_id}, A2 {a2.run_id}; B: {how}"
              + (f" ({', '.join(f'{m} {s}' for m, s in grown.items())})" if grown else "")
              + f"; a change is called at p < 0.01 and >= {threshold:.0%}")  # fmt: skip
        headers = ("comparison", "model", "format", "A ms", "B ms", "B/A [95% CI]", "p",
                   "verdict", "expected", "result")  # fmt: skip
        table = [
            (r["comparison"], r["model"], r["format"], r["a_ms"], r["b_ms"], _ratio(r),
             _p(r["p_value"]), r["verdict"], r["expected"], _result(r))
            for r in rows
        ]  # fmt: skip
        common.print_table(headers, table)
        for r in rows:
            if r["flags"]:
                print(f"  {r['comparison']} {r['model']} {r['format']}: flagged "
                      f"{', '.join(r['flags'])}")  # fmt: skip
    return 0 if all(r["as_expected"] for r in rows) else 1


def _result(r: dict[str, Any]) -> str:
    """OK; FLAGGED when a flag kept compare from calling it (rerun on a quieter machine); MISSED
    when compare called it wrongly."""
    if r["as_expected"]:
        return "OK"
    return "FLAGGED" if r["verdict"] == "unreliable" else "MISSED"


def _ratio(r: dict[str, Any]) -> str:
    if r["ratio"] is None:
        return "-"
    text = f"{r['ratio']:.3f}"
    if r["ci_low"] is not None and r["ci_high"] is not None:
        text += f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return text


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<1e-4" if p < 1e-4 else f"{p:.2g}"


if __name__ == "__main__":
    sys.exit(main())
