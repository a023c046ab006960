"""Models whose memory is known by construction, for the runner's memory probe.

Each takes a 1x1 float input and returns a 1x1 float, so inputs and outputs cost nothing; in
between it holds ``n`` float32 values either as one constant (``constant``) or as one tensor made
at run time (``intermediate``). A twin with a small ``n`` has the same graph: the difference in
peak memory between the two is at least ``4 * n`` bytes.

Built straight from the formats' schemas (``onnx.helper``; LiteRT's generated flatbuffer classes),
in milliseconds, without torch or a converter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Bytes per float32 element.
FLOAT_BYTES = 4


def onnx_model(path: Path, n: int, kind: str) -> Path:
    """``x (1x1) -> Add(x, C[1, n]) | Expand(x, [1, n]) -> ReduceSum -> (1x1)``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    if kind == "constant":
        big = numpy_helper.from_array(np.full((1, n), 0.5, dtype=np.float32), "c")
        first = helper.make_node("Add", ["x", "c"], ["t"])
    elif kind == "intermediate":
        big = numpy_helper.from_array(np.array([1, n], dtype=np.int64), "shape")
        first = helper.make_node("Expand", ["x", "shape"], ["t"])
    else:
        raise ValueError(f"kind {kind!r}: constant or intermediate")
    reduce = helper.make_node("ReduceSum", ["t", "axes"], ["y"], keepdims=1)
    graph = helper.make_graph([first, reduce], f"mem_{kind}", [x], [y], [big, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def tflite_model(path: Path, n: int, kind: str) -> Path:
    """``x (1x1) -> ADD(x, C[1, n]) | TILE(x, [1, n]) -> SUM(axis 1) -> (1x1)``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    ops = s.BuiltinOperator
    first_op = ops.ADD if kind == "constant" else ops.TILE
    if kind not in ("constant", "intermediate"):
        raise ValueError(f"kind {kind!r}: constant or intermediate")
    codes = []
    for code in (first_op, ops.SUM):
        oc = s.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = code
        oc.version = 1
        codes.append(oc)

    def buffer(data: np.ndarray | None = None) -> s.BufferT:
        b = s.BufferT()
        if data is not None:
            b.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
        return b

    def tensor(name: str, shape: list[int], ttype: int, buf: int) -> s.TensorT:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buf
        return t

    f32, i32 = s.TensorType.FLOAT32, s.TensorType.INT32
    if kind == "constant":
        second = buffer(np.full((1, n), 0.5, dtype=np.float32))
        second_tensor = tensor("c", [1, n], f32, 2)
    else:
        second = buffer(np.array([1, n], dtype=np.int32))
        second_tensor = tensor("multiples", [2], i32, 2)
    buffers = [
        buffer(),
        buffer(),
        second,
        buffer(),
        buffer(np.array([1], dtype=np.int32)),
        buffer(),
    ]
    tensors = [
        tensor("x", [1, 1], f32, 1),
        second_tensor,
        tensor("t", [1, n], f32, 3),
        tensor("axis", [1], i32, 4),
        tensor("y", [1, 1], f32, 5),
    ]
    first = s.OperatorT()
    first.opcodeIndex, first.inputs, first.outputs = 0, [0, 1], [2]
    if kind == "constant":
        first.builtinOptionsType = s.BuiltinOptions.AddOptions
        first.builtinOptions = s.AddOptionsT()
    else:
        first.builtinOptionsType = s.BuiltinOptions.TileOptions
        first.builtinOptions = s.TileOptionsT()
    total = s.OperatorT()
    total.opcodeIndex, total.inputs, total.outputs = 1, [2, 3], [4]
    total.builtinOptionsType = s.BuiltinOptions.ReducerOptions
    options = s.ReducerOptionsT()
    options.keepDims = True
    total.builtinOptions = options
    graph = s.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs = tensors, [0], [4]
    graph.operators = [first, total]
    model = s.ModelT()
    model.version = 3
    model.operatorCodes, model.buffers, model.subgraphs = codes, buffers, [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path
