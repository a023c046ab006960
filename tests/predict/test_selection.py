"""The kernel plan: census of a model's layers, sampling within limits, the manifest, the blocks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from benchharness.predict import kernels
from benchharness.predict import selection as plan
from benchharness.predict.census import Layer, census_of, family_of
from benchharness.zoo.registry import ModelSpec, load_zoo

LAYERS = [
    Layer("resnet", "r", "conv", 64, 56, 64, 3, 1, 1, "relu"),
    Layer("resnet", "r", "conv", 64, 56, 128, 3, 2, 1, "relu"),
    Layer("resnet", "r", "res", 64, 56, 64),
    Layer("mobilenet", "m", "conv", 32, 112, 32, 3, 1, 32, "relu6"),
    Layer("mobilenet", "m", "conv", 32, 112, 16, 1, 1, 1, "none"),
    Layer("mobilenet", "m", "se", 96, 14, 96),
]


def test_census_records_layers_with_their_input_and_activation() -> None:
    spec = ModelSpec("tiny_cnn", "user", "tests.support.tiny:tiny_cnn", (1, 3, 32, 32), classes=10)
    layers = census_of(spec, "other")
    convs = [la for la in layers if la.kind == "conv"]
    assert [(c.cin, c.hw, c.cout, c.k, c.s, c.g, c.act) for c in convs] == [
        (3, 32, 8, 3, 1, 1, "relu"),
        (8, 32, 8, 3, 2, 8, "none"),
        (8, 16, 16, 1, 1, 1, "relu6"),
    ]
    assert [(la.cin, la.cout) for la in layers if la.kind == "linear"] == [(16, 10)]


def test_families() -> None:
    assert family_of("resnet34") == "resnet"
    assert family_of("mobilenet_v3_small") == family_of("mobilenetv1_100") == "mobilenet"
    assert family_of("dw_resnet18", "seed") == family_of("cnn_gpt", "seed") == "seeds"
    assert family_of("regnet_x_400mf") == "other"


def test_first_round_is_reproducible_and_within_limits() -> None:
    a = plan.first_round(LAYERS, 1200, seed=3)
    b = plan.first_round(LAYERS, 1200, seed=3)
    assert a.names() == b.names() and len(set(a.names())) == len(a.names())
    assert plan.first_round(LAYERS, 1200, seed=4).names() != a.names()
    assert {m.origin for m in a.models} == {"resnet", "mobilenet", "random"}
    assert len(a.pairs) == len(plan.pair_models())
    for m in a.models:
        assert 1 <= len(m.blocks) <= plan.MAX_BLOCKS
        assert m.macs() <= plan.MAX_MODEL_MACS
        assert m.cin * m.hw * m.hw <= plan.MAX_INPUT_ELEMENTS
    # the exact census convolutions are measured as they are
    resnet = [b for m in a.models if m.origin == "resnet" for b in m.blocks]
    assert {"t": "conv", "cout": 128, "k": 3, "s": 2, "g": 1, "act": "relu"} in resnet
    mobile = [b for m in a.models if m.origin == "mobilenet" for b in m.blocks]
    assert {"t": "dw", "k": 3, "s": 1, "act": "relu6"} in mobile


def test_a_larger_budget_plans_more_of_the_same_models_first() -> None:
    small = plan.first_round(LAYERS, 600, seed=1, with_pairs=False)
    large = plan.first_round(LAYERS, 3000, seed=1, with_pairs=False)
    assert large.names()[: len(small.names())] == small.names()
    assert sum(map(plan.estimate_s, small.models)) >= 600 * 0.9


def test_the_manifest_reads_back_as_the_plan(tmp_path: Path) -> None:
    p = plan.first_round(LAYERS, 900, seed=0)
    path = tmp_path / "kernels.toml"
    path.write_text(p.manifest(), encoding="utf-8")
    zoo = load_zoo(path)
    assert list(zoo.values()) == p.specs()
    assert plan.Plan.from_json(p.to_json()).names() == p.names()


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_models_build_and_run(seed: int) -> None:
    rng = random.Random(seed)
    blocks = [plan.random_block(rng, 16, 14) for _ in range(30)]
    blocks += [{"t": t, "act": "relu"} for t in ("shuffle",)] + [
        {"t": "se", "mid": 4, "gate": "sigmoid"}
    ]
    m = plan.pack(16, 14, blocks, "random")[0]
    model = m.spec().build()
    out = model(torch.zeros(1, 16, 14, 14))
    channels = sum(
        model.blocks[i](model.stem(torch.zeros(1, 16, 14, 14))).shape[1]
        for i in range(len(m.blocks))
    )
    assert out.shape == (1, channels)
    with pytest.raises(ValueError, match="version"):
        kernels.build(16, m.blocks, version=kernels.KERNELS_VERSION + 1)


def test_pair_models_chain_their_operators() -> None:
    for p in plan.pair_models():
        model = p.spec().build()
        out = model(torch.zeros(1, p.c, 8, 8))
        assert out.dim() == 4


def test_refinement_plans_variations_around_hard_kernels() -> None:
    hard = [
        {
            "cin": 32,
            "hw": 28,
            "block": {"t": "conv", "cout": 64, "k": 3, "s": 1, "g": 1, "act": "relu"},
        }
    ]
    p = plan.refine(hard, 600, seed=0)
    assert p.models and all(m.origin == "refine" and (m.cin, m.hw) == (32, 28) for m in p.models)
    assert hard[0]["block"] in p.models[0].blocks
    assert plan.refine(hard, 0, seed=0).models == []
