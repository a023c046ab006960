"""The device-side runner: times one model file with ONNX Runtime, LiteRT or PyTorch.

Shipped to the device with the rest of this folder (``method.py``: the stopping rules;
``probe.py``: the environment; ``throttle.py``: the throttle probe; ``protocol.py``: the result;
``runner_torch.py``: the torch format; ``litert_profiler.py``; ``ort_calibrate.py``), and run
there with the device's python3; locally it runs the same way in a fresh subprocess. It needs
only the standard library, numpy, and onnxruntime or LiteRT (``ai_edge_litert``, falling back to
``tflite_runtime`` or ``tensorflow.lite``); the ``torch`` format (a ``torch.export`` program, run
eagerly) also needs torch, imported only for that format; the ``pte`` format (an ExecuTorch
program) is ``runner_pte.py``, imported only for that format. It must not import anything
from ``benchharness``.

Timing (docs/method.md): inputs are made and bound once; the timed region is the runtime call alone,
read with ``time.perf_counter_ns`` inside this process; the first (cold) inference and the session
creation are recorded apart; warm-up runs until stable (the full rule, which also reports where the
latency settled) or, given ``--warmup-target-n`` by the host, for the job's calibrated count and a
check; measuring runs until the stopping rule is met. Outputs are read after timing and checked
to be finite. On a CUDA GPU (torch) each warm-up and timed inference is read from a pair of CUDA
events instead, synchronised before reading, and warm-up lasts at least 2 s (docs/method.md, GPU
delegates).

Memory (docs/method.md "Memory", ``memory.py``): the process's resident size before the runtime's
module
is imported, once it is (the ``loaded`` hook each runtime calls right after its import; its own
time is taken out of ``load_ms``), once the session exists with its inputs bound, and the
high-water mark over the inferences; every reading is outside the timed loop. ``--no-memory``
skips them.

The result is one ``protocol.RunnerResult``, printed as one marked JSON line on stdout
(``protocol.encode``), so a runtime's own chatter on stdout cannot be mistaken for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import os
import platform
import sys
import tempfile
import time
import traceback
from typing import Any

# siblings on the device, not a package: the runner's folder is all that is shipped
import memory
import method
import probe
import profile_pass
import protocol
import runner_torch
import throttle

#: Seed of the random inputs, so every process and every device sees the same numbers.
INPUT_SEED = 42
#: Warm-up inferences before the profiled pass (the profiler's session is a fresh one).
PROFILE_WARMUP_RUNS = 5
#: The profiled pass's time caps, so a device where one inference takes seconds (a slow board,
#: an emulated one) ends it in bounded time: its runs stop after PROFILE_MAX_S (10 s: five runs
#: of a 2 s model, 50 runs of anything under 0.2 s), its warm-up after PROFILE_WARMUP_MAX_S;
#: each does at least one inference. ``Profile.runs`` and ``warmup_runs`` say how many ran.
PROFILE_MAX_S = 10.0
PROFILE_WARMUP_MAX_S = 2.0
#: ORT's provider that runs on the host CPU; any other first provider is an accelerator.
ORT_CPU_PROVIDER = "CPUExecutionProvider"
#: The op name TFLite gives a delegate's kernel node (builtin code DELEGATE).
DELEGATE_OP = "DELEGATE"
#: ``provider`` of a LiteRT interpreter whose XNNPACK delegate did not apply: TFLite's own
#: (builtin, reference) kernels ran every op.
LITERT_BUILTIN = "builtin"


# ---------------------------------------------------------------- environment of the device


def pinned_cpus() -> list[int] | None:
    """The CPUs this process may run on when it is pinned to fewer than all (taskset)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed if len(allowed) < (os.cpu_count() or len(allowed)) else None


def environment() -> protocol.Environment:
    """The device as ``probe.py`` reads it, for the CPUs this process is pinned to, and the
    machine this python runs as (translated or not, whatever the probe's shell runs as)."""
    env = probe.read_local(pinned_cpus(), machine=platform.machine() or None)
    known = {f.name for f in dataclasses.fields(protocol.Environment)}
    return protocol.Environment(**{k: v for k, v in env.items() if k in known})


# ---------------------------------------------------------------- runtimes


