"""Resource names of the farm and a profile's ``class`` (addresses: test_security.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.errors import DeviceProfileError
from benchharness.farm.messages import bound_resources, names_of, worker_resources
from benchharness.profiles.device_profile import DeviceProfile, parse_profile


def _p(name: str, cls: str | None = None) -> DeviceProfile:
    return DeviceProfile(name=name, transport="local", device_class=cls)


def test_a_device_answers_to_its_name_then_its_class() -> None:
    assert names_of(_p("pixel4-a", "pixel4")) == ("pixel4-a", "pixel4")
    assert names_of(_p("rpi4")) == ("rpi4",)
    assert names_of(_p("pixel4", "pixel4")) == ("pixel4",)  # a class named as the device


def test_a_worker_offers_one_unit_per_device_answering_to_a_name() -> None:
    res = worker_resources([_p("a", "phone"), _p("b", "phone"), _p("c")])
    assert res == {"a": 1.0, "b": 1.0, "phone": 2.0, "c": 1.0}


def test_a_bound_process_takes_its_device_and_a_unit_of_its_class() -> None:
    assert bound_resources(_p("a", "phone")) == {"a": 1.0, "phone": 1.0}
    assert bound_resources(_p("c")) == {"c": 1.0}


def test_profile_class_is_read_and_checked() -> None:
    p = parse_profile({"name": "pixel4-a", "transport": "local", "class": "pixel4"})
    assert p.device_class == "pixel4"
    assert parse_profile({"name": "x", "transport": "local"}).device_class is None
    with pytest.raises(DeviceProfileError, match="'class'"):
        parse_profile({"name": "x", "transport": "local", "class": "two words"}, Path("x.toml"))
