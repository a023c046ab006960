"""``bench run`` as a library function: resolve, export, dispatch, store."""

from __future__ import annotations

import contextlib
import getpass
import math
import platform
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness import __version__
from benchharness.dispatch.execute import OpsHook, execute
from benchharness.dispatch.op_profile import collect_ops
from benchharness.dispatch.reporter import NullReporter, Reporter
from benchharness.errors import UsageError
from benchharness.export.cache import cache_dir, exporter_versions
from benchharness.export.quantize import Calibration
from benchharness.plan.artifacts import prepare_artifacts
from benchharness.plan.fit import require_fit
from benchharness.plan.options import RunOptions
from benchharness.profiles.device_profile import DeviceProfile, load_profile
from benchharness.results.store import RunStore
from benchharness.zoo.registry import ZOO_MANIFEST, parse_shape, resolve_models
from benchharness.zoo.variants import expand_variants

if TYPE_CHECKING:
    from benchharness.farm.client import Farm
    from benchharness.farm.security import FarmSecurity


#: What a request measures when it names no devices or formats.
DEFAULT_DEVICES = ("local",)
DEFAULT_FORMATS = ("onnx", "tflite")


@dataclass(frozen=True)
class RunRequest:
    """Everything ``bench run`` was asked; stored in run.json so --resume can repeat it."""

    devices: tuple[str, ...] = DEFAULT_DEVICES
    models: str | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    #: how every job is measured (``options.seed`` None: one is picked from the clock)
    options: RunOptions = field(default_factory=RunOptions)
    input_shape: str | None = None
    resume: str | None = None
    results_dir: Path = Path("results")
    # compressed variants and sweeps (export/quantize.py, zoo/variants.py)
    precisions: tuple[str, ...] = ("fp32",)
    calibration: str | None = None
    resolutions: tuple[int, ...] = ()
    widths: tuple[float, ...] = ()
    # run models that fail `bench check` on a constrained device anyway
    force: bool = False
    # a Dask scheduler (tcp://HOST:8786): run on the farm's `bench worker`s (farm/)
    scheduler: str | None = None
    # a model manifest other than the zoo's (the predictor's kernel models, predict/selection.py)
    manifest: str | None = None
    # export with the builder's own weights (a trained checkpoint) instead of the seeded
    # initialisation that keeps every branch alive (zoo/init_weights.py)
    keep_weights: bool = False
    # processes exporting the models the cache lacks (None: one per core, at most
    # plan/parallel_export.py's MAX_DEFAULT_JOBS; one on a farm run): how this host exports,
    # not what is measured, so a resume takes the resuming command's
    export_jobs: int | None = None

    def to_json(self) -> dict[str, Any]:
        """run.json's ``request`` section: the request with its options and method nested."""
        data = asdict(self)
        data["results_dir"] = str(self.results_dir)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: RunRequest) -> RunRequest:
        """The request stored in run.json (nested, or flat as runs stored it before the options
        were nested); a value it lacks is ``base``'s."""
        return cls(
            devices=tuple(data.get("devices") or DEFAULT_DEVICES),
            models=data.get("models", base.models),
            formats=tuple(data.get("formats") or DEFAULT_FORMATS),
            options=RunOptions.from_json(data.get("options", data), base.options),
            input_shape=data.get("input_shape", base.input_shape),
            resume=data.get("resume", base.resume),
            results_dir=Path(data.get("results_dir", base.results_dir)),
            precisions=tuple(data.get("precisions") or base.precisions),
            calibration=data.get("calibration", base.calibration),
            resolutions=tuple(data.get("resolutions", base.resolutions) or ()),
            widths=tuple(data.get("widths", base.widths) or ()),
            force=bool(data.get("force", base.force)),
            scheduler=data.get("scheduler", base.scheduler),
            manifest=data.get("manifest", base.manifest),
            keep_weights=bool(data.get("keep_weights", base.keep_weights)),
            export_jobs=base.export_jobs,
        )


