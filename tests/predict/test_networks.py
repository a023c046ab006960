"""The network stage's data and its place in the predictor, on a fake device.

The fake device runs kernels by ``synthetic.FORMULA`` (the kernel models teach the predictor that
law) and whole networks at ``0.8 * (kernel sum) ** 1.1``, a law no kernel model can show; the
predictor with its network stage recovers both.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from benchharness.errors import PredictorError, ResultsError
from benchharness.predict import evaluate as E
from benchharness.predict.build import BuildRequest, _network_stage, build_predictor
from benchharness.predict.error_parts import GAP, NETWORK, model_parts
from benchharness.predict.network_cal import MIN_NETWORKS, NetworkPoint
from benchharness.predict.networks import find_network_run, network_points, usable_rows
from benchharness.predict.predictor import Predictor
from benchharness.predict.selection import Plan
from benchharness.predict.wiring import Graph
from benchharness.results.schema import RunRow
from benchharness.results.store import RunStore, list_runs
from tests.predict import synthetic as S

FP = S.FINGERPRINT
#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(30)
#: Zoo models of seven families (their names decide their family, as in the zoo).
ZOO = (
    "resnet18",
    "resnet34",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "squeezenet1_0",
    "squeezenet1_1",
    "shufflenet_v2_x1_0",
    "mnasnet1_0",
    "ghostnet_100",
    "efficientnet_b0",
)


def network_ms(graph: Graph) -> float:
    """The fake device's end-to-end time of a whole network."""
    return float(0.8 * (S.fake_e2e_us(graph) / 1e3) ** 1.1)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return S.fake_predictor()


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    rng = random.Random(11)
    return {name: S.random_model(rng, blocks=rng.randint(3, 9)) for name in ZOO}


def _row(model: str, median_ms: float, **kw: object) -> RunRow:
    fields: dict[str, object] = {
        "status": "ok",
        "device": "local",
        "format": "onnx",
        "model": model,
        "source": "torchvision",
        "median_ms": median_ms,
        "cpu_model": "Xeon",
        "threads": 2,
        "runtime": "onnxruntime",
        "runtime_version": "1.32.0",
        "harness_version": "0.1.0",
        "stats_source": "samples",
        "run_id": "r1",
    }
    fields.update(kw)
    return RunRow(**fields)  # type: ignore[arg-type]


def _rows(graphs: dict[str, Graph], **kw: object) -> list[RunRow]:
    return [_row(name, network_ms(g), **kw) for name, g in graphs.items()]


@pytest.fixture(scope="module")
def points(predictor: Predictor, graphs: dict[str, Graph]) -> list[NetworkPoint]:
    found, skipped = network_points(
        predictor, _rows(graphs), set(ZOO), graph_of=lambda r: graphs[r.model]
    )
    assert not skipped
    return found


def test_each_network_is_summed_with_its_family_held_out(
    predictor: Predictor, graphs: dict[str, Graph]
) -> None:
    points, skipped = network_points(
        predictor, _rows(graphs), set(ZOO), graph_of=lambda r: graphs[r.model]
    )
    assert not skipped
    by_model = {p.model: p for p in points}
    assert set(by_model) == set(ZOO)
    assert by_model["resnet18"].family == "resnet" and by_model["mnasnet1_0"].family == "mnasnet"
    # the resnet family has kernels of its own in the build: its networks are summed by the
    # predictor refitted without them, the others (no kernels of theirs) by the whole predictor
    fold = predictor.without(["resnet"], ["onnx"], with_band=False)
    assert by_model["resnet18"].kernel_ms == pytest.approx(
        fold.predict_graph(graphs["resnet18"]).ms
    )
    assert by_model["mobilenet_v2"].kernel_ms == pytest.approx(
        predictor.predict_graph(graphs["mobilenet_v2"]).ms
    )
    assert by_model["resnet18"].e2e_ms == pytest.approx(network_ms(graphs["resnet18"]))


