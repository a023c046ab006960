"""What a worker says about itself is plain data, read back field by field: a profile survives
the trip whole, and anything else (another version, a wrong type, an object) is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchharness import __version__
from benchharness.farm.descriptions import (
    MARKER,
    DescriptionError,
    marker,
    parse_worker,
    read_marker,
    worker_payload,
)
from benchharness.farm.messages import DeviceStatus, WorkerInfo
from benchharness.ondevice.protocol import PROTOCOL_VERSION
from benchharness.profiles.device_profile import DeviceProfile, parse_profile

ADDRESS = "tls://10.0.0.7:40001"


def _info() -> WorkerInfo:
    board = parse_profile({
        "name": "board", "transport": "ssh", "host": "10.0.0.9", "port": 2222, "user": "pi",
        "key_file": "/home/me/.ssh/id", "known_hosts": "/home/me/kh", "class": "rpi4",
        "runtimes": {"python": "/usr/bin/python3"}, "threads": 4, "affinity": "f0",
        "workdir": "/tmp/bench", "cooldown": {"min_s": 1.0, "max_s": 5.0},
        "providers": ["CPUExecutionProvider"], "notes": "on the shelf",
        "constraints": {"max_model_bytes": 1000, "supported_ops": ["Conv"]},
    })  # fmt: skip
    local = DeviceProfile(name="host", transport="local", path=Path("/etc/bench/host.toml"))
    return WorkerInfo(
        address=ADDRESS, host="lab7", harness_version=__version__,
        protocol_version=PROTOCOL_VERSION, name="w7",
        devices=[DeviceStatus(board, busy="m onnx process 2", summary="Linux"),
                 DeviceStatus(local, gone="vanished")],
    )  # fmt: skip


def _payload() -> dict[str, Any]:
    # through JSON: only plain data survives, as it must on the wire
    data: dict[str, Any] = json.loads(json.dumps(worker_payload(_info())))
    return data


def test_a_description_survives_the_trip_whole() -> None:
    assert parse_worker(_payload(), ADDRESS) == _info()


def test_lists_that_the_wire_made_tuples_are_read_as_lists() -> None:
    data = _payload()
    data["devices"] = tuple(data["devices"])
    data["devices"][0]["profile"]["providers"] = ("CPUExecutionProvider",)
    assert parse_worker(data, ADDRESS) == _info()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(farm_version=99), "farm protocol 99"),
        (lambda d: d.update(harness_version="0.0.1"), "benchharness 0.0.1"),
        (lambda d: d.update(address="tls://10.0.0.8:1"), "describes itself as"),
        (lambda d: d.pop("host"), "'host' is missing"),
        (lambda d: d.update(host=7), "'host': expected str"),
        (lambda d: d.update(protocol_version=True), "expected int"),
        (lambda d: d.update(devices={"a": 1}), "expected a list"),
        (lambda d: d["devices"][0].update(profile=object()), "expected Mapping"),
        (lambda d: d["devices"][0]["profile"].update(transport="telnet"), "'transport'"),
        (lambda d: d["devices"][0]["profile"].update(runner=Path("/x")), "not plain data"),
        (lambda d: d["devices"][0].update(busy="x" * 5000), "longer than"),
    ],
)
def test_anything_else_is_refused_naming_why(change: Any, match: str) -> None:
    data = _payload()
    change(data)
    with pytest.raises(DescriptionError, match=match):
        parse_worker(data, ADDRESS)


def test_an_answer_that_is_not_a_table_is_refused() -> None:
    for answer in (None, "x", ["x"], RuntimeError("boom")):
        with pytest.raises(DescriptionError, match="expected a table"):
            parse_worker(answer, ADDRESS)


def test_the_marker_tells_a_bench_worker_from_a_plain_dask_worker() -> None:
    assert read_marker({}) is None and read_marker(None) is None
    mark = read_marker({MARKER: marker(), "cpu": 3.0})
    assert mark is not None and mark.compatible
    other = read_marker({MARKER: {**marker(), "farm_version": 0}})
    assert other is not None and not other.compatible
    with pytest.raises(DescriptionError):
        read_marker({MARKER: "0.1.0"})
