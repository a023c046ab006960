"""An artifact's cost is its own graph's, with the source model's beside it."""

from __future__ import annotations

import json
from pathlib import Path

from benchharness.export import cache
from benchharness.export.pipeline import key_fields
from benchharness.plan.artifacts import prepare_artifacts, torch_cost
from benchharness.zoo.registry import ArtifactRef, ModelSpec
from tests.support.tiny import tiny_cnn_macs

#: The cost keys of an exported artifact beside its graph's figures.
SOURCE_KEYS = ("source_macs", "source_params", "source_ops", "init")


def test_a_torch_program_costs_what_the_model_does(tiny_spec: ModelSpec) -> None:
    (art,) = prepare_artifacts([tiny_spec], ["torch"])
    assert art.error is None, art.error
    assert art.cost["macs"] == art.cost["source_macs"] == tiny_cnn_macs()
    assert art.cost["params"] == art.cost["source_params"]
    assert art.cost["graph_ops"] == art.cost["source_ops"] == 4


def test_a_model_file_costs_its_graph_alone(tiny_artifacts: dict) -> None:
    path: Path = tiny_artifacts["onnx"].path
    (art,) = prepare_artifacts([ArtifactRef(path=path, format="onnx")], ["onnx"])
    assert art.cost["macs"] == tiny_cnn_macs() and art.cost["graph_ops"] == 4
    assert not any(k in art.cost for k in (*SOURCE_KEYS, "folded"))


def test_an_older_cost_sidecar_without_the_operator_count_is_counted_again(
    tiny_spec: ModelSpec, tmp_path: Path
) -> None:
    fields = key_fields(tiny_spec, "torch", "fp32")
    side = tmp_path / tiny_spec.name / f"{tiny_spec.name}-{cache.cache_key(fields)}.cost.json"
    side.parent.mkdir(parents=True)
    side.write_text(json.dumps({"macs": 1, "params": 2}))
    cost = torch_cost(tiny_spec, tmp_path)
    assert cost == {"macs": tiny_cnn_macs(), "params": cost["params"], "ops": 4}
    assert json.loads(side.read_text()) == cost
