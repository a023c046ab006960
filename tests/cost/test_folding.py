"""No converter folds a branch away because the weights are untrained, and an artifact's cost
is what its own graph runs: a graph that lost work says so."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from benchharness.cost import folding
from benchharness.plan.artifacts import Artifact, prepare_artifacts
from benchharness.zoo import init_weights
from benchharness.zoo.registry import ModelSpec, load_zoo
from tests.cost import zero_init
from tests.support.tiny import tiny_cnn, tiny_cnn_macs

FORMATS = ("onnx", "tflite")
#: Zoo models checked on their cached exports: a plain residual net, inverted residuals with
#: depthwise convolutions, and concatenating fire modules.
ZOO_SAMPLE = ("resnet18", "mobilenet_v2", "squeezenet1_1")


@pytest.fixture(scope="module")
def zero_init_spec() -> ModelSpec:
    return ModelSpec(
        "zero_init_residual", "user", "tests.cost.zero_init:zero_init_residual", (1, 3, 32, 32),
        10,
    )  # fmt: skip


def _by_format(artifacts: list[Artifact]) -> dict[str, Artifact]:
    assert all(a.error is None for a in artifacts), [a.error for a in artifacts]
    return {a.format: a for a in artifacts}


def test_by_default_every_format_keeps_the_zero_initialised_branch(
    zero_init_spec: ModelSpec,
) -> None:
    arts = _by_format(prepare_artifacts([zero_init_spec], FORMATS))
    for fmt, art in arts.items():
        assert art.cost["macs"] == art.cost["source_macs"] == zero_init.MACS, fmt
        assert art.cost["graph_ops"] == art.cost["source_ops"] == zero_init.COMPUTE_OPS, fmt
        assert "folded" not in art.cost, art.cost["folded"]
        assert art.cost["init"] == f"{init_weights.RULE} seed {init_weights.SEED}"


def test_with_the_builders_weights_tflite_folds_the_branch_and_says_so(
    zero_init_spec: ModelSpec,
) -> None:
    kept = dataclasses.replace(zero_init_spec, keep_weights=True)
    stages: list[str] = []
    arts = _by_format(prepare_artifacts([kept], FORMATS, stage=stages.append))
    tflite = arts["tflite"]
    # the row's MACs are the folded graph's: the stem and the linear layer
    assert tflite.cost["macs"] == zero_init.STEM_MACS + zero_init.FC_MACS
    assert tflite.cost["source_macs"] == zero_init.MACS
    assert tflite.cost["graph_ops"] == 2 and tflite.cost["source_ops"] == zero_init.COMPUTE_OPS
    assert "2 of the model's 4 convolutions" in tflite.cost["folded"]
    assert tflite.cost["init"] == init_weights.BUILDER_WEIGHTS
    assert any("tflite fp32 GRAPH_FOLDED" in s for s in stages), stages
    # ONNX keeps the branch, and so does ONNX Runtime's session
    assert "folded" not in arts["onnx"].cost
    assert arts["onnx"].cost["macs"] == zero_init.MACS


def test_the_torch_count_of_convolutions_and_matrix_products() -> None:
    model = tiny_cnn().eval()
    assert folding.source_ops(model, torch.zeros(1, 3, 32, 32)) == 4  # 3 convolutions, 1 linear


@pytest.mark.parametrize(
    ("graph", "lost"),
    [
        (folding.Work(macs=1000, ops=10), False),
        (folding.Work(macs=900, ops=10), False),  # at the threshold: counters may differ a little
        (folding.Work(macs=899, ops=10), True),  # under 90 % of the MACs
        (folding.Work(macs=1000, ops=9), True),  # one small convolution gone
        (folding.Work(macs=1200, ops=12), False),  # more work (a split convolution) is no loss
    ],
)
def test_a_graph_lost_work_under_the_mac_ratio_or_with_fewer_operators(
    graph: folding.Work, lost: bool
) -> None:
    loss = folding.describe_loss("tflite", graph, folding.Work(macs=1000, ops=10))
    assert (loss is not None) is lost
    if loss:
        assert loss.startswith("the tflite graph runs")


def test_a_model_without_macs_loses_nothing() -> None:
    assert folding.describe_loss("onnx", folding.Work(0, 0), folding.Work(0, 0)) is None


def test_onnxruntime_dropping_convolutions_is_a_loss(
    tiny_artifacts: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    path: Path = tiny_artifacts["onnx"].path
    assert folding.session_loss(path) is None  # ONNX Runtime keeps the tiny model's three
    monkeypatch.setattr(folding, "_session_convs", lambda _path: (3, 1))
    loss = folding.session_loss(path)
    assert loss is not None and "runs 1 of the file's 3 convolutions" in loss


def test_tiny_artifacts_carry_their_graphs_macs(tiny_spec: ModelSpec) -> None:
    arts = _by_format(prepare_artifacts([tiny_spec], FORMATS))
    for art in arts.values():
        assert art.cost["macs"] == art.cost["source_macs"] == tiny_cnn_macs()


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_SAMPLE)
def test_zoo_artifacts_run_the_models_whole_work(name: str) -> None:
    """Each format's graph runs the model's MACs and operators (the whole zoo: test_e2e_zoo)."""
    arts = _by_format(prepare_artifacts([load_zoo()[name]], FORMATS))
    for fmt, art in arts.items():
        assert art.cost["macs"] == art.cost["source_macs"], fmt
        assert art.cost["graph_ops"] == art.cost["source_ops"], fmt
        assert "folded" not in art.cost, art.cost["folded"]
