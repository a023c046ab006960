"""Runners that print well-formed JSON of the wrong types: each job gets a failed row naming the
field, and every other job and device carries on.

The runner here is a stand-in python3 that prints, as its result line, the bytes of the "model"
it is given: each artifact carries the result its job should see. It runs for real through the
local transport and through a real sshd on loopback (pushed artifacts keep their bytes)."""

from __future__ import annotations

import hashlib
import json
import random
import stat
from pathlib import Path
from typing import Any

from benchharness.dispatch.execute import execute
from benchharness.ondevice.protocol import PROTOCOL_VERSION, RESULT_MARKER, RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.results.store import RunStore
from tests.support.sshd import SSHServer

pytest_plugins = ["tests.support.fixtures"]

#: The stand-in: prints the model file's bytes as the result line, like a runner would.
FAKE_PYTHON = """#!/bin/sh
model=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--model" ]; then model="$2"; fi
  shift
done
printf '\\n%s' "{marker}"
cat "$model"
printf '\\n'
"""

GOOD: dict[str, Any] = json.loads(
    RunnerResult(
        runtime="fake", runtime_version="1", provider="cpu", threads=1, warmup_n=10,
        samples_ms=[1.0, 1.1, 0.9, 1.0] * 20,
    ).to_json()
)  # fmt: skip

#: The malformed results of the issue, and more of the same kind.
BAD: dict[str, dict[str, Any]] = {
    "env": {"env_start": "x"},
    "profile": {"profile": ["x"]},
    "warmup": {"warmup_n": "a"},
    "sample": {"samples_ms": [1, "x"]},
    "ok": {"ok": "true"},
    "old": {"protocol": PROTOCOL_VERSION - 1},
}
#: The field each names (or the fix, for the runner of another version).
NAMED = {
    "env": "result.env_start",
    "profile": "result.profile",
    "warmup": "result.warmup_n",
    "sample": "result.samples_ms[1]",
    "ok": "result.ok",
    "old": "another benchharness version",
}


def fake_python(directory: Path) -> str:
    path = directory / "python3"
    path.write_text(FAKE_PYTHON.replace("{marker}", RESULT_MARKER))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def artifact(directory: Path, name: str, result: dict[str, Any]) -> Artifact:
    path = directory / f"{name}.onnx"
    path.write_text(json.dumps(result))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Artifact(
        model=name, source="user", input_shape="1x3x32x32", format="onnx", precision="fp32",
        path=path, sha256=sha,
    )  # fmt: skip


def artifacts(directory: Path, extra: dict[str, dict[str, Any]]) -> list[Artifact]:
    out = [artifact(directory, "good", GOOD), artifact(directory, "good2", GOOD)]
    out += [artifact(directory, name, {**GOOD, **change}) for name, change in extra.items()]
    return out


OPTS = RunOptions(processes=2, profile_ops=False, seed=3)


def check_rows(store: RunStore, device: str, bad: dict[str, Any]) -> None:
    rows = {r.model: r for r in store.runs if r.device == device}
    assert set(rows) == {"good", "good2", *bad}, "every job got its row"
    for name in ("good", "good2"):
        assert rows[name].status == "ok" and rows[name].processes == 2
    for name in bad:
        assert rows[name].status == "failed", rows[name]
        error = rows[name].error
        assert error.startswith("RunnerError: the runner on "), error
        assert device in error and NAMED.get(name, f"result.{name}") in error, error


def test_one_device(tmp_path: Path) -> None:
    profile = DeviceProfile(
        name="here", transport="local", runtimes={"python": fake_python(tmp_path)}
    )
    store = RunStore.create(tmp_path / "results")
    outcome = execute(store, [profile], artifacts(tmp_path, BAD), OPTS)
    assert outcome == {"here": None}, "the device itself ran to the end"
    check_rows(RunStore.open(store.path.parent, store.run_id), "here", BAD)


def test_two_devices_at_once(sshd_server: SSHServer, tmp_path: Path) -> None:
    python = fake_python(tmp_path)
    local = DeviceProfile(name="here", transport="local", runtimes={"python": python})
    board = sshd_server.profile(
        name="board", workdir=str(tmp_path / "board-work"), runtimes={"python": python}
    )
    store = RunStore.create(tmp_path / "results")
    outcome = execute(store, [local, board], artifacts(tmp_path, BAD), OPTS)
    assert outcome == {"here": None, "board": None}
    reloaded = RunStore.open(store.path.parent, store.run_id)
    check_rows(reloaded, "here", BAD)
    check_rows(reloaded, "board", BAD)


def test_fuzz_random_json_per_field(tmp_path: Path) -> None:
    """Random JSON values, one field at a time: each job is ok (the value was valid) or a failed
    row naming its field; no job is lost and no exception escapes."""
    rng = random.Random(7)
    values: list[Any] = [None, True, -1, 0, 2.5, "", "x", [], [1, "a"], {}, {"n": "x"}]
    fuzz = {}
    for name in GOOD:
        if name == "protocol":
            continue
        fuzz[name] = {name: rng.choice(values)}
    profile = DeviceProfile(
        name="here", transport="local", runtimes={"python": fake_python(tmp_path)}
    )
    store = RunStore.create(tmp_path / "results")
    assert execute(store, [profile], artifacts(tmp_path, fuzz), OPTS) == {"here": None}
    rows = {r.model: r for r in RunStore.open(store.path.parent, store.run_id).runs}
    assert set(rows) == {"good", "good2", *fuzz}
    # well-typed values that mean a failure: the runner said so, or the outputs were not finite
    meant = {"ok": "the runner failed", "outputs_finite": "non-finite outputs"}
    for name in fuzz:
        row = rows[name]
        if row.status != "ok":
            named = f"result.{name}" in row.error or meant.get(name, "\0") in row.error
            assert named, (name, fuzz[name], row.error)
