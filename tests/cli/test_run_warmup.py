"""``bench run --warmup``: the calibrated warm-up by default, the full rule in every process when
asked (the options parsed as a user types them; nothing is run)."""

from __future__ import annotations

import click
import pytest

from benchharness.cli.run import _request, run_cmd
from benchharness.ondevice.protocol import WARMUP_CALIBRATED, WARMUP_FULL
from benchharness.plan.options import Method


def _method_of(*args: str) -> Method:
    with run_cmd.make_context("run", list(args)) as ctx:
        return _request(ctx.params).options.method


def test_the_default_is_the_calibrated_warmup() -> None:
    assert _method_of().warmup == WARMUP_CALIBRATED


def test_full_runs_the_whole_rule_in_every_process() -> None:
    assert _method_of("--warmup", "full").warmup == WARMUP_FULL
    assert _method_of("--warmup", "calibrated").warmup == WARMUP_CALIBRATED


def test_another_value_is_refused() -> None:
    with pytest.raises(click.BadParameter):
        _method_of("--warmup", "none")
