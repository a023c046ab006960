"""Preparing a run's artifacts with worker processes gives exactly what preparing them one after
another does; a run whose models are cached starts no worker."""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchharness import api
from benchharness.errors import ModelFileError
from benchharness.export import pipeline
from benchharness.plan import parallel_export as parallel
from benchharness.plan.artifacts import Artifact, prepare_artifacts
from benchharness.profiles.device_profile import DeviceProfile, load_profile
from benchharness.zoo.registry import ArtifactRef, ModelRef, ModelSpec

#: about how long this file's tests take together here (see tests/conftest.py)
pytestmark = pytest.mark.lasts(13)

FORMATS = ("onnx", "tflite")
SHAPE = (1, 3, 32, 32)
TINY = "tests.support.tiny:tiny_cnn"
#: The workers' count in the parallel preparation: two, whatever this machine's cores.
JOBS = 2


def _spec(name: str, builder: str = TINY, classes: int | None = None) -> ModelSpec:
    return ModelSpec(name=name, source="user", builder=builder, input_shape=SHAPE, classes=classes)


#: Two models the workers export, and one whose builder always fails (never cached).
GOOD = (_spec("tiny_a", classes=10), _spec("tiny_b", classes=5))
BROKEN = _spec("broken", "tests.support.tiny:broken_builder")
MODELS = (*GOOD, BROKEN)


@dataclass
class Prepared:
    """One preparation of ``MODELS``, and what it did on the way."""

    root: Path
    artifacts: list[Artifact] = field(default_factory=list)
    pools: list[int] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    exported_here: list[str] = field(default_factory=list)


def _row(art: Artifact, root: Path) -> dict[str, Any]:
    """Everything an artifact says, its path taken relative to its cache."""
    data = dataclasses.asdict(art)
    data["path"] = art.path.relative_to(root) if art.path else None
    return data


def _prepare(root: Path, jobs: int, mp: pytest.MonkeyPatch) -> Prepared:
    done = Prepared(root)
    real_pool, real_export = parallel.pool_factory, pipeline._export_one

    def counting_pool(workers: int, log_path: Path | None) -> ProcessPoolExecutor:
        done.pools.append(workers)
        return real_pool(workers, log_path)

    def recording_export(ref: Any, *args: Any, **kwargs: Any) -> Any:
        done.exported_here.append(ref.spec.name)  # an export of this (the main) process
        return real_export(ref, *args, **kwargs)

    mp.setattr(parallel, "pool_factory", counting_pool)
    mp.setattr(pipeline, "_export_one", recording_export)
    done.artifacts = prepare_artifacts(
        MODELS, FORMATS, root=root, export_jobs=jobs, stage=done.stages.append
    )
    return done


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Prepared]:
    """``MODELS`` prepared into two empty caches: one model after another, and on workers."""
    out = {}
    for mode, jobs in (("sequential", 1), ("parallel", JOBS)):
        with pytest.MonkeyPatch.context() as mp:
            out[mode] = _prepare(tmp_path_factory.mktemp(mode), jobs, mp)
    return out


def test_parallel_and_sequential_preparation_give_the_same_artifacts(
    prepared: dict[str, Prepared],
) -> None:
    seq, par = prepared["sequential"], prepared["parallel"]
    good = [a for a in par.artifacts if a.model != BROKEN.name]
    assert len(good) == len(GOOD) * len(FORMATS)
    assert all(a.error is None and a.sha256 and a.cost.get("macs") for a in good)
    assert [_row(a, par.root) for a in par.artifacts] == [_row(a, seq.root) for a in seq.artifacts]


def test_the_workers_export_and_the_main_loop_tries_only_the_failure_again(
    prepared: dict[str, Prepared],
) -> None:
    seq, par = prepared["sequential"], prepared["parallel"]
    assert seq.pools == [] and sorted(set(seq.exported_here)) == sorted(m.name for m in MODELS)
    assert par.pools == [JOBS]
    assert set(par.exported_here) == {BROKEN.name}
    assert multiprocessing.active_children() == []  # every worker has ended


