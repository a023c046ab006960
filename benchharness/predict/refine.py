"""Where to sample more: the kernels a first fit predicts worst, out of fold (adaptive sampling).

Each key's samples are split into folds by the model they came from; each fold is predicted by
trees fitted on the others, and a kernel's miss is weighted by its time (a 30 % miss on a 3 us
reshape matters less than a 10 % miss on a 2 ms convolution). The worst are turned back into
blocks of the kernel plan (convolutions, depthwise convolutions, pools) on the same input, for
``plan.refine`` to measure with variations around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchharness.predict.regress import MIN_TREE_SAMPLES, Sample, fit_regressor

#: Folds of the out-of-fold errors.
FOLDS = 4
#: Misses smaller than this are not worth new samples.
MIN_MISS = 0.10
#: Kernels shorter than this are left alone: their share of a model's time is small.
MIN_TIME_US = 20.0
#: At most this many kernels seed the refinement.
MAX_HARD = 200
#: Kernel keys a block of the plan can reproduce, and the block type.
REPRODUCIBLE = {
    "Conv": "conv",
    "Conv/grouped": "conv",
    "CONV_2D": "conv",
    "CONV_2D/grouped": "conv",
    "Conv/dw": "dw",
    "DEPTHWISE_CONV_2D": "dw",
    "MaxPool": "pool",
    "MAX_POOL_2D": "pool",
    "AveragePool": "pool",
    "AVERAGE_POOL_2D": "pool",
}


def out_of_fold(samples: Sequence[Sample], seed: int = 0) -> np.ndarray:
    """Relative error of each sample predicted without the models of its fold (NaN if none)."""
    errors = np.full(len(samples), np.nan)
    by_key: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_key.setdefault(f"{s.format}|{s.key}", []).append(i)
    for idx in by_key.values():
        models = sorted({samples[i].model for i in idx})
        if len(idx) < 2 * MIN_TREE_SAMPLES or len(models) < FOLDS:
            continue
        fold_of = {m: j % FOLDS for j, m in enumerate(models)}
        for f in range(FOLDS):
            train = [i for i in idx if fold_of[samples[i].model] != f]
            test = [i for i in idx if fold_of[samples[i].model] == f]
            if not test or len(train) < MIN_TREE_SAMPLES:
                continue
            reg = fit_regressor(
                samples[idx[0]].key,
                [samples[i].features for i in train],
                [samples[i].time_us for i in train],
                seed,
            )
            pred = reg.predict([samples[i].features for i in test])
            for i, p in zip(test, pred, strict=True):
                t = samples[i].time_us
                errors[i] = p / t - 1.0 if t > 0 else np.nan
    return errors


def block_of(sample: Sample) -> dict[str, Any] | None:
    """The plan block that reproduces a sample's kernel, or None for kinds the plan cannot."""
    kind = REPRODUCIBLE.get(sample.key)
    f = sample.features
    k, s = int(f.get("k", 1)) or 1, int(f.get("s", 1)) or 1
    if kind == "conv":
        return {
            "t": "conv",
            "cout": int(f["cout"]),
            "k": k,
            "s": s,
            "g": max(1, int(f.get("g", 1))),
            "act": "relu",
        }
    if kind == "dw":
        return {"t": "dw", "k": k, "s": s, "act": "relu6"}
    if kind == "pool":
        return {
            "t": "pool",
            "kind": "max" if "Max" in sample.key or "MAX" in sample.key else "avg",
            "k": k,
            "s": s,
        }
    return None


def hard_kernels(samples: Sequence[Sample], seed: int = 0) -> list[dict[str, Any]]:
    """The worst-predicted reproducible kernels, as ``{"cin", "hw", "block"}`` seeds."""
    errors = out_of_fold(samples, seed)
    scored = []
    for s, e in zip(samples, errors, strict=True):
        if not np.isfinite(e) or abs(e) < MIN_MISS or s.time_us < MIN_TIME_US:
            continue
        block = block_of(s)
        if block is not None:
            scored.append((abs(e) * s.time_us, s, block))
    scored.sort(key=lambda t: -t[0])
    return [
        {"cin": int(s.features["cin"]), "hw": int(s.features["hin"]), "block": block}
        for _, s, block in scored[:MAX_HARD]
    ]