def test_the_stage_recovers_the_networks_law(
    predictor: Predictor, graphs: dict[str, Graph], points: list[NetworkPoint]
) -> None:
    staged = predictor.with_networks(points)
    stage = staged.formats["onnx"].network
    assert stage is not None and stage.n == len(ZOO) and stage.families == 7
    assert stage.slope == pytest.approx(1.1, abs=0.05)
    new = S.random_model(random.Random(99), blocks=6)
    plain, corrected = predictor.predict_graph(new), staged.predict_graph(new)
    assert corrected.kernel_ms == pytest.approx(plain.ms)
    # the kernel sum is the fake device's kernel law; the stage turns it into its network law
    assert plain.ms == pytest.approx(S.fake_e2e_us(new) / 1e3, rel=0.1)
    assert corrected.ms == pytest.approx(network_ms(new), rel=0.1)
    assert abs(corrected.ms / network_ms(new) - 1) < abs(plain.ms / network_ms(new) - 1)
    # its interval holds the kernels' interval, scaled by the stage, and the stage's own
    assert plain.low_ms is not None and plain.high_ms is not None
    assert corrected.low_ms is not None and corrected.high_ms is not None
    factor = corrected.ms / plain.ms
    assert corrected.low_ms <= plain.low_ms * factor * (1 + 1e-9)
    assert corrected.high_ms >= plain.high_ms * factor * (1 - 1e-9)


def test_a_fold_without_a_family_drops_its_networks_too(
    predictor: Predictor, graphs: dict[str, Graph], points: list[NetworkPoint]
) -> None:
    staged = predictor.with_networks(points)
    fold = staged.without(["squeezenet"])
    assert {p.family for p in fold.networks} == {p.family for p in points} - {"squeezenet"}
    stage = fold.formats["onnx"].network
    assert stage is not None and stage.n == len(ZOO) - 2


def test_the_stage_survives_the_file(
    predictor: Predictor, graphs: dict[str, Graph], points: list[NetworkPoint], tmp_path: Path
) -> None:
    staged = predictor.with_networks(points)
    staged.save(tmp_path / "p.json.gz")
    loaded = Predictor.load(tmp_path / "p.json.gz")
    assert loaded.networks == staged.networks
    assert loaded.formats["onnx"].network == staged.formats["onnx"].network
    g = graphs["resnet34"]
    assert loaded.predict_graph(g).ms == staged.predict_graph(g).ms


def test_the_error_parts_still_sum_to_the_error(
    predictor: Predictor, graphs: dict[str, Graph], points: list[NetworkPoint]
) -> None:
    staged = predictor.with_networks(points)
    g = graphs["mobilenet_v2"]
    pred = staged.predict_graph(g)
    measured = network_ms(g)
    parts = model_parts(g, S.fake_rows(g), staged.formats["onnx"].calibration, pred, measured)
    assert NETWORK in parts and GAP in parts and pred.kernel_ms is not None
    total = sum(err for _, err in parts.values())
    assert total == pytest.approx((measured - pred.ms) / measured, abs=1e-9)
    assert parts[NETWORK][1] == pytest.approx((pred.kernel_ms - pred.ms) / measured)


def test_rows_that_cannot_teach_the_stage_are_left_out(graphs: dict[str, Graph]) -> None:
    rows = [
        _row("resnet18", 5.0),
        _row("resnet18", 6.0),  # the same model again: the first row counts
        _row("resnet34", 5.0, status="failed"),
        _row("mobilenet_v2", 2.0, flags="GRAPH_FOLDED"),
        _row("squeezenet1_0", 0.0),
        _row("tiny_cnn", 1.0),  # not a zoo model
        _row("mnasnet1_0", 2.0, format="pte"),
    ]
    kept = usable_rows(rows, set(ZOO), ["onnx"])
    assert [(r.model, r.median_ms) for r in kept] == [("resnet18", 5.0)]


def _store(results: Path, run_id: str, rows: list[RunRow]) -> None:
    store = RunStore.create(results, run_id)
    store.runs = rows
    store.flush()


def test_the_newest_run_of_the_zoo_on_the_same_setup_is_found(
    predictor: Predictor, graphs: dict[str, Graph], tmp_path: Path
) -> None:
    few = dict(list(graphs.items())[: MIN_NETWORKS - 1])
    _store(tmp_path, "20261201-000000-aaaa", _rows(graphs))
    _store(tmp_path, "20261202-000000-bbbb", _rows(few))  # too few networks
    _store(tmp_path, "20261203-000000-cccc", _rows(graphs, cpu_model="Other"))  # another CPU
    _store(tmp_path, "20261204-000000-dddd", _rows(graphs, device="pixel4"))  # another device
    assert find_network_run(predictor, tmp_path, set(ZOO)) == "20261201-000000-aaaa"
    assert find_network_run(predictor, tmp_path, set(ZOO), skip=["20261201-000000-aaaa"]) is None