def _host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "user": getpass.getuser(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def run(
    req: RunRequest,
    *,
    reporter: Reporter | None = None,
    ops_hook: OpsHook | None = None,
    security: FarmSecurity | None = None,
) -> RunStore:
    """Run (or resume) ``req``; ``security`` is how a farm run reaches its scheduler (the farm
    config file's when None). It is never stored: a resume reads it again."""
    with contextlib.ExitStack() as held:
        return _start(req, reporter or NullReporter(), ops_hook, held, security)


def _start(
    req: RunRequest,
    reporter: Reporter,
    ops_hook: OpsHook | None,
    held: contextlib.ExitStack,
    security: FarmSecurity | None = None,
) -> RunStore:
    """Validate the request, take the run (resumed: before reading it), reach the farm."""
    timeout_s = req.options.timeout_s
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise UsageError(f"--timeout {timeout_s}: give a number of seconds above 0")
    if req.resume:
        store = RunStore.at(req.results_dir, req.resume)
        # held before reading: a second writer of this run must not load rows it then overwrites
        held.enter_context(store.writing())
        store.load()
        asked = store.meta.get("request") or {}
        if not asked:
            raise UsageError(f"run {req.resume} has no request in run.json and cannot be resumed")
        req = _resumed(req, RunRequest.from_json(asked, req))
        seed = int(store.meta.get("seed", 0))
    else:
        if not req.models:
            raise UsageError("--models is required: all, a,b, module:function or a model file")
        store = None
        asked_seed = req.options.seed
        seed = int(datetime.now(UTC).timestamp()) if asked_seed is None else asked_seed
    assert req.models is not None
    farm = _farm(req.scheduler, security) if req.scheduler else None
    try:
        return _run(req, store, seed, reporter, ops_hook, farm, held)
    finally:
        if farm is not None:
            farm.close()


def _resumed(req: RunRequest, asked: RunRequest) -> RunRequest:
    """The interrupted run's request, finished where ``req`` looks for it; a farm run resumes
    on its farm unless ``req`` names another scheduler."""
    return replace(
        asked,
        resume=req.resume,
        results_dir=req.results_dir,
        scheduler=req.scheduler or asked.scheduler,
    )


def _farm(scheduler: str, security: FarmSecurity | None) -> Farm:
    # imported here: without --scheduler nothing imports Dask
    from benchharness.farm.client import Farm

    return Farm.connect(scheduler, security)


def _method_meta(opts: RunOptions) -> dict[str, Any]:
    """run.json's ``method``: the process rule and preset the run measured with."""
    rule = opts.process_rule
    return {
        "processes": opts.n_processes,
        "process_rule": {
            "min": rule.min_processes,
            "max": rule.max_processes,
            "ci_rel": rule.ci_rel,
            "confidence": rule.confidence,
            "adaptive": rule.adaptive,
        },
        "preset": "quick" if opts.method.quick else "default",
        "profile_ops": opts.profile_ops,
        "timeout_s": opts.timeout_s,
    }


def _run(
    req: RunRequest,
    store: RunStore | None,
    seed: int,
    reporter: Reporter,
    ops_hook: OpsHook | None,
    farm: Farm | None,
    held: contextlib.ExitStack,
) -> RunStore:
    assert req.models is not None
    # on a farm the profiles are the workers' (this machine need not have them); no worker
    # serving a device fails here, before anything is exported
    profiles: list[DeviceProfile] = (
        farm.profiles(req.devices) if farm else [load_profile(d) for d in req.devices]
    )
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise UsageError(f"a device is named twice: {', '.join(names)}")
    shape = parse_shape(req.input_shape) if req.input_shape else None
    manifest = Path(req.manifest) if req.manifest else ZOO_MANIFEST
    refs = resolve_models(
        req.models, input_shape=shape, manifest=manifest, keep_weights=req.keep_weights
    )
    refs = expand_variants(refs, resolutions=req.resolutions, widths=req.widths)
    if not req.force:
        # constrained devices (NPUs, MCUs) refuse a model that cannot fit, before anything runs
        require_fit(profiles, refs, req.precisions)
    if store is None:
        store = RunStore.create(req.results_dir)
        held.enter_context(store.writing())
        store.meta = {
            "run_id": store.run_id,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "harness_version": __version__,
            "request": req.to_json(),
            "seed": seed,
            "host": _host(),
            "exporters": exporter_versions(),
            "devices": {p.name: {"transport": p.transport, "description": p.description,
                                 "profile": str(p.path) if p.path else None} for p in profiles},
        }  # fmt: skip
        store.write_meta()
    opts = replace(req.options, seed=seed)
    store.meta["method"] = _method_meta(opts)
    store.write_meta()
    artifacts = prepare_artifacts(
        refs,
        req.formats,
        precision=req.precisions,
        calibration=Calibration(npy=Path(req.calibration)) if req.calibration else None,
        log_path=cache_dir() / "export.log",
        stage=lambda text: reporter.stage("export", text),
        # a farm run's host may serve the farm's devices (a `bench worker` beside it), timing
        # other runs while this one exports: one export at a time unless asked otherwise
        export_jobs=req.export_jobs or (1 if farm is not None else None),
    )
    if ops_hook is None and opts.profile_ops:
        ops_hook = collect_ops
    if farm is not None:
        from benchharness.farm.coordinator import execute as execute_on_farm

        outcome = execute_on_farm(
            farm, store, profiles, artifacts, opts, reporter=reporter, ops_hook=ops_hook
        )
    else:
        outcome = execute(store, profiles, artifacts, opts, reporter=reporter, ops_hook=ops_hook)
    store.meta.setdefault("outcome", {}).update(outcome)
    store.meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    store.write_meta()
    return store
