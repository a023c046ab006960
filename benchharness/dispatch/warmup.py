"""Warm-up calibrated once per job (docs/method.md): the count a job's next process warms up for.

A job's first process runs the full warm-up rule and reports after how many inferences its
latency settled (``RunnerResult.warmup_settle_n``); every later process of the job is given that
count with its margin (``WarmupRule.calibrated_count``) and skips the rule's time minimum. The
pyperf pattern: calibrate in a first worker, run the calibrated numbers in the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from benchharness.ondevice.method import CALIBRATION_CHECK_WINDOWS, WARMUP_DEFAULT
from benchharness.ondevice.protocol import WARMUP_CALIBRATED, RunnerResult
from benchharness.plan.options import Method


def warmup_target(results: Sequence[RunnerResult], method: Method) -> int | None:
    """The calibrated warm-up count for the job's next process, None for the full rule.

    None until a process of the job has settled under the full rule (a first process that ran
    to the cap calibrates nothing: the next one runs the full rule again), and always None with
    ``--warmup full``. Once a process ran a calibrated count, that count stays the job's: every
    calibrated process of a row ran the same warm-up, a resumed job included.
    """
    if method.warmup != WARMUP_CALIBRATED:
        return None
    given = _given(results)
    if given is not None:
        return given
    first = next((r for r in results if r.warmup_settle_n is not None), None)
    if first is None or first.warmup_settle_n is None:
        return None
    # the delegate preset differs only in its time minimum: the window is the same
    wanted = WARMUP_DEFAULT.calibrated_count(first.warmup_settle_n)
    if first.warmup_n is None:
        return wanted
    # never longer than the full rule ran in the calibrating process (in whole windows): a
    # latency that settled late, near where the 1 s minimum ended, would otherwise make every
    # later process warm up longer than the full rule would have (1.5x: 3,460 against 2,376
    # inferences of dw_resnet18 on LiteRT here); the check after it still guards the level
    window = WARMUP_DEFAULT.window
    ran = math.ceil(first.warmup_n / window) * window
    return max(min(wanted, ran), first.warmup_settle_n + CALIBRATION_CHECK_WINDOWS * window)


def _given(results: Sequence[RunnerResult]) -> int | None:
    """The calibrated count an earlier process of the job ran, if any did."""
    for r in results:
        if r.rule is not None and r.rule.warmup_target_n is not None:
            return r.rule.warmup_target_n
    return None
