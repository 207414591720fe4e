#!/usr/bin/python3
"""Writes the seed corpus of the ONNX importer's fuzzer (tools/fuzz/seeds/onnx), small
models built with Debian's python3-onnx 1.12 helpers: a CNN with a Shape/Gather/Concat/
Reshape chain, Gemm, pooling with ceil_mode and pads, batch norm, the activations, Slice/
Split/Concat/Squeeze/Unsqueeze/Transpose, Pad, Clip with inputs, an opset-9 model (version
converter), and external data.

    python3 tools/fuzz/make_onnx_seeds.py tools/fuzz/seeds/onnx
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def init(name, shape, rng):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def save(model, path):
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])

    # 1. conv -> bn -> relu -> maxpool(ceil) -> shape chain -> reshape -> gemm
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], group=1, name="conv"),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"], epsilon=1e-5, name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, name="pool"),
        helper.make_node("Shape", ["p"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0, name="gather"),
        helper.make_node("Concat", ["n", "minus_one"], ["t"], axis=0, name="concat"),
        helper.make_node("Reshape", ["p", "t"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    inits = [init("w", [4, 2, 3, 3], rng), init("b", [4], rng), init("g", [4], rng), init("be", [4], rng),
             init("m", [4], rng), numpy_helper.from_array(np.full([4], 0.7, np.float32), "v"),
             init("fw", [3, 36], rng), init("fb", [3], rng), ints("zero", [0]), ints("minus_one", [-1])]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    g = helper.make_graph(nodes, "cnn", [x], [y], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(out, "cnn13.onnx"))
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]), os.path.join(out, "cnn11.onnx"))

    # 2. activations and elementwise ops on the conv output
    acts = [("LeakyRelu", {"alpha": 0.1}), ("Elu", {}), ("Selu", {}), ("Softplus", {}), ("Softsign", {}), ("HardSigmoid", {}),
            ("HardSwish", {}), ("Sigmoid", {}), ("Tanh", {})]
    nodes = [helper.make_node("Conv", ["x", "w"], ["a0"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", name="conv")]
    for i, (op, attrs) in enumerate(acts):
        nodes.append(helper.make_node(op, [f"a{i}"], [f"a{i + 1}"], name=f"act{i}", **attrs))
    k = len(acts)
    nodes += [
        helper.make_node("PRelu", [f"a{k}", "slope"], ["pr"], name="prelu"),
        helper.make_node("Clip", ["pr", "lo", "hi"], ["cl"], name="clip"),
        helper.make_node("Mul", ["cl", "half"], ["mu"], name="mul"),
        helper.make_node("Sub", ["mu", "half"], ["su"], name="sub"),
        helper.make_node("Div", ["su", "half"], ["di"], name="div"),
        helper.make_node("AveragePool", ["di"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=1, name="avg"),
        helper.make_node("GlobalAveragePool", ["ap"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["fl"], axis=1, name="flatten"),
        helper.make_node("Softmax", ["fl"], ["y"], axis=1, name="softmax"),
    ]
    inits = [init("w", [4, 2, 3, 3], rng), init("slope", [4, 1, 1], rng),
             numpy_helper.from_array(np.array(-1.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    g = helper.make_graph(nodes, "acts", [x], [y], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), os.path.join(out, "activations.onnx"))

    # 3. data movement: split, slice, concat, transpose, squeeze/unsqueeze, pad, constant
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["s0", "s1"], axis=1, name="split"),
        helper.make_node("Slice", ["s0", "st", "en", "ax"], ["sl"], name="slice"),
        helper.make_node("Pad", ["sl", "pads"], ["pd"], mode="constant", name="pad"),
        helper.make_node("Concat", ["pd", "s1"], ["cc"], axis=1, name="concat"),
        helper.make_node("Transpose", ["cc"], ["tr"], perm=[0, 1, 3, 2], name="transpose"),
        helper.make_node("GlobalMaxPool", ["tr"], ["gm"], name="gmp"),
        helper.make_node("Squeeze", ["gm", "axes"], ["sq"], name="squeeze"),
        helper.make_node("Unsqueeze", ["sq", "axes1"], ["un"], name="unsqueeze"),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array([2.0], np.float32)), name="k"),
        helper.make_node("Mul", ["un", "k"], ["mk"], name="scale"),
        helper.make_node("ReduceMean", ["mk"], ["rm"], axes=[2], keepdims=0, name="mean"),
        helper.make_node("Dropout", ["rm"], ["y"], name="dropout"),
    ]
    inits = [ints("sizes", [1, 1]), ints("st", [1]), ints("en", [5]), ints("ax", [2]),
             ints("pads", [0, 0, 1, 0, 0, 0, 1, 0]), ints("axes", [3]), ints("axes1", [2])]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 1])
    g = helper.make_graph(nodes, "movement", [x], [y], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(out, "movement.onnx"))

    # 4. opset 9 (Flatten + Gemm + MatMul)
    x9 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1, name="flatten"),
             helper.make_node("MatMul", ["f", "mw"], ["mm"], name="matmul"),
             helper.make_node("Gemm", ["mm", "gw", "gb"], ["y"], transB=0, alpha=0.5, beta=2.0, name="gemm")]
    inits = [init("mw", [72, 5], rng), init("gw", [5, 3], rng), init("gb", [3], rng)]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph(nodes, "opset9", [x9], [y], inits)
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)]), os.path.join(out, "opset9.onnx"))


if __name__ == "__main__":
    main()
