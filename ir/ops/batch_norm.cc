// Batch normalization over the channel axis 1 of src [N, C, ...] (Ioffe & Szegedy 2015),
// MXNet 1.9 semantics (GLUON_SEMANTICS.md section 10; apache/mxnet
// src/operator/nn/batch_norm.cc), with oneDNN's operand names (dev guide "Batch
// Normalization": src, scale = gamma, shift = beta, mean, variance):
//   batch_norm(src, scale, shift, mean, variance) -> dst        (inference, or training with
//       use_global_stats): dst = (x - mean) / sqrt(variance + epsilon) * scale + shift.
//   batch_norm_training(src, scale, shift) -> dst, mean, variance: the statistics of the
//       batch per channel over m = N*H*W elements, mean = sum(x)/m and the biased
//       variance = sum((x - mean)^2)/m (what normalizes, and what MXNet folds into its
//       running variance; PyTorch folds the unbiased one, see GLUON_SEMANTICS.md).
//   batch_norm_backward(diff_dst, src, scale, shift, mean, variance) -> diff_src,
//       diff_scale, diff_shift (shift unused, as oneDNN's backward binds it), with x^ = (x - mean) * invstd, invstd = 1/sqrt(variance + epsilon):
//         use_global_stats=0 (statistics of the batch): diff_src = (dy - mean(dy)
//             - x^ * mean(dy * x^)) * invstd * scale;
//         use_global_stats=1 (constant statistics): diff_src = dy * invstd * scale;
//         diff_scale = sum(dy * x^), diff_shift = sum(dy) (both modes).
//   moving_average(average, value) -> average_out = momentum * average + (1 - momentum) *
//       value: the running statistics' update inside the compiled step (Gluon momentum 0.9).
// batch_norm may carry activation="relu" (passes/fusion.h at inference: dst = relu(batch
// norm), oneDNN's fuse_norm_relu flag); it then has no gradient rule.
#include <cmath>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

Status VerifyEpsilon(const InferCtx& c) {
  double eps = c.attrs().GetFloat("epsilon", 1e-5);
  if (!(eps > 0)) return c.Error("epsilon must be > 0, got " + std::to_string(eps));
  std::string act = c.attrs().GetString("activation", "");
  if (!act.empty() && act != "relu") return c.Error("activation must be \"relu\" or absent, got \"" + act + "\"");
  return OkStatus();
}

// Checks src (input `data`) is f32 of rank >= 2 and inputs [first, last] are f32 [C].
Status CheckChannelOperands(const InferCtx& c, int data, int first, int last) {
  RETURN_IF_ERROR(ops::CheckDType(c, data, DType::kF32));
  if (c.input(data).rank() < 2) return c.Error("src must have rank >= 2 with channels on axis 1");
  int64_t channels = c.input(data).shape[1];
  for (int i = first; i <= last && i < c.num_inputs(); ++i) {
    RETURN_IF_ERROR(ops::CheckDType(c, i, DType::kF32));
    if (c.input(i).shape != Shape{channels}) {
      return c.Error("per-channel operands must be [" + std::to_string(channels) + "] (src's axis 1)");
    }
  }
  return OkStatus();
}

TensorType ChannelType(int64_t channels) { return TensorType{DType::kF32, {channels}, "C"}; }

// Per-channel walk over src [N, C, rest...]: f(c, flat index).
template <typename F>
void ForEachInChannel(const Shape& shape, F f) {
  int64_t n = shape[0], ch = shape[1];
  int64_t inner = 1;
  for (size_t i = 2; i < shape.size(); ++i) inner *= shape[i];
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t c = 0; c < ch; ++c) {
      for (int64_t k = 0; k < inner; ++k) f(c, (b * ch + c) * inner + k);
    }
  }
}

// mean and biased variance per channel (two passes, double).
void BatchStats(const RefTensor& src, std::vector<double>& mean, std::vector<double>& var) {
  int64_t ch = src.shape[1];
  double m = static_cast<double>(src.size()) / static_cast<double>(ch);
  mean.assign(static_cast<size_t>(ch), 0.0);
  var.assign(static_cast<size_t>(ch), 0.0);
  ForEachInChannel(src.shape, [&](int64_t c, int64_t i) { mean[static_cast<size_t>(c)] += src[i]; });
  for (auto& v : mean) v /= m;
  ForEachInChannel(src.shape, [&](int64_t c, int64_t i) {
    double d = src[i] - mean[static_cast<size_t>(c)];
    var[static_cast<size_t>(c)] += d * d;
  });
  for (auto& v : var) v /= m;
}

void Normalize(const RefTensor& src, const RefTensor& scale, const RefTensor& shift, const std::vector<double>& mean,
               const std::vector<double>& var, double eps, bool relu, RefTensor& dst) {
  ForEachInChannel(src.shape, [&](int64_t c, int64_t i) {
    auto k = static_cast<size_t>(c);
    double y = (src[i] - mean[k]) / std::sqrt(var[k] + eps) * scale[c] + shift[c];
    dst[i] = relu && !(y > 0) ? 0.0 : y;
  });
}

Attrs BackwardAttrs(const Attrs& forward, bool global_stats) {
  Attrs a;
  a.Set("epsilon", forward.GetFloat("epsilon", 1e-5));
  a.Set("use_global_stats", int64_t{global_stats ? 1 : 0});
  return a;
}

