"""``bench run`` as a library function: resolve, export, dispatch, store."""

from __future__ import annotations

import contextlib
import getpass
import math
import platform
import socket
from dataclasses import asdict, dataclass, fields
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
from benchharness.plan.options import DEFAULT_JOB_TIMEOUT_S, RunOptions
from benchharness.profiles.schema import DeviceProfile, load_profile
from benchharness.results.store import RunStore
from benchharness.zoo.registry import ZOO_MANIFEST, parse_shape, resolve_models
from benchharness.zoo.variants import expand_variants

if TYPE_CHECKING:
    from benchharness.farm.client import Farm


@dataclass(frozen=True)
class RunRequest:
    """Everything ``bench run`` was asked; stored in run.json so --resume can repeat it."""

    devices: tuple[str, ...] = ("local",)
    models: str | None = None
    formats: tuple[str, ...] = ("onnx", "tflite")
    threads: int | None = None
    affinity: str | None = None
    quick: bool = False
    processes: int | None = None
    input_shape: str | None = None
    profile_ops: bool = True
    resume: str | None = None
    timeout_s: float | None = None
    min_n: int | None = None
    min_s: float | None = None
    max_s: float | None = None
    warmup_min_s: float | None = None
    seed: int | None = None
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
    # the process rule's cap and interval target (analysis/intervals.ProcessRule)
    max_processes: int | None = None
    process_ci_rel: float | None = None
    # a model manifest other than the zoo's (the predictor's kernel models, predict/selection.py)
    manifest: str | None = None


#: Fields of a request that --resume takes from the interrupted run, so it finishes the same run.
RESUMED_FIELDS = (
    "devices", "models", "formats", "threads", "affinity", "quick", "processes", "input_shape",
    "profile_ops", "timeout_s", "min_n", "min_s", "max_s", "warmup_min_s", "seed",
    "precisions", "calibration", "resolutions", "widths", "force", "max_processes",
    "process_ci_rel", "manifest",
)  # fmt: skip
#: Request fields stored as JSON lists that the request holds as tuples.
TUPLE_FIELDS = ("devices", "formats", "precisions", "resolutions", "widths")


def _options(req: RunRequest, seed: int) -> RunOptions:
    """The measurement options of a request: every RunOptions field the request names."""
    shared = {f.name: getattr(req, f.name) for f in fields(RunOptions) if hasattr(req, f.name)}
    shared.update(timeout_s=req.timeout_s or DEFAULT_JOB_TIMEOUT_S, seed=seed)
    return RunOptions(**shared)


def _host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "user": getpass.getuser(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def run(
    req: RunRequest, *, reporter: Reporter | None = None, ops_hook: OpsHook | None = None
) -> RunStore:
    with contextlib.ExitStack() as held:
        return _start(req, reporter or NullReporter(), ops_hook, held)


def _start(
    req: RunRequest, reporter: Reporter, ops_hook: OpsHook | None, held: contextlib.ExitStack
) -> RunStore:
    """Validate the request, take the run (resumed: before reading it), reach the farm."""
    if req.timeout_s is not None and not (math.isfinite(req.timeout_s) and req.timeout_s > 0):
        raise UsageError(f"--timeout {req.timeout_s}: give a number of seconds above 0")
    if req.resume:
        store = RunStore.at(req.results_dir, req.resume)
        # held before reading: a second writer of this run must not load rows it then overwrites
        held.enter_context(store.writing())
        store.load()
        asked = store.meta.get("request") or {}
        if not asked:
            raise UsageError(f"run {req.resume} has no request in run.json and cannot be resumed")
        merged = {k: asked.get(k) for k in RESUMED_FIELDS if k in asked}
        merged["devices"] = tuple(merged.get("devices") or ("local",))
        merged["formats"] = tuple(merged.get("formats") or ("onnx", "tflite"))
        merged.update({k: tuple(v) for k in TUPLE_FIELDS if (v := merged.get(k)) is not None})
        # a farm run resumes on its farm unless another scheduler is named
        merged["scheduler"] = req.scheduler or asked.get("scheduler")
        req = RunRequest(**{**asdict(req), **merged, "resume": req.resume})
        seed = int(store.meta.get("seed", 0))
    else:
        if not req.models:
            raise UsageError("--models is required: all, a,b, module:function or a model file")
        store = None
        seed = req.seed if req.seed is not None else int(datetime.now(UTC).timestamp())
    assert req.models is not None
    farm = _farm(req.scheduler) if req.scheduler else None
    try:
        return _run(req, store, seed, reporter, ops_hook, farm, held)
    finally:
        if farm is not None:
            farm.close()


def _farm(scheduler: str) -> Farm:
    # imported here: without --scheduler nothing imports Dask
    from benchharness.farm.client import Farm

    return Farm.connect(scheduler)


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
    refs = resolve_models(req.models, input_shape=shape, manifest=manifest)
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
            "request": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(req).items()},
            "seed": seed,
            "host": _host(),
            "exporters": exporter_versions(),
            "devices": {p.name: {"transport": p.transport, "description": p.description,
                                 "profile": str(p.path) if p.path else None} for p in profiles},
        }  # fmt: skip
        store.write_meta()
    opts = _options(req, seed)
    rule = opts.process_rule
    store.meta["method"] = {
        "processes": opts.n_processes,
        "process_rule": {
            "min": rule.min_processes,
            "max": rule.max_processes,
            "ci_rel": rule.ci_rel,
            "confidence": rule.confidence,
            "adaptive": rule.adaptive,
        },
        "preset": "quick" if opts.quick else "default",
        "profile_ops": opts.profile_ops,
        "timeout_s": opts.timeout_s,
    }
    store.write_meta()
    artifacts = prepare_artifacts(
        refs,
        req.formats,
        precision=req.precisions,
        calibration=Calibration(npy=Path(req.calibration)) if req.calibration else None,
        log_path=cache_dir() / "export.log",
        stage=lambda text: reporter.stage("export", text),
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
