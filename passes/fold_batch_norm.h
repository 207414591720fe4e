// Batch-norm folding at inference (the standard deployment rewrite: TensorRT, ONNX
// Runtime's "Conv BatchNormalization fusion", torch.fx's fuse_conv_bn_eval).
#pragma once

#include "passes/pass.h"

namespace kiln::passes {

// Folds an inference batch_norm into the convolution that feeds it:
//   y = batch_norm(conv2d(x, W [, b]), scale, shift, mean, variance) {epsilon}
//   ->  y = conv2d(x, W', b')  with, per output channel o (= the batch norm's channel),
//       s[o]  = scale[o] / sqrt(variance[o] + epsilon)
//       W'[o] = W[o] * s[o]                       (W is OIHW; groups and depthwise alike)
//       b'[o] = (b[o] - mean[o]) * s[o] + shift[o]   (b = 0 when the convolution has none)
// W', b' are computed by ordinary IR nodes (add, sqrt, div, reshape, mul, sub, neg) on the
// parameters, placed right before the convolution; with constant parameters the lowering
// hoists them into prepack steps (codegen/hoist_constants.h), so a session computes them
// once and each run executes one convolution, which then fuses a following add (FuseSum)
// and relu (FuseActivation) into one oneDNN primitive. A batch_norm that already carries
// activation="relu" moves it onto the convolution.
//
// Applies when: the convolution has no fused activation and no residual input, its output
// has one reader (the batch_norm) and is not a graph output; the weight, bias and all four
// per-channel operands are parameters (ValueKind::kParameter) that no update writes. So it
// is for inference graphs whose parameters are constant for the executable (frozen
// Predictor, artifacts): compiler::Compile adds it at -O2 for Mode::kInference with
// CompileRequest::constant_params. The math is the batch_norm's in real arithmetic; in
// float32 the results differ by rounding (tests/passes/fold_batch_norm_test.cc bounds it).
class FoldBatchNorm final : public Pass {
 public:
  std::string_view Name() const override { return "fold_batch_norm"; }
  StatusOr<bool> Run(ir::Graph& graph) override;
};

}  // namespace kiln::passes
