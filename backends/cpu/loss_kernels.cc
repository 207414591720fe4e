// Native loops for the loss and its gradient, and argmax, on NC [N,C] logits:
//   softmax_cross_entropy:          loss[n] = log sum_c exp(x[n,c] - m) - (x[n,label[n]] - m),  m = max_c x[n,c]
//   softmax_cross_entropy_backward: diff_logits[n,c] = diff_loss[n] * (softmax(x[n])[c] - [c == label[n]])
//   argmax:                         dst[n] = the first c with the largest x[n,c]
// Labels are checked before anything is read through them: a label outside [0, C) is an
// InvalidArgument naming the node, the label and the sample (never clamped, never read out
// of bounds). Row sums accumulate in double: C can be large and the loss of a confident,
// correct prediction is a small difference of large terms.
// Source: ir/ops/loss.cc (Gluon SoftmaxCrossEntropyLoss with sparse labels).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

Status CheckLabels(const StepDesc& desc, const int32_t* label, int64_t n, int64_t classes) {
  for (int64_t i = 0; i < n; ++i) {
    if (label[i] < 0 || label[i] >= classes) {
      return InvalidOperands(desc, "label " + std::to_string(label[i]) + " of sample " + std::to_string(i) +
                                       " is outside [0, " + std::to_string(classes) + ")");
    }
  }
  return OkStatus();
}

float RowMax(const float* x, int64_t c) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < c; ++j) m = std::max(m, x[j]);
  return m;
}

// sum_j exp(x[j] - m).
double RowExpSum(const float* x, int64_t c, float m) {
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(x[j] - m));
  return s;
}

Status SoftmaxCrossEntropyKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  int64_t n = desc.inputs[0].dims[0], c = desc.inputs[0].dims[1];
  const auto* x = static_cast<const float*>(ctx.Ptr(desc.inputs[0]));
  const auto* label = static_cast<const int32_t*>(ctx.Ptr(desc.inputs[1]));
  auto* loss = static_cast<float*>(ctx.Ptr(desc.outputs[0]));
  RETURN_IF_ERROR(CheckLabels(desc, label, n, c));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * c;
    float m = RowMax(row, c);
    loss[i] = static_cast<float>(std::log(RowExpSum(row, c, m)) - static_cast<double>(row[label[i]] - m));
  }
  return OkStatus();
}

Status SoftmaxCrossEntropyBackwardKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  int64_t n = desc.inputs[1].dims[0], c = desc.inputs[1].dims[1];
  const auto* diff_loss = static_cast<const float*>(ctx.Ptr(desc.inputs[0]));
  const auto* x = static_cast<const float*>(ctx.Ptr(desc.inputs[1]));
  const auto* label = static_cast<const int32_t*>(ctx.Ptr(desc.inputs[2]));
  auto* dx = static_cast<float*>(ctx.Ptr(desc.outputs[0]));
  RETURN_IF_ERROR(CheckLabels(desc, label, n, c));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * c;
    float* out = dx + i * c;
    float m = RowMax(row, c);
    auto scale = static_cast<float>(diff_loss[i] / RowExpSum(row, c, m));  // diff_loss / sum exp
    for (int64_t j = 0; j < c; ++j) out[j] = std::exp(row[j] - m) * scale;
    out[label[i]] -= diff_loss[i];
  }
  return OkStatus();
}

Status ArgmaxKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  int64_t n = desc.inputs[0].dims[0], c = desc.inputs[0].dims[1];
  const auto* x = static_cast<const float*>(ctx.Ptr(desc.inputs[0]));
  auto* dst = static_cast<int32_t*>(ctx.Ptr(desc.outputs[0]));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j) {
      if (row[j] > row[best]) best = j;  // strict: the first maximum wins
    }
    dst[i] = static_cast<int32_t>(best);
  }
  return OkStatus();
}

// logits NC [N,C] and label N [N] (and a [N] operand such as loss or diff_loss).
Status CheckLossShapes(const StepDesc& desc, const TensorRef& logits, const TensorRef& label, const TensorRef& per_n) {
  RETURN_IF_ERROR(CheckRank(desc, logits, "logits", 2));
  Shape n{logits.dims[0]};
  if (label.dims != n || per_n.dims != n) return InvalidOperands(desc, "logits, label and the per-sample operand disagree on N");
  return OkStatus();
}

}  // namespace

StatusOr<NativeFn> NativeSoftmaxCrossEntropy(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckLossShapes(desc, desc.inputs[0], desc.inputs[1], desc.outputs[0]));
  return NativeFn(SoftmaxCrossEntropyKernel);
}

StatusOr<NativeFn> NativeSoftmaxCrossEntropyBackward(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckLossShapes(desc, desc.inputs[1], desc.inputs[2], desc.inputs[0]));
  if (desc.outputs[0].dims != desc.inputs[1].dims) return InvalidOperands(desc, "diff_logits must have the shape of logits");
  return NativeFn(SoftmaxCrossEntropyBackwardKernel);
}

StatusOr<NativeFn> NativeArgmax(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckRank(desc, desc.inputs[0], "src", 2));
  if (desc.outputs[0].dims != Shape{desc.inputs[0].dims[0]}) return InvalidOperands(desc, "dst must have shape [N]");
  return NativeFn(ArgmaxKernel);
}

}  // namespace kiln::backends::cpu::internal
