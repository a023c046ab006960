"""Real per-operator times from the LiteRT runtime's own profiler, through ctypes.

Self-contained on purpose (stdlib, numpy, ctypes and ``ai_edge_litert`` only; nothing from
``benchharness``): it is shipped to devices next to the device-side runner. It is long (~1100
lines) for the same reason: the ctypes structures and signatures of the C API, the session that
uses them and the alignment of XNNPACK's operators to TFLite nodes travel as one file, which the
host also imports for that alignment.

Route
-----
The Python ``Interpreter`` and ``CompiledModel`` of ``ai_edge_litert`` expose no profiler, so this
module drives the CompiledModel C API of ``libLiteRt.so`` (the library in the ``ai-edge-litert``
wheel, or the one next to this file on a device) directly:

* profiling is switched on with an opaque ``"runtime_options_string"`` option whose payload is the
  TOML line ``enable_profiling = true``; the thread count and kernel mode go in the ``"xnnpack"``
  (CPU) opaque option the same way. The ``Lrt*Options`` helpers that build these payloads are not
  exported by the library, so the payloads are written here.
* with profiling on, the runtime attaches its profiler to the TFLite interpreter *before* the
  XNNPACK delegate is applied, so XNNPACK builds its runtime with per-operator timing and, after
  every invoke, reports one event per XNNPACK operator (``"Convolution (NHWC, F32) IGEMM"``,
  ``"Fully Connected (NC, F32) GEMM"``, ...). Those are XNNPACK's internal operators *after* its
  own rewrites (a 1x1 CONV_2D runs as a GEMM, a PAD is folded into the next convolution), not the
  TFLite graph's nodes. The delegate node itself is not timed (XNNPACK declares per-operator
  profiling), so nothing is counted twice.
* ops XNNPACK does not take run on TFLite's kernels and are reported as operator events that carry
  the TFLite node index and subgraph index.

Joining rows to the TFLite graph (``op_index``)
-----------------------------------------------
* ``op_index_source == "event"``: the profiler event carried the TFLite node index (ops run by
  TFLite kernels, including every op with ``kernel_mode="builtin"``/``"reference"``). Exact.
* ``"aligned"`` / ``"aligned-weak"``: XNNPACK events carry only XNNPACK's own operator index
  (``xnnpack_op_index``, restarting at 0 in each delegate partition). XNNPACK creates its operators
  in TFLite node order, so the sequence of XNNPACK operators is aligned monotonically (dynamic
  programming) to the sequence of delegated TFLite nodes by operator kind. ``"aligned"`` means the
  kinds agree (Convolution -> CONV_2D, ...); ``"aligned-weak"`` means the operator kind is unknown
  to the table or disagrees and only its position placed it. TFLite nodes that got no XNNPACK
  operator of their own (e.g. PAD fused into the next convolution, clamps fused into the previous
  one) are listed in ``absorbed_op_indices`` of the row that absorbed them.
* ``op_index`` always indexes the operators of ``graph_subgraph_index`` (the first signature's
  subgraph) except for ``"event"`` rows, whose ``subgraph_index`` is the one the event names.

Times are what the runtime measured: XNNPACK reports whole microseconds per operator (truncated),
TFLite kernel events likewise. Nothing here is estimated; if no per-operator events come back the
call fails instead of guessing.

Limitations
-----------
* Op rows cover operator execution only. LiteRT's buffer registration/sync, the interpreter's
  invoke glue and XNNPACK's per-invoke setup are in ``run_ms`` / ``invoke_us`` but in no row;
  ``ops_total_us`` (per run) shows how much of each run the rows account for, and
  ``run_events_us`` (per run) is the runtime's own time of the whole run: its ``LiteRT::Run[...]``
  phases plus the invoke, the counterpart of ORT's ``model_run`` (benchmarks/overhead.py).
* Delegate partitions are told apart by XNNPACK's operator index restarting at 0. A partition
  invoked several times in one run (a delegated loop body) is counted as several partitions.
* Only the first signature is profiled, with static input shapes.
* ``libLiteRt.so`` must match the C ABI of LiteRT 2.x (struct layouts above); a mismatch is
  detected from nonsense event types and raised, not silently decoded.
"""

from __future__ import annotations

import bisect
import ctypes
import importlib.util
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

# --------------------------------------------------------------------------------------------
# Constants (values from the LiteRT C API headers, litert/c/*.h)
# --------------------------------------------------------------------------------------------

LIB_ENV_VAR = "BENCHHARNESS_LITERT_LIB"  # explicit path wins: devices keep the library anywhere
LIB_FILENAME = "libLiteRt.so"  # the runtime library name in the wheel and on Android
_LITERT_PACKAGE = "ai_edge_litert"  # the wheel package whose directory holds libLiteRt.so

_STATUS_OK = 0  # kLiteRtStatusOk
_STATUS_NAMES = {  # LiteRtStatus values, for readable errors
    1: "InvalidArgument",
    2: "MemoryAllocationFailure",
    3: "RuntimeFailure",
    4: "MissingInputTensor",
    5: "Unsupported",
    6: "NotFound",
    7: "TimeoutExpired",
    8: "WrongVersion",
    9: "Unknown",
    10: "AlreadyExists",
}
_HW_ACCELERATOR_CPU = 1  # kLiteRtHwAcceleratorCpu: XNNPACK (or TFLite kernels) on the CPU
_LOCK_MODE_WRITE = 1  # kLiteRtTensorBufferLockModeWrite: we only fill input buffers
_SIGNATURE_INDEX = 0  # the harness exports single-signature models; profile the first one
_TENSOR_MAX_RANK = 8  # LITERT_TENSOR_MAX_RANK: fixed array size inside LiteRtLayout
_RANK_BITS = 0x7F  # LiteRtLayout packs rank into the low 7 bits of its first word

_RUNTIME_OPTIONS_ID = b"runtime_options_string"  # identifier the runtime looks up for its TOML
_CPU_OPTIONS_ID = b"xnnpack"  # identifier of the CPU accelerator's TOML options
KERNEL_MODES = ("xnnpack", "builtin", "reference")  # values the CPU option "kernel_mode" accepts

# LiteRtProfilerEventType bits (litert_profiler_event.h)
_EV_DEFAULT = 1  # generic scoped event (the interpreter's "Invoke", LiteRT's run phases)
_EV_OPERATOR = 2  # a TFLite node ran on TFLite kernels; metadata1 = node, metadata2 = subgraph
_EV_DELEGATE_OP = 4  # a delegate-internal operator; metadata1 = the delegate's own op index
_EV_DELEGATE_PROFILED_OP = 8  # same, as XNNPACK reports it (elapsed already measured)
_KNOWN_EVENT_TYPES = frozenset(1 << i for i in range(9))  # every defined type, for ABI checks
_KNOWN_EVENT_SOURCES = frozenset({0, 1, 2})  # ProfiledEventSource values, for ABI checks
_INVOKE_TAG = "Invoke"  # tag of the interpreter's whole-invoke DEFAULT event
_RUN_PHASE_PREFIX = "LiteRT::Run"  # DEFAULT events of LiteRT's own run phases around the invoke

