"""Which kernel models to measure: configurations drawn from the zoo's layers, random draws, and
refinement around the configurations the predictor gets wrong.

* **census models** (one per input ``(cin, hw)`` the zoo's layers are called on): the exact
  convolutions of that input, variations of them (other output width, kernel, stride,
  activation) and the blocks of the family at that size (residual, SE, pooling, concat,
  shuffle, a lone activation, a linear layer). Each carries its family as ``origin``, so a
  held-out family's own configurations can be left out of its fold.
* **random models**: inputs and blocks drawn over the ranges CNNs use (nn-Meter and LitePred
  sample beyond the zoo too, so unseen models do not fall outside the data).
* **refinement models** (``refine``): new configurations next to the kernels with the largest
  out-of-fold errors of a first fit (nn-Meter's adaptive sampling).
* **pair models** for fusion detection: each operator of ``kernels.PAIRS`` alone and each pair.

Models are ``ModelSpec``s of ``kernels:build`` / ``kernels:build_pair``, named by a hash of their
configuration (the export cache shares them between builds), written to a TOML manifest that a
normal ``bench run`` reads. ``estimate_s`` is the time a model costs (exports and measuring), so
a plan fits the build's budget.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchharness.predict import kernels
from benchharness.predict.census import Layer
from benchharness.zoo.registry import ModelSpec

#: Blocks per kernel model: enough samples per export, few enough that one export stays short.
MAX_BLOCKS = 20
#: MACs of one kernel model: keeps one inference within a few ms on a phone-class CPU.
MAX_MODEL_MACS = 600_000_000
#: MACs of one block (the largest zoo convolutions are ~230M).
MAX_BLOCK_MACS = 250_000_000
#: Input elements of a kernel model (112x112x96 = 1.2M is MobileNetV2's largest activation).
MAX_INPUT_ELEMENTS = 1_300_000
#: Variations drawn around each exact census convolution.
VARIANTS_PER_LAYER = 2
#: Random blocks added to each census input: a model's fixed cost (export, process start) buys
#: more samples the more blocks share it.
RANDOM_BLOCKS_PER_INPUT = 6
#: Channel widths of random draws: log-uniform over what CNNs use.
RANDOM_CHANNELS = (8, 1024)
#: Sides of random draws (the zoo's 224-inputs reach these after their strides; 4, the last
#: stage of the 128-input networks cut down for an 8 MB NPU, whose 1x1 convolutions of 512
#: channels there were predicted at twice their time without a sample near them).
RANDOM_SIDES = (4, 7, 14, 28, 56, 112)
#: Channels per group of the grouped convolutions drawn at random: RegNet's group widths, whose
#: many small groups (3 to 46 of them) no zoo layer has; the held-out error put RegNets' grouped
#: convolutions 24 % of their latency short before these were drawn.
GROUP_WIDTHS = (8, 16, 24, 32, 48, 64)
#: One random model per this many census models.
RANDOM_EVERY = 3
#: Inputs with this many channels or fewer are images: their blocks read the graph input, as a
#: network's first layer does (``kernels.KernelModel``), and only convolutions are drawn on them.
IMAGE_CHANNELS = 4
#: Channels of the fusion-pair models and their side: large enough that every op of a pair takes
#: tens of microseconds, far above the 1 us resolution of LiteRT's profiler.
PAIR_CHANNELS = 64
PAIR_SIDE = 56

# --- time a model costs, before any has been measured (refined from the first round) ----------
#: Exporting one model to both formats and verifying it, per model and per block (s): a fit to
#: the exports of 41 kernel models on this project's 2-core VM under load.
EXPORT_BASE_S = 5.5
EXPORT_PER_BLOCK_S = 0.65
#: One runner process: start, load, warm-up and minimum time (s), per format (same runs).
MEASURE_BASE_S = 3.5
#: Inferences per job: the quick preset's 64, the profiled pass's 50 and warm-up.
INFERENCES_PER_JOB = 140
#: A pessimistic rate for the inference time of a model before any was measured (MAC/s).
ASSUMED_MACS_PER_S = 20e9
#: Per block and inference: the elementwise work and op overhead that MACs do not count (s).
PER_BLOCK_S = 60e-6

#: Activations a block may end in, with weights close to the zoo's mix.
ACTS = ("relu", "relu", "relu", "relu6", "hswish", "none", "none", "silu", "sigmoid", "hsigmoid")
ORIGIN_RANDOM = "random"
ORIGIN_REFINE = "refine"
ORIGIN_PAIR = "pair"


@dataclass(frozen=True)
class KernelModel:
    """One model to export and measure: one input, a list of blocks (``kernels.block``)."""

    cin: int
    hw: int
    blocks: tuple[Mapping[str, Any], ...]
    origin: str

    @property
    def name(self) -> str:
        text = json.dumps([self.cin, self.hw, list(self.blocks)], sort_keys=True)
        return "k" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def spec(self) -> ModelSpec:
        kwargs: dict[str, Any] = {
            "cin": self.cin,
            "blocks": [dict(b) for b in self.blocks],
            "version": kernels.KERNELS_VERSION,
        }
        if self.cin <= IMAGE_CHANNELS:
            kwargs["stem"] = False
        return ModelSpec(
            name=self.name,
            source="predict",
            builder="benchharness.predict.kernels:build",
            input_shape=(1, self.cin, self.hw, self.hw),
            kwargs=kwargs,
            notes=f"origin={self.origin}",
        )

    def macs(self) -> int:
        return sum(block_macs(self.cin, self.hw, b) for b in self.blocks)


@dataclass(frozen=True)
class PairModel:
    """One model of fusion detection: ``ops`` in sequence (one op alone, or a pair)."""

    ops: tuple[str, ...]
    c: int = PAIR_CHANNELS
    hw: int = PAIR_SIDE

    @property
    def name(self) -> str:
        return "pair-" + "+".join(self.ops)

    def spec(self) -> ModelSpec:
        return ModelSpec(
            name=self.name,
            source="predict",
            builder="benchharness.predict.kernels:build_pair",
            input_shape=(1, self.c, self.hw, self.hw),
            kwargs={"ops": list(self.ops), "c": self.c, "version": kernels.KERNELS_VERSION},
            notes=f"origin={ORIGIN_PAIR}",
        )


@dataclass
class Plan:
    """The models of one measuring round."""

    models: list[KernelModel] = field(default_factory=list)
    pairs: list[PairModel] = field(default_factory=list)

    def specs(self) -> list[ModelSpec]:
        return [m.spec() for m in self.models] + [p.spec() for p in self.pairs]

    def names(self) -> list[str]:
        return [s.name for s in self.specs()]

    def origins(self) -> dict[str, str]:
        return {m.name: m.origin for m in self.models} | {p.name: ORIGIN_PAIR for p in self.pairs}

    def manifest(self) -> str:
        return manifest_text(self.specs())

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "cin": m.cin,
                    "hw": m.hw,
                    "blocks": [dict(b) for b in m.blocks],
                    "origin": m.origin,
                }
                for m in self.models
            ],
            "pairs": [{"ops": list(p.ops), "c": p.c, "hw": p.hw} for p in self.pairs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            models=[
                KernelModel(int(m["cin"]), int(m["hw"]), tuple(m["blocks"]), str(m["origin"]))
                for m in data.get("models", [])
            ],
            pairs=[
                PairModel(tuple(p["ops"]), int(p["c"]), int(p["hw"])) for p in data.get("pairs", [])
            ],
        )


# --- cost of a block, a model, a plan -----------------------------------------------------------


def _out_side(hw: int, s: int) -> int:
    return max(1, math.ceil(hw / max(1, s)))


def block_macs(cin: int, hw: int, b: Mapping[str, Any]) -> int:
    """Multiply-accumulates of one block (its convolutions and linear layers)."""
    t = b["t"]
    if t == "conv":
        o = _out_side(hw, int(b["s"]))
        return o * o * int(b["cout"]) * (cin // int(b.get("g", 1))) * int(b["k"]) ** 2
    if t == "dw":
        o = _out_side(hw, int(b["s"]))
        return o * o * cin * int(b["k"]) ** 2
    if t == "res":
        return hw * hw * cin * cin * int(b["k"]) ** 2
    if t == "cat":
        return hw * hw * cin * int(b["cout"])
    if t == "shuffle":
        half = cin - cin // 2
        return hw * hw * half * half
    if t == "se":
        return 2 * cin * int(b["mid"])
    if t == "fc":
        return cin * int(b["cout"])
    return 0


def estimate_s(model: KernelModel | PairModel, formats: int = 2) -> float:
    """Seconds one model costs: its exports plus one quick job per format."""
    if isinstance(model, PairModel):
        blocks, macs = 1, model.c * model.c * model.hw * model.hw
    else:
        blocks, macs = len(model.blocks), model.macs()
    inference_s = macs / ASSUMED_MACS_PER_S + blocks * PER_BLOCK_S
    export = EXPORT_BASE_S + EXPORT_PER_BLOCK_S * blocks
    return export + formats * (MEASURE_BASE_S + INFERENCES_PER_JOB * inference_s)


# --- drawing blocks ----------------------------------------------------------------------------


def _round_channels(rng: random.Random, c: float) -> int:
    c = max(4.0, c)
    if rng.random() < 0.75:
        return max(8, round(c / 8.0) * 8)  # most zoo widths are multiples of 8
    return max(4, round(c))


def census_block(layer: Layer) -> dict[str, Any] | None:
    """The kernel block that measures one census layer as it is."""
    if layer.kind == "conv":
        if layer.g > 1 and layer.g == layer.cin == layer.cout:
            return {"t": "dw", "k": layer.k, "s": layer.s, "act": layer.act}
        return {
            "t": "conv",
            "cout": layer.cout,
            "k": layer.k,
            "s": layer.s,
            "g": layer.g,
            "act": layer.act,
        }
    if layer.kind == "pool":
        return {"t": "pool", "kind": layer.extra or "max", "k": layer.k, "s": layer.s}
    if layer.kind == "res":
        return {"t": "res", "k": 1, "act": "none"}
    if layer.kind == "se":
        return {"t": "se", "mid": max(4, layer.cin // 4), "gate": "hsigmoid"}
    if layer.kind == "cat":
        return {"t": "cat", "cout": max(4, layer.cout - layer.cin), "act": "relu"}
    if layer.kind == "shuffle" and layer.cin % 2 == 0:
        return {"t": "shuffle", "act": "relu"}
    return None


def variant_block(rng: random.Random, base: Mapping[str, Any]) -> dict[str, Any]:
    """A block next to ``base``: another width, kernel, stride or activation."""
    b = dict(base)
    if b["t"] == "dw":
        b.update(k=rng.choice((3, 5, 7)), s=rng.choice((1, 1, 2)), act=rng.choice(ACTS))
    elif b["t"] == "conv":
        g = int(b.get("g", 1))
        cout = _round_channels(rng, int(b["cout"]) * rng.choice((0.5, 0.75, 1.5, 2.0)))
        if g > 1:
            cout = max(g, cout // g * g)
        k = rng.choice((1, 1, 3, 3, 5, 7)) if g == 1 else int(b["k"])
        b.update(cout=cout, k=k, s=rng.choice((1, 1, 2)), act=rng.choice(ACTS))
    return b


def random_block(rng: random.Random, cin: int, hw: int) -> dict[str, Any]:
    """Any block type, with parameters over the ranges of the zoo's layers."""
    t = rng.choice(
        (
            "conv",
            "conv",
            "conv",
            "conv",
            "gconv",
            "dw",
            "dw",
            "res",
            "se",
            "pool",
            "cat",
            "shuffle",
            "act",
            "fc",
            "resize",
        )
    )
    act = rng.choice(ACTS)
    widths = [w for w in GROUP_WIDTHS if cin % w == 0 and cin // w >= 2]
    if t == "gconv" and widths:
        # as RegNet's: as many channels out as in, a 3x3 (or 5x5) kernel, groups of one width
        return {
            "t": "conv",
            "cout": cin,
            "k": rng.choice((3, 3, 5)),
            "s": rng.choice((1, 1, 2)),
            "g": cin // rng.choice(widths),
            "act": act,
        }
    if t in ("conv", "gconv"):
        g = rng.choice((1, 1, 1, 1, 2, 4)) if cin % 4 == 0 else 1
        cout = _round_channels(rng, math.exp(rng.uniform(math.log(8), math.log(1024))))
        cout = max(g, cout // g * g)
        return {
            "t": "conv",
            "cout": cout,
            "k": rng.choice((1, 1, 3, 3, 5, 7)),
            "s": rng.choice((1, 1, 2)),
            "g": g,
            "act": act,
        }
    if t == "dw":
        return {"t": "dw", "k": rng.choice((3, 3, 5, 7)), "s": rng.choice((1, 2)), "act": act}
    if t == "res":
        return {"t": "res", "k": rng.choice((1, 3)), "act": rng.choice(("relu", "none"))}
    if t == "se":
        return {
            "t": "se",
            "mid": max(4, cin // rng.choice((4, 8, 16))),
            "gate": rng.choice(("hsigmoid", "sigmoid")),
        }
    if t == "pool":
        kind = rng.choice(("max", "avg"))
        k, s = (
            rng.choice(((3, 2), (2, 2), (3, 1))) if kind == "max" else rng.choice(((2, 2), (3, 2)))
        )
        return {"t": "pool", "kind": kind, "k": k, "s": s}
    if t == "cat":
        return {"t": "cat", "cout": _round_channels(rng, cin * rng.choice((0.5, 1.0))), "act": act}
    if t == "shuffle" and cin % 2 == 0:
        return {"t": "shuffle", "act": rng.choice(("relu", "none"))}
    if t == "fc":
        return {"t": "fc", "cout": rng.choice((10, 100, 1000)), "act": rng.choice(("none", "relu"))}
    if t == "resize" and hw <= 28:
        return {"t": "resize", "mode": rng.choice(("nearest", "bilinear"))}
    return {
        "t": "act",
        "act": rng.choice(("relu", "relu6", "hswish", "sigmoid", "silu", "hsigmoid")),
    }


def _valid(cin: int, hw: int, b: Mapping[str, Any]) -> bool:
    t = b["t"]
    if t == "conv":
        g = int(b.get("g", 1))
        if cin % g or int(b["cout"]) % g or int(b["k"]) > 2 * hw + 1:
            return False
    if t == "pool" and int(b["k"]) > hw:
        return False
    if t == "shuffle" and cin % 2:
        return False
    return block_macs(cin, hw, b) <= MAX_BLOCK_MACS


def pack(cin: int, hw: int, blocks: Iterable[Mapping[str, Any]], origin: str) -> list[KernelModel]:
    """Valid, distinct blocks on one input, split into models within the size limits."""
    models: list[KernelModel] = []
    current: list[Mapping[str, Any]] = []
    macs = 0
    seen: set[str] = set()
    for b in blocks:
        text = json.dumps(b, sort_keys=True)
        if text in seen or not _valid(cin, hw, b):
            continue
        seen.add(text)
        m = block_macs(cin, hw, b)
        if current and (len(current) >= MAX_BLOCKS or macs + m > MAX_MODEL_MACS):
            models.append(KernelModel(cin, hw, tuple(current), origin))
            current, macs = [], 0
        current.append(b)
        macs += m
    if current:
        models.append(KernelModel(cin, hw, tuple(current), origin))
    return models


# --- the rounds ---------------------------------------------------------------------------------


def pair_models() -> list[PairModel]:
    """Every operator of the fusion pairs alone, then every pair."""
    singles = list(dict.fromkeys(op for pair in kernels.PAIRS for op in pair))
    return [PairModel((op,)) for op in singles] + [PairModel(pair) for pair in kernels.PAIRS]


def census_models(layers: Sequence[Layer], rng: random.Random) -> list[KernelModel]:
    """One or more models per (family, input) of the census, families interleaved."""
    groups: dict[str, dict[tuple[int, int], list[Layer]]] = {}
    for layer in layers:
        if layer.kind == "linear" or layer.cin * layer.hw * layer.hw > MAX_INPUT_ELEMENTS:
            continue
        groups.setdefault(layer.family, {}).setdefault((layer.cin, layer.hw), []).append(layer)
    queues: list[list[KernelModel]] = []
    for family in sorted(groups):
        models: list[KernelModel] = []
        keys = sorted(groups[family])
        rng.shuffle(keys)
        for cin, hw in keys:
            exact = [b for layer in groups[family][(cin, hw)] if (b := census_block(layer))]
            blocks = list(exact)
            for b in exact:
                blocks.extend(variant_block(rng, b) for _ in range(VARIANTS_PER_LAYER))
            if cin > IMAGE_CHANNELS:
                blocks.extend(random_block(rng, cin, hw) for _ in range(RANDOM_BLOCKS_PER_INPUT))
            else:
                blocks = [b for b in blocks if b["t"] == "conv"]
            models.extend(pack(cin, hw, blocks, family))
        queues.append(models)
    out: list[KernelModel] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def random_model(rng: random.Random) -> KernelModel:
    while True:
        hw = rng.choice(RANDOM_SIDES)
        lo, hi = RANDOM_CHANNELS
        cin = _round_channels(rng, math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if cin * hw * hw <= MAX_INPUT_ELEMENTS:
            break
    blocks = [random_block(rng, cin, hw) for _ in range(rng.randint(8, MAX_BLOCKS))]
    packed = pack(cin, hw, blocks, ORIGIN_RANDOM)
    return (
        packed[0] if packed else KernelModel(cin, hw, ({"t": "act", "act": "relu"},), ORIGIN_RANDOM)
    )


def first_round(
    layers: Sequence[Layer],
    budget_s: float,
    seed: int,
    formats: int = 2,
    *,
    with_pairs: bool = True,
) -> Plan:
    """Pairs, then census and random models interleaved, until the estimate reaches the budget."""
    rng = random.Random(seed)
    plan = Plan(pairs=pair_models() if with_pairs else [])
    spent = sum(estimate_s(p, formats) for p in plan.pairs)
    census = census_models(layers, rng)
    i = 0
    while spent < budget_s:
        # census models first, one random model in every RANDOM_EVERY; random ones once the
        # census is used up
        if census and i % RANDOM_EVERY != RANDOM_EVERY - 1:
            model = census.pop(0)
        else:
            model = random_model(rng)
        plan.models.append(model)
        spent += estimate_s(model, formats)
        i += 1
    return plan


def refine(hard: Sequence[Mapping[str, Any]], budget_s: float, seed: int, formats: int = 2) -> Plan:
    """Models next to badly predicted kernels: ``hard`` rows hold a block and its input."""
    rng = random.Random(seed)
    by_input: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for h in hard:
        base = dict(h["block"])
        by_input.setdefault((int(h["cin"]), int(h["hw"])), []).extend(
            [base, variant_block(rng, base), variant_block(rng, base)]
        )
    plan = Plan()
    spent = 0.0
    for (cin, hw), blocks in by_input.items():
        for model in pack(cin, hw, blocks, ORIGIN_REFINE):
            if spent >= budget_s:
                return plan
            plan.models.append(model)
            spent += estimate_s(model, formats)
    return plan


# --- the manifest -------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string takes JSON's escapes
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the kernel manifest")


def manifest_text(specs: Iterable[ModelSpec]) -> str:
    """A zoo manifest (``models/zoo.toml`` format) of the kernel models."""
    lines = ["# Kernel models of a latency predictor build (benchharness.predict.selection)."]
    for s in specs:
        lines += [
            "",
            f"[{json.dumps(s.name)}]",
            f"source = {_toml_value(s.source)}",
            f"builder = {_toml_value(s.builder)}",
            f"input_shape = {_toml_value(list(s.input_shape))}",
            f"kwargs = {_toml_value(s.kwargs)}",
            f"notes = {_toml_value(s.notes)}",
        ]
    return "\n".join(lines) + "\n"
