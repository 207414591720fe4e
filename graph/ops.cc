#include "graph/ops.h"

#include <algorithm>

namespace kiln::graph::ops {

namespace {
std::vector<int64_t> V(const std::array<int64_t, 2>& a) { return {a[0], a[1]}; }
std::vector<Sym> WithBias(Sym a, Sym b, const std::optional<Sym>& bias) {
  std::vector<Sym> v{a, b};
  if (bias) v.push_back(*bias);
  return v;
}
}  // namespace

StatusOr<Sym> Convolution(Sym data, Sym weight, std::optional<Sym> bias, const ConvArgs& a, const std::string& name) {
  ir::Attrs attrs{{"stride", V(a.stride)}, {"padding_begin", V(a.pad)}, {"padding_end", V(a.pad)}, {"dilation", V(a.dilate)}};
  if (a.groups != 1) attrs.Set("groups", a.groups);
  return data.tracer->Emit("conv2d", WithBias(data, weight, bias), attrs, name);
}

StatusOr<Sym> Pooling(Sym data, const PoolArgs& a, const std::string& name) {
  std::array<int64_t, 2> pad_end = a.pad;
  if (a.ceil_mode != CeilMode::kFloor && data.shape().size() == 4) {
    if (a.pool_type == "avg" && a.count_include_pad) {
      return Unimplemented("pooling \"" + name + "\": ceil_mode average pooling with count_include_pad=true "
                           "(its divisor excludes the ceil padding but not the real padding); use "
                           "count_include_pad=false or ceil_mode=false");
    }
    for (size_t i = 0; i < 2; ++i) {
      int64_t in = data.shape()[i + 2], k = a.kernel[i], s = a.stride[i], p = a.pad[i];
      if (in + 2 * p < k || s < 1) break;  // the pool2d op reports it
      int64_t out = (in + 2 * p - k + s - 1) / s + 1;  // ceil
      if (a.ceil_mode == CeilMode::kCeilPytorch && (out - 1) * s >= in + p) --out;
      pad_end[i] = (out - 1) * s + k - in - p;  // >= p: the last window's extent
      if (pad_end[i] < p) pad_end[i] = p;
    }
  }
  ir::Attrs attrs{{"kind", a.pool_type},          {"kernel", V(a.kernel)},
                  {"stride", V(a.stride)},        {"padding_begin", V(a.pad)},
                  {"padding_end", V(pad_end)},    {"count_include_pad", int64_t{a.count_include_pad ? 1 : 0}}};
  return data.tracer->Emit("pool2d", {data}, attrs, name);
}

StatusOr<Sym> Flatten(Sym x, const std::string& name) {
  const Shape& s = x.shape();
  if (s.empty()) return InvalidArgument("flatten \"" + name + "\": input must have rank >= 1");
  if (s.size() == 2) return x;
  int64_t rest = 1;
  for (size_t i = 1; i < s.size(); ++i) rest *= s[i];
  return Reshape(x, {s[0], rest}, name);
}

StatusOr<Sym> FullyConnected(Sym data, Sym weight, std::optional<Sym> bias, const std::string& name) {
  ASSIGN_OR_RETURN(Sym flat, Flatten(data, name + "_flatten"));
  return data.tracer->Emit("dense", WithBias(flat, weight, bias), {}, name);
}

StatusOr<Sym> Dot(Sym a, Sym b_transposed, const std::string& name) {
  return a.tracer->Emit("dense", {a, b_transposed}, {}, name);
}

StatusOr<Sym> Activation(Sym x, const std::string& act, const std::string& name) {
  const std::string node = name.empty() ? act : name;
  // Gluon's act_type names first, then the ops of the same name.
  if (act == "softrelu") return x.tracer->Emit("softplus", {x}, {}, node);
  if (act == "swish") return x.tracer->Emit("silu", {x}, {}, node);
  if (act == "relu6") return Clip(x, 0, 6, node);
  for (const char* op : {"relu", "sigmoid", "tanh", "elu", "selu", "gelu", "silu", "hard_sigmoid", "hard_swish",
                         "softplus", "softsign", "leaky_relu"}) {
    if (act == op) return x.tracer->Emit(act, {x}, {}, node);
  }
  return InvalidArgument("activation \"" + node + "\": unsupported act_type '" + act +
                         "' (kiln supports relu, sigmoid, tanh, softrelu = softplus, elu, selu, gelu, silu = swish, "
                         "hard_sigmoid, hard_swish, relu6, softsign, leaky_relu)");
}

StatusOr<Sym> LeakyReLU(Sym x, double alpha, const std::string& name) {
  return x.tracer->Emit("leaky_relu", {x}, ir::Attrs{{"alpha", alpha}}, name);
}
StatusOr<Sym> ELU(Sym x, double alpha, const std::string& name) {
  return x.tracer->Emit("elu", {x}, ir::Attrs{{"alpha", alpha}}, name);
}
StatusOr<Sym> Swish(Sym x, double beta, const std::string& name) {
  return x.tracer->Emit("silu", {x}, ir::Attrs{{"beta", beta}}, name);
}
StatusOr<Sym> HardSigmoid(Sym x, double alpha, double beta, const std::string& name) {
  return x.tracer->Emit("hard_sigmoid", {x}, ir::Attrs{{"alpha", alpha}, {"beta", beta}}, name);
}
StatusOr<Sym> Clip(Sym x, double a_min, double a_max, const std::string& name) {
  return x.tracer->Emit("clip", {x}, ir::Attrs{{"a_min", a_min}, {"a_max", a_max}}, name);
}

StatusOr<Sym> Relu(Sym x, const std::string& name) { return Activation(x, "relu", name); }

StatusOr<Sym> Reshape(Sym x, const Shape& shape, const std::string& name) {
  const Shape& in = x.shape();
  auto error = [&](const std::string& why) {
    return InvalidArgument("reshape \"" + name + "\": cannot reshape " + ShapeToString(in) + " with codes " +
                           ShapeToString(shape) + ": " + why);
  };
  // MXNet 1.9 InferReshapeShape (src/operator/tensor/matrix_op-inl.h): a cursor into the
  // input dims advances as codes consume them.
  Shape out;
  size_t src = 0;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t code = shape[i];
    if (code == 0) {
      if (src >= in.size()) return error("code 0 at position " + std::to_string(i) + " has no input dim left");
      out.push_back(in[src++]);
    } else if (code == -1) {
      if (infer >= 0) return error("at most one -1");
      infer = static_cast<int>(out.size());
      out.push_back(1);
      ++src;
    } else if (code == -2) {
      while (src < in.size()) out.push_back(in[src++]);
    } else if (code == -3) {
      if (src + 1 >= in.size()) return error("code -3 at position " + std::to_string(i) + " needs two input dims");
      out.push_back(in[src] * in[src + 1]);
      src += 2;
    } else if (code == -4) {
      if (i + 2 >= shape.size()) return error("code -4 at position " + std::to_string(i) + " needs two dims after it");
      if (src >= in.size()) return error("code -4 at position " + std::to_string(i) + " has no input dim left");
      int64_t d0 = in[src++], d1 = shape[++i], d2 = shape[++i];
      if (d1 == -1 && d2 == -1) return error("the two dims after -4 cannot both be -1");
      if (d1 == 0 || d2 == 0 || d1 < -1 || d2 < -1) return error("the dims after -4 must be positive or -1");
      if (d1 == -1) d1 = d0 % d2 == 0 ? d0 / d2 : -1;
      if (d2 == -1) d2 = d0 % d1 == 0 ? d0 / d1 : -1;
      if (d1 < 1 || d2 < 1 || d1 * d2 != d0) {
        return error("-4 splits dim " + std::to_string(d0) + " into " + std::to_string(shape[i - 1]) + " x " +
                     std::to_string(shape[i]));
      }
      out.push_back(d1);
      out.push_back(d2);
    } else if (code < 0) {
      return error("code " + std::to_string(code) + " is not one of 0, -1, -2, -3, -4");
    } else {
      out.push_back(code);
      ++src;
    }
  }
  if (infer >= 0) {
    int64_t known = 1;
    for (size_t i = 0; i < out.size(); ++i) {
      if (static_cast<int>(i) != infer) known *= out[i];
    }
    if (known == 0 || NumElements(in) % known != 0) return error("the element count does not divide");
    out[static_cast<size_t>(infer)] = NumElements(in) / known;
  }
  if (NumElements(out) != NumElements(in)) {
    return error("the result " + ShapeToString(out) + " has " + std::to_string(NumElements(out)) + " elements, not " +
                 std::to_string(NumElements(in)));
  }
  return x.tracer->Emit("reshape", {x}, ir::Attrs{{"shape", out}}, name);
}