_RANDOM_SEED = 0  # fixed so repeated profiles see identical inputs
# the kernel's CPU lists XNNPACK's cpuinfo reads at start (Linux)
_CPU_LISTS = ("/sys/devices/system/cpu/possible", "/sys/devices/system/cpu/present")
_MAX_ALIGN_CELLS = 20_000_000  # DP keeps 2 bytes per cell: caps alignment memory at ~40 MB

# LiteRtElementType -> numpy dtype (litert_model_types.h)
_ELEMENT_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    9: np.dtype(np.int8),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    13: np.dtype(np.uint64),
    16: np.dtype(np.uint32),
    17: np.dtype(np.uint16),
}
_CUSTOM_OP_CODE = 32  # kLiteRtOpCodeTflCustom: the op's name is its custom code instead

# XNNPACK operator kind (its name before " (") -> the TFLite builtins it can come from.
_XNN_KIND_TO_TFLITE: dict[str, frozenset[str]] = {
    "convolution": frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"}),
    "deconvolution": frozenset({"TRANSPOSE_CONV"}),
    # XNNPACK runs 1x1 convolutions and FULLY_CONNECTED as GEMMs.
    "fully connected": frozenset({"FULLY_CONNECTED", "CONV_2D", "BATCH_MATMUL"}),
    "batch matrix multiply": frozenset({"BATCH_MATMUL", "FULLY_CONNECTED"}),
    "add": frozenset({"ADD"}),
    "subtract": frozenset({"SUB"}),
    "multiply": frozenset({"MUL"}),
    "divide": frozenset({"DIV"}),
    "maximum": frozenset({"MAXIMUM"}),
    "minimum": frozenset({"MINIMUM"}),
    "squared difference": frozenset({"SQUARED_DIFFERENCE"}),
    "transpose": frozenset({"TRANSPOSE"}),
    "static reshape": frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}),
    "copy": frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION"}),
    "constant pad": frozenset({"PAD", "PADV2"}),
    "mean": frozenset({"MEAN"}),
    "sum": frozenset({"SUM"}),
    "max": frozenset({"REDUCE_MAX"}),
    "min": frozenset({"REDUCE_MIN"}),
    "global average pooling": frozenset({"MEAN", "AVERAGE_POOL_2D"}),
    "average pooling": frozenset({"AVERAGE_POOL_2D"}),
    "max pooling": frozenset({"MAX_POOL_2D"}),
    "softmax": frozenset({"SOFTMAX"}),
    "clamp": frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "MINIMUM", "MAXIMUM"}),
    "hardswish": frozenset({"HARD_SWISH"}),
    "sigmoid": frozenset({"LOGISTIC"}),
    "tanh": frozenset({"TANH"}),
    "elu": frozenset({"ELU"}),
    "leaky relu": frozenset({"LEAKY_RELU"}),
    "prelu": frozenset({"PRELU"}),
    "gelu": frozenset({"GELU"}),
    "square root": frozenset({"SQRT"}),
    "reciprocal square root": frozenset({"RSQRT"}),
    "square": frozenset({"SQUARE"}),
    "negate": frozenset({"NEG"}),
    "abs": frozenset({"ABS"}),
    "floor": frozenset({"FLOOR"}),
    "ceiling": frozenset({"CEIL"}),
    "exp": frozenset({"EXP"}),
    "log": frozenset({"LOG"}),
    "bankers rounding": frozenset({"ROUND"}),
    "convert": frozenset({"QUANTIZE", "DEQUANTIZE", "CAST"}),
    "resize bilinear": frozenset({"RESIZE_BILINEAR"}),
    "depth to space": frozenset({"DEPTH_TO_SPACE"}),
    "space to depth": frozenset({"SPACE_TO_DEPTH"}),
    "slice": frozenset({"SLICE", "STRIDED_SLICE"}),
    "concatenate": frozenset({"CONCATENATION"}),
    "even split": frozenset({"SPLIT", "SPLIT_V", "UNPACK"}),
}
# TFLite ops XNNPACK fuses into the operator *before* them (output activations).
_ABSORBED_BY_PREVIOUS = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"})
# TFLite ops XNNPACK commonly folds away or into a neighbour: cheap to leave unmatched.
_CHEAP_TO_ABSORB = _ABSORBED_BY_PREVIOUS | frozenset(
    {"PAD", "PADV2", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE", "CAST"}
)
# Alignment scores: a kind match must beat skipping a node, and a mismatch must cost more.
_SCORE_MATCH = 3.0  # operator kind agrees with the node's builtin
_SCORE_UNKNOWN_KIND = 0.0  # kind not in the table: position alone decides
_SCORE_MISMATCH = -3.0  # worse than skipping a node, so kinds are not forced together
_PENALTY_EXTRA_XNN_OP = 1.0  # a second XNNPACK operator for the same TFLite node
_PENALTY_SKIP_CHEAP = 1.0  # leaving a foldable node (PAD, RESHAPE, RELU...) without an operator
_PENALTY_SKIP_OTHER = 2.0  # leaving any other node without an operator


class LiteRtProfilerError(RuntimeError):
    """The LiteRT runtime could not be loaded, or refused a step of the profiling run."""


# --------------------------------------------------------------------------------------------
# C structures (layouts from litert_layout.h, litert_model_types.h, litert_profiler_event.h)
# --------------------------------------------------------------------------------------------


class _Layout(ctypes.Structure):
    # rank (7 bits) and has_strides (1 bit) share one 32-bit word.
    _fields_ = (
        ("rank_and_flags", ctypes.c_uint32),
        ("dimensions", ctypes.c_int32 * _TENSOR_MAX_RANK),
        ("strides", ctypes.c_uint32 * _TENSOR_MAX_RANK),
    )


class _RankedTensorType(ctypes.Structure):
    _fields_ = (("element_type", ctypes.c_int), ("layout", _Layout))


class _MemoryUsage(ctypes.Structure):
    _fields_ = (
        ("total_allocated_bytes", ctypes.c_size_t),
        ("in_use_allocated_bytes", ctypes.c_size_t),
        ("private_footprint_bytes", ctypes.c_size_t),
    )


class _ProfiledEventData(ctypes.Structure):
    _fields_ = (
        ("tag", ctypes.c_char_p),
        ("event_type", ctypes.c_int),
        ("start_timestamp_us", ctypes.c_uint64),
        ("elapsed_time_us", ctypes.c_uint64),
        ("begin_mem_usage", _MemoryUsage),
        ("end_mem_usage", _MemoryUsage),
        ("event_metadata1", ctypes.c_uint64),
        ("event_metadata2", ctypes.c_uint64),
        ("event_source", ctypes.c_int),
    )


_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_PSIZE = ctypes.POINTER(ctypes.c_size_t)

# name -> (argtypes, restype); restype None means the C function returns void.
_SIGNATURES: dict[str, tuple[tuple[Any, ...], Any]] = {
    "LiteRtCreateEnvironment": ((ctypes.c_int, _P, _PP), ctypes.c_int),
    "LiteRtDestroyEnvironment": ((_P,), None),
    "LiteRtCreateModelFromFile": ((_P, ctypes.c_char_p, _PP), ctypes.c_int),
    "LiteRtDestroyModel": ((_P,), None),
    "LiteRtGetNumModelSubgraphs": ((_P, _PSIZE), ctypes.c_int),
    "LiteRtGetModelSubgraph": ((_P, ctypes.c_size_t, _PP), ctypes.c_int),
    "LiteRtGetNumSubgraphOps": ((_P, _PSIZE), ctypes.c_int),
    "LiteRtGetSubgraphOp": ((_P, ctypes.c_size_t, _PP), ctypes.c_int),
    "LiteRtGetOpCode": ((_P, ctypes.POINTER(ctypes.c_int)), ctypes.c_int),
    "LiteRtGetCustomCode": ((_P, ctypes.POINTER(ctypes.c_char_p)), ctypes.c_int),
    "LiteRtGetModelSignature": ((_P, ctypes.c_size_t, _PP), ctypes.c_int),
    "LiteRtGetSignatureSubgraph": ((_P, _PP), ctypes.c_int),
    "LiteRtGetNumSignatureInputs": ((_P, _PSIZE), ctypes.c_int),
    "LiteRtGetNumSignatureOutputs": ((_P, _PSIZE), ctypes.c_int),
    "LiteRtGetSignatureInputTensorByIndex": ((_P, ctypes.c_size_t, _PP), ctypes.c_int),
    "LiteRtGetSignatureOutputTensorByIndex": ((_P, ctypes.c_size_t, _PP), ctypes.c_int),
    "LiteRtGetRankedTensorType": ((_P, ctypes.POINTER(_RankedTensorType)), ctypes.c_int),
    "LiteRtCreateOptions": ((_PP,), ctypes.c_int),
    "LiteRtDestroyOptions": ((_P,), None),
    "LiteRtSetOptionsHardwareAccelerators": ((_P, ctypes.c_int), ctypes.c_int),
    "LiteRtCreateOpaqueOptions": ((ctypes.c_char_p, _P, _P, _PP), ctypes.c_int),
    "LiteRtDestroyOpaqueOptions": ((_P,), None),
    "LiteRtAddOpaqueOptions": ((_P, _P), ctypes.c_int),
    "LiteRtCreateCompiledModel": ((_P, _P, _P, _PP), ctypes.c_int),
    "LiteRtDestroyCompiledModel": ((_P,), None),
    "LiteRtGetCompiledModelInputBufferRequirements": (
        (_P, ctypes.c_size_t, ctypes.c_size_t, _PP),
        ctypes.c_int,
    ),
    "LiteRtGetCompiledModelOutputBufferRequirements": (
        (_P, ctypes.c_size_t, ctypes.c_size_t, _PP),
        ctypes.c_int,
    ),
    "LiteRtCreateManagedTensorBufferFromRequirements": (
        (_P, ctypes.POINTER(_RankedTensorType), _P, _PP),
        ctypes.c_int,
    ),
    "LiteRtDestroyTensorBuffer": ((_P,), None),
    "LiteRtGetTensorBufferPackedSize": ((_P, _PSIZE), ctypes.c_int),
    "LiteRtLockTensorBuffer": ((_P, _PP, ctypes.c_int), ctypes.c_int),
    "LiteRtUnlockTensorBuffer": ((_P,), ctypes.c_int),
    "LiteRtRunCompiledModel": (
        (_P, ctypes.c_size_t, ctypes.c_size_t, _PP, ctypes.c_size_t, _PP),
        ctypes.c_int,
    ),
    "LiteRtCompiledModelGetProfiler": ((_P, _PP), ctypes.c_int),
    "LiteRtStartProfiler": ((_P,), ctypes.c_int),
    "LiteRtStopProfiler": ((_P,), ctypes.c_int),
    "LiteRtResetProfiler": ((_P,), ctypes.c_int),
    "LiteRtGetNumProfilerEvents": ((_P, ctypes.POINTER(ctypes.c_int)), ctypes.c_int),
    "LiteRtGetProfilerEvents": (
        (_P, ctypes.c_int, ctypes.POINTER(_ProfiledEventData)),
        ctypes.c_int,
    ),
}


# --------------------------------------------------------------------------------------------
# Library loading
# --------------------------------------------------------------------------------------------


def _candidate_paths() -> list[str]:
    """Where libLiteRt.so may be, most explicit first."""
    paths: list[str] = []
    explicit = os.environ.get(LIB_ENV_VAR)
    if explicit:
        paths.append(explicit)
    # find_spec locates the wheel without importing it (its import pulls in heavy wrappers).
    spec = importlib.util.find_spec(_LITERT_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        paths.extend(os.path.join(d, LIB_FILENAME) for d in spec.submodule_search_locations)
    # On a device the library is pushed next to this file.
    paths.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), LIB_FILENAME))
    return paths


