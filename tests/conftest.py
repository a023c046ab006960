"""Shared test set-up: private cache, lock and results folders, and tiny models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (by their ``lasts`` mark), the rest in collection order: the test
    command's workers take whole files, and a long file started last would leave one worker
    running it alone while the other idles (xdist's own reorder, by test count, is turned off)."""
    weight: dict[Path, float] = {}
    for item in items:
        mark = item.get_closest_marker("lasts")
        seconds = float(mark.args[0]) if mark is not None and mark.args else 0.0
        weight[item.path] = max(weight.get(item.path, 0.0), seconds)
    items.sort(key=lambda item: -weight[item.path])


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Exports use the user's artifact cache (``$BENCH_CACHE_DIR``, else the XDG cache
    directory), so a fresh clone and every later session reuse them: its key covers everything
    that changes the bytes, the builders' own source included, and exports of one key are
    locked against each other. Locks never touch the user's real lock folder."""
    saved = {k: os.environ.get(k) for k in ("BENCH_CACHE_DIR", "BENCH_LOCK_DIR")}
    os.environ["BENCH_LOCK_DIR"] = str(tmp_path_factory.mktemp("locks"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture()
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results"
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_spec():  # type: ignore[no-untyped-def]
    from benchharness.zoo.registry import ModelSpec

    return ModelSpec(
        name="tiny_cnn",
        source="user",
        builder="tests.support.tiny:tiny_cnn",
        input_shape=(1, 3, 32, 32),
        classes=10,
    )


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_spec):  # type: ignore[no-untyped-def]
    """The tiny model exported once per session to both formats."""
    from benchharness.export.pipeline import export_model

    outcomes = export_model(tiny_spec, ["onnx", "tflite"])
    assert all(o.entry is not None for o in outcomes), [o.error for o in outcomes]
    return {o.format: o.entry for o in outcomes}