StatusOr<Sym> Concat(const std::vector<Sym>& inputs, int64_t axis, const std::string& name) {
  if (inputs.empty()) return InvalidArgument("concat \"" + name + "\": needs at least one input");
  if (inputs.size() == 1) return inputs[0];
  std::vector<Sym> level = inputs;
  int part = 0;
  while (level.size() > 16) {  // the op takes at most 16: join the first 16, then the rest
    std::vector<Sym> first(level.begin(), level.begin() + 16);
    ASSIGN_OR_RETURN(Sym joined, inputs[0].tracer->Emit("concat", first, ir::Attrs{{"axis", axis}},
                                                          name + "_part" + std::to_string(part++)));
    std::vector<Sym> next{joined};
    next.insert(next.end(), level.begin() + 16, level.end());
    level = std::move(next);
  }
  return inputs[0].tracer->Emit("concat", level, ir::Attrs{{"axis", axis}}, name);
}

StatusOr<std::vector<Sym>> Split(Sym x, int64_t axis, const std::vector<int64_t>& sizes, const std::string& name) {
  return x.tracer->EmitMulti("split", {x}, ir::Attrs{{"axis", axis}, {"sizes", sizes}}, name);
}

StatusOr<Sym> SliceAxis(Sym x, int64_t axis, int64_t begin, int64_t end, const std::string& name) {
  auto rank = static_cast<int64_t>(x.shape().size());
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    return InvalidArgument("slice \"" + name + "\": axis " + std::to_string(axis) + " out of range for " +
                           ShapeToString(x.shape()));
  }
  int64_t dim = x.shape()[static_cast<size_t>(a)];
  if (!(0 <= begin && begin < end && end <= dim)) {
    return InvalidArgument("slice \"" + name + "\": [" + std::to_string(begin) + ", " + std::to_string(end) +
                           ") must be a non-empty range in [0, " + std::to_string(dim) + ") of " +
                           ShapeToString(x.shape()));
  }
  if (begin == 0 && end == dim) return x;
  std::vector<int64_t> sizes;
  if (begin > 0) sizes.push_back(begin);
  sizes.push_back(end - begin);
  if (end < dim) sizes.push_back(dim - end);
  ASSIGN_OR_RETURN(std::vector<Sym> parts, Split(x, a, sizes, name));
  return parts[begin > 0 ? 1 : 0];
}