def test_a_build_without_a_zoo_run_says_how_to_add_the_stage(
    predictor: Predictor, tmp_path: Path
) -> None:
    lines: list[str] = []
    req = BuildRequest(results_dir=tmp_path)
    out = _network_stage(req, predictor, ["20261207-000000-abcd"], lines.append)
    assert all(m.network is None for m in out.formats.values())
    note = out.build["networks"]["note"]
    assert "bench run --device local --models all" in note
    assert "--resume 20261207-000000-abcd --networks RUN_ID" in note
    assert lines == [note]
    off = _network_stage(
        BuildRequest(results_dir=tmp_path, networks=("none",)), predictor, [], print
    )
    assert off.build["networks"]["runs"] == []


def test_a_named_run_of_another_setup_is_refused(
    predictor: Predictor, graphs: dict[str, Graph], tmp_path: Path
) -> None:
    _store(tmp_path, "20261203-000000-cccc", _rows(graphs, cpu_model="Other"))
    req = BuildRequest(results_dir=tmp_path, networks=("20261203-000000-cccc",))
    with pytest.raises(PredictorError, match="cpu_model: predictor Xeon, now Other"):
        _network_stage(req, predictor, [], print)


def test_points_whose_graph_cannot_be_read_are_named(predictor: Predictor) -> None:
    from benchharness.errors import CostError

    def unreadable(row: RunRow) -> Graph:
        raise CostError(f"no artifact for {row.model}")

    points, skipped = network_points(predictor, [_row("resnet18", 5.0)], set(ZOO), unreadable)
    assert points == [] and skipped == ["resnet18 onnx: no artifact for resnet18"]


def test_a_held_out_model_is_never_judged_by_its_own_measurement(
    predictor: Predictor, graphs: dict[str, Graph], points: list[NetworkPoint]
) -> None:
    rows = _rows(graphs)
    staged = predictor.with_networks(points)
    # the same build, but resnet18 measured twice as slow: its held-out prediction must not move
    doctored = [
        dataclasses.replace(p, e2e_ms=p.e2e_ms * 2) if p.model == "resnet18" else p for p in points
    ]
    scored = {"resnet18", "mobilenet_v2", "squeezenet1_0"}  # three folds
    evals = {
        name: E.evaluate(p, rows, scored, graph_of=lambda r: graphs[r.model])
        for name, p in (("staged", staged), ("doctored", predictor.with_networks(doctored)))
    }
    ms = {
        name: {m.model: m.predicted_ms[E.PREDICTOR] for m in ev.models}
        for name, ev in evals.items()
    }
    assert ms["staged"]["resnet18"] == pytest.approx(ms["doctored"]["resnet18"])
    # while a model of another family, whose fold's stage learned from resnet18, does move
    assert ms["staged"]["mobilenet_v2"] != pytest.approx(ms["doctored"]["mobilenet_v2"])
    # the kernel sum before the stage is scored beside it: the stage is what brought it closer
    with_stage = evals["staged"].scores[(E.ZOO, "onnx", E.PREDICTOR)]
    without = evals["staged"].scores[(E.ZOO, "onnx", E.PREDICTOR_KERNEL_SUM)]
    assert with_stage.n == without.n == 3
    assert with_stage.rmspe < without.rmspe


def test_a_named_run_that_does_not_exist_fails_before_anything_is_measured(
    tmp_path: Path,
) -> None:
    measured: list[object] = []
    req = BuildRequest(
        results_dir=tmp_path, plan=Plan().to_json(), networks=("20261201-000000-zzzz",)
    )
    with pytest.raises(ResultsError, match="no results folder"):
        build_predictor(req, reporter=None, stage=measured.append)
    assert not any(str(line).startswith("round") for line in measured)
    assert list_runs(tmp_path) == []
