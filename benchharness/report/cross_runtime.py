"""The same models on one device under several runtimes: medians side by side, the ratio of each
runtime to the fastest, and which runtime wins per model family.

A *stack* is one (runtime, format) series of a device (``onnxruntime`` on ``onnx``, ``litert`` on
``tflite``, ``executorch`` on ``pte``, ...). Models are matched by name, precision and input
shape. A family is the model's name before its first digit, version letters dropped
(``resnet18`` and ``resnet34`` -> ``resnet``, ``mobilenet_v3_small`` -> ``mobilenet``); a
family's winner is the stack with the lowest geometric mean of the medians of the family's
models measured in every stack.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchharness.report.cells import Cell, Table, num_cell
from benchharness.report.figures import Point, Series, SeriesKey, point_label

#: Fewer stacks than this on a device leave nothing to set side by side.
MIN_STACKS = 2
#: What a family name keeps of a model name: everything before the first digit, without a
#: trailing version marker (``_v``, ``_x``, ``_b``, ``v``) or separator.
_FAMILY_CUT = re.compile(r"\d")
_FAMILY_TAIL = re.compile(r"(?:_?[vxb])?_*$")


def family_of(model: str) -> str:
    """``resnet18`` -> ``resnet``, ``shufflenet_v2_x0_5`` -> ``shufflenet``."""
    name = model.split("@", 1)[0]
    cut = _FAMILY_CUT.search(name)
    head = name[: cut.start()] if cut else name
    return _FAMILY_TAIL.sub("", head) or name


@dataclass
class RuntimeRow:
    """One model under every stack of a device: its median in each (None: not measured)."""

    label: str
    family: str
    medians_ms: list[float | None]
    fastest: int | None  # index into ``CrossRuntime.stacks``

    def ratio(self, i: int) -> float | None:
        """Stack ``i``'s median over the fastest one's."""
        m = self.medians_ms[i]
        best = self.medians_ms[self.fastest] if self.fastest is not None else None
        return m / best if m is not None and best else None


@dataclass
class FamilyWinner:
    family: str
    models: int  # models measured in every stack
    geomean_ms: list[float]  # per stack, over those models
    winner: int  # index into ``CrossRuntime.stacks``


@dataclass
class CrossRuntime:
    device: str
    stacks: list[SeriesKey]
    rows: list[RuntimeRow] = field(default_factory=list)
    families: list[FamilyWinner] = field(default_factory=list)
    wins: list[int] = field(default_factory=list)  # per stack: models it is fastest on

    def stack_label(self, i: int) -> str:
        key = self.stacks[i]
        return f"{key.runtime or '?'} ({key.format})"


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def cross_runtime(series: Sequence[Series]) -> list[CrossRuntime]:
    """Per device with at least two stacks and a model in common: the side-by-side view."""
    by_device: dict[str, list[Series]] = defaultdict(list)
    for s in series:
        by_device[s.key.device].append(s)
    out = []
    for device in sorted(by_device):
        group = sorted(by_device[device], key=lambda s: (s.key.runtime, s.key.format))
        if len(group) < MIN_STACKS:
            continue
        points: dict[tuple[str, str, str], list[Point | None]] = {}
        for i, s in enumerate(group):
            for p in s.points:
                points.setdefault(p.ident, [None] * len(group))[i] = p
        shared = {k: v for k, v in points.items() if sum(p is not None for p in v) >= MIN_STACKS}
        if not shared:
            continue
        view = CrossRuntime(device, [s.key for s in group], wins=[0] * len(group))
        everyone = [p for s in group for p in s.points]
        for ident in sorted(shared, key=lambda k: (family_of(k[0]), k)):
            cells = shared[ident]
            first = next(p for p in cells if p is not None)
            medians = [p.median_ms if p is not None else None for p in cells]
            known = [i for i, m in enumerate(medians) if m is not None]
            fastest = min(known, key=lambda i: medians[i] or math.inf)
            view.wins[fastest] += 1
            view.rows.append(
                RuntimeRow(point_label(first, everyone), family_of(first.model), medians, fastest)
            )
        view.families = _families(view.rows, len(group))
        out.append(view)
    return out


def _families(rows: Sequence[RuntimeRow], stacks: int) -> list[FamilyWinner]:
    by_family: dict[str, list[RuntimeRow]] = defaultdict(list)
    for r in rows:
        if all(m is not None for m in r.medians_ms):
            by_family[r.family].append(r)
    winners = []
    for family in sorted(by_family):
        members = by_family[family]
        geo = [_geomean([r.medians_ms[i] or 0.0 for r in members]) for i in range(stacks)]
        winners.append(
            FamilyWinner(family, len(members), geo, min(range(stacks), key=geo.__getitem__))
        )
    return winners


# ----------------------------------------------------------------------------- tables


def runtime_table(view: CrossRuntime) -> Table:
    """Every model's median under each stack, and each stack's ratio to the fastest."""
    names = [view.stack_label(i) for i in range(len(view.stacks))]
    wins = ", ".join(f"{names[i]} {w}" for i, w in enumerate(view.wins))
    table = Table(
        f"{view.device}: median ms per runtime",
        ["model", "family", *names, "fastest", *(f"{n} / fastest" for n in names)],
        note=f"Fastest on how many models: {wins}.",
    )
    for r in view.rows:
        fastest = names[r.fastest] if r.fastest is not None else "–"
        table.rows.append(
            [
                Cell(r.label),
                Cell(r.family),
                *(num_cell(m, css="num faster" if i == r.fastest else "num")
                  for i, m in enumerate(r.medians_ms)),
                Cell(fastest),
                *(num_cell(r.ratio(i)) for i in range(len(names))),
            ]
        )  # fmt: skip
    return table


def family_table(view: CrossRuntime) -> Table:
    """Per model family: each stack's geometric-mean median and the winner."""
    names = [view.stack_label(i) for i in range(len(view.stacks))]
    table = Table(
        f"{view.device}: which runtime wins per model family",
        ["family", "models", *(f"{n} geomean ms" for n in names), "winner"],
        note="Over the family's models measured under every runtime.",
    )
    for f in view.families:
        table.rows.append(
            [
                Cell(f.family),
                num_cell(float(f.models), str(f.models)),
                *(num_cell(g, css="num faster" if i == f.winner else "num")
                  for i, g in enumerate(f.geomean_ms)),
                Cell(names[f.winner]),
            ]
        )  # fmt: skip
    return table
