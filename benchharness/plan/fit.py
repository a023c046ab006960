"""``bench check``: does a model fit a device's constraints, before anything is run on it?

A device profile's ``[constraints]`` table may limit:

* ``supported_ops``: the operators the device runs, named in torch-module terms (``cost.facts``);
* ``max_model_bytes``: the weights, at the precision asked (params x bytes per weight);
* ``max_activation_bytes``: the peak of live intermediate tensors over the execution order;
* ``max_layer_bytes``: one layer's weights plus its input and output tensors (an NPU that loads
  a layer at a time into its SRAM);
* ``max_total_bytes``: weights plus peak activations together (an NPU whose one memory holds
  both).

Zoo models and ``module:function`` models are checked on their ``torch.export`` graph, model
files on their exported graphs; what is read of them, and the operator terms, are in
``benchharness.cost.facts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchharness.cost.facts import ModelFacts, model_facts
from benchharness.errors import ConstraintError, HarnessError, UsageError
from benchharness.export.quantize import (
    ACTIVATION_BYTES,
    PRECISIONS,
    WEIGHT_BYTES,
    canonical_precision,
)
from benchharness.profiles.device_profile import DeviceProfile
from benchharness.zoo.registry import ArtifactRef, ModelRef, ModelSpec

#: Layers named per violation in tables and messages; the JSON carries every one.
SHOWN_LAYERS = 3


@dataclass(frozen=True)
class Violation:
    kind: str
    limit: int | None
    actual: int | None
    layers: tuple[str, ...] = ()
    detail: str = ""

    @property
    def over_bytes(self) -> int | None:
        if self.limit is None or self.actual is None:
            return None
        return self.actual - self.limit

    def describe(self) -> str:
        if self.kind == "unsupported_ops":
            return f"unsupported operators: {self.detail}"
        assert self.limit is not None and self.actual is not None
        head = {
            "model_bytes": "weights",
            "activation_bytes": "peak activations",
            "total_bytes": "weights + peak activations",
            "layer_bytes": f"{len(self.layers)} layer(s) over the per-layer limit, worst",
        }[self.kind]
        where = f" ({', '.join(self.layers[:SHOWN_LAYERS])}" if self.layers else ""
        if self.layers and len(self.layers) > SHOWN_LAYERS:
            where += f", +{len(self.layers) - SHOWN_LAYERS} more"
        where += ")" if self.layers else ""
        return (
            f"{head} {fmt_bytes(self.actual)} > {fmt_bytes(self.limit)}: over by "
            f"{fmt_bytes(self.actual - self.limit)} ({self.actual / self.limit:.2f}x the limit)"
            f"{where}"
        )


@dataclass
class CheckResult:
    """One model at one precision against one device."""

    device: str
    model: str
    precision: str
    input_shape: str = ""
    params: int | None = None
    model_bytes: int | None = None
    activation_peak_bytes: int | None = None
    max_layer: str | None = None
    max_layer_bytes: int | None = None
    violations: list[Violation] = field(default_factory=list)
    error: str | None = None

    @property
    def fits(self) -> bool:
        return self.error is None and not self.violations

    def summary(self) -> str:
        if self.error:
            return f"cannot check: {self.error}"
        if not self.violations:
            return "fits"
        return "; ".join(v.describe() for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fits"] = self.fits
        data["summary"] = self.summary()
        for v, raw in zip(self.violations, data["violations"], strict=True):
            raw["over_bytes"] = v.over_bytes
            raw["layers"] = list(v.layers)
        return data


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def has_constraints(profile: DeviceProfile) -> bool:
    return any(
        v is not None
        for v in (
            profile.supported_ops,
            profile.max_model_bytes,
            profile.max_activation_bytes,
            profile.max_layer_bytes,
            total_limit(profile),
        )
    )


def total_limit(profile: DeviceProfile) -> int | None:
    """``[constraints].max_total_bytes``: weights and peak activations in one memory."""
    return profile.max_total_bytes


# ---------------------------------------------------------------- checking


def check_facts(profile: DeviceProfile, facts: ModelFacts, precision: str) -> CheckResult:
    """Compare a model's facts with a profile's limits at one precision."""
    if facts.in_elements:
        wbytes, abytes = WEIGHT_BYTES[precision], ACTIVATION_BYTES[precision]
    else:
        wbytes = abytes = 1
    model_bytes = facts.params * wbytes
    peak = facts.activation_peak * abytes
    sized = [(layer, layer.weights * wbytes + (layer.inputs + layer.outputs) * abytes)
             for layer in facts.layers]  # fmt: skip
    biggest = max(sized, key=lambda item: item[1], default=None)
    result = CheckResult(
        device=profile.name,
        model=facts.model,
        precision=precision,
        input_shape=facts.input_shape,
        params=facts.params,
        model_bytes=model_bytes,
        activation_peak_bytes=peak,
        max_layer=biggest[0].name if biggest else None,
        max_layer_bytes=biggest[1] if biggest else None,
    )
    if profile.supported_ops is not None:
        allowed = set(profile.supported_ops)
        bad: dict[str, list[str]] = {}
        for layer in facts.layers:
            if layer.op not in allowed:
                bad.setdefault(layer.op, []).append(layer.name)
        if bad:
            detail = ", ".join(
                f"{op} x{len(names)} (first: {names[0]})" for op, names in bad.items()
            )
            first = tuple(names[0] for names in bad.values())
            result.violations.append(Violation("unsupported_ops", None, None, first, detail))
    limits = (
        ("model_bytes", profile.max_model_bytes, model_bytes),
        ("activation_bytes", profile.max_activation_bytes, peak),
        ("total_bytes", total_limit(profile), model_bytes + peak),
    )
    for kind, limit, actual in limits:
        if limit is not None and actual > limit:
            result.violations.append(Violation(kind, limit, actual))
    if profile.max_layer_bytes is not None:
        over = [(layer, size) for layer, size in sized if size > profile.max_layer_bytes]
        if over:
            worst = max(size for _, size in over)
            names = tuple(layer.name for layer, _ in over)  # execution order: first offenders
            result.violations.append(
                Violation("layer_bytes", profile.max_layer_bytes, worst, names)
            )
    return result


def check_models(
    profile: DeviceProfile,
    refs: Sequence[ModelRef],
    precisions: Sequence[str] = ("fp32",),
) -> list[CheckResult]:
    """Check every model at every precision; a model that cannot be analysed gets an error row."""
    precisions = _canonical(precisions)
    results: list[CheckResult] = []
    for ref in refs:
        try:
            facts = model_facts(ref)
        except HarnessError as exc:
            name = ref.name
            for precision in precisions if isinstance(ref, ModelSpec) else ("as-is",):
                results.append(
                    CheckResult(profile.name, name, precision, error=f"{type(exc).__name__}: {exc}")
                )
            continue
        if isinstance(ref, ArtifactRef):
            results.append(check_facts(profile, facts, "as-is"))
            continue
        results.extend(check_facts(profile, facts, p) for p in precisions)
    return results


def require_fit(
    profiles: Sequence[DeviceProfile],
    refs: Sequence[ModelRef],
    precisions: Sequence[str] = ("fp32",),
) -> None:
    """Raise ConstraintError naming every model that does not fit a constrained device.

    A model the check cannot analyse is let through: its export reports why it fails, if it does.
    """
    problems: list[str] = []
    for profile in profiles:
        if not has_constraints(profile):
            continue
        for result in check_models(profile, refs, precisions):
            if result.error is None and not result.fits:
                problems.append(
                    f"  {result.model} ({result.precision}) on {result.device}: {result.summary()}"
                )
    if problems:
        raise ConstraintError(
            "these models do not fit their device:\n"
            + "\n".join(problems)
            + "\nsee `bench check --device D --models M` for details; drop them, pick another "
            "precision, or pass --force to run anyway"
        )


def _canonical(precisions: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(canonical_precision(p) for p in precisions))
    bad = [p for p in out if p not in PRECISIONS]
    if bad:
        raise UsageError(f"precision {bad[0]!r} is not known; choose from {', '.join(PRECISIONS)}")
    return out
