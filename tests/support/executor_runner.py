"""A stand-in for ExecuTorch's ``executor_runner`` on an emulated device, running the real runtime.

No build of ``executor_runner`` can be installed here: the ``executorch`` wheel ships the runtime
libraries and Python bindings, not the example binaries, and building them needs ExecuTorch's
source tree and a CMake build of its third-party code. So a test installs this stand-in where the
profile says the tool is. Unlike the benchmark_model / perf_test stand-ins it does not replay a
captured log: it runs the program for real through ExecuTorch's pybindings (the same runtime and
XNNPACK delegate the binary links), so its times are measured and its ETDump is a real one that
the Inspector reads against the artifact's ETRecord. It plays the binary's interface honestly:

* gflags' command line: ``--flag=value`` or ``--flag value``, only the flags the tool has
  (``--etdump_path`` only when configured as an event-tracer build), numbers where numbers go,
  an ``ERROR: unknown command line flag`` exit 1 otherwise, and a model that must exist and be
  an ExecuTorch program;
* inputs of ones, prepared before each execution outside its timer, as the tool does;
* its ``ET_LOG`` lines (the strings of ``examples/portable/executor_runner/executor_runner.cpp``
  in its newest form: ``Model loaded in``, ``Iteration i of N``, ``Model executed successfully N
  time(s) in T ms.``, ``ETDump written to file``);
* every command line and the CPUs it may use recorded in ``<tool>.calls``, one JSON object a line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STAND_IN = r"""
import json, os, sys, time

HERE = os.path.abspath(sys.argv[0])
CONFIG = json.load(open(HERE + ".json"))
START = time.monotonic()
STRINGS = {"model_path", "etdump_path", "method_name", "print_output", "inputs", "output_file"}
INTS = {"num_executions": 1, "cpu_threads": -1}


def log(level, line, msg):
    t = time.monotonic() - START
    stamp = "%02d:%02d:%09.6f" % (t // 3600, (t // 60) % 60, t % 60)
    stream = sys.stderr if level == "E" else sys.stdout
    stream.write(f"{level} {stamp} executorch:executor_runner.cpp:{line}] {msg}\n")
    stream.flush()


def flag_error(msg):
    sys.stderr.write(f"ERROR: {msg}\n")
    sys.exit(1)


def parse(args):
    known = set(STRINGS) | set(INTS)
    if not CONFIG.get("event_tracer"):
        known.discard("etdump_path")
    flags, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            flag_error(f"extra command line argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if name not in known:
            flag_error(f"unknown command line flag '{name}'")
        if not eq:
            if i + 1 >= len(args):
                flag_error(f"flag '{name}' is missing its argument")
            value, i = args[i + 1], i + 1
        if name in INTS:
            try:
                number = int(value)
            except ValueError:
                flag_error(f"illegal value '{value}' specified for int32 flag '{name}'")
            if number < INTS[name]:
                flag_error(f"'{name}' must be at least {INTS[name]}, not {number}")
        flags[name] = value
        i += 1
    return flags


with open(HERE + ".calls", "a", encoding="utf-8") as calls:
    calls.write(json.dumps({"argv": sys.argv[1:], "cpus": sorted(os.sched_getaffinity(0))}) + "\n")
flags = parse(sys.argv[1:])
model = flags.get("model_path", "model.pte")
executions = int(flags.get("num_executions", "1"))
threads = int(flags.get("cpu_threads", "-1"))
etdump = flags.get("etdump_path")

import torch
from executorch.extension.pybindings import portable_lib as et

pool = threads if threads > 0 else len(os.sched_getaffinity(0))
log("I", 388, f"Resetting threadpool with num threads = {pool}")
et._unsafe_reset_threadpool(pool)
if not os.path.isfile(model):
    log("E", 448, f"FileDataLoader::from() failed: 0x22")
    sys.exit(134)
with open(model, "rb") as fh:
    if fh.read(8)[4:6] != b"ET":
        log("E", 465, f"Failed to parse model file {model}")
        sys.exit(1)
before = time.perf_counter_ns()
program = et._load_program(model, enable_etdump=bool(etdump), debug_buffer_size=0)
log("I", 468, f"Model file {model} is loaded.")
method_name = flags.get("method_name") or program.get_method_name(0)
log("I", 477, f"Using method {method_name}")
method = program.load_method(method_name)
log("I", 601, "Model loaded in %f ms." % ((time.perf_counter_ns() - before) / 1e6))
meta = method.method_meta()
dtypes = {0: torch.uint8, 1: torch.int8, 3: torch.int32, 4: torch.int64, 6: torch.float32}
inputs = [
    torch.ones(tuple(meta.input_tensor_meta(i).sizes()), dtype=dtypes[meta.input_tensor_meta(i).dtype()])
    for i in range(meta.num_inputs())
]
total = 0
for i in range(executions):
    method.set_inputs(inputs)
    t0 = time.perf_counter_ns()
    method.execute()
    elapsed = time.perf_counter_ns() - t0
    total += elapsed
    log("I", 742, "Iteration %d of %d: %f ms" % (i + 1, executions, elapsed / 1e6))
log("I", 752, "Model executed successfully %d time(s) in %f ms." % (executions, total / 1e6))
outputs = method.get_outputs()
log("I", 758, "%d outputs: " % len(outputs))
for i, out in enumerate(outputs):
    print(f"OutputX {i}: tensor(sizes={list(out.shape)}, [...])")
if etdump:
    program.write_etdump_result_to_file(etdump, etdump + ".debug")
    if os.path.exists(etdump + ".debug"):
        os.remove(etdump + ".debug")
    log("I", 260, f"ETDump written to file '{etdump}'.")
"""


def install_executor_runner(path: Path, *, event_tracer: bool = True) -> Path:
    """Install the stand-in at ``path``; ``event_tracer`` False plays a build without ETDump."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{STAND_IN}", encoding="utf-8")
    path.chmod(0o755)
    Path(f"{path}.json").write_text(json.dumps({"event_tracer": event_tracer}), encoding="utf-8")
    return path


def calls(path: Path) -> list[dict[str, Any]]:
    """``{"argv": [...], "cpus": [...]}`` of every run of the stand-in at ``path``, in order."""
    record = Path(f"{path}.calls")
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