StatusOr<Sym> Transpose(Sym x, std::vector<int64_t> axes, const std::string& name) {
  if (axes.empty()) {
    for (auto i = static_cast<int64_t>(x.shape().size()); i-- > 0;) axes.push_back(i);
  }
  return x.tracer->Emit("transpose", {x}, ir::Attrs{{"axes", axes}}, name);
}

StatusOr<Sym> Add(Sym a, Sym b, const std::string& name) { return a.tracer->Emit("add", {a, b}, {}, name); }
StatusOr<Sym> Mul(Sym a, Sym b, const std::string& name) { return a.tracer->Emit("mul", {a, b}, {}, name); }

StatusOr<Sym> Sub(Sym a, Sym b, const std::string& name) { return a.tracer->Emit("sub", {a, b}, {}, name); }
StatusOr<Sym> Div(Sym a, Sym b, const std::string& name) { return a.tracer->Emit("div", {a, b}, {}, name); }
StatusOr<Sym> Maximum(Sym a, Sym b, const std::string& name) { return a.tracer->Emit("maximum", {a, b}, {}, name); }
StatusOr<Sym> Minimum(Sym a, Sym b, const std::string& name) { return a.tracer->Emit("minimum", {a, b}, {}, name); }
StatusOr<Sym> Exp(Sym x, const std::string& name) { return x.tracer->Emit("exp", {x}, {}, name); }
StatusOr<Sym> Log(Sym x, const std::string& name) { return x.tracer->Emit("log", {x}, {}, name); }
StatusOr<Sym> Sqrt(Sym x, const std::string& name) { return x.tracer->Emit("sqrt", {x}, {}, name); }
StatusOr<Sym> Abs(Sym x, const std::string& name) { return x.tracer->Emit("abs", {x}, {}, name); }
StatusOr<Sym> Negative(Sym x, const std::string& name) { return x.tracer->Emit("neg", {x}, {}, name); }

