"""The runner result crossing from device to host: every field checked on arrival."""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, fields
from typing import Any

import pytest

from benchharness.errors import RunnerError
from benchharness.ondevice import protocol
from benchharness.ondevice.protocol import (
    PROTOCOL_VERSION,
    RESULT_MARKER,
    Environment,
    Profile,
    ProfiledOp,
    ProtocolError,
    RunnerResult,
    decode,
    encode,
)
from benchharness.runners.python import parse_output


def good() -> dict[str, Any]:
    """A complete, valid result as the runner prints it."""
    result = RunnerResult(
        runtime="onnxruntime",
        runtime_version="1.32.0",
        provider="CPUExecutionProvider",
        threads=2,
        load_ms=12.5,
        cold_ms=3.0,
        warmup_n=40,
        samples_ms=[1.0, 1.1, 0.9],
        rule=protocol.Rule(min_n=100, min_s=10.0, max_s=120.0, adaptive=True),
        output_shapes=[[1, 10]],
        profile=Profile(source="litert-profiler", ops=[ProfiledOp("conv", "CONV_2D", 0, 1, 5.0)]),
        env_start=Environment(cpu_model="x86", governor="performance", temp_c=40.0),
        env_end=Environment(cpu_model="x86", temp_c=41.0),
    )
    data: dict[str, Any] = json.loads(result.to_json())
    return data


def line(data: Any) -> str:
    return "chatter from the runtime\n" + RESULT_MARKER + json.dumps(data) + "\n"


def test_a_result_survives_the_round_trip() -> None:
    result = decode(line(good()))
    assert result is not None
    assert result.samples_ms == [1.0, 1.1, 0.9] and result.threads == 2
    assert isinstance(result.env_start, Environment) and result.env_start.temp_c == 40.0
    assert isinstance(result.profile, Profile) and result.profile.ops[0].op_type == "CONV_2D"
    assert decode(encode(result)) == result
    assert decode("no marker here\n") is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"env_start": "x"}, "result.env_start"),
        ({"profile": ["x"]}, "result.profile"),
        ({"warmup_n": "a"}, "result.warmup_n"),
        ({"samples_ms": [1, "x"]}, "result.samples_ms[1]"),
        ({"samples_ms": [-1.0]}, "result.samples_ms[0]"),
        ({"threads": True}, "result.threads"),
        ({"ok": "yes"}, "result.ok"),
        ({"profile": {"ops": [{"op_index": "3"}]}}, "result.profile.ops[0].op_index"),
        ({"env_end": {"temp_c": "hot"}}, "result.env_end.temp_c"),
        ({"tool_stats": {"mean": 1.0}}, "result.tool_stats.n"),
        ({"samples_ms": []}, "result.samples_ms"),
        ({"warmup_mode": "fast"}, "result.warmup_mode"),
        ({"warmup_mode": 1}, "result.warmup_mode"),
        ({"warmup_settle_n": -1}, "result.warmup_settle_n"),
        ({"warmup_settle_s": "1 s"}, "result.warmup_settle_s"),
        ({"rule": {"warmup_target_n": 1.5}}, "result.rule.warmup_target_n"),
    ],
)
def test_each_wrongly_typed_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match="field " + re.escape(field)):
        decode(line({**good(), **change}))


def test_the_warmup_calibration_survives_the_round_trip() -> None:
    data = {**good(), "warmup_mode": protocol.WARMUP_FALLBACK, "warmup_settle_n": 160,
            "warmup_settle_s": 0.8, "rule": {**good()["rule"], "warmup_target_n": 80}}  # fmt: skip
    result = decode(line(data))
    assert result is not None and result.rule is not None
    assert (result.warmup_mode, result.warmup_settle_n, result.warmup_settle_s) == (
        "calibrated+full", 160, 0.8,
    )  # fmt: skip
    assert result.rule.warmup_target_n == 80
    assert protocol.WARMUP_MODES == ("full", "calibrated", "calibrated+full")


def test_a_result_of_a_runner_before_the_calibration_still_decodes() -> None:
    old = good()
    for name in ("warmup_mode", "warmup_settle_n", "warmup_settle_s"):
        del old[name]
    del old["rule"]["warmup_target_n"]
    result = decode(line(old))
    assert result is not None and result.rule is not None
    assert result.warmup_mode is None and result.warmup_settle_n is None
    assert result.warmup_settle_s is None and result.rule.warmup_target_n is None
    assert result.warmup_n == 40 and result.rule.min_n == 100


def test_non_numbers_json_allows_are_refused() -> None:
    text = line(good()).replace("[1.0, 1.1, 0.9]", "[1.0, Infinity, NaN]")
    with pytest.raises(ProtocolError, match="Infinity"):
        decode(text)


def test_too_many_samples_are_refused_before_any_statistics() -> None:
    data = {**good(), "samples_ms": [1.0] * (protocol.MAX_SAMPLES + 1)}
    with pytest.raises(ProtocolError, match="more than the 1000000 allowed"):
        decode(line(data))


def test_a_runner_of_another_version_is_refused_with_the_fix() -> None:
    older = PROTOCOL_VERSION - 1
    with pytest.raises(
        ProtocolError,
        match=rf"protocol {older}, this host {PROTOCOL_VERSION}.*another benchharness",
    ):
        decode(line({**good(), "protocol": older}))
    old = {k: v for k, v in good().items() if k != "protocol"}
    with pytest.raises(ProtocolError, match="protocol None"):
        decode(line(old))


def test_the_host_turns_a_malformed_result_into_a_runner_error_naming_the_device() -> None:
    with pytest.raises(RunnerError, match="runner on pixel4 returned a malformed result: field"):
        parse_output(line({**good(), "warmup_n": "a"}), "", 0, device="pixel4")
    with pytest.raises(RunnerError, match="printed no result"):
        parse_output("Segmentation fault\n", "", 139, device="pixel4")


#: JSON values of every kind, to throw at each field.
def random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"]
    kind = rng.choice(kinds if depth < 2 else kinds[:5])
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([-1, 0, 1, 7, 10**12])
    if kind == "float":
        return rng.choice([-0.5, 0.0, 2.5, 1e300])
    if kind == "str":
        return rng.choice(["", "x", "[/x]", "=1+2", "1.5"])
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["n", "ops", "temp_c", "x"]): random_value(rng, depth + 1)}


def test_fuzz_every_field_decodes_or_names_the_field() -> None:
    rng = random.Random(20261201)
    names = [f.name for f in fields(RunnerResult) if f.name != "protocol"]
    for _ in range(40):
        for name in names:
            data = {**good(), name: random_value(rng)}
            try:
                result = decode(line(data))
            except ProtocolError as exc:
                assert f"result.{name}" in str(exc), (name, data[name], str(exc))
            else:
                # accepted: then it is a well-typed result all the way down
                assert result is not None and isinstance(asdict(result), dict)