class OrtRunner:
    runtime = "onnxruntime"

    def __init__(
        self, path: str, threads: int, providers: list[str], np: Any, loaded: Any = None
    ) -> None:
        import onnxruntime as ort

        if loaded is not None:
            loaded()
        self.ort = ort
        self.np = np
        self.path = path
        self.threads = threads
        self.providers = providers or ["CPUExecutionProvider"]
        self.version = ort.__version__
        self.session = self._session(profile_prefix=None)
        self.provider = self.session.get_providers()[0]
        # a GPU/NPU provider compiles and uploads lazily: the longer warm-up of docs/method.md
        self.accelerated = self.provider != ORT_CPU_PROVIDER
        self.feeds = make_inputs(
            np, [(i.name, i.shape, _ort_dtype(np, i.type)) for i in self.session.get_inputs()]
        )
        self.binding = self._bind(self.session)

    def _session(self, profile_prefix: str | None) -> Any:
        opts = self.ort.SessionOptions()
        if self.threads > 0:
            opts.intra_op_num_threads = self.threads
        if profile_prefix:
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
        return self.ort.InferenceSession(self.path, sess_options=opts, providers=self.providers)

    def _bind(self, session: Any) -> Any:
        binding = session.io_binding()
        for name, array in self.feeds:
            binding.bind_cpu_input(name, array)
        for out in session.get_outputs():
            binding.bind_output(out.name, "cpu")
        return binding

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)

    def outputs(self) -> list[Any]:
        return [self.np.asarray(o) for o in self.binding.copy_outputs_to_cpu()]

    def profile(self, runs: int, workdir: str, max_s: float = PROFILE_MAX_S) -> protocol.Profile:
        prefix = os.path.join(workdir, "ort_profile")
        session = self._session(profile_prefix=prefix)
        binding = self._bind(session)
        one = functools.partial(session.run_with_iobinding, binding)
        warm = bounded_runs(one, PROFILE_WARMUP_RUNS, PROFILE_WARMUP_MAX_S)
        run_ms = bounded_runs(one, runs, max_s)
        path = session.end_profiling()
        del one, binding, session
        cost = self._node_cost(workdir)
        return protocol.Profile(
            source=protocol.ORT_PROFILE,
            profile_file=os.path.abspath(path),
            warmup_runs=len(warm),
            runs=len(run_ms),
            run_ms=run_ms,
            node_cost_us=cost,
            ops_ms=profile_pass.ops_ms(profile_pass.kernel_ms_per_run(path), cost),
        )

    def _node_cost(self, workdir: str) -> float | None:
        """The profiler's cost per recorded node on this device (``ort_calibrate``), calibrated
        once per process (a repeated pass reuses it); None when the calibration cannot run
        here, so the host leaves the operator times raw."""
        if not hasattr(self, "_calibrated"):
            self._calibrated: float | None = None
            try:
                import ort_calibrate

                self._calibrated = ort_calibrate.node_cost_us(
                    self.ort, self.np, self.threads, self.providers, workdir
                )
            except Exception as exc:  # the operator times are still worth having uncorrected
                sys.stderr.write(f"profiler calibration failed: {type(exc).__name__}: {exc}\n")
        return self._calibrated


def _ort_dtype(np: Any, type_str: str) -> Any:
    table = {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(int8)": np.int8,
        "tensor(uint8)": np.uint8,
        "tensor(bool)": np.bool_,
    }
    return table.get(type_str, np.float32)


def load_interpreter_class() -> tuple[Any, str, str]:
    """LiteRT's interpreter, or the older packages that carry the same API."""
    try:
        from ai_edge_litert import interpreter as mod

        return mod.Interpreter, "litert", _version("ai-edge-litert")
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as mod

        return mod.Interpreter, "tflite_runtime", _version("tflite-runtime")
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow.lite", tf.__version__
    except ImportError as exc:
        raise RuntimeError(
            "no TFLite runtime on this device: pip install ai-edge-litert (or tflite-runtime)"
        ) from exc


def _version(dist: str) -> str:
    try:
        from importlib import metadata

        return metadata.version(dist)
    except Exception:
        return "unknown"


