"""``bench predictor build``: plan kernel models, measure them with ``bench run``, fit, save.

A build is one or two rounds, each a normal run folder measured by ``api.run`` (same runner,
method, cooldown, CSVs and ``--resume``) on the kernel models' manifest:

1. the first round (``FIRST_ROUND_SHARE`` of the budget): fusion pairs, census and random models;
2. a refinement round with the time left: models next to the kernels whose out-of-fold error
   in a fit of round 1 is largest (``refine.hard_kernels``).

``--merge RUN_ID`` adds the kernel models of other finished builds on the same setup to the fit:
one build's kernel times move with the host over its half hour, so kernel models measured twice,
at different times, average that out (and those measured once add configurations).

Each round's manifest and plan are written to the export cache (``predict/plan-<hash>.toml`` and
``.json``: the plan, the build's parameters and the round) before it runs, and the first round's
folder gets ``predictor_build.json`` once it exists, so ``--resume RUN_ID`` (the first round's
run id) finishes whichever round was interrupted and goes on from there.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchharness.api import RunRequest
from benchharness.api import run as run_request
from benchharness.dispatch.reporter import NullReporter, Reporter
from benchharness.errors import PredictorError, ResultsError
from benchharness.export.cache import cache_dir
from benchharness.file_names import safe_file_name
from benchharness.plan.options import Method, RunOptions
from benchharness.predict import selection as planning
from benchharness.predict.census import zoo_census
from benchharness.predict.fusion import pair_results
from benchharness.predict.kernels import PAIRS
from benchharness.predict.networks import find_network_run, network_points, zoo_models
from benchharness.predict.predictor import (
    STRICT_FIELDS,
    Predictor,
    fingerprint_of_rows,
    flat_fingerprint,
)
from benchharness.predict.refine import hard_kernels
from benchharness.predict.samples import collect
from benchharness.results.store import RunStore, atomic_write_text, list_runs
from benchharness.zoo.registry import ModelSpec, resolve_models

#: The issue's goal for a local build, exports included.
DEFAULT_BUDGET_S = 3600.0
#: Share of the budget planned for the first round; the rest refines where the errors are.
FIRST_ROUND_SHARE = 0.75
#: A refinement round shorter than this is not worth its fixed costs (a fit, process starts).
MIN_REFINE_S = 120.0
#: Kept back from the refinement round for the final fit and the predictor file.
FIT_RESERVE_S = 120.0
#: Kernel jobs use the quick preset with a shorter minimum time: the operator profile, not the
#: end-to-end median, is what a kernel model is measured for, and it has its own 50 runs.
KERNEL_MIN_S = 1.0
#: The build's record in the first round's run folder.
BUILD_FILE = "predictor_build.json"
#: Where a device's current predictor lives: the report looks for it there.
PREDICTORS_DIR = "predictors"
#: ``--networks`` values: the newest run of the zoo on the predictor's setup, or no network stage.
NETWORKS_AUTO = "auto"
NETWORKS_NONE = "none"

Stage = Callable[[str], None]


@dataclass
class BuildRequest:
    device: str = "local"
    formats: tuple[str, ...] = ("onnx", "tflite")
    budget_s: float = DEFAULT_BUDGET_S
    seed: int = 0
    threads: int | None = None
    results_dir: Path = Path("results")
    output: Path | None = None
    resume: str | None = None
    refine: bool = True
    pairs: bool = True
    census: str = "all"
    max_models: int | None = None
    processes: int | None = None
    # measuring: the kernel jobs' minimum time and warm-up (None: the method's default)
    min_s: float = KERNEL_MIN_S
    warmup_min_s: float | None = None
    # a prepared first round (``Plan.to_json()``) instead of one drawn from the census
    plan: dict[str, Any] | None = None
    # the network stage's runs: ``NETWORKS_AUTO`` (the newest fitting run), ``NETWORKS_NONE``,
    # or run ids
    networks: tuple[str, ...] = (NETWORKS_AUTO,)
    # other finished builds (their first rounds' run ids) whose kernel models join the fit
    merge: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            results_dir=str(self.results_dir), output=str(self.output) if self.output else None
        )
        d.pop("resume")
        return d

    @classmethod
    def from_params(cls, p: dict[str, Any], **override: Any) -> BuildRequest:
        fields = {**p, **override}
        fields["formats"] = tuple(fields.get("formats") or ("onnx", "tflite"))
        fields["results_dir"] = Path(fields.get("results_dir") or "results")
        fields["output"] = Path(fields["output"]) if fields.get("output") else None
        fields["networks"] = tuple(fields.get("networks") or (NETWORKS_AUTO,))
        fields["merge"] = tuple(fields.get("merge") or ())
        return cls(**fields)


@dataclass
class BuildOutcome:
    predictor: Predictor
    path: Path
    run_ids: list[str]
    wall_s: float
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What ``bench predictor build`` reports: the file, runs, time and what was fitted."""
        p = self.predictor
        return {
            "predictor": str(self.path),
            "runs": self.run_ids,
            "wall_s": self.wall_s,
            "kernel_models": p.build.get("kernel_models"),
            "samples": len(p.samples),
            "formats": {
                f: {
                    "kernel_types": len(m.regressors) - 1,
                    "calibration": m.calibration.to_json(),
                    "network_stage": m.network.to_json() if m.network is not None else None,
                }
                for f, m in p.formats.items()
            },
            "networks": p.build.get("networks"),
        }


