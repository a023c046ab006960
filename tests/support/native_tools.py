"""Stand-ins for TFLite ``benchmark_model`` and ``onnxruntime_perf_test`` on an emulated device.

No x86-64 Linux build of either tool can be installed here: neither is on PyPI (the
``ai-edge-litert`` and ``onnxruntime`` wheels ship libraries, not the tools), Debian packages
neither, and nothing else may be downloaded. So a test installs this stand-in where the profile
says the tool is (e.g. the emulated phone's ``/data/local/tmp``). It plays the binary honestly:

* it checks the command line the harness gave it the way the real tool would take it (only flags
  the tool has, in its syntax; numbers where numbers go; the model file exists and is a TFLite
  flatbuffer / an ONNX protobuf) and exits 64 with the reason when anything is off, so a wrong
  command fails the test instead of passing unnoticed;
* it records every command line and the CPUs it was allowed to run on (``<tool>.calls``, one
  JSON object per line) for the test to read;
* it prints a real captured log from ``tests/fixtures/native`` (see SOURCES.md there), ``ERROR:`` and
  ORT error lines on stderr as the tools do, and exits with the configured status;
* ``onnxruntime_perf_test -p PREFIX`` writes a real captured JSON profile to
  ``PREFIX_<timestamp>.json`` as the tool does.

What it cannot do is time anything: every invocation prints the same captured numbers, whatever
``--num_runs``/``-r`` asked for. Tests therefore check the flags in ``.calls`` and the numbers
against the captured log.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: A benchmark_model failure, built from the strings of its source (tests/runners/
#: test_benchmark_model.py does the same): the captures hold no failure.
BM_FAILED = """\
STARTING!
Graph: [/data/local/tmp/m.tflite]
Loaded model /data/local/tmp/m.tflite
ERROR: Didn't find op for builtin opcode 'CONV_2D' version '5'
ERROR: Registration failed.
Failed to initialize the interpreter
Benchmarking failed.
"""

#: The stand-in program: standard library only, configured by ``<itself>.json``.
STAND_IN = r"""
import datetime, json, os, re, sys

HERE = os.path.abspath(sys.argv[0])
CONFIG = json.load(open(HERE + ".json"))
TOOL = CONFIG["tool"]


def bad(reason):
    sys.stderr.write(f"stand-in {TOOL}: bad command line: {reason}\n")
    sys.exit(64)


def benchmark_model(args):
    ints = {"num_threads": 1, "num_runs": 1, "warmup_runs": 0}
    floats = {"min_secs", "max_secs", "warmup_min_secs"}
    bools = {"enable_op_profiling", "use_xnnpack", "report_peak_memory_footprint"}
    flags = {}
    for arg in args:
        m = re.fullmatch(r"--([a-z_]+)=(.*)", arg)
        if m is None:
            bad(f"{arg!r} is not --flag=value")
        name, value = m.groups()
        if name in flags:
            bad(f"--{name} given twice")
        if name in ints:
            if not re.fullmatch(r"\d+", value) or int(value) < ints[name]:
                bad(f"--{name}={value} is not an integer >= {ints[name]}")
        elif name in floats:
            try:
                if float(value) < 0:
                    raise ValueError
            except ValueError:
                bad(f"--{name}={value} is not a non-negative number")
        elif name in bools:
            if value not in ("true", "false"):
                bad(f"--{name}={value} is not true or false")
        elif name != "graph":
            bad(f"unknown flag --{name}")
        flags[name] = value
    graph = flags.get("graph")
    if not graph:
        bad("--graph is required")
    if not os.path.isfile(graph):
        bad(f"--graph {graph} does not exist")
    with open(graph, "rb") as fh:
        if fh.read(8)[4:8] != b"TFL3":
            bad(f"--graph {graph} is not a TFLite flatbuffer")
    profiling = flags.get("enable_op_profiling") == "true"
    return CONFIG["profiling_log"] if profiling else CONFIG["log"]


def perf_test(args):
    with_value = {"-m", "-r", "-x", "-p", "-e"}
    alone = {"-I", "-s"}
    opts, positional = {}, []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in with_value:
            if i + 1 >= len(args):
                bad(f"{arg} needs a value")
            opts[arg] = args[i + 1]
            i += 2
        elif arg in alone:
            opts[arg] = ""
            i += 1
        elif arg.startswith("-"):
            bad(f"unknown option {arg}")
        else:
            positional.append(arg)
            i += 1
    if opts.get("-m") != "times":
        bad("-m times is expected (the default duration mode runs 600 s)")
    for key in ("-r", "-x"):
        if key in opts and (not opts[key].isdigit() or int(opts[key]) < 1):
            bad(f"{key} {opts[key]} is not a positive integer")
    if "-I" not in opts:
        bad("-I is needed: there is no test_data_set folder beside the model")
    if len(positional) != 1:
        bad(f"one model path expected, got {positional}")
    model = positional[0]
    if not os.path.isfile(model):
        bad(f"model {model} does not exist")
    with open(model, "rb") as fh:
        if fh.read(1) != b"\x08":
            bad(f"model {model} is not an ONNX protobuf")
    if "-p" in opts and CONFIG.get("profile_json"):
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        with open(CONFIG["profile_json"], encoding="utf-8") as src:
            text = src.read()
        with open(f"{opts['-p']}_{stamp}.json", "w", encoding="utf-8") as out:
            out.write(text)
    return CONFIG["log"]


with open(HERE + ".calls", "a", encoding="utf-8") as calls:
    cpus = sorted(os.sched_getaffinity(0))  # what taskset left this process
    calls.write(json.dumps({"argv": sys.argv[1:], "cpus": cpus}) + "\n")
log = benchmark_model(sys.argv[1:]) if TOOL == "benchmark_model" else perf_test(sys.argv[1:])
with open(log, encoding="utf-8") as fh:
    for line in fh:
        err = line.startswith(("ERROR: ", "FATAL: ")) or "[E:onnxruntime" in line
        stream = sys.stderr if err else sys.stdout
        stream.write(line)
        stream.flush()
sys.exit(CONFIG.get("exit", 0))
"""


def install_stand_in(
    path: Path,
    tool: str,
    log: Path,
    *,
    profiling_log: Path | None = None,
    profile_json: Path | None = None,
    exit_status: int = 0,
) -> Path:
    """Install the stand-in for ``tool`` at ``path`` (a file in the device sandbox).

    ``log`` is printed for a timing run, ``profiling_log`` for ``--enable_op_profiling=true``;
    ``profile_json`` is what perf_test's ``-p`` writes. Calling it again reconfigures the tool.
    """
    if tool not in ("benchmark_model", "onnxruntime_perf_test"):
        raise ValueError(f"no stand-in for {tool}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{STAND_IN}", encoding="utf-8")
    path.chmod(0o755)
    config: dict[str, Any] = {
        "tool": tool,
        "log": str(log),
        "profiling_log": str(profiling_log or log),
        "profile_json": str(profile_json) if profile_json else None,
        "exit": exit_status,
    }
    Path(f"{path}.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def calls(path: Path) -> list[dict[str, Any]]:
    """``{"argv": [...], "cpus": [...]}`` of every run of the stand-in at ``path``, in order."""
    record = Path(f"{path}.calls")
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