@dataclass
class _Loaded:
    lib: ctypes.CDLL | None = None
    libc_malloc: Any = None
    libc_free_address: int | None = None
    path: str = ""
    reason: str = ""
    tried: bool = False


_LOADED = _Loaded()


def _load() -> _Loaded:
    """Load libLiteRt.so and libc's allocator once; remember why it failed."""
    if _LOADED.tried:
        return _LOADED
    _LOADED.tried = True
    errors: list[str] = []
    lib: ctypes.CDLL | None = None
    candidates = [p for p in _candidate_paths() if os.path.isfile(p)] or [LIB_FILENAME]
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            _LOADED.path = path
            break
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    if lib is None:
        _LOADED.reason = f"cannot load {LIB_FILENAME} ({'; '.join(errors)})"
        return _LOADED
    missing = [name for name in _SIGNATURES if not hasattr(lib, name)]
    if missing:
        _LOADED.reason = f"{_LOADED.path} lacks the profiler C API: {', '.join(missing)}"
        return _LOADED
    for name, (argtypes, restype) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = list(argtypes)
        fn.restype = restype
    # Option payloads are freed by the runtime through the destructor we hand it: libc free(),
    # so they must come from libc malloc().
    libc = ctypes.CDLL(None)
    if not (hasattr(libc, "malloc") and hasattr(libc, "free")):
        _LOADED.reason = "libc malloc/free not found in the process"
        return _LOADED
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    _LOADED.libc_malloc = libc.malloc
    _LOADED.libc_free_address = ctypes.cast(libc.free, ctypes.c_void_p).value
    _LOADED.lib = lib
    return _LOADED


