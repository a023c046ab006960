"""What ONNX Runtime's profiler adds to each node it records, measured on the device.

With ``enable_profiling`` every node's kernel is bracketed by timestamps and an event record, and
that fixed cost lands inside the node's recorded time. On a model of many small nodes the summed
operator times then exceed the unprofiled inference (1.2-1.4x on shufflenet and mobilenet_v3 on
this project's VM). The cost is calibrated here on a chain of K cheap nodes (``Add`` of a
constant on a 1x8 tensor), profiled and timed without the profiler, at two lengths:

    excess(K) = median over runs of the summed kernel times  -  median unprofiled run time
              = K * (profiler cost per node - executor cost per node)  +  fixed per-run terms,

so ``(excess(K2) - excess(K1)) / (K2 - K1)`` is the amount by which a recorded node's time
overstates its share of an unprofiled inference; the host subtracts it once per call from every
ORT operator row (``parse/op_join``). The fixed terms (the Python call, binding, run set-up)
cancel in the difference.

The chain is written as ONNX protobuf bytes by hand (``chain_model``): this folder runs on devices
with only the standard library, numpy and the runtime, without the ``onnx`` package. Standard
library only; Python 3.8 at runtime.
"""

from __future__ import annotations

import bisect
import json
import os
import statistics
import struct
import time
from typing import Any

#: The two chain lengths: long enough that the per-node term dominates the per-run ones, short
#: enough that a profiled run of the longer stays ~1 ms.
SHORT_CHAIN = 20
LONG_CHAIN = 120
#: Timed runs per session, after ``CALIBRATION_WARMUP`` untimed ones: the medians of 60 runs of
#: ~0.1-1 ms repeat to ~0.3 us per node here (3 us measured), and the whole calibration costs ~1 s.
CALIBRATION_RUNS = 60
CALIBRATION_WARMUP = 10
#: ONNX's IR version and default-domain opset of the chain: old enough for any runtime in use.
IR_VERSION = 7
OPSET = 13
#: TensorProto.FLOAT.
ONNX_FLOAT = 1
#: The chain's tensor: a handful of floats, so each Add is the executor's minimum of work.
CHAIN_WIDTH = 8
#: Suffix of the profile event that times a node's kernel.
KERNEL_SUFFIX = "_kernel_time"


# ------------------------------------------------------------------------- protobuf by hand


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str) -> bytes:
    return _bytes_field(number, value.encode("utf-8"))


def _value_info(name: str, dims: list[int]) -> bytes:
    shape = b"".join(_bytes_field(1, _int_field(1, d)) for d in dims)  # TensorShapeProto.dim
    tensor = _int_field(1, ONNX_FLOAT) + _bytes_field(2, shape)  # TypeProto.Tensor
    return _text(1, name) + _bytes_field(2, _bytes_field(1, tensor))  # ValueInfoProto


def chain_model(length: int) -> bytes:
    """An ONNX model ``y = x + 1 + 1 + ... (length Adds)`` on a 1 x CHAIN_WIDTH float input."""
    if length < 1:
        raise ValueError(f"a chain needs at least one node, not {length}")
    nodes = b""
    previous = "x"
    for i in range(length):
        out = "y" if i == length - 1 else f"t{i}"
        node = _text(1, previous) + _text(1, "one") + _text(2, out) + _text(3, f"add{i}")
        nodes += _bytes_field(1, node + _text(4, "Add"))  # GraphProto.node
        previous = out
    one = (
        _int_field(1, 1)  # dims [1]
        + _int_field(2, ONNX_FLOAT)
        + _text(8, "one")
        + _bytes_field(9, struct.pack("<f", 1.0))  # raw_data
    )
    graph = (
        nodes
        + _text(2, "profiler_calibration_chain")
        + _bytes_field(5, one)  # initializer
        + _bytes_field(11, _value_info("x", [1, CHAIN_WIDTH]))
        + _bytes_field(12, _value_info("y", [1, CHAIN_WIDTH]))
    )
    opset = _text(1, "") + _int_field(2, OPSET)
    return (
        _int_field(1, IR_VERSION)
        + _text(2, "benchharness")
        + _bytes_field(7, graph)
        + _bytes_field(8, opset)
    )


# ------------------------------------------------------------------------- the calibration


def kernel_sums_us(events: list[dict[str, Any]], skip_runs: int) -> list[float]:
    """Per ``model_run`` (after the first ``skip_runs``): its nodes' kernel times summed, in us."""
    runs = sorted(
        (e for e in events if e.get("name") == "model_run" and "dur" in e),
        key=lambda e: float(e["ts"]),
    )[skip_runs:]
    kernels = sorted(
        (float(e["ts"]), float(e["dur"]))
        for e in events
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith(KERNEL_SUFFIX)
    )
    starts = [ts for ts, _ in kernels]
    sums = []
    for run in runs:
        start, end = float(run["ts"]), float(run["ts"]) + float(run["dur"])
        lo, hi = bisect.bisect_left(starts, start), bisect.bisect_right(starts, end)
        sums.append(sum(dur for _, dur in kernels[lo:hi]))
    return sums


def _session(ort: Any, model: bytes, threads: int, providers: list[str], prefix: str | None) -> Any:
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    if prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = prefix
    return ort.InferenceSession(model, sess_options=opts, providers=providers)


def _excess_us(
    ort: Any, np: Any, length: int, threads: int, providers: list[str], workdir: str
) -> float:
    """Summed profiled kernel time minus the unprofiled run time of a chain, medians, in us."""
    model = chain_model(length)
    feeds = {"x": np.zeros((1, CHAIN_WIDTH), dtype=np.float32)}
    plain = _session(ort, model, threads, providers, None)
    for _ in range(CALIBRATION_WARMUP):
        plain.run(None, feeds)
    times = []
    for _ in range(CALIBRATION_RUNS):
        t0 = time.perf_counter_ns()
        plain.run(None, feeds)
        times.append((time.perf_counter_ns() - t0) / 1e3)
    del plain
    profiled = _session(ort, model, threads, providers, os.path.join(workdir, "ort_chain"))
    for _ in range(CALIBRATION_WARMUP + CALIBRATION_RUNS):
        profiled.run(None, feeds)
    path = profiled.end_profiling()
    try:
        with open(path, encoding="utf-8") as fh:
            events = json.load(fh)
    finally:
        os.remove(path)
    sums = kernel_sums_us(events, CALIBRATION_WARMUP)
    if not sums:
        raise RuntimeError("the calibration profile holds no model_run with kernel events")
    return statistics.median(sums) - statistics.median(times)


def node_cost_us(ort: Any, np: Any, threads: int, providers: list[str], workdir: str) -> float:
    """Microseconds a recorded node's profiled time overstates its share of an inference (>= 0)."""
    short = _excess_us(ort, np, SHORT_CHAIN, threads, providers, workdir)
    long = _excess_us(ort, np, LONG_CHAIN, threads, providers, workdir)
    return max(0.0, (long - short) / (LONG_CHAIN - SHORT_CHAIN))