// The gradient rule of both forward ops: the backward op gives all three gradients.
Status BatchNormGrad(GradCtx& g, bool global_stats) {
  if (!g.NeedsGrad(0) && !g.NeedsGrad(1) && !g.NeedsGrad(2)) return OkStatus();
  ValueId mean = global_stats ? g.Input(3) : g.Output(1);
  ValueId var = global_stats ? g.Input(4) : g.Output(2);
  ASSIGN_OR_RETURN(std::vector<ValueId> d,
                   g.Emit("batch_norm_backward", {g.OutputGrad(0), g.Input(0), g.Input(1), g.Input(2), mean, var},
                          BackwardAttrs(g.attrs(), global_stats), "backward"));
  for (int i = 0; i < 3; ++i) {
    if (g.NeedsGrad(i)) g.SetInputGrad(i, d[static_cast<size_t>(i)]);
  }
  return OkStatus();
}

}  // namespace

const OpDef& BatchNormDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "batch_norm";
    d.input_names = {"src", "scale", "shift", "mean", "variance"};
    d.output_names = {"dst"};
    d.float_attrs = {"epsilon"};
    d.string_attrs = {"activation"};
    d.inplace_on_input0 = true;  // oneDNN normalizes in place
    d.batch_rule = BatchRule::kPerSampleData;
    d.verify_attrs = VerifyEpsilon;
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(CheckChannelOperands(c, 0, 1, 4));
      return std::vector<TensorType>{c.input(0)};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.attrs().GetString("activation", "").empty()) return ops::NoGradForFused("batch_norm", g.attrs());
      return BatchNormGrad(g, /*global_stats=*/true);
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      Normalize(*in[0], *in[1], *in[2], in[3]->data, in[4]->data, node.attrs.GetFloat("epsilon", 1e-5),
                node.attrs.GetString("activation", "") == "relu", out[0]);
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& BatchNormTrainingDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "batch_norm_training";
    d.input_names = {"src", "scale", "shift"};
    d.output_names = {"dst", "mean", "variance"};
    d.float_attrs = {"epsilon"};
    d.verify_attrs = VerifyEpsilon;  // batch_rule kMixes: the statistics mix the samples
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(CheckChannelOperands(c, 0, 1, 2));
      int64_t ch = c.input(0).shape[1];
      return std::vector<TensorType>{c.input(0), ChannelType(ch), ChannelType(ch)};
    };
    d.grad = [](GradCtx& g) -> Status { return BatchNormGrad(g, /*global_stats=*/false); };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      std::vector<double> mean, var;
      BatchStats(*in[0], mean, var);
      Normalize(*in[0], *in[1], *in[2], mean, var, node.attrs.GetFloat("epsilon", 1e-5), false, out[0]);
      out[1].data = mean;
      out[2].data = var;
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& BatchNormBackwardDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "batch_norm_backward";
    d.input_names = {"diff_dst", "src", "scale", "shift", "mean", "variance"};
    d.output_names = {"diff_src", "diff_scale", "diff_shift"};
    d.float_attrs = {"epsilon"};
    d.int_attrs = {"use_global_stats"};
    d.inplace_on_input0 = true;  // diff_src over diff_dst
    d.verify_attrs = VerifyEpsilon;
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(CheckChannelOperands(c, 1, 2, 5));
      if (c.input(0).shape != c.input(1).shape) return c.Error("diff_dst must have src's shape");
      int64_t ch = c.input(1).shape[1];
      return std::vector<TensorType>{c.input(1), ChannelType(ch), ChannelType(ch)};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& dy = *in[0];
      const RefTensor& x = *in[1];
      const RefTensor& scale = *in[2];
      const RefTensor& mean = *in[4];
      const RefTensor& var = *in[5];
      double eps = node.attrs.GetFloat("epsilon", 1e-5);
      bool global = node.attrs.GetInt("use_global_stats", 0) != 0;
      int64_t ch = x.shape[1];
      double m = static_cast<double>(x.size()) / static_cast<double>(ch);
      std::vector<double> invstd(static_cast<size_t>(ch)), sum_dy(static_cast<size_t>(ch), 0.0),
          sum_dy_xhat(static_cast<size_t>(ch), 0.0);
      for (int64_t c = 0; c < ch; ++c) invstd[static_cast<size_t>(c)] = 1.0 / std::sqrt(var[c] + eps);
      auto xhat = [&](int64_t c, int64_t i) { return (x[i] - mean[c]) * invstd[static_cast<size_t>(c)]; };
      ForEachInChannel(x.shape, [&](int64_t c, int64_t i) {
        sum_dy[static_cast<size_t>(c)] += dy[i];
        sum_dy_xhat[static_cast<size_t>(c)] += dy[i] * xhat(c, i);
      });
      ForEachInChannel(x.shape, [&](int64_t c, int64_t i) {
        auto k = static_cast<size_t>(c);
        double g = dy[i];
        if (!global) g -= (sum_dy[k] + xhat(c, i) * sum_dy_xhat[k]) / m;
        out[0][i] = g * invstd[k] * scale[c];
      });
      for (int64_t c = 0; c < ch; ++c) {
        out[1][c] = sum_dy_xhat[static_cast<size_t>(c)];
        out[2][c] = sum_dy[static_cast<size_t>(c)];
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& MovingAverageDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "moving_average";
    d.input_names = {"average", "value"};
    d.output_names = {"average_out"};
    d.float_attrs = {"momentum"};
    d.inplace_on_input0 = true;
    d.verify_attrs = [](const InferCtx& c) -> Status {
      double momentum = c.attrs().GetFloat("momentum", 0.9);
      if (!(momentum >= 0 && momentum <= 1)) return c.Error("momentum must be in [0, 1]");
      return OkStatus();
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
      RETURN_IF_ERROR(ops::CheckDType(c, 1, DType::kF32));
      if (c.input(0).shape != c.input(1).shape) return c.Error("average and value must have the same shape");
      return std::vector<TensorType>{c.input(0)};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      double momentum = node.attrs.GetFloat("momentum", 0.9);
      for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = momentum * (*in[0])[i] + (1 - momentum) * (*in[1])[i];
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