def available() -> bool:
    """True when libLiteRt.so with the profiler C API can be loaded here."""
    return _load().lib is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False, or None when it is True."""
    loaded = _load()
    return None if loaded.lib is not None else loaded.reason


def library_path() -> str:
    """The libLiteRt.so that was loaded (empty when none)."""
    return _load().path


def _lib() -> ctypes.CDLL:
    loaded = _load()
    if loaded.lib is None:
        raise LiteRtProfilerError(f"LiteRT profiler unavailable: {loaded.reason}")
    return loaded.lib


def _check(status: int, what: str) -> None:
    if status != _STATUS_OK:
        name = _STATUS_NAMES.get(status, str(status))
        raise LiteRtProfilerError(f"{what} failed: kLiteRtStatusError{name}")


# --------------------------------------------------------------------------------------------
# Graph description (op types per subgraph, from the LiteRT model API)
# --------------------------------------------------------------------------------------------


def _builtin_names() -> dict[int, str]:
    """TFLite builtin code -> name, from the schema module the wheel ships."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # the schema needs the flatbuffers package; names then fall back
        return {}
    table = schema.BuiltinOperator
    return {
        value: name
        for name, value in vars(table).items()
        if not name.startswith("_") and isinstance(value, int)
    }


def _read_graph(lib: ctypes.CDLL, model: ctypes.c_void_p) -> tuple[list[list[str]], int]:
    """Op type names of every subgraph, and the index of the profiled signature's subgraph."""
    names = _builtin_names()
    count = ctypes.c_size_t()
    _check(lib.LiteRtGetNumModelSubgraphs(model, ctypes.byref(count)), "LiteRtGetNumModelSubgraphs")
    signature = ctypes.c_void_p()
    _check(
        lib.LiteRtGetModelSignature(model, _SIGNATURE_INDEX, ctypes.byref(signature)),
        "LiteRtGetModelSignature",
    )
    signature_subgraph = ctypes.c_void_p()
    _check(
        lib.LiteRtGetSignatureSubgraph(signature, ctypes.byref(signature_subgraph)),
        "LiteRtGetSignatureSubgraph",
    )
    graph: list[list[str]] = []
    main_index = 0
    for s in range(count.value):
        subgraph = ctypes.c_void_p()
        _check(lib.LiteRtGetModelSubgraph(model, s, ctypes.byref(subgraph)), "GetModelSubgraph")
        if subgraph.value == signature_subgraph.value:
            main_index = s
        num_ops = ctypes.c_size_t()
        _check(lib.LiteRtGetNumSubgraphOps(subgraph, ctypes.byref(num_ops)), "GetNumSubgraphOps")
        types: list[str] = []
        for i in range(num_ops.value):
            op = ctypes.c_void_p()
            _check(lib.LiteRtGetSubgraphOp(subgraph, i, ctypes.byref(op)), "LiteRtGetSubgraphOp")
            code = ctypes.c_int()
            _check(lib.LiteRtGetOpCode(op, ctypes.byref(code)), "LiteRtGetOpCode")
            name = names.get(code.value, f"BUILTIN_{code.value}")
            if code.value == _CUSTOM_OP_CODE:
                custom = ctypes.c_char_p()
                if lib.LiteRtGetCustomCode(op, ctypes.byref(custom)) == _STATUS_OK and custom.value:
                    name = custom.value.decode(errors="replace")
            types.append(name)
        graph.append(types)
    return graph, main_index


# --------------------------------------------------------------------------------------------
# One compiled model with its buffers
# --------------------------------------------------------------------------------------------


@dataclass
class _TensorSpec:
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    tensor_type: _RankedTensorType


def _tensor_spec(lib: ctypes.CDLL, tensor: ctypes.c_void_p, what: str) -> _TensorSpec:
    ranked = _RankedTensorType()
    _check(lib.LiteRtGetRankedTensorType(tensor, ctypes.byref(ranked)), f"type of {what}")
    rank = ranked.layout.rank_and_flags & _RANK_BITS
    shape = tuple(int(ranked.layout.dimensions[i]) for i in range(rank))
    dtype = _ELEMENT_DTYPES.get(ranked.element_type)
    if dtype is None:
        raise LiteRtProfilerError(f"{what} has unsupported element type {ranked.element_type}")
    if any(d < 0 for d in shape):
        raise LiteRtProfilerError(f"{what} has a dynamic shape {shape}; export a static one")
    return _TensorSpec(dtype, shape, ranked)


@dataclass
class _Session:
    """Environment, model, options, compiled model and I/O buffers, destroyed in reverse."""

    lib: ctypes.CDLL
    env: ctypes.c_void_p = field(default_factory=ctypes.c_void_p)
    model: ctypes.c_void_p = field(default_factory=ctypes.c_void_p)
    options: ctypes.c_void_p = field(default_factory=ctypes.c_void_p)
    compiled: ctypes.c_void_p = field(default_factory=ctypes.c_void_p)
    buffers: list[ctypes.c_void_p] = field(default_factory=list)
    inputs: Any = None  # ctypes array of input buffer handles
    outputs: Any = None  # ctypes array of output buffer handles
    num_inputs: int = 0
    num_outputs: int = 0
    input_specs: list[_TensorSpec] = field(default_factory=list)
    graph: list[list[str]] = field(default_factory=list)
    main_subgraph: int = 0

    def close(self) -> None:
        lib = self.lib
        for buf in self.buffers:
            lib.LiteRtDestroyTensorBuffer(buf)
        self.buffers.clear()
        # In this order: the compiled model may refer to the options and the model until it is
        # destroyed.
        for attr, destroy in (
            ("compiled", "LiteRtDestroyCompiledModel"),
            ("options", "LiteRtDestroyOptions"),
            ("model", "LiteRtDestroyModel"),
            ("env", "LiteRtDestroyEnvironment"),
        ):
            handle = getattr(self, attr)
            if handle.value:
                getattr(lib, destroy)(handle)
                setattr(self, attr, ctypes.c_void_p())

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self) -> None:
        _check(
            self.lib.LiteRtRunCompiledModel(
                self.compiled,
                _SIGNATURE_INDEX,
                self.num_inputs,
                self.inputs,
                self.num_outputs,
                self.outputs,
            ),
            "LiteRtRunCompiledModel",
        )


def _cpu_lists_hint() -> str:
    """Why the CPU accelerator may refuse to start here: XNNPACK's cpuinfo needs the kernel's
    CPU lists (a chroot or container without /sys has none), and fails without them."""
    if os.path.exists(_CPU_LISTS[0]) or not os.path.isdir("/proc/self"):
        return ""
    return f" (XNNPACK cannot start: {_CPU_LISTS[0]} is missing, its cpuinfo needs it)"


