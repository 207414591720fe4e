// ONNX export: a kiln network's inference graph written as an ONNX model (opset 13), for
// ONNX Runtime, TensorRT, OpenVINO and the others. The network is traced in inference mode
// for `input_shape` (as Predictor does), and every IR node of the trace becomes ONNX nodes
// (onnx/onnx_pb.h through libonnx 1.12; the file passes onnx::checker::check_model):
//   conv2d -> Conv (+ Add for a residual input, + the fused activation), pool2d ->
//   MaxPool / AveragePool (kiln's padding as explicit pads), dense -> Gemm (transB=1),
//   batch_norm -> BatchNormalization, relu / sigmoid / tanh / leaky_relu / elu / selu /
//   softplus / hard_sigmoid / hard_swish (as x * HardSigmoid(1/6, 1/2)) / clip / silu (x *
//   Sigmoid) / exp / log / sqrt / abs / neg, add / sub / mul / div / maximum / minimum,
//   concat, split, transpose, reshape, softmax / log_softmax, reduce_sum / reduce_mean.
// Parameters become initializers under their kiln names (e.g. "conv1.weight"), graph
// constants initializers too. The input is "data" and the output "output", as in artifacts;
// with `dynamic_batch` the first dim is the symbolic "N" (the graph must then not bake the
// batch into a Reshape: kiln's Flatten is written as Flatten, other reshapes keep their
// shapes and an error names a reshape whose first dim is the batch).
#pragma once

#include <string>

#include "base/status.h"
#include "graph/nn.h"

namespace kiln::onnx_import {

struct ExportOptions {
  bool dynamic_batch = true;
  std::string producer = "kiln";
};

// Writes the model to `path` (atomically: a temp file, then rename). Errors: the trace's
// errors (shapes, uninitialized parameters); Unimplemented naming the node and op kiln
// cannot express in ONNX (e.g. gelu, dropout in training mode); Internal when the written
// model fails onnx::checker (a bug); InvalidArgument naming the path on an I/O failure.
Status ExportOnnx(graph::nn::Block& net, const Shape& input_shape, const std::string& path,
                  const ExportOptions& options = {});

}  // namespace kiln::onnx_import