def test_a_failing_model_gives_the_same_error_row_in_both_modes(
    prepared: dict[str, Prepared],
) -> None:
    rows = {
        mode: [_row(a, p.root) for a in p.artifacts if a.model == BROKEN.name]
        for mode, p in prepared.items()
    }
    assert len(rows["parallel"]) == len(FORMATS)
    assert all("this builder always fails" in (r["error"] or "") for r in rows["parallel"])
    assert rows["parallel"] == rows["sequential"]


def test_the_stage_says_what_the_workers_export_as_each_lands(
    prepared: dict[str, Prepared],
) -> None:
    stages = prepared["parallel"].stages
    n = len(MODELS)
    assert stages[0] == f"exporting {n} models on {JOBS} workers"
    landed = sorted(s for s in stages if s.endswith(f"/{n})"))
    assert [s.split(":")[0] for s in landed] == sorted(m.name for m in MODELS)
    assert any(s.startswith(f"{BROKEN.name}: {len(FORMATS)} exports failed") for s in landed)
    assert not any("workers" in s for s in prepared["sequential"].stages)


def _no_pool(workers: int, log_path: Path | None) -> ProcessPoolExecutor:
    raise AssertionError(f"a pool of {workers} was started")


@pytest.mark.parametrize(
    "models",
    [GOOD, MODELS],
    ids=["all-cached", "one-miss"],
)
def test_a_preparation_with_under_two_misses_starts_no_worker(
    prepared: dict[str, Prepared], monkeypatch: pytest.MonkeyPatch, models: tuple[ModelSpec, ...]
) -> None:
    par = prepared["parallel"]
    monkeypatch.setattr(parallel, "pool_factory", _no_pool)
    arts = prepare_artifacts(models, FORMATS, root=par.root, export_jobs=JOBS)
    names = {m.name for m in models}
    before = [_row(a, par.root) for a in par.artifacts if a.model in names]
    assert [_row(a, par.root) for a in arts] == before


def test_a_damaged_model_file_fails_before_anything_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(16))
    monkeypatch.setattr(parallel, "pool_factory", _no_pool)
    monkeypatch.setattr(pipeline, "_export_one", _no_export)
    # two models that miss the cache: a pool would start, were the file not checked first
    refs: list[ModelRef] = [*GOOD, ArtifactRef(path=bad, format="tflite")]
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        prepare_artifacts(refs, FORMATS, root=tmp_path / "cache", export_jobs=JOBS)


def _no_export(ref: Any, *args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"{ref.spec.name} was exported")


class _Stop(Exception):
    """Ends a run once it has asked for its artifacts."""


class _Farm:
    """A farm that serves this machine's local device, and nothing else."""

    def profiles(self, targets: Any) -> list[DeviceProfile]:
        return [load_profile("local")]

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("asked", "scheduler", "jobs"),
    [(None, None, None), (3, None, 3), (None, "tcp://farm:8786", 1), (3, "tcp://farm:8786", 3)],
    ids=["default", "asked", "farm-default", "farm-asked"],
)
def test_bench_run_passes_its_export_jobs_and_a_farm_run_exports_one_at_a_time(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    asked: int | None,
    scheduler: str | None,
    jobs: int | None,
) -> None:
    seen: list[int | None] = []

    def prepare(*args: Any, export_jobs: int | None = None, **kwargs: Any) -> Any:
        seen.append(export_jobs)
        raise _Stop

    monkeypatch.setattr(api, "prepare_artifacts", prepare)
    monkeypatch.setattr(api, "_farm", lambda *_args: _Farm())
    request = api.RunRequest(
        models=TINY, input_shape="1x3x32x32", results_dir=tmp_path, scheduler=scheduler,
        export_jobs=asked,
    )  # fmt: skip
    with pytest.raises(_Stop):
        api.run(request)
    assert seen == [jobs]


def test_a_resumed_run_exports_with_the_resuming_commands_jobs() -> None:
    stored = api.RunRequest(models="m", export_jobs=4).to_json()
    assert api.RunRequest.from_json(stored, api.RunRequest(export_jobs=2)).export_jobs == 2
    assert api.RunRequest.from_json(stored, api.RunRequest()).export_jobs is None