def _add_toml_option(lib: ctypes.CDLL, options: ctypes.c_void_p, ident: bytes, toml: str) -> None:
    """Attach one opaque option whose payload is a NUL-terminated TOML string."""
    loaded = _load()
    data = toml.encode() + b"\0"
    payload = loaded.libc_malloc(len(data))
    if not payload:
        raise LiteRtProfilerError("malloc failed for an option payload")
    ctypes.memmove(payload, data, len(data))
    opaque = ctypes.c_void_p()
    status = lib.LiteRtCreateOpaqueOptions(
        ident, payload, loaded.libc_free_address, ctypes.byref(opaque)
    )
    if status != _STATUS_OK:
        ctypes.CDLL(None).free(ctypes.c_void_p(payload))  # not handed over: ours to free
        _check(status, f"LiteRtCreateOpaqueOptions({ident.decode()})")
    status = lib.LiteRtAddOpaqueOptions(options, opaque)
    if status != _STATUS_OK:
        lib.LiteRtDestroyOpaqueOptions(opaque)
        _check(status, f"LiteRtAddOpaqueOptions({ident.decode()})")


def _cpu_toml(threads: int | None, kernel_mode: str) -> str:
    lines = []
    if threads is not None:
        lines.append(f"num_threads = {int(threads)}")
    if kernel_mode != "xnnpack":  # leave the runtime's default (XNNPACK) untouched
        lines.append(f'kernel_mode = "{kernel_mode}"')
    return "".join(line + "\n" for line in lines)


def _default_inputs(specs: Sequence[_TensorSpec]) -> list[np.ndarray]:
    rng = np.random.default_rng(_RANDOM_SEED)
    arrays = []
    for spec in specs:
        if spec.dtype.kind == "f":
            arrays.append(rng.standard_normal(spec.shape).astype(spec.dtype))
        else:  # zeros are valid indices, ids and masks alike
            arrays.append(np.zeros(spec.shape, dtype=spec.dtype))
    return arrays


def _open(
    model_path: str,
    *,
    threads: int | None,
    kernel_mode: str,
    profiling: bool,
    input_arrays: Sequence[np.ndarray] | None,
) -> _Session:
    if kernel_mode not in KERNEL_MODES:
        raise ValueError(f"kernel_mode must be one of {KERNEL_MODES}, not {kernel_mode!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, not {threads}")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(model_path)
    lib = _lib()
    session = _Session(lib)
    try:
        _check(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(session.env)), "CreateEnvironment")
        _check(
            lib.LiteRtCreateModelFromFile(
                session.env, os.fsencode(model_path), ctypes.byref(session.model)
            ),
            f"LiteRtCreateModelFromFile({model_path})",
        )
        session.graph, session.main_subgraph = _read_graph(lib, session.model)
        _check(lib.LiteRtCreateOptions(ctypes.byref(session.options)), "LiteRtCreateOptions")
        _check(
            lib.LiteRtSetOptionsHardwareAccelerators(session.options, _HW_ACCELERATOR_CPU),
            "LiteRtSetOptionsHardwareAccelerators",
        )
        if profiling:
            _add_toml_option(lib, session.options, _RUNTIME_OPTIONS_ID, "enable_profiling = true\n")
        cpu_toml = _cpu_toml(threads, kernel_mode)
        if cpu_toml:
            _add_toml_option(lib, session.options, _CPU_OPTIONS_ID, cpu_toml)
        status = lib.LiteRtCreateCompiledModel(
            session.env, session.model, session.options, ctypes.byref(session.compiled)
        )
        try:
            _check(status, "LiteRtCreateCompiledModel")
        except LiteRtProfilerError as exc:
            raise LiteRtProfilerError(f"{exc}{_cpu_lists_hint()}") from None
        _make_buffers(session, input_arrays)
    except BaseException:
        session.close()
        raise
    return session


def _make_buffers(session: _Session, input_arrays: Sequence[np.ndarray] | None) -> None:
    lib = session.lib
    signature = ctypes.c_void_p()
    _check(
        lib.LiteRtGetModelSignature(session.model, _SIGNATURE_INDEX, ctypes.byref(signature)),
        "LiteRtGetModelSignature",
    )
    handles: dict[str, list[ctypes.c_void_p]] = {"Input": [], "Output": []}
    for kind in ("Input", "Output"):
        count = ctypes.c_size_t()
        _check(getattr(lib, f"LiteRtGetNumSignature{kind}s")(signature, ctypes.byref(count)), kind)
        for i in range(count.value):
            tensor = ctypes.c_void_p()
            _check(
                getattr(lib, f"LiteRtGetSignature{kind}TensorByIndex")(
                    signature, i, ctypes.byref(tensor)
                ),
                f"{kind.lower()} tensor {i}",
            )
            spec = _tensor_spec(lib, tensor, f"{kind.lower()} {i}")
            requirements = ctypes.c_void_p()  # owned by the compiled model
            _check(
                getattr(lib, f"LiteRtGetCompiledModel{kind}BufferRequirements")(
                    session.compiled, _SIGNATURE_INDEX, i, ctypes.byref(requirements)
                ),
                f"{kind.lower()} {i} buffer requirements",
            )
            buf = ctypes.c_void_p()
            _check(
                lib.LiteRtCreateManagedTensorBufferFromRequirements(
                    session.env, ctypes.byref(spec.tensor_type), requirements, ctypes.byref(buf)
                ),
                f"{kind.lower()} {i} buffer",
            )
            session.buffers.append(buf)
            handles[kind].append(buf)
            if kind == "Input":
                session.input_specs.append(spec)
    session.num_inputs = len(handles["Input"])
    session.num_outputs = len(handles["Output"])
    session.inputs = (ctypes.c_void_p * max(1, session.num_inputs))(*handles["Input"])
    session.outputs = (ctypes.c_void_p * max(1, session.num_outputs))(*handles["Output"])

    arrays = _default_inputs(session.input_specs) if input_arrays is None else list(input_arrays)
    if len(arrays) != session.num_inputs:
        raise ValueError(f"model takes {session.num_inputs} inputs, got {len(arrays)} arrays")
    for i, (array, spec, buf) in enumerate(
        # no strict=: devices may run Python 3.8/3.9 (the counts were checked just above)
        zip(arrays, session.input_specs, handles["Input"])  # noqa: B905
    ):
        _write_input(lib, buf, np.asarray(array), spec, i)