class LiteRtRunner:
    def __init__(self, path: str, threads: int, np: Any, loaded: Any = None) -> None:
        cls, self.runtime, self.version = load_interpreter_class()
        if loaded is not None:
            loaded()
        self.np = np
        self.path = path
        self.threads = threads
        kwargs: dict[str, Any] = {"model_path": path}
        if threads > 0:
            kwargs["num_threads"] = threads
        self.interpreter = cls(**kwargs)
        self.interpreter.allocate_tensors()
        self.provider = "default"
        if self.runtime == "litert":
            applied = xnnpack_applied(self.interpreter)
            self.provider = LITERT_BUILTIN if applied is False else "XNNPACK"
        self.accelerated = False
        details = self.interpreter.get_input_details()
        self.feeds = make_inputs(np, [(d["name"], list(d["shape"]), d["dtype"]) for d in details])
        # zip without strict=: devices may run Python 3.8/3.9
        for detail, (_, array) in zip(details, self.feeds):  # noqa: B905
            self.interpreter.set_tensor(detail["index"], array)

    def run(self) -> None:
        self.interpreter.invoke()

    def tensor_bytes(self) -> int | None:
        """The interpreter's own tensor buffers (``memory.litert_tensor_bytes``)."""
        size: int | None = memory.litert_tensor_bytes(self.interpreter, self.path)
        return size

    def outputs(self) -> list[Any]:
        return [
            self.np.asarray(self.interpreter.get_tensor(d["index"]))
            for d in self.interpreter.get_output_details()
        ]

    def profile(self, runs: int, workdir: str, max_s: float = PROFILE_MAX_S) -> protocol.Profile:
        try:
            import litert_profiler
        except ImportError:
            return protocol.Profile(error="litert_profiler.py is not next to the runner")
        ok, why = _available(litert_profiler)
        if not ok:
            return protocol.Profile(error=why)
        result: dict[str, Any] = litert_profiler.profile_ops(
            self.path,
            threads=self.threads if self.threads > 0 else None,
            runs=runs,
            warmup=PROFILE_WARMUP_RUNS,
            input_arrays=[a for _, a in self.feeds],
            max_s=max_s,
            warmup_max_s=PROFILE_WARMUP_MAX_S,
        )
        ops = [
            protocol.ProfiledOp(
                op_name=str(r.get("op_name", "")),
                op_type=str(r.get("op_type", "")),
                op_index=int(r.get("op_index", -1)),
                calls=r.get("calls"),
                median_us=r.get("median_us"),
                absorbed_op_indices=[int(i) for i in r.get("absorbed_op_indices") or []],
            )
            for r in result["ops"]
        ]
        if not ops:  # never an empty profile that looks like a successful one
            return protocol.Profile(error="the LiteRT profiler returned no operator rows")
        return protocol.Profile(
            source=protocol.LITERT_PROFILE,
            warmup_runs=result.get("warmup_runs"),
            runs=len(result["run_ms"]),
            run_ms=result["run_ms"],
            ops=ops,
        )


def xnnpack_applied(interpreter: Any) -> bool | None:
    """Whether LiteRT's default XNNPACK delegate took part of the graph (a DELEGATE node
    exists), None when the interpreter cannot say. It applies itself silently or not at all:
    where XNNPACK cannot start (its cpuinfo finds no /sys/devices/system/cpu lists) every op
    runs on TFLite's reference kernels, several times slower, and the row must say so."""
    try:
        ops = interpreter._get_ops_details()
    except Exception:  # a private API: an interpreter without it tells nothing
        return None
    return any(op.get("op_name") == DELEGATE_OP for op in ops)


def _available(mod: Any) -> tuple[bool, str]:
    if mod.available():
        return True, ""
    return False, str(mod.unavailable_reason() or "the LiteRT profiler is not available here")


def make_inputs(np: Any, specs: list[tuple[str, Any, Any]]) -> list[tuple[str, Any]]:
    rng = np.random.default_rng(INPUT_SEED)
    feeds = []
    for name, shape, dtype in specs:
        dims = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else 1 for d in shape]
        if np.issubdtype(dtype, np.floating):
            array = rng.standard_normal(dims).astype(dtype)
        elif dtype == np.bool_:
            array = rng.integers(0, 2, dims).astype(dtype)
        else:
            info = np.iinfo(dtype)
            array = rng.integers(max(info.min, -128), min(info.max, 127) + 1, dims).astype(dtype)
        feeds.append((name, np.ascontiguousarray(array)))
    return feeds


# ---------------------------------------------------------------- the measurement


def bounded_runs(
    run: Any, runs: int, max_s: float, clock: Any = time.perf_counter_ns
) -> list[float]:
    """Up to ``runs`` calls of ``run``, each timed (ms); ends early once ``max_s`` seconds have
    passed, after at least one call, so a slow device's pass takes bounded time."""
    out: list[float] = []
    start = clock()
    while len(out) < runs:
        t0 = clock()
        run()
        t1 = clock()
        out.append((t1 - t0) / 1e6)
        if (t1 - start) / 1e9 >= max_s:
            break
    return out


def _timed(runner: Any, clock: Any) -> Any:
    """One inference's time in ns: the runner's device timer where it has one (CUDA events),
    else this process's clock around the synchronous call alone."""
    device_timer = getattr(runner, "device_timer", None)
    if device_timer is not None:
        return device_timer

    def host_timer() -> int:
        t0 = clock()
        runner.run()
        return int(clock() - t0)

    return host_timer