def predictor_path(results_dir: Path, device: str) -> Path:
    """The device's current predictor (the one ``bench predict`` and the report use); a device
    name that is no safe file name is made one (``benchharness.file_names``)."""
    return results_dir / PREDICTORS_DIR / f"{safe_file_name(device)}.json.gz"


def load_predictor(results_dir: Path, device: str, path: Path | None = None) -> Predictor:
    """The predictor file at ``path``, or the device's current predictor when None."""
    return Predictor.load(path or predictor_path(results_dir, device))


def _write_plan(plan: planning.Plan, params: dict[str, Any], round_no: int) -> Path:
    data = {"params": params, "round": round_no, "plan": plan.to_json()}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "predict"
    manifest = folder / f"plan-{digest}.toml"
    atomic_write_text(manifest.with_suffix(".json"), json.dumps(data))
    atomic_write_text(manifest, plan.manifest())
    return manifest


def _read_plan(manifest: Path) -> tuple[planning.Plan, dict[str, Any], int]:
    try:
        data = json.loads(manifest.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PredictorError(
            f"the kernel plan {manifest.with_suffix('.json')} is gone ({exc}); start a new "
            "build (the same --seed plans the same models, whose exports are cached)"
        ) from exc
    return planning.Plan.from_json(data["plan"]), dict(data["params"]), int(data["round"])


def find_run(results_dir: Path, manifest: Path) -> str | None:
    """The run that was asked to measure ``manifest``, if one was started."""
    for run_id in reversed(list_runs(results_dir) + _unfinished(results_dir)):
        try:
            meta = json.loads((results_dir / run_id / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (meta.get("request") or {}).get("manifest") == str(manifest):
            return run_id
    return None


def interrupted_run(req: BuildRequest) -> str | None:
    """The run id that resumes an interrupted build: the one it resumed, else the run of the
    newest kernel plan (None when no round had started)."""
    if req.resume:
        return req.resume
    plans = sorted((cache_dir() / "predict").glob("plan-*.toml"), key=lambda p: p.stat().st_mtime)
    return find_run(req.results_dir, plans[-1]) if plans else None


def _unfinished(results_dir: Path) -> list[str]:
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if (p / "run.json").exists())


def _measure(req: BuildRequest, manifest: Path, names: list[str], reporter: Reporter) -> RunStore:
    existing = find_run(req.results_dir, manifest)
    # kernel models are many and small: the quick preset, with the build's minimum time
    method = Method(quick=True, min_s=req.min_s, warmup_min_s=req.warmup_min_s)
    request = RunRequest(
        devices=(req.device,),
        models=",".join(names),
        formats=req.formats,
        options=RunOptions(
            method=method, threads=req.threads, processes=req.processes, seed=req.seed
        ),
        results_dir=req.results_dir,
        manifest=str(manifest),
        resume=existing,
    )
    return run_request(request, reporter=reporter)


def _state_path(store: RunStore) -> Path:
    return store.path / BUILD_FILE


def _load_state(store: RunStore) -> dict[str, Any] | None:
    path = _state_path(store)
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc


def build_predictor(
    req: BuildRequest, *, reporter: Reporter | None = None, stage: Stage | None = None
) -> BuildOutcome:
    """Run (or resume) a predictor build and save the predictor."""
    reporter = reporter or NullReporter()
    say = stage or (lambda _text: None)
    start = time.monotonic()
    req, state = _start(req, say)
    for run_id in set(req.networks) - {NETWORKS_AUTO, NETWORKS_NONE}:
        RunStore.at(req.results_dir, run_id)  # a wrong id fails now, not after the measuring
    merged, merged_origins = _merged_builds(req)  # likewise
    rounds: list[dict[str, Any]] = state["rounds"]
    measuring = 0.0  # seconds of this call spent in rounds (the rest: census, plans, fits)
    stores: list[RunStore] = []
    for i, rnd in enumerate(rounds):
        store, spent = _run_round(req, rnd, i + 1, reporter, say)
        measuring += spent
        stores.append(store)
        _save_state(stores[0], state)
    used = sum(float(r.get("wall_s", 0.0)) for r in rounds) + float(state.get("other_s", 0.0))
    left = req.budget_s - used - (time.monotonic() - start - measuring) - FIT_RESERVE_S
    if req.refine and len(rounds) == 1 and left > MIN_REFINE_S:
        say("refinement: fitting round 1 to find the worst-predicted kernels")
        plan = _refinement(req, stores, rounds, left)
        if plan.models:
            rounds.append({"manifest": str(_write_plan(plan, req.params(), 2))})
            _save_state(stores[0], state)
            store, spent = _run_round(req, rounds[1], 2, reporter, say)
            measuring += spent
            stores.append(store)
            _save_state(stores[0], state)
    fingerprint = fingerprint_of_rows([r for s in stores for r in s.runs])
    _check_merged(fingerprint, merged, req.formats)
    say("fitting the kernel regressors")
    # a build's own plan names each of its models' origin; a merged build's fills the rest
    origins = {**merged_origins, **_origins(rounds)}
    measured = collect([*stores, *merged], origins, req.formats)
    pairs = pair_results(PAIRS, measured.pair_times)
    info = {
        "runs": [r.get("run_id") for r in rounds],
        "budget_s": req.budget_s,
        "seed": req.seed,
        "kernel_models": sum(int(r.get("models", 0)) for r in rounds),
        "merged": {"builds": list(req.merge), "runs": [s.run_id for s in merged]},
        "samples": len(measured.samples),
        "skipped": measured.skipped[:20],
        "measure_wall_s": sum(float(r.get("wall_s", 0.0)) for r in rounds),
        "method": {"preset": "quick", "min_s": req.min_s, "warmup_min_s": req.warmup_min_s},
    }
    predictor = Predictor.fit(measured, fingerprint, pairs, info, req.seed)
    build_runs = [s.run_id for s in [*stores, *merged]]
    predictor = _network_stage(req, predictor, build_runs, say)
    # the build's wall time over every call that worked on it: rounds plus everything else
    state["other_s"] = float(state.get("other_s", 0.0)) + (time.monotonic() - start - measuring)
    wall = sum(float(r.get("wall_s", 0.0)) for r in rounds) + state["other_s"]
    predictor.build["wall_s"] = wall
    path = req.output or predictor_path(req.results_dir, req.device)
    predictor.save(path)
    predictor.save(stores[0].path / "predictor.json.gz")
    state["predictor"] = str(path)
    state["wall_s"] = wall
    _save_state(stores[0], state)
    return BuildOutcome(predictor, path, [s.run_id for s in stores], wall, rounds)


def _start(req: BuildRequest, say: Stage) -> tuple[BuildRequest, dict[str, Any]]:
    """The request and build state: from the first round's folder on resume, else a new plan."""
    if req.resume:
        first = RunStore.open(req.results_dir, req.resume)
        manifest = Path(str((first.meta.get("request") or {}).get("manifest") or ""))
        if not manifest.name:
            raise PredictorError(f"run {req.resume} is not a predictor build (no kernel manifest)")
        _, params, round_no = _read_plan(manifest)
        if round_no != 1:
            raise PredictorError(
                f"run {req.resume} is round {round_no} of a build: resume with the run id of "
                "its first round (its predictor_build.json names both)"
            )
        loaded = _load_state(first)
        state = loaded or {"params": params, "rounds": [{"manifest": str(manifest)}]}
        # what a resume may change: where the predictor goes, the network stage's runs and
        # the builds merged into the fit
        output = {"output": req.output} if req.output is not None else {}
        resumed = BuildRequest.from_params(
            params, resume=req.resume, networks=req.networks, merge=req.merge, **output
        )
        return resumed, state
    if req.plan is not None:
        plan = planning.Plan.from_json(req.plan)
    else:
        say("census of the zoo's layers")
        specs = [r for r in resolve_models(req.census) if isinstance(r, ModelSpec)]
        layers = zoo_census(specs, cache_dir() / "predict" / "census.json")
        plan = planning.first_round(
            layers,
            req.budget_s * FIRST_ROUND_SHARE,
            req.seed,
            len(req.formats),
            with_pairs=req.pairs,
        )
        if req.max_models is not None:
            plan.models = plan.models[: req.max_models]
    manifest = _write_plan(plan, req.params(), 1)
    return req, {"params": req.params(), "rounds": [{"manifest": str(manifest)}]}


def _merged_builds(req: BuildRequest) -> tuple[list[RunStore], dict[str, str]]:
    """The run folders and kernel-model origins of the finished builds ``req.merge`` names."""
    stores: list[RunStore] = []
    origins: dict[str, str] = {}
    for run_id in req.merge:
        if run_id == req.resume:
            raise PredictorError(f"--merge {run_id} is the build itself: name other builds")
        state = _load_state(RunStore.open(req.results_dir, run_id))
        if state is None or "predictor" not in state:
            raise PredictorError(
                f"run {run_id} is not the first round of a finished predictor build (its "
                f"{BUILD_FILE} names no predictor): finish it with `bench predictor build "
                f"--resume {run_id}`, or merge the run id its {BUILD_FILE} names"
            )
        theirs = state.get("params") or {}
        if theirs.get("device") != req.device:
            raise PredictorError(
                f"build {run_id} measured device {theirs.get('device')!r}, this one "
                f"{req.device!r}: merge builds of one device"
            )
        rounds = state.get("rounds") or []
        for rnd in rounds:
            stores.append(RunStore.open(req.results_dir, str(rnd.get("run_id"))))
        for name, origin in _origins(rounds).items():
            origins.setdefault(name, origin)
    return stores, origins


def _check_merged(
    fingerprint: dict[str, Any], merged: list[RunStore], formats: Sequence[str]
) -> None:
    """Refuse merged kernel models measured on another setup than the build's own."""
    for store in merged:
        theirs = fingerprint_of_rows(store.runs)
        for fmt in formats:
            mine_flat, theirs_flat = (
                flat_fingerprint(fingerprint, fmt),
                flat_fingerprint(theirs, fmt),
            )
            for name in STRICT_FIELDS:
                a, b = mine_flat.get(name), theirs_flat.get(name)
                if a is not None and b is not None and str(a) != str(b):
                    raise PredictorError(
                        f"run {store.run_id} was measured on another setup ({fmt} {name}: "
                        f"this build {a}, that one {b}); merge builds of one device and setup"
                    )


def _network_stage(
    req: BuildRequest, predictor: Predictor, build_runs: list[str], say: Stage
) -> Predictor:
    """The predictor with its network stage fitted on the zoo networks of the runs
    ``req.networks`` names (predict/networks.py); the build record says which, or why none."""
    if NETWORKS_NONE in req.networks:
        predictor.build["networks"] = {"runs": [], "points": 0, "note": "--networks none"}
        return predictor
    zoo = zoo_models()
    if NETWORKS_AUTO in req.networks:
        found = find_network_run(predictor, req.results_dir, zoo, skip=build_runs)
        run_ids = [found] if found else []
    else:
        run_ids = list(req.networks)
    if not run_ids:
        note = (
            f"no run of the zoo on this setup in {req.results_dir}: no network stage. Measure "
            f"the zoo (`bench run --device {req.device} --models all`), then refit with "
            f"`bench predictor build --resume {build_runs[0]} --networks RUN_ID`"
        )
        say(note)
        predictor.build["networks"] = {"runs": [], "points": 0, "note": note}
        return predictor
    device = predictor.fingerprint.get("device")
    rows = [
        r for rid in run_ids for r in RunStore.open(req.results_dir, rid).runs if r.device == device
    ]
    current = fingerprint_of_rows(rows)
    for fmt in predictor.formats:
        strict = predictor.strict_differences(current, fmt)
        if strict:
            raise PredictorError(
                f"run {', '.join(run_ids)} was not measured on the build's setup ({fmt}: "
                f"{'; '.join(strict)}); name a run of the zoo on {device} with --networks, "
                "or --networks none"
            )
    say(f"network stage: zoo networks of run {', '.join(run_ids)}, each family held out")
    points, skipped = network_points(predictor, rows, zoo)
    predictor = predictor.with_networks(points)
    predictor.build["networks"] = {
        "runs": run_ids,
        "points": len(points),
        "skipped": skipped[:20],
    }
    return predictor


def _run_round(
    req: BuildRequest, rnd: dict[str, Any], number: int, reporter: Reporter, say: Stage
) -> tuple[RunStore, float]:
    """Measure (or finish measuring) one round; its wall time adds up over resumed calls."""
    manifest = Path(rnd["manifest"])
    plan, _, _ = _read_plan(manifest)
    say(f"round {number}: {len(plan.names())} kernel models")
    t0 = time.monotonic()
    store = _measure(req, manifest, plan.names(), reporter)
    spent = time.monotonic() - t0
    rnd.update(
        run_id=store.run_id, models=len(plan.names()), wall_s=float(rnd.get("wall_s", 0.0)) + spent
    )
    return store, spent


def _refinement(
    req: BuildRequest, stores: list[RunStore], rounds: list[dict[str, Any]], left_s: float
) -> planning.Plan:
    """Round 2: models next to the worst-predicted kernels, for the time that is left.

    The plan's time estimates are scaled by what round 1 actually took against its estimate,
    so a slow device (or a loaded host) gets fewer models, not an overrun.
    """
    measured = collect(stores, _origins(rounds), req.formats)
    first = rounds[0]
    estimate = _estimated(_read_plan(Path(first["manifest"]))[0], len(req.formats))
    rate = float(first.get("wall_s", 0.0)) / max(estimate, 1e-9)
    hard = hard_kernels(measured.samples, seed=req.seed)
    return planning.refine(hard, left_s / max(rate, 1e-9), req.seed + 1, len(req.formats))


def _estimated(plan: planning.Plan, formats: int) -> float:
    models: list[planning.KernelModel | planning.PairModel] = [*plan.models, *plan.pairs]
    return sum(planning.estimate_s(m, formats) for m in models)


def _origins(rounds: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for rnd in rounds:
        plan, _, _ = _read_plan(Path(rnd["manifest"]))
        out.update(plan.origins())
    return out


def _save_state(store: RunStore, state: dict[str, Any]) -> None:
    atomic_write_text(_state_path(store), json.dumps(state, indent=2, default=str))