def _write_input(
    lib: ctypes.CDLL, buf: ctypes.c_void_p, array: np.ndarray, spec: _TensorSpec, index: int
) -> None:
    if array.size != int(np.prod(spec.shape, dtype=np.int64)):
        raise ValueError(
            f"input {index}: shape {array.shape} does not fit model shape {spec.shape}"
        )
    if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
        raise ValueError(f"input {index}: dtype {array.dtype} cannot become {spec.dtype}")
    data = np.ascontiguousarray(array, dtype=spec.dtype)
    packed = ctypes.c_size_t()
    _check(lib.LiteRtGetTensorBufferPackedSize(buf, ctypes.byref(packed)), "buffer size")
    if packed.value != data.nbytes:
        raise ValueError(f"input {index}: {data.nbytes} bytes but the buffer holds {packed.value}")
    address = ctypes.c_void_p()
    _check(lib.LiteRtLockTensorBuffer(buf, ctypes.byref(address), _LOCK_MODE_WRITE), "lock input")
    try:
        ctypes.memmove(address, data.ctypes.data, data.nbytes)
    finally:
        _check(lib.LiteRtUnlockTensorBuffer(buf), "unlock input")


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    tag: str
    event_type: int
    elapsed_us: int
    meta1: int
    meta2: int


def _drain(lib: ctypes.CDLL, profiler: ctypes.c_void_p) -> list[_Event]:
    count = ctypes.c_int()
    _check(lib.LiteRtGetNumProfilerEvents(profiler, ctypes.byref(count)), "GetNumProfilerEvents")
    if count.value <= 0:
        return []
    raw = (_ProfiledEventData * count.value)()
    _check(lib.LiteRtGetProfilerEvents(profiler, count, raw), "LiteRtGetProfilerEvents")
    events = []
    for e in raw:
        # A struct layout mismatch (another libLiteRt ABI) shows as nonsense type/source values.
        if e.event_type not in _KNOWN_EVENT_TYPES or e.event_source not in _KNOWN_EVENT_SOURCES:
            raise LiteRtProfilerError(
                f"unexpected profiler event (type {e.event_type}, source {e.event_source}): "
                f"{library_path()} does not match the ProfiledEventData layout this module expects"
            )
        # Tags are copied now: the profiler owns the strings and a reset may free them.
        tag = e.tag.decode(errors="replace") if e.tag else ""
        events.append(
            _Event(tag, e.event_type, int(e.elapsed_time_us), e.event_metadata1, e.event_metadata2)
        )
    return events


# Key of one profiled op: ("tflite", subgraph, node) or ("xnnpack", partition, xnnpack op index).
if TYPE_CHECKING:  # builtin generics take subscripts at run time from Python 3.9 only
    _OpKey = tuple[str, int, int]


def _op_events(
    events: Sequence[_Event], graph: Sequence[Sequence[str]]
) -> list[tuple[_OpKey, _Event]]:
    """Per-operator events of one run in execution order, each with its op key.

    Delegate events restart their operator index at 0 in each delegate partition, and a TFLite
    kernel event between two partitions separates them too, so partitions are numbered here.
    """
    keyed: list[tuple[_OpKey, _Event]] = []
    partition = -1
    previous_delegate_index: int | None = None
    for e in events:
        if e.event_type == _EV_OPERATOR:
            subgraph, node = int(e.meta2), int(e.meta1)
            if subgraph < len(graph) and node < len(graph[subgraph]):
                keyed.append((("tflite", subgraph, node), e))
            else:  # a delegate kernel node (index past the original graph): would double count
                keyed.append((("delegate-node", subgraph, node), e))
            previous_delegate_index = None
        elif e.event_type in (_EV_DELEGATE_OP, _EV_DELEGATE_PROFILED_OP):
            index = int(e.meta1)
            if previous_delegate_index is None or index <= previous_delegate_index:
                partition += 1
            previous_delegate_index = index
            keyed.append((("xnnpack", partition, index), e))
    return keyed


# --------------------------------------------------------------------------------------------
# Alignment of XNNPACK operators to TFLite nodes
# --------------------------------------------------------------------------------------------


def xnnpack_kind(op_name: str) -> str:
    """XNNPACK operator kind: its name before the parenthesised layout, lower-case."""
    return op_name.split(" (", 1)[0].strip().lower()


def _score(xnn_name: str, tflite_type: str) -> float:
    allowed = _XNN_KIND_TO_TFLITE.get(xnnpack_kind(xnn_name))
    if allowed is None:
        return _SCORE_UNKNOWN_KIND
    return _SCORE_MATCH if tflite_type in allowed else _SCORE_MISMATCH


def kind_matches(xnn_name: str, tflite_type: str) -> bool | None:
    """Whether an XNNPACK operator can come from a node of this TFLite type (None: a kind the
    table does not know)."""
    allowed = _XNN_KIND_TO_TFLITE.get(xnnpack_kind(xnn_name))
    return None if allowed is None else tflite_type in allowed


def align_xnnpack_ops(xnn_names: Sequence[str], tflite_types: Sequence[str]) -> list[int] | None:
    """Monotone assignment of each XNNPACK operator to a TFLite node position, or None.

    Returns, for each XNNPACK operator, the position in ``tflite_types`` it is attributed to.
    Positions never decrease; a TFLite node may get several operators (one op lowered to many) or
    none (folded into a neighbour). The best-scoring assignment under the kind table wins.
    Returns None when there is nothing to align to or the problem is too large to align.
    """
    m, n = len(xnn_names), len(tflite_types)
    if m == 0 or n == 0 or (m + 1) * (n + 1) > _MAX_ALIGN_CELLS:
        return None
    neg = -1e18
    # Score each distinct (operator name, node type) pair once, then gather: graphs repeat a
    # handful of kinds many times.
    type_ids = {t: k for k, t in enumerate(dict.fromkeys(tflite_types))}
    name_ids = {x: k for k, x in enumerate(dict.fromkeys(xnn_names))}
    table = np.array([[_score(x, t) for t in type_ids] for x in name_ids], dtype=np.float64)
    scores = table[np.array([name_ids[x] for x in xnn_names])][
        :, np.array([type_ids[t] for t in tflite_types])
    ]
    skip = np.array(
        [
            _PENALTY_SKIP_CHEAP if t in _CHEAP_TO_ABSORB else _PENALTY_SKIP_OTHER
            for t in tflite_types
        ]
    )
    prefix = np.concatenate(([0.0], np.cumsum(skip)))  # prefix[j] = cost of skipping nodes < j
    # matched[i][j]: best score with i operators placed, the i-th on node j-1.
    # skipped[i][j]: best score with i operators placed and nodes up to j-1 consumed, node j-1
    #                skipped. Choices are kept per cell for the backtrack.
    matched = np.full(n + 1, neg)
    skipped = np.full(n + 1, neg)
    skipped[0] = 0.0
    # Row 0: only skips (all-leading nodes absorbed).
    skipped[1:] = -prefix[1:]
    match_choice = np.zeros((m + 1, n + 1), dtype=np.int8)  # 0 diag<-matched 1 diag<-skipped 2 same
    skip_from_match = np.zeros((m + 1, n + 1), dtype=np.bool_)
    for i in range(m):
        best_prev = np.maximum(matched, skipped)
        new_matched = np.full(n + 1, neg)
        diag = best_prev[:-1] + scores[i]
        new_matched[1:] = diag
        match_choice[i + 1, 1:] = np.where(matched[:-1] >= skipped[:-1], 0, 1)
        same = matched[1:] + scores[i] - _PENALTY_EXTRA_XNN_OP
        take_same = same > new_matched[1:]
        new_matched[1:] = np.where(take_same, same, new_matched[1:])
        match_choice[i + 1, 1:][take_same] = 2
        # skipped[j+1] = max(new_matched[j], skipped[j]) - skip[j], a running max-plus scan.
        lifted = np.maximum.accumulate(new_matched[:-1] + prefix[:-1])
        new_skipped = np.full(n + 1, neg)
        new_skipped[1:] = lifted - prefix[1:]
        skip_from_match[i + 1, 1:] = new_matched[:-1] + prefix[:-1] >= lifted
        matched, skipped = new_matched, new_skipped
    # Backtrack from the better end state.
    assignment = [0] * m
    i, j = m, n
    in_matched = matched[n] >= skipped[n]
    while i > 0:
        if in_matched:
            assignment[i - 1] = j - 1
            choice = match_choice[i, j]
            if choice == 2:
                i -= 1
                in_matched = True
            else:
                i -= 1
                j -= 1
                in_matched = choice == 0
        else:
            from_match = bool(skip_from_match[i, j])
            j -= 1
            in_matched = from_match
    return assignment


