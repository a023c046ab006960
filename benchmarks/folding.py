"""What each format's graph runs of a model's MACs, with the builder's weights and with the
seeded weights of ``zoo/init_weights.py`` (issue 23's closing table).

Run from the repository root (exports are cached in the per-user artifact cache)::

    .venv/bin/python benchmarks/folding.py [--builders a:b,c:d] [--input-shape 1x3x224x224]

Per ``module:function`` builder (timm's residual networks zero-initialise the last batch norm
of every residual branch, ``zero_init_last``): the source model's GMACs and convolutions and
matrix products, then per format the share of those MACs its graph runs and its operator count,
before (``--keep-weights``: the builder's own weights) and after (the seeded rule). A folded
graph is marked ``*``. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

import common  # noqa: F401 - puts the checkout on sys.path

from benchharness.export.cache import cache_dir
from benchharness.plan.artifacts import Artifact, prepare_artifacts
from benchharness.zoo.registry import ModelSpec, parse_shape

#: Small timm builders whose residual branches end in a zero-initialised norm (ResNet and its
#: variants, RegNet, GENet): about a minute of exports each on a laptop-class CPU.
DEFAULT_BUILDERS = (
    "timm.models.resnet:resnet10t",
    "timm.models.resnet:resnet14t",
    "timm.models.resnet:resnet18",
    "timm.models.resnet:resnet18d",
    "timm.models.resnet:resnet26",
    "timm.models.resnet:resnet26d",
    "timm.models.resnet:resnet34d",
    "timm.models.resnet:resnet50d",
    "timm.models.resnet:ecaresnet26t",
    "timm.models.regnet:regnetx_002",
    "timm.models.regnet:regnety_002",
    "timm.models.byobnet:gernet_s",
)
FORMATS = ("onnx", "tflite")
#: Before: the builder's own weights; after: the seeded rule.
PASSES = (("before", True), ("after", False))


def _cell(art: Artifact) -> str:
    if art.error:
        return "error"
    cost = art.cost
    share = cost["macs"] / cost["source_macs"] if cost.get("source_macs") else float("nan")
    mark = " *" if cost.get("folded") else ""
    return f"{share:.0%} ({cost['graph_ops']}){mark}"


def measure(builder: str, shape: Sequence[int]) -> dict[str, Any]:
    """The source's cost and each pass's cells for one builder."""
    name = builder.split(":", 1)[1]
    spec = ModelSpec(name=name, source="user", builder=builder, input_shape=tuple(shape))
    row: dict[str, Any] = {"builder": builder}
    start = time.perf_counter()
    for label, keep in PASSES:
        arts = prepare_artifacts(
            [dataclasses.replace(spec, keep_weights=keep)], FORMATS,
            log_path=cache_dir() / "export.log",
        )  # fmt: skip
        for art in arts:
            row[f"{label} {art.format}"] = _cell(art)
            if art.error:
                print(f"{name} {art.format} ({label}): {art.error}", file=sys.stderr)
            row.setdefault("source_macs", art.cost.get("source_macs"))
            row.setdefault("source_ops", art.cost.get("source_ops"))
    row["seconds"] = time.perf_counter() - start
    return row


def table(rows: Sequence[dict[str, Any]]) -> str:
    cols = [f"{label} {fmt}" for label, _ in PASSES for fmt in FORMATS]
    lines = [
        "| builder | GMACs (ops) | " + " | ".join(cols) + " |",
        "|---|---:|" + "---:|" * len(cols),
    ]
    for r in rows:
        macs = r.get("source_macs")
        source = f"{macs / 1e9:.3f} ({r.get('source_ops')})" if macs else "-"
        cells = " | ".join(r.get(c, "-") for c in cols)
        lines.append(f"| {r['builder']} | {source} | {cells} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builders", default=",".join(DEFAULT_BUILDERS))
    parser.add_argument("--input-shape", default="1x3x224x224")
    args = parser.parse_args(argv)
    shape = parse_shape(args.input_shape)
    rows = []
    for builder in [b for b in args.builders.split(",") if b]:
        rows.append(measure(builder, shape))
        print(f"{builder}: {rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(f"Share of the source's MACs each graph runs (its convolutions and matrix products); "
          f"input {args.input_shape}; * = GRAPH_FOLDED\n")  # fmt: skip
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