def measure(runner: Any, stop: Any, warm: Any, clock: Any = time.perf_counter_ns) -> dict[str, Any]:
    """The cold inference, the warm-up and the measured samples, each rule asked after every
    inference (``clock``: nanoseconds; a test's fake clock). Each phase ends at its rule's
    time cap at most one inference late, however slow the inferences are."""
    t0 = clock()
    runner.run()
    cold_ns = clock() - t0

    one = _timed(runner, clock)
    warm_ns: list[int] = []
    start = clock()
    why = None
    while why is None:
        warm_ns.append(one())
        why = warm.reason(warm_ns, (clock() - start) / 1e9)
    settle_n = warm.settle_point(warm_ns) if why == method.WARMUP_STABLE else None

    samples: list[int] = []
    start = clock()
    reason = None
    while reason is None:
        samples.append(one())
        reason = stop.reason(samples, (clock() - start) / 1e9)
    return {
        "cold_ms": cold_ns / 1e6,
        "warmup_n": len(warm_ns),
        "warmup_s": sum(warm_ns) / 1e9,
        "warmup_mode": warmup_mode(warm, why),
        "warmup_settle_n": settle_n,
        "warmup_settle_s": None if settle_n is None else sum(warm_ns[:settle_n]) / 1e9,
        "samples_ms": [s / 1e6 for s in samples],
        "measure_s": (clock() - start) / 1e9,
        "stop_reason": reason,
    }


def warmup_mode(warm: Any, why: str | None) -> str:
    """What the warm-up was (``protocol.WARMUP_MODES``), from its rule and why it ended."""
    mode: str = protocol.WARMUP_FULL
    if isinstance(warm, method.CalibratedWarmup):
        checked = why == method.WARMUP_CHECKED
        mode = protocol.WARMUP_CALIBRATED if checked else protocol.WARMUP_FALLBACK
    return mode


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="benchharness device-side runner")
    p.add_argument("--model", required=True)
    p.add_argument("--format", choices=("onnx", "tflite", "torch", "pte"), required=True)
    p.add_argument("--threads", type=int, default=0, help="0 = the runtime's default")
    p.add_argument("--preset", choices=("default", "quick"), default="default")
    p.add_argument("--min-n", type=int)
    p.add_argument("--min-s", type=float)
    p.add_argument("--max-s", type=float)
    p.add_argument("--warmup-min-s", type=float)
    p.add_argument("--warmup-min-n", type=int)
    p.add_argument(
        "--warmup-target-n",
        type=int,
        help="the job's calibrated warm-up: this many inferences, no time minimum, then the last "
        "two windows must agree (else the full rule goes on)",
    )
    p.add_argument("--providers", default="", help="comma-separated ONNX Runtime providers")
    p.add_argument("--profile-runs", type=int, default=0, help="0 = no per-operator pass")
    p.add_argument(
        "--profile-max-s",
        type=float,
        default=PROFILE_MAX_S,
        help="the per-operator pass stops after this many seconds (at least one run)",
    )
    p.add_argument("--workdir", default=None, help="where profiles are written")
    p.add_argument("--no-memory", action="store_true", help="do not read resident memory")
    return p.parse_args(argv)


def rules(args: argparse.Namespace, accelerated: bool = False) -> tuple[Any, Any]:
    stop = method.QUICK if args.preset == "quick" else method.DEFAULT
    changes = {
        k: v
        for k, v in (("min_n", args.min_n), ("min_s", args.min_s), ("max_s", args.max_s))
        if v is not None
    }
    stop = dataclasses.replace(stop, max_n=protocol.MAX_SAMPLES, **changes)
    warm = method.WARMUP_DELEGATE if accelerated else method.WARMUP_DEFAULT
    wchanges = {
        k: v
        for k, v in (("min_s", args.warmup_min_s), ("min_n", args.warmup_min_n))
        if v is not None
    }
    warm = dataclasses.replace(warm, **wchanges)
    if args.warmup_target_n is not None:
        return stop, method.CalibratedWarmup(target_n=args.warmup_target_n, full=warm)
    return stop, warm


def rule_of(stop: Any, warm: Any) -> protocol.Rule:
    """The rules a process ran under, as its result states them."""
    calibrated = isinstance(warm, method.CalibratedWarmup)
    full = warm.full if calibrated else warm
    return protocol.Rule(
        min_n=stop.min_n,
        min_s=stop.min_s,
        max_s=stop.max_s,
        adaptive=stop.adaptive,
        warmup_min_s=full.min_s,
        warmup_target_n=warm.target_n if calibrated else None,
    )