def absorbed_nodes(
    assignment: Sequence[int],
    tflite_types: Sequence[str],
    absorbed_by_previous: frozenset[str] = _ABSORBED_BY_PREVIOUS,
) -> dict[int, list[int]]:
    """Positions of nodes without an operator, keyed by the operator (index) that absorbed them.

    A node of a type in ``absorbed_by_previous`` goes to the operator before it (an output
    activation XNNPACK fused), any other to the operator after it."""
    first_op_of: dict[int, int] = {}
    last_op_of: dict[int, int] = {}
    for k, pos in enumerate(assignment):
        first_op_of.setdefault(pos, k)
        last_op_of[pos] = k
    matched_positions = sorted(first_op_of)
    result: dict[int, list[int]] = {}
    for pos, op_type in enumerate(tflite_types):
        if pos in first_op_of:
            continue
        cut = bisect.bisect_left(matched_positions, pos)
        before = matched_positions[cut - 1] if cut > 0 else None
        after = matched_positions[cut] if cut < len(matched_positions) else None
        prefer_previous = op_type in absorbed_by_previous
        if before is not None and (prefer_previous or after is None):
            owner = last_op_of[before]
        elif after is not None:
            owner = first_op_of[after]
        else:
            continue
        result.setdefault(owner, []).append(pos)
    return result


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def measure_run_ms(
    model_path: str,
    *,
    threads: int | None,
    runs: int,
    warmup: int,
    input_arrays: Sequence[np.ndarray] | None = None,
    kernel_mode: str = "xnnpack",
) -> list[float]:
    """End-to-end ms of each run of the same compiled model *without* the profiler attached."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    with _open(
        model_path,
        threads=threads,
        kernel_mode=kernel_mode,
        profiling=False,
        input_arrays=input_arrays,
    ) as session:
        for _ in range(warmup):
            session.run()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run()
            times.append((time.perf_counter() - start) * 1e3)
    return times


def profile_ops(
    model_path: str,
    *,
    threads: int | None,
    runs: int,
    warmup: int,
    input_arrays: list[np.ndarray] | None = None,
    kernel_mode: str = "xnnpack",
    max_s: float | None = None,
    warmup_max_s: float | None = None,
) -> dict[str, Any]:
    """Profile ``runs`` inferences of a .tflite model with LiteRT's profiler; return per-op times.

    ``threads`` None leaves the count to the runtime. ``kernel_mode`` "xnnpack" (the runtime's
    default) reports XNNPACK's operators; "builtin"/"reference" run TFLite's own kernels, whose
    events name exact TFLite nodes. Each op row sums that op's events within a run, then takes the
    median and mean over runs. See the module docstring for how ``op_index`` is obtained.
    ``max_s`` / ``warmup_max_s`` end the profiled runs / the warm-up early once that many seconds
    have passed (after at least one run each), for a device where one inference takes seconds;
    ``len(run_ms)`` and ``warmup_runs`` say how many ran.
    """
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    with _open(
        model_path,
        threads=threads,
        kernel_mode=kernel_mode,
        profiling=True,
        input_arrays=input_arrays,
    ) as session:
        lib = session.lib
        profiler = ctypes.c_void_p()
        _check(
            lib.LiteRtCompiledModelGetProfiler(session.compiled, ctypes.byref(profiler)),
            "LiteRtCompiledModelGetProfiler",
        )
        if not profiler.value:
            raise LiteRtProfilerError("the runtime created no profiler despite enable_profiling")
        # Warm-up runs with the profiler stopped: XNNPACK still times (its flag is fixed at
        # creation) but nothing is recorded.
        warm_start = time.perf_counter()
        warmup_runs = 0
        while warmup_runs < warmup and not _past(warm_start, warmup_max_s, warmup_runs):
            session.run()
            warmup_runs += 1
        per_run_events: list[list[_Event]] = []
        run_ms: list[float] = []
        runs_start = time.perf_counter()
        while len(run_ms) < runs and not _past(runs_start, max_s, len(run_ms)):
            _check(lib.LiteRtResetProfiler(profiler), "LiteRtResetProfiler")
            _check(lib.LiteRtStartProfiler(profiler), "LiteRtStartProfiler")
            start = time.perf_counter()
            session.run()
            run_ms.append((time.perf_counter() - start) * 1e3)
            _check(lib.LiteRtStopProfiler(profiler), "LiteRtStopProfiler")
            per_run_events.append(_drain(lib, profiler))
        graph, main = session.graph, session.main_subgraph
    out = _summarise(per_run_events, run_ms, graph, main, threads, kernel_mode)
    out["warmup_runs"] = warmup_runs
    return out


def _past(start: float, max_s: float | None, done: int) -> bool:
    """Whether a capped loop begun at ``start`` should end: its cap passed, one run done."""
    return max_s is not None and done > 0 and time.perf_counter() - start >= max_s


@dataclass
class _OpTotals:
    """Each op key's events over all runs: summed per run, and counted per run."""

    runs: int
    order: list[_OpKey] = field(default_factory=list)  # first-seen execution order over all runs
    names: dict[_OpKey, str] = field(default_factory=dict)
    sums: dict[_OpKey, list[float]] = field(default_factory=dict)  # per run, microseconds
    counts: dict[_OpKey, list[int]] = field(default_factory=dict)  # events per run

    def add(self, run: int, key: _OpKey, event: _Event) -> None:
        if key not in self.sums:
            self.order.append(key)
            self.names[key] = event.tag
            self.sums[key] = [0.0] * self.runs
            self.counts[key] = [0] * self.runs
        self.sums[key][run] += event.elapsed_us
        self.counts[key][run] += 1


