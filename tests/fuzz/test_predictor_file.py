"""Fuzzing the predictor file reader: every input loads or is a PredictorError, never another
exception, and a predictor that loads predicts without one too (its trees end)."""

from __future__ import annotations

import contextlib
import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchharness.errors import HarnessError, PredictorError
from benchharness.predict.predictor import Predictor
from benchharness.predict.predictor_file import FILE_KIND, FILE_VERSION
from benchharness.predict.samples import Measured, measure_artifact
from benchharness.predict.wiring import Graph
from tests.fuzz.mutations import json_values, mutated_bytes, mutated_json, paths, record, render
from tests.predict import synthetic as S

#: The seed predictor is cut to this many trees per regressor, samples and points: every kind of
#: field is still there, and each example parses a few KB instead of a quarter MB.
KEEP = 3
READER = "predictor file"


@dataclass(frozen=True)
class Seed:
    """The real predictor every example mutates, made once per module (outside the examples,
    so its fit never counts against an example's deadline)."""

    doc: dict[str, Any]
    paths: list[tuple[str | int, ...]]
    graph: Graph  # a model to predict with whatever loads

    @property
    def text(self) -> bytes:
        return json.dumps(self.doc).encode()


def seed_doc() -> dict[str, Any]:
    """A real predictor's JSON (fitted on synthetic kernel models), cut to ``KEEP`` of each."""
    rng = random.Random(1)
    m = Measured()
    for i in range(6):
        g = S.random_model(rng)
        m.add(measure_artifact(g, S.fake_rows(g), "random", f"m{i}", S.fake_e2e_us(g)))
    doc = json.loads(json.dumps(Predictor.fit(m, {"device": "local", "threads": 2}).to_json()))
    for model in doc["formats"].values():
        for reg in model["regressors"].values():
            if reg["trees"]:
                reg["trees"]["trees"] = reg["trees"]["trees"][:KEEP]
    doc["samples"], doc["points"] = doc["samples"][:KEEP], doc["points"][:KEEP]
    return doc


@pytest.fixture(scope="module")
def seed() -> Seed:
    doc = seed_doc()
    return Seed(doc, paths(doc), S.random_model(random.Random(2)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predictor-fuzz")


def load_or_refuse(path: Path, graph: Graph) -> None:
    """Load ``path``: a PredictorError is a refusal, anything else fails the test. A predictor
    that loads must predict (or refuse as the harness's error)."""
    try:
        predictor = Predictor.load(path)
    except PredictorError as exc:
        record(READER, exc, path)
        return
    record(READER, None)
    if graph.format in predictor.formats:
        with contextlib.suppress(HarnessError):  # a refusal of the harness's own is fine
            predictor.predict_graph(graph)


def test_the_seed_loads_and_predicts(folder: Path, seed: Seed) -> None:
    path = folder / "seed.json"
    path.write_bytes(seed.text)
    assert Predictor.load(path).predict_graph(seed.graph).ms > 0


@given(data=st.data(), compress=st.booleans())
def test_mutated_json(folder: Path, seed: Seed, data: st.DataObject, compress: bool) -> None:
    text = data.draw(mutated_json(seed.doc, seed.paths))
    raw = text.encode("utf-8", "surrogatepass")
    path = folder / "mutated.json.gz"
    path.write_bytes(gzip.compress(raw, compresslevel=1) if compress else raw)
    load_or_refuse(path, seed.graph)


@given(data=st.data(), plain=st.booleans())
def test_mutated_bytes(folder: Path, seed: Seed, data: st.DataObject, plain: bool) -> None:
    original = seed.text if plain else gzip.compress(seed.text, compresslevel=1, mtime=0)
    path = folder / "bytes.json.gz"
    path.write_bytes(data.draw(mutated_bytes(original)))
    load_or_refuse(path, seed.graph)


@given(body=json_values, with_header=st.booleans())
def test_random_structures(folder: Path, seed: Seed, body: Any, with_header: bool) -> None:
    if with_header and isinstance(body, dict):
        body = {**body, "kind": FILE_KIND, "version": FILE_VERSION}
    path = folder / "random.json"
    path.write_text(render(body), encoding="utf-8", errors="surrogatepass")
    load_or_refuse(path, seed.graph)