def run(args: argparse.Namespace) -> protocol.RunnerResult:
    import numpy as np

    if args.threads <= 0:
        # an explicit count, recorded in the row, rather than each runtime's own default
        args.threads = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    env_start = environment()
    probe_before = throttle.throttle_probe(np)
    mem = None if args.no_memory else memory.MemoryProbe(model_path=args.model)
    loaded = mem.loaded if mem is not None else None
    if args.format == "pte":
        # its pybindings import torch (seconds): not part of loading the program
        import runner_pte

        runner_pte.import_runtime()
        if loaded is not None:
            loaded()
    t0 = time.perf_counter_ns()
    if args.format == "onnx":
        providers = [p for p in args.providers.split(",") if p]
        runner: Any = OrtRunner(args.model, args.threads, providers, np, loaded)
    elif args.format == "torch":
        runner = runner_torch.TorchRunner(args.model, args.threads, np, make_inputs, loaded)
    elif args.format == "pte":
        runner = runner_pte.ExecuTorchRunner(args.model, args.threads, np, make_inputs)
    else:
        runner = LiteRtRunner(args.model, args.threads, np, loaded)
    load_ms = (time.perf_counter_ns() - t0 - (mem.loaded_ns if mem else 0)) / 1e6
    tensor_bytes = None
    if mem is not None:
        tensor_bytes = memory.runtime_tensor_bytes(runner)
        mem.init()  # resets the high-water mark: from here it is the inferences'
    stop, warm = rules(args, accelerated=runner.accelerated)
    measured = measure(runner, stop, warm)
    if mem is not None:
        mem.end()
    outputs = runner.outputs()
    result = protocol.RunnerResult(
        runtime=runner.runtime,
        runtime_version=runner.version,
        provider=runner.provider,
        threads=args.threads,
        python=platform.python_version(),
        load_ms=load_ms,
        rule=rule_of(stop, warm),
        outputs_finite=bool(all(np.isfinite(o).all() for o in outputs if o.dtype.kind == "f")),
        output_shapes=[[int(d) for d in o.shape] for o in outputs],
        memory=_memory_result(mem, tensor_bytes) if mem is not None else None,
        **measured,
    )
    if args.profile_runs > 0:
        # LiteRT keeps its profile in memory; ORT and ExecuTorch write a file the host pulls
        workdir = args.workdir or (
            tempfile.mkdtemp(prefix=protocol.PROFILE_TMP_PREFIX)
            if args.format in ("onnx", "pte")
            else ""
        )
        try:
            result.profile = profile_pass.profile_agreeing(
                functools.partial(_profile, runner, args.profile_runs, workdir, args.profile_max_s),
                profile_pass.median_or_none(result.samples_ms),
                args.profile_max_s if isinstance(runner, (OrtRunner, LiteRtRunner)) else 0.0,
            )
        except Exception as exc:  # a profiler failure must not lose the timing
            result.profile = protocol.Profile(error=f"{type(exc).__name__}: {exc}")
    # the runtime's thread pool, left alive, would spin on the cores the probe needs and read as
    # throttling: the session goes first, as it did not exist yet for the probe before
    del runner, outputs
    gc.collect()
    result.probe_before_ms = probe_before
    result.probe_after_ms = throttle.throttle_probe(np)
    result.env_start = env_start
    result.env_end = environment()
    return result


def _profile(runner: Any, runs: int, workdir: str, max_s: float) -> protocol.Profile:
    """The per-operator pass, time-capped where the runtime's runner takes a cap (the torch and
    pte runners run their ``runs`` in full)."""
    if isinstance(runner, (OrtRunner, LiteRtRunner)):
        return runner.profile(runs, workdir, max_s)
    return runner.profile(runs, workdir)


def _memory_result(mem: Any, tensor_bytes: int | None) -> protocol.Memory:
    fields = mem.fields()
    if "error" in fields:
        return protocol.Memory(**fields)
    source = protocol.MEM_VMHWM if mem.reset else protocol.MEM_RSS_DELTA
    return protocol.Memory(source=source, tensor_bytes=tensor_bytes, **fields)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
        code = 0
    except Exception as exc:  # report every failure as a result, so the host can record why
        result = protocol.RunnerResult(
            ok=False,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=5),
        )
        code = 3
    sys.stdout.write("\n" + protocol.encode(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