def _op_totals(keyed_runs: Sequence[Sequence[tuple[_OpKey, _Event]]]) -> _OpTotals:
    totals = _OpTotals(runs=len(keyed_runs))
    for run, keyed in enumerate(keyed_runs):
        for key, event in keyed:
            totals.add(run, key, event)
    return totals


@dataclass(frozen=True)
class _XnnpackPlacement:
    """Where XNNPACK's operators sit among the main subgraph's nodes (see the module docstring)."""

    main_types: list[str]  # the main subgraph's op types, by node
    delegated: list[int]  # its nodes no TFLite kernel event claimed: XNNPACK ran them
    rank: dict[_OpKey, int]  # each XNNPACK op's position among the XNNPACK ops
    assignment: list[int] | None  # by rank, an index into ``delegated``; None: not aligned
    absorbed: dict[int, list[int]]  # by rank, indices into ``delegated`` it absorbed


def _place_xnnpack(
    op_keys: Sequence[_OpKey], names: dict[_OpKey, str], graph: list[list[str]], main: int
) -> _XnnpackPlacement:
    main_types = graph[main] if main < len(graph) else []
    # Delegated nodes: main-subgraph nodes no TFLite kernel event claimed.
    kernel_nodes = {k[2] for k in op_keys if k[0] == "tflite" and k[1] == main}
    delegated = [pos for pos in range(len(main_types)) if pos not in kernel_nodes]
    delegated_types = [main_types[p] for p in delegated]
    xnn_keys = [k for k in op_keys if k[0] == "xnnpack"]
    assignment = align_xnnpack_ops([names[k] for k in xnn_keys], delegated_types)
    absorbed = absorbed_nodes(assignment, delegated_types) if assignment else {}
    rank = {k: r for r, k in enumerate(xnn_keys)}
    return _XnnpackPlacement(main_types, delegated, rank, assignment, absorbed)


def _op_row(
    exec_order: int,
    key: _OpKey,
    totals: _OpTotals,
    graph: list[list[str]],
    main: int,
    xnn: _XnnpackPlacement,
) -> dict[str, Any]:
    """One op's row: its times over the runs and where it sits in the TFLite graph."""
    kind, group, index = key
    per_run = totals.sums[key]
    row: dict[str, Any] = {
        "op_name": totals.names[key],
        "calls": statistics.median_low(totals.counts[key]),
        "median_us": _median(per_run),
        "mean_us": float(statistics.fmean(per_run)),
        "min_us": float(min(per_run)),
        "exec_order": exec_order,
    }
    if kind == "tflite":
        row.update(
            op_index=index,
            op_type=graph[group][index],
            subgraph_index=group,
            op_index_source="event",
            executor="tflite",
            absorbed_op_indices=[],
        )
    else:
        row.update(subgraph_index=main, executor="xnnpack", xnnpack_partition=group)
        row["xnnpack_op_index"] = index
        row.update(_xnnpack_node(key, totals.names[key], xnn))
    return row


def _xnnpack_node(key: _OpKey, name: str, xnn: _XnnpackPlacement) -> dict[str, Any]:
    """The TFLite node an XNNPACK operator was aligned to, and the nodes it absorbed."""
    if xnn.assignment is None:
        return {
            "op_index": -1,
            "op_type": xnnpack_kind(name),
            "op_index_source": "unaligned",
            "absorbed_op_indices": [],
        }
    rank = xnn.rank[key]
    node = xnn.delegated[xnn.assignment[rank]]
    strong = _score(name, xnn.main_types[node]) == _SCORE_MATCH
    return {
        "op_index": node,
        "op_type": xnn.main_types[node],
        "op_index_source": "aligned" if strong else "aligned-weak",
        "absorbed_op_indices": [xnn.delegated[p] for p in xnn.absorbed.get(rank, [])],
    }


def _default_events_us(
    per_run_events: Sequence[Sequence[_Event]], wanted: Callable[[str], bool]
) -> list[float]:
    """Per run, the summed time of the generic (DEFAULT) events whose tag is ``wanted``."""
    return [
        float(sum(e.elapsed_us for e in events if e.event_type == _EV_DEFAULT and wanted(e.tag)))
        for events in per_run_events
    ]


def _is_invoke(tag: str) -> bool:
    return tag == _INVOKE_TAG


def _is_run_event(tag: str) -> bool:
    # the runtime's own time of the whole run: its run phases ("LiteRT::Run[buffer
    # registration]", "LiteRT::Run[Buffer sync]") plus the invoke; LiteRT's model_run
    return tag == _INVOKE_TAG or tag.startswith(_RUN_PHASE_PREFIX)


def _summarise(
    per_run_events: Sequence[Sequence[_Event]],
    run_ms: list[float],
    graph: list[list[str]],
    main: int,
    threads: int | None,
    kernel_mode: str,
) -> dict[str, Any]:
    """The profile's JSON: one row per op (delegate nodes apart) and the per-run totals."""
    keyed_runs = [_op_events(events, graph) for events in per_run_events]
    if not any(keyed_runs):
        raise LiteRtProfilerError(
            "the profiler recorded no per-operator events; this libLiteRt build ignores "
            "enable_profiling or its delegate does not report operators"
        )
    totals = _op_totals(keyed_runs)
    op_keys = [k for k in totals.order if k[0] != "delegate-node"]
    if not op_keys:
        raise LiteRtProfilerError(
            "the profiler recorded only delegate kernel nodes, no operator of theirs: the "
            "delegate does not report per-operator events"
        )
    xnn = _place_xnnpack(op_keys, totals.names, graph, main)
    rows = [_op_row(i, key, totals, graph, main, xnn) for i, key in enumerate(op_keys)]
    delegate_nodes = [
        {
            "op_name": totals.names[k],
            "node_index": k[2],
            "subgraph_index": k[1],
            "median_us": _median(totals.sums[k]),
        }
        for k in totals.order
        if k[0] == "delegate-node"
    ]
    # Per run, the time all op rows account for: compare with run_ms to see runtime overhead.
    ops_total_us = [float(sum(totals.sums[k][r] for k in op_keys)) for r in range(totals.runs)]
    return {
        "ops": rows,
        "run_ms": run_ms,
        "ops_total_us": ops_total_us,
        "invoke_us": _default_events_us(per_run_events, _is_invoke),
        "run_events_us": _default_events_us(per_run_events, _is_run_event),
        "source": "litert-profiler",
        "events_per_run": [len(k) for k in keyed_runs],
        "graph_subgraph_index": main,
        "graph_ops": [{"op_index": i, "op_type": t} for i, t in enumerate(xnn.main_types)],
        "delegate_nodes": delegate_nodes,
        "threads": threads,
        "kernel_mode": kernel_mode,
        "timer_resolution_us": 1,
        "library": library_path(),
    }