StatusOr<Sym> BatchNorm(Sym data, Sym gamma, Sym beta, Sym running_mean, Sym running_var, const BatchNormArgs& args,
                        const std::string& name) {
  Tracer& t = *data.tracer;
  if (!t.training() || args.use_global_stats) {
    return t.Emit("batch_norm", {data, gamma, beta, running_mean, running_var}, ir::Attrs{{"epsilon", args.epsilon}},
                  name);
  }
  ASSIGN_OR_RETURN(std::vector<Sym> out,
                   t.EmitMulti("batch_norm_training", {data, gamma, beta}, ir::Attrs{{"epsilon", args.epsilon}}, name));
  ir::Attrs momentum{{"momentum", args.momentum}};
  ASSIGN_OR_RETURN(Sym mean, t.Emit("moving_average", {running_mean, out[1]}, momentum, name + "_running_mean"));
  ASSIGN_OR_RETURN(Sym var, t.Emit("moving_average", {running_var, out[2]}, momentum, name + "_running_var"));
  for (auto [target, value] : {std::pair<Sym, Sym>{running_mean, mean}, {running_var, var}}) {
    ir::ValueKind kind = t.graph().value(target.id).kind;
    if (kind != ir::ValueKind::kState && kind != ir::ValueKind::kParameter) {
      return InvalidArgument("batch_norm \"" + name + "\": running statistic '" + t.graph().value(target.id).name +
                             "' must be a parameter or state of the graph to be updated in training mode");
    }
    t.graph().AddUpdate(target.id, value.id);
  }
  return out[0];
}

StatusOr<Sym> Dropout(Sym x, double rate, const std::string& name, const std::vector<int64_t>& axes) {
  if (!(rate >= 0 && rate < 1)) {
    return InvalidArgument("dropout \"" + name + "\": rate must be in [0, 1), got " + std::to_string(rate));
  }
  auto rank = static_cast<int64_t>(x.shape().size());
  std::vector<int64_t> normalized;
  for (int64_t a : axes) {
    int64_t n = a < 0 ? a + rank : a;
    if (n < 0 || n >= rank || std::find(normalized.begin(), normalized.end(), n) != normalized.end()) {
      return InvalidArgument("dropout \"" + name + "\": axes " + ShapeToString(axes) + " must be distinct dims of " +
                             ShapeToString(x.shape()));
    }
    normalized.push_back(n);
  }
  std::sort(normalized.begin(), normalized.end());
  Tracer& t = *x.tracer;
  if (!t.training() || rate == 0) return x;
  Sym seed = t.DropoutSeed();
  ir::Attrs attrs{{"rate", rate}, {"salt", t.NextDropoutSalt()}};
  if (!normalized.empty()) attrs.Set("axes", normalized);
  return t.Emit("dropout", {x, seed}, attrs, name);
}

StatusOr<Sym> Fill(Tracer& t, const Shape& shape, double value, const std::string& name) {
  return t.Emit("fill", {}, ir::Attrs{{"shape", shape}, {"value", value}}, name);
}

StatusOr<Sym> Softmax(Sym x, int64_t axis, const std::string& name) {
  return x.tracer->Emit("softmax", {x}, ir::Attrs{{"axis", axis}}, name);
}
StatusOr<Sym> LogSoftmax(Sym x, int64_t axis, const std::string& name) {
  return x.tracer->Emit("log_softmax", {x}, ir::Attrs{{"axis", axis}}, name);
}

namespace {
StatusOr<Sym> Reduce(const std::string& op, Sym x, std::vector<int64_t> axes, bool keepdims, const std::string& name) {
  if (axes.empty()) {
    for (int64_t i = 0; i < static_cast<int64_t>(x.shape().size()); ++i) axes.push_back(i);
  }
  return x.tracer->Emit(op, {x}, ir::Attrs{{"axes", axes}, {"keepdims", int64_t{keepdims ? 1 : 0}}}, name);
}
}  // namespace

StatusOr<Sym> Sum(Sym x, std::vector<int64_t> axes, bool keepdims, const std::string& name) {
  return Reduce("reduce_sum", x, std::move(axes), keepdims, name);
}
StatusOr<Sym> Mean(Sym x, std::vector<int64_t> axes, bool keepdims, const std::string& name) {
  return Reduce("reduce_mean", x, std::move(axes), keepdims, name);
}

StatusOr<Sym> SoftmaxCrossEntropy(Sym logits, Sym label, const std::string& name) {
  return logits.tracer->Emit("softmax_cross_entropy", {logits, label}, {}, name);
}

StatusOr<Sym> OneHot(Sym indices, int64_t depth, double on_value, double off_value, const std::string& name) {
  return indices.tracer->Emit("one_hot", {indices},
                              ir::Attrs{{"depth", depth}, {"on_value", on_value}, {"off_value", off_value}}, name);
}

StatusOr<Sym> Argmax(Sym x, const std::string& name) { return x.tracer->Emit("argmax", {x}, {}, name); }

}  // namespace kiln::graph::ops
