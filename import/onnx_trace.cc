// OnnxNetwork::Forward: the ONNX graph traced into kiln IR, node by node (opset 13
// semantics, https://onnx.ai/onnx/operators/). Values known at trace time (initializers
// that are not parameters, Constant nodes, Shape and what is computed from it) are
// evaluated on the host; everything else becomes IR through graph/ops.h or the IR ops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "graph/ops.h"
#include "graph/parameter.h"
#include "import/onnx_import.h"

namespace kiln::onnx_import {

using graph::Sym;

namespace {

// A value of the ONNX graph while tracing: a symbolic tensor, a parameter, or a host tensor.
struct Val {
  bool has_sym = false;
  Sym sym;
  graph::Parameter* param = nullptr;
  std::shared_ptr<const HostTensor> host;
};

// IR node names: the ONNX node's name with characters other than [A-Za-z0-9_.] as '_'.
std::string IrName(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
  }
  while (!out.empty() && out.front() == '_') out.erase(out.begin());
  return out.empty() ? "onnx" : out;
}

int64_t NormalizeAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

// A known value as an integer, clamped to +-2^62 (the file's int64 values pass through
// double; a cast of anything beyond int64 would be undefined): the checks downstream then
// refuse it as a dim, index or size out of range.
int64_t ToInt(double v) {
  constexpr double kLimit = 4611686018427387904.0;  // 2^62
  if (!(v == v)) return 0;
  return static_cast<int64_t>(std::clamp(v, -kLimit, kLimit));
}

class NodeTracer {
 public:
  NodeTracer(Sym x, const std::vector<HostTensor>& tensors, const std::map<std::string, HostTensor>& host,
             const std::map<std::string, graph::Parameter*>& params, int64_t max_elements)
      : tracer_(x.tracer), tensors_(tensors), max_elements_(max_elements) {
    for (const auto& [name, h] : host) env_[name].host = std::make_shared<HostTensor>(h);
    for (const auto& [name, p] : params) env_[name].param = p;
  }

  void Define(const std::string& name, Val v) { env_[name] = std::move(v); }
  Status Run(const OnnxNode& n);
  StatusOr<Sym> Output(const std::string& name);

 private:
  // Operand access. Errors name the node (with the context added by Run).
  StatusOr<const Val*> Get(const std::string& name) {
    auto it = env_.find(name);
    if (it == env_.end()) return InvalidArgument("input '" + name + "' is not defined by an earlier node");
    return &it->second;
  }
  bool Has(size_t i) const { return i < node_->inputs.size() && !node_->inputs[i].empty(); }
  StatusOr<Sym> AsSym(size_t i);
  StatusOr<std::shared_ptr<const HostTensor>> AsHost(size_t i);
  bool IsHost(size_t i) {
    auto it = env_.find(node_->inputs[i]);
    return it != env_.end() && it->second.host && !it->second.has_sym && it->second.param == nullptr;
  }
  void SetSym(size_t k, Sym s) {
    Val v;
    v.has_sym = true;
    v.sym = s;
    env_[node_->outputs[k]] = v;
  }
  Status SetHost(size_t k, HostTensor h) {
    RETURN_IF_ERROR(CheckSize(h.dims));
    Val v;
    v.host = std::make_shared<HostTensor>(std::move(h));
    env_[node_->outputs[k]] = v;
    return OkStatus();
  }
  Status CheckSize(const Shape& dims) {
    int64_t n = 1;
    for (int64_t d : dims) {
      if (d < 0) return InvalidArgument("negative dim in " + ShapeToString(dims));
      if (d != 0 && n > max_elements_ / d) return InvalidArgument(ShapeToString(dims) + " has too many elements");
      n *= d;
    }
    return OkStatus();
  }

  // Attributes.
  const OnnxAttribute* Attr(const std::string& name) const {
    auto it = node_->attributes.find(name);
    return it == node_->attributes.end() ? nullptr : &it->second;
  }
  int64_t Int(const std::string& name, int64_t def) const {
    const OnnxAttribute* a = Attr(name);
    return a && a->kind == OnnxAttribute::Kind::kInt ? a->i : def;
  }
  double Float(const std::string& name, double def) const {
    const OnnxAttribute* a = Attr(name);
    return a && a->kind == OnnxAttribute::Kind::kFloat ? a->f : def;
  }
  std::vector<int64_t> Ints(const std::string& name, std::vector<int64_t> def = {}) const {
    const OnnxAttribute* a = Attr(name);
    return a && a->kind == OnnxAttribute::Kind::kInts ? a->ints : def;
  }
  std::string String(const std::string& name, std::string def = "") const {
    const OnnxAttribute* a = Attr(name);
    return a && a->kind == OnnxAttribute::Kind::kString ? a->s : def;
  }
  std::string Name() const { return IrName(node_->name); }

  Status Conv();
  Status Pool(bool max);
  Status GlobalPool(bool max);
  Status BatchNormalization();
  Status Gemm();
  Status Binary(const std::string& op);
  Status Concat();
  Status Reshape();
  Status Slice();
  Status Split();
  Status SqueezeOrUnsqueeze(bool squeeze);
  Status Constant();
  Status Gather();
  Status Cast();
  Status Activation();
  Status Pad();

  Sym ScalarConstant(double value) {
    Tensor t(DType::kF32, {1});
    t.f32()[0] = static_cast<float>(value);
    ir::ValueId id = tracer_->graph().AddConstant(tracer_->graph().UniqueName(Name() + ".const"), std::move(t));
    return Sym{tracer_, id};
  }

  graph::Tracer* tracer_;
  const std::vector<HostTensor>& tensors_;
  int64_t max_elements_;
  std::map<std::string, Val> env_;
  const OnnxNode* node_ = nullptr;
};

StatusOr<Sym> NodeTracer::AsSym(size_t i) {
  if (!Has(i)) return InvalidArgument("input " + std::to_string(i) + " is missing");
  ASSIGN_OR_RETURN(const Val* v, Get(node_->inputs[i]));
  if (v->has_sym) return v->sym;
  if (v->param != nullptr) return tracer_->Param(*v->param);
  const HostTensor& h = *v->host;
  // A value known at trace time read as data: a graph constant (scalars as [1]).
  Shape shape = h.dims.empty() ? Shape{1} : h.dims;
  Tensor t(DType::kF32, shape);
  for (int64_t k = 0; k < h.size(); ++k) t.f32()[k] = static_cast<float>(h.values[static_cast<size_t>(k)]);
  ir::ValueId id = tracer_->graph().AddConstant(tracer_->graph().UniqueName(IrName(node_->inputs[i])), std::move(t));
  Val sym = *v;
  sym.has_sym = true;
  sym.sym = Sym{tracer_, id};
  env_[node_->inputs[i]] = sym;
  return sym.sym;
}

StatusOr<std::shared_ptr<const HostTensor>> NodeTracer::AsHost(size_t i) {
  if (!Has(i)) return InvalidArgument("input " + std::to_string(i) + " is missing");
  ASSIGN_OR_RETURN(const Val* v, Get(node_->inputs[i]));
  if (!v->host) {
    return InvalidArgument("input '" + node_->inputs[i] +
                           "' must be known when the graph is traced (an initializer, a Constant, or computed from "
                           "shapes); kiln does not compute shapes from data at run time");
  }
  return v->host;
}

// NumPy broadcasting of two host tensors.
StatusOr<HostTensor> HostBroadcast(const HostTensor& a, const HostTensor& b, const std::function<double(double, double)>& f,
                                   int64_t max_elements) {
  const size_t rank = std::max(a.dims.size(), b.dims.size());
  Shape out(rank);
  auto dim = [&](const Shape& d, size_t i) -> int64_t {
    size_t off = rank - d.size();
    return i < off ? 1 : d[i - off];
  };
  for (size_t i = 0; i < rank; ++i) {
    int64_t x = dim(a.dims, i), y = dim(b.dims, i);
    if (x != y && x != 1 && y != 1) {
      return InvalidArgument("shapes " + ShapeToString(a.dims) + " and " + ShapeToString(b.dims) + " do not broadcast");
    }
    out[i] = std::max(x, y);
  }
  int64_t n = 1;
  for (int64_t d : out) {
    if (d != 0 && n > max_elements / d) {
      return InvalidArgument("broadcasting " + ShapeToString(a.dims) + " and " + ShapeToString(b.dims) + " gives more than " +
                             std::to_string(max_elements) + " elements");
    }
    n *= d;
  }
  HostTensor r;
  r.is_float = a.is_float || b.is_float;
  r.dims = out;
  r.values.resize(static_cast<size_t>(n));
  std::vector<int64_t> idx(rank, 0);
  auto flat = [&](const HostTensor& t) {
    int64_t k = 0;
    size_t off = rank - t.dims.size();
    for (size_t i = off; i < rank; ++i) k = k * t.dims[i - off] + (t.dims[i - off] == 1 ? 0 : idx[i]);
    return static_cast<size_t>(k);
  };
  for (int64_t e = 0; e < n; ++e) {
    r.values[static_cast<size_t>(e)] = f(a.values[flat(a)], b.values[flat(b)]);
    for (size_t i = rank; i-- > 0;) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return r;
}

Status NodeTracer::Run(const OnnxNode& n) {
  node_ = &n;
  const std::string& op = n.op_type;
  Status s = OkStatus();
  if (op == "Conv") {
    s = Conv();
  } else if (op == "MaxPool" || op == "AveragePool") {
    s = Pool(op == "MaxPool");
  } else if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
    s = GlobalPool(op == "GlobalMaxPool");
  } else if (op == "BatchNormalization") {
    s = BatchNormalization();
  } else if (op == "Gemm") {
    s = Gemm();
  } else if (op == "MatMul") {
    auto a = AsSym(0), b = AsSym(1);
    if (!a.ok()) return a.status();
    if (!b.ok()) return b.status();
    if (a->shape().size() != 2 || b->shape().size() != 2) {
      s = InvalidArgument("kiln imports 2-D MatMul; got " + ShapeToString(a->shape()) + " x " + ShapeToString(b->shape()));
    } else {
      auto bt = graph::ops::Transpose(*b, {1, 0}, Name() + ".b_t");
      if (!bt.ok()) return bt.status();
      auto y = graph::ops::Dot(*a, *bt, Name());
      if (!y.ok()) return y.status();
      SetSym(0, *y);
    }
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    s = Binary(op);
  } else if (op == "Concat") {
    s = Concat();
  } else if (op == "Flatten") {
    if (IsHost(0)) {
      ASSIGN_OR_RETURN(auto h, AsHost(0));
      int64_t axis = NormalizeAxis(Int("axis", 1), static_cast<int64_t>(h->dims.size()));
      HostTensor r = *h;
      int64_t outer = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= h->dims[static_cast<size_t>(i)];
      r.dims = {outer, h->size() / std::max<int64_t>(outer, 1)};
      return SetHost(0, std::move(r));
    }
    ASSIGN_OR_RETURN(Sym x, AsSym(0));
    const Shape& d = x.shape();
    int64_t axis = NormalizeAxis(Int("axis", 1), static_cast<int64_t>(d.size()));
    if (axis < 0 || axis > static_cast<int64_t>(d.size())) return InvalidArgument("axis out of range for " + ShapeToString(d));
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < d.size(); ++i) (static_cast<int64_t>(i) < axis ? outer : inner) *= d[i];
    ASSIGN_OR_RETURN(Sym y, graph::ops::Reshape(x, {outer, inner}, Name()));
    SetSym(0, y);
  } else if (op == "Reshape") {
    s = Reshape();
  } else if (op == "Transpose") {
    ASSIGN_OR_RETURN(Sym x, AsSym(0));
    std::vector<int64_t> perm = Ints("perm");
    if (perm.empty()) {
      for (size_t i = x.shape().size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
    }
    ASSIGN_OR_RETURN(Sym y, graph::ops::Transpose(x, perm, Name()));
    SetSym(0, y);
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    s = SqueezeOrUnsqueeze(op == "Squeeze");
  } else if (op == "Slice") {
    s = Slice();
  } else if (op == "Split") {
    s = Split();
  } else if (op == "Softmax" || op == "LogSoftmax") {
    ASSIGN_OR_RETURN(Sym x, AsSym(0));
    int64_t axis = NormalizeAxis(Int("axis", -1), static_cast<int64_t>(x.shape().size()));
    ASSIGN_OR_RETURN(Sym y, op == "Softmax" ? graph::ops::Softmax(x, axis, Name()) : graph::ops::LogSoftmax(x, axis, Name()));
    SetSym(0, y);
  } else if (op == "ReduceMean") {
    ASSIGN_OR_RETURN(Sym x, AsSym(0));
    std::vector<int64_t> axes = Ints("axes");
    for (auto& a : axes) a = NormalizeAxis(a, static_cast<int64_t>(x.shape().size()));
    if (axes.empty()) {
      for (size_t i = 0; i < x.shape().size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    ASSIGN_OR_RETURN(Sym y, graph::ops::Mean(x, axes, Int("keepdims", 1) != 0, Name()));
    SetSym(0, y);
  } else if (op == "Pad") {
    s = Pad();
  } else if (op == "Dropout" || op == "Identity") {
    if (op == "Dropout" && Has(2) && IsHost(2)) {
      ASSIGN_OR_RETURN(auto t, AsHost(2));
      if (t->size() == 1 && t->values[0] != 0) return InvalidArgument("training_mode=1 is not imported (inference only)");
    }
    ASSIGN_OR_RETURN(const Val* v, Get(n.inputs[0]));
    env_[n.outputs[0]] = *v;
  } else if (op == "Constant") {
    s = Constant();
  } else if (op == "Shape") {
    ASSIGN_OR_RETURN(const Val* v, Get(n.inputs[0]));
    Shape d = v->has_sym ? v->sym.shape() : v->param ? v->param->shape() : v->host->dims;
    // Shape-15: the dims [start, end) (negative counts from the back, clamped).
    const int64_t rank = static_cast<int64_t>(d.size());
    int64_t start = Int("start", 0), end = Int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    HostTensor h;
    h.dims = {end - start};
    for (int64_t i = start; i < end; ++i) h.values.push_back(static_cast<double>(d[static_cast<size_t>(i)]));
    return SetHost(0, std::move(h));
  } else if (op == "Gather") {
    s = Gather();
  } else if (op == "Cast") {
    s = Cast();
  } else if (op == "ConstantOfShape") {
    ASSIGN_OR_RETURN(auto shape, AsHost(0));
    HostTensor h;
    for (double d : shape->values) h.dims.push_back(ToInt(d));
    RETURN_IF_ERROR(CheckSize(h.dims));
    double value = 0;
    h.is_float = true;
    if (const OnnxAttribute* a = Attr("value"); a && a->kind == OnnxAttribute::Kind::kTensor) {
      const HostTensor& t = tensors_.at(static_cast<size_t>(a->tensor));
      if (t.size() != 1) return InvalidArgument("value must hold one element");
      value = t.values[0];
      h.is_float = t.is_float;
    }
    h.values.assign(static_cast<size_t>(NumElements(h.dims)), value);
    return SetHost(0, std::move(h));
  } else {
    s = Activation();
  }
  return s;
}

Status NodeTracer::Activation() {
  const std::string& op = node_->op_type;
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  StatusOr<Sym> y = InvalidArgument("unreachable");
  if (op == "Relu") {
    y = graph::ops::Relu(x, Name());
  } else if (op == "Sigmoid") {
    y = graph::ops::Activation(x, "sigmoid", Name());
  } else if (op == "Tanh") {
    y = graph::ops::Activation(x, "tanh", Name());
  } else if (op == "Softplus") {
    y = graph::ops::Activation(x, "softplus", Name());
  } else if (op == "Softsign") {
    y = graph::ops::Activation(x, "softsign", Name());
  } else if (op == "HardSwish") {
    y = graph::ops::Activation(x, "hard_swish", Name());
  } else if (op == "LeakyRelu") {
    y = graph::ops::LeakyReLU(x, Float("alpha", 0.01), Name());
  } else if (op == "Elu") {
    y = graph::ops::ELU(x, Float("alpha", 1.0), Name());
  } else if (op == "HardSigmoid") {
    y = graph::ops::HardSigmoid(x, Float("alpha", 0.2), Float("beta", 0.5), Name());
  } else if (op == "Selu") {
    const double alpha = Float("alpha", 1.67326319217681884765625), gamma = Float("gamma", 1.05070102214813232421875);
    if (std::fabs(alpha - 1.6732632423543772) > 1e-6 || std::fabs(gamma - 1.0507009873554805) > 1e-6) {
      return InvalidArgument("Selu with alpha " + std::to_string(alpha) + ", gamma " + std::to_string(gamma) +
                             ": kiln's selu has the standard constants (Klambauer et al. 2017) only");
    }
    y = graph::ops::Activation(x, "selu", Name());
  } else if (op == "Clip") {
    double lo = -std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::max();
    for (size_t i : {size_t{1}, size_t{2}}) {
      if (!Has(i)) continue;
      ASSIGN_OR_RETURN(auto t, AsHost(i));
      if (t->size() != 1) return InvalidArgument("min and max must be scalars");
      (i == 1 ? lo : hi) = t->values[0];
    }
    if (!(lo < hi)) return InvalidArgument("min " + std::to_string(lo) + " must be below max " + std::to_string(hi));
    y = lo == 0 && hi >= std::numeric_limits<float>::max() ? graph::ops::Relu(x, Name()) : graph::ops::Clip(x, lo, hi, Name());
  } else if (op == "PRelu") {
    // max(x, 0) + slope * min(x, 0), slope broadcast (e.g. [C, 1, 1]).
    ASSIGN_OR_RETURN(Sym slope, AsSym(1));
    Sym zero = ScalarConstant(0);
    ASSIGN_OR_RETURN(Sym pos, graph::ops::Maximum(x, zero, Name() + ".pos"));
    ASSIGN_OR_RETURN(Sym neg, graph::ops::Minimum(x, zero, Name() + ".neg"));
    ASSIGN_OR_RETURN(Sym scaled, graph::ops::Mul(neg, slope, Name() + ".scaled"));
    y = graph::ops::Add(pos, scaled, Name());
  }
  if (!y.ok()) return y.status();
  SetSym(0, *y);
  return OkStatus();
}

Status NodeTracer::Conv() {
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  ASSIGN_OR_RETURN(Sym w, AsSym(1));
  if (x.shape().size() != 4 || w.shape().size() != 4) {
    return InvalidArgument("kiln imports 2-D convolutions (NCHW input, OIHW weight); got input " +
                           ShapeToString(x.shape()) + ", weight " + ShapeToString(w.shape()));
  }
  std::vector<int64_t> kernel = {w.shape()[2], w.shape()[3]};
  std::vector<int64_t> strides = Ints("strides", {1, 1}), dilations = Ints("dilations", {1, 1});
  std::vector<int64_t> pads = Ints("pads", {0, 0, 0, 0});
  if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4) {
    return InvalidArgument("strides, dilations and pads must have 2, 2 and 4 values");
  }
  for (const auto* list : {&strides, &dilations, &pads}) {
    for (int64_t v : *list) {
      if (v < 0 || v > (int64_t{1} << 30)) return InvalidArgument("strides, dilations and pads must lie in [0, 2^30]");
    }
  }
  const std::string auto_pad = String("auto_pad", "NOTSET");
  if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < 2; ++i) {
      int64_t in = x.shape()[i + 2], s = strides[i];
      if (s < 1) return InvalidArgument("strides must be >= 1");
      int64_t out = (in + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (out - 1) * s + (kernel[i] - 1) * dilations[i] + 1 - in);
      int64_t small = total / 2, big = total - small;
      pads[i] = auto_pad == "SAME_UPPER" ? small : big;
      pads[i + 2] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad != "NOTSET") {
    return InvalidArgument("auto_pad '" + auto_pad + "' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER");
  }
  std::vector<Sym> ins = {x, w};
  if (Has(2)) {
    ASSIGN_OR_RETURN(Sym b, AsSym(2));
    ins.push_back(b);
  }
  ir::Attrs attrs{{"stride", strides},
                  {"padding_begin", std::vector<int64_t>{pads[0], pads[1]}},
                  {"padding_end", std::vector<int64_t>{pads[2], pads[3]}},
                  {"dilation", dilations}};
  int64_t group = Int("group", 1);
  if (group != 1) attrs.Set("groups", group);
  ASSIGN_OR_RETURN(Sym y, tracer_->Emit("conv2d", ins, attrs, Name()));
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::Pool(bool max) {
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  if (x.shape().size() != 4) return InvalidArgument("kiln imports 2-D pooling (NCHW); got " + ShapeToString(x.shape()));
  if (node_->outputs.size() > 1 && !node_->outputs[1].empty()) {
    return InvalidArgument("the Indices output is not imported");
  }
  std::vector<int64_t> kernel = Ints("kernel_shape"), strides = Ints("strides", {1, 1});
  std::vector<int64_t> pads = Ints("pads", {0, 0, 0, 0}), dilations = Ints("dilations", {1, 1});
  if (kernel.size() != 2 || strides.size() != 2 || pads.size() != 4) {
    return InvalidArgument("kernel_shape, strides and pads must have 2, 2 and 4 values");
  }
  if (dilations != std::vector<int64_t>{1, 1}) return InvalidArgument("dilated pooling is not supported");
  for (const auto* list : {&kernel, &strides, &pads}) {
    for (int64_t v : *list) {
      if (v < 0 || v > (int64_t{1} << 30)) return InvalidArgument("kernel_shape, strides and pads must lie in [0, 2^30]");
    }
  }
  if (Int("storage_order", 0) != 0) return InvalidArgument("storage_order 1 (column major) is not supported");
  const std::string auto_pad = String("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") {
    return InvalidArgument("auto_pad '" + auto_pad + "' is not supported for pooling (use explicit pads)");
  }
  if (auto_pad == "VALID") pads = {0, 0, 0, 0};
  const bool include_pad = !max && Int("count_include_pad", 0) != 0;
  std::vector<int64_t> begin = {pads[0], pads[1]}, end = {pads[2], pads[3]};
  if (Int("ceil_mode", 0) != 0) {
    // Output size rounded up, a last window that would start in the end padding dropped
    // (PyTorch's rule, which torch.onnx.export's files assume), as extra end padding.
    for (size_t i = 0; i < 2; ++i) {
      int64_t in = x.shape()[i + 2], k = kernel[i], s = strides[i];
      if (s < 1 || in + begin[i] + end[i] < k) break;  // the pool2d op reports it
      int64_t out = (in + begin[i] + end[i] - k + s - 1) / s + 1;
      if ((out - 1) * s >= in + begin[i]) --out;
      int64_t need = (out - 1) * s + k - in - begin[i];
      if (need > end[i]) {
        if (include_pad) {
          return Unimplemented("ceil_mode average pooling with count_include_pad=1 and a window past the padding "
                               "(its divisor would have to exclude the ceil padding only)");
        }
        end[i] = need;
      }
    }
  }
  ir::Attrs attrs{{"kind", std::string(max ? "max" : "avg")}, {"kernel", kernel},
                  {"stride", strides},                       {"padding_begin", begin},
                  {"padding_end", end},                      {"count_include_pad", int64_t{include_pad ? 1 : 0}}};
  ASSIGN_OR_RETURN(Sym y, tracer_->Emit("pool2d", {x}, attrs, Name()));
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::GlobalPool(bool max) {
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  if (x.shape().size() != 4) return InvalidArgument("kiln imports 2-D global pooling (NCHW); got " + ShapeToString(x.shape()));
  std::vector<int64_t> kernel = {x.shape()[2], x.shape()[3]};
  ir::Attrs attrs{{"kind", std::string(max ? "max" : "avg")}, {"kernel", kernel},
                  {"stride", std::vector<int64_t>{1, 1}},    {"padding_begin", std::vector<int64_t>{0, 0}},
                  {"padding_end", std::vector<int64_t>{0, 0}}, {"count_include_pad", int64_t{1}}};
  ASSIGN_OR_RETURN(Sym y, tracer_->Emit("pool2d", {x}, attrs, Name()));
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::BatchNormalization() {
  if (Int("training_mode", 0) != 0) return InvalidArgument("training_mode=1 is not imported (inference only)");
  for (size_t k = 1; k < node_->outputs.size(); ++k) {
    if (!node_->outputs[k].empty()) return InvalidArgument("the running_mean/var outputs (training) are not imported");
  }
  std::vector<Sym> in;
  for (size_t i = 0; i < 5; ++i) {
    ASSIGN_OR_RETURN(Sym s, AsSym(i));
    in.push_back(s);
  }
  graph::ops::BatchNormArgs args;
  args.epsilon = Float("epsilon", 1e-5);
  args.momentum = Float("momentum", 0.9);
  ASSIGN_OR_RETURN(Sym y, graph::ops::BatchNorm(in[0], in[1], in[2], in[3], in[4], args, Name()));
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::Gemm() {
  ASSIGN_OR_RETURN(Sym a, AsSym(0));
  ASSIGN_OR_RETURN(Sym b, AsSym(1));
  if (a.shape().size() != 2 || b.shape().size() != 2) {
    return InvalidArgument("A and B must be 2-D; got " + ShapeToString(a.shape()) + ", " + ShapeToString(b.shape()));
  }
  if (Int("transA", 0) != 0) {
    ASSIGN_OR_RETURN(a, graph::ops::Transpose(a, {1, 0}, Name() + ".a_t"));
  }
  Sym w = b;  // dense weights are [N, K]
  if (Int("transB", 0) == 0) {
    ASSIGN_OR_RETURN(w, graph::ops::Transpose(b, {1, 0}, Name() + ".b_t"));
  }
  const double alpha = Float("alpha", 1.0), beta = Float("beta", 1.0);
  const int64_t n = w.shape()[0];
  std::optional<Sym> bias;
  std::optional<Sym> c;
  if (Has(2)) {
    ASSIGN_OR_RETURN(Sym cs, AsSym(2));
    const Shape& cd = cs.shape();
    if (alpha == 1 && beta == 1 && (cd == Shape{n} || cd == Shape{1, n})) {
      if (cd.size() == 2) {
        ASSIGN_OR_RETURN(cs, graph::ops::Reshape(cs, {n}, Name() + ".bias"));
      }
      bias = cs;
    } else {
      c = cs;
    }
  }
  ASSIGN_OR_RETURN(Sym y, graph::ops::FullyConnected(a, w, bias, Name()));
  if (alpha != 1) {
    ASSIGN_OR_RETURN(y, graph::ops::Mul(y, ScalarConstant(alpha), Name() + ".alpha"));
  }
  if (c) {
    Sym cv = *c;
    if (beta != 1) {
      ASSIGN_OR_RETURN(cv, graph::ops::Mul(cv, ScalarConstant(beta), Name() + ".beta"));
    }
    ASSIGN_OR_RETURN(y, graph::ops::Add(y, cv, Name() + ".c"));
  }
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::Binary(const std::string& op) {
  if (IsHost(0) && IsHost(1)) {
    ASSIGN_OR_RETURN(auto a, AsHost(0));
    ASSIGN_OR_RETURN(auto b, AsHost(1));
    const bool integer = !a->is_float && !b->is_float;
    std::function<double(double, double)> f;
    if (op == "Add") f = [](double x, double y) { return x + y; };
    if (op == "Sub") f = [](double x, double y) { return x - y; };
    if (op == "Mul") f = [](double x, double y) { return x * y; };
    if (op == "Div") {
      f = [integer](double x, double y) { return y == 0 ? 0.0 : integer ? std::trunc(x / y) : x / y; };
    }
    ASSIGN_OR_RETURN(HostTensor r, HostBroadcast(*a, *b, f, max_elements_));
    return SetHost(0, std::move(r));
  }
  ASSIGN_OR_RETURN(Sym a, AsSym(0));
  ASSIGN_OR_RETURN(Sym b, AsSym(1));
  StatusOr<Sym> y = op == "Add"   ? graph::ops::Add(a, b, Name())
                    : op == "Sub" ? graph::ops::Sub(a, b, Name())
                    : op == "Mul" ? graph::ops::Mul(a, b, Name())
                                  : graph::ops::Div(a, b, Name());
  if (!y.ok()) return y.status();
  SetSym(0, *y);
  return OkStatus();
}

Status NodeTracer::Concat() {
  bool all_host = true;
  for (size_t i = 0; i < node_->inputs.size(); ++i) all_host = all_host && Has(i) && IsHost(i);
  if (all_host) {
    std::vector<std::shared_ptr<const HostTensor>> in;
    for (size_t i = 0; i < node_->inputs.size(); ++i) {
      ASSIGN_OR_RETURN(auto h, AsHost(i));
      in.push_back(h);
    }
    if (in.empty()) return InvalidArgument("no inputs");
    HostTensor r;
    r.dims = in[0]->dims;
    if (r.dims.size() != 1) return InvalidArgument("concatenation of known values is supported for 1-D values");
    r.dims[0] = 0;
    for (const auto& h : in) {
      if (h->dims.size() != 1) return InvalidArgument("concatenation of known values is supported for 1-D values");
      r.is_float = r.is_float || h->is_float;
      r.values.insert(r.values.end(), h->values.begin(), h->values.end());
      r.dims[0] += h->dims[0];
    }
    return SetHost(0, std::move(r));
  }
  std::vector<Sym> in;
  for (size_t i = 0; i < node_->inputs.size(); ++i) {
    ASSIGN_OR_RETURN(Sym s, AsSym(i));
    in.push_back(s);
  }
  if (in.empty()) return InvalidArgument("no inputs");
  int64_t axis = NormalizeAxis(Int("axis", 1), static_cast<int64_t>(in[0].shape().size()));
  ASSIGN_OR_RETURN(Sym y, graph::ops::Concat(in, axis, Name()));
  SetSym(0, y);
  return OkStatus();
}

// ONNX Reshape codes (allowzero=0): 0 copies the input's dim, -1 is inferred.
StatusOr<Shape> ReshapeTarget(const Shape& in, const HostTensor& spec) {
  Shape out;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < spec.values.size(); ++i) {
    int64_t d = ToInt(spec.values[i]);
    if (d == 0) {
      if (i >= in.size()) return InvalidArgument("shape code 0 at position " + std::to_string(i) + " has no input dim");
      d = in[i];
    }
    if (d == -1) {
      if (infer >= 0) return InvalidArgument("more than one -1 in the shape");
      infer = static_cast<int>(i);
      out.push_back(1);
      continue;
    }
    if (d < 0) return InvalidArgument("shape value " + std::to_string(d) + " is negative");
    out.push_back(d);
    if (__builtin_mul_overflow(known, d, &known)) return InvalidArgument("the shape's element count overflows");
  }
  int64_t total = NumElements(in);
  if (infer >= 0) {
    if (known == 0 || total % known != 0) {
      return InvalidArgument("cannot reshape " + ShapeToString(in) + " (" + std::to_string(total) + " elements) to " +
                             ShapeToString(out) + " with -1");
    }
    out[static_cast<size_t>(infer)] = total / known;
  } else if (known != total) {
    return InvalidArgument("cannot reshape " + ShapeToString(in) + " (" + std::to_string(total) + " elements) to " +
                           ShapeToString(out) + " (" + std::to_string(known) + ")");
  }
  return out;
}

Status NodeTracer::Reshape() {
  if (Int("allowzero", 0) != 0) return InvalidArgument("allowzero=1 is not supported");
  ASSIGN_OR_RETURN(auto spec, AsHost(1));
  if (spec->dims.size() != 1) return InvalidArgument("the shape input must be 1-D");
  if (IsHost(0)) {
    ASSIGN_OR_RETURN(auto h, AsHost(0));
    ASSIGN_OR_RETURN(Shape out, ReshapeTarget(h->dims, *spec));
    HostTensor r = *h;
    r.dims = out;
    return SetHost(0, std::move(r));
  }
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  ASSIGN_OR_RETURN(Shape out, ReshapeTarget(x.shape(), *spec));
  ASSIGN_OR_RETURN(Sym y, graph::ops::Reshape(x, out, Name()));
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::SqueezeOrUnsqueeze(bool squeeze) {
  std::vector<int64_t> axes = Ints("axes");
  if (Has(1)) {
    ASSIGN_OR_RETURN(auto a, AsHost(1));
    axes.clear();
    for (double v : a->values) axes.push_back(ToInt(v));
  }
  ASSIGN_OR_RETURN(const Val* v, Get(node_->inputs[0]));
  Shape in = v->has_sym ? v->sym.shape() : v->param ? v->param->shape() : v->host->dims;
  Shape out;
  if (squeeze) {
    std::set<int64_t> drop;
    for (int64_t a : axes) drop.insert(NormalizeAxis(a, static_cast<int64_t>(in.size())));
    for (size_t i = 0; i < in.size(); ++i) {
      bool d = axes.empty() ? in[i] == 1 : drop.count(static_cast<int64_t>(i)) != 0;
      if (d && in[i] != 1) return InvalidArgument("cannot squeeze dim " + std::to_string(i) + " of " + ShapeToString(in));
      if (!d) out.push_back(in[i]);
    }
  } else {
    const int64_t rank = static_cast<int64_t>(in.size() + axes.size());
    std::set<int64_t> add;
    for (int64_t a : axes) add.insert(NormalizeAxis(a, rank));
    size_t k = 0;
    for (int64_t i = 0; i < rank; ++i) {
      if (add.count(i)) {
        out.push_back(1);
      } else {
        if (k >= in.size()) return InvalidArgument("axes out of range");
        out.push_back(in[k++]);
      }
    }
  }
  if (v->host && !v->has_sym && v->param == nullptr) {
    HostTensor r = *v->host;
    r.dims = out;
    return SetHost(0, std::move(r));
  }
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  ASSIGN_OR_RETURN(Sym y, graph::ops::Reshape(x, out, Name()));
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::Slice() {
  ASSIGN_OR_RETURN(auto starts, AsHost(1));
  ASSIGN_OR_RETURN(auto ends, AsHost(2));
  std::vector<int64_t> axes, steps;
  if (Has(3)) {
    ASSIGN_OR_RETURN(auto a, AsHost(3));
    for (double x : a->values) axes.push_back(ToInt(x));
  } else {
    for (int64_t i = 0; i < starts->size(); ++i) axes.push_back(i);
  }
  if (Has(4)) {
    ASSIGN_OR_RETURN(auto s, AsHost(4));
    for (double x : s->values) steps.push_back(ToInt(x));
  }
  if (starts->size() != ends->size() || static_cast<int64_t>(axes.size()) != starts->size()) {
    return InvalidArgument("starts, ends and axes must have the same length");
  }
  for (int64_t s : steps) {
    if (s != 1) return InvalidArgument("step " + std::to_string(s) + ": kiln imports Slice with step 1");
  }
  ASSIGN_OR_RETURN(const Val* v, Get(node_->inputs[0]));
  const bool host = v->host && !v->has_sym && v->param == nullptr;
  Shape dims = v->has_sym ? v->sym.shape() : v->param ? v->param->shape() : v->host->dims;
  auto clamp = [](double x, int64_t dim) {
    int64_t i = x >= 9.2e18 ? dim : x <= -9.2e18 ? 0 : ToInt(x);
    if (i < 0) i += dim;
    return std::clamp<int64_t>(i, 0, dim);
  };
  if (host) {
    HostTensor r = *v->host;
    for (size_t k = 0; k < axes.size(); ++k) {
      int64_t axis = NormalizeAxis(axes[k], static_cast<int64_t>(r.dims.size()));
      if (axis < 0 || axis >= static_cast<int64_t>(r.dims.size())) return InvalidArgument("axis out of range");
      int64_t d = r.dims[static_cast<size_t>(axis)];
      int64_t b = clamp(starts->values[k], d), e = std::max(b, clamp(ends->values[k], d));
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= r.dims[static_cast<size_t>(i)];
      for (size_t i = static_cast<size_t>(axis) + 1; i < r.dims.size(); ++i) inner *= r.dims[i];
      std::vector<double> out;
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t j = b; j < e; ++j) {
          for (int64_t in = 0; in < inner; ++in) out.push_back(r.values[static_cast<size_t>((o * d + j) * inner + in)]);
        }
      }
      r.values = std::move(out);
      r.dims[static_cast<size_t>(axis)] = e - b;
    }
    return SetHost(0, std::move(r));
  }
  ASSIGN_OR_RETURN(Sym y, AsSym(0));
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t axis = NormalizeAxis(axes[k], static_cast<int64_t>(dims.size()));
    if (axis < 0 || axis >= static_cast<int64_t>(dims.size())) return InvalidArgument("axis out of range");
    int64_t d = y.shape()[static_cast<size_t>(axis)];
    int64_t b = clamp(starts->values[k], d), e = clamp(ends->values[k], d);
    if (b == 0 && e == d) continue;
    if (e <= b) return InvalidArgument("the slice of axis " + std::to_string(axis) + " is empty");
    ASSIGN_OR_RETURN(y, graph::ops::SliceAxis(y, axis, b, e, Name()));
  }
  SetSym(0, y);
  return OkStatus();
}

Status NodeTracer::Split() {
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  int64_t axis = NormalizeAxis(Int("axis", 0), static_cast<int64_t>(x.shape().size()));
  if (axis < 0 || axis >= static_cast<int64_t>(x.shape().size())) return InvalidArgument("axis out of range");
  const int64_t d = x.shape()[static_cast<size_t>(axis)];
  std::vector<int64_t> sizes = Ints("split");
  if (Has(1)) {
    ASSIGN_OR_RETURN(auto s, AsHost(1));
    sizes.clear();
    for (double v : s->values) sizes.push_back(ToInt(v));
  }
  const int64_t parts = static_cast<int64_t>(node_->outputs.size());
  if (sizes.empty()) {
    if (parts < 1 || d % parts != 0) return InvalidArgument("dim " + std::to_string(d) + " does not split evenly");
    sizes.assign(static_cast<size_t>(parts), d / parts);
  }
  if (static_cast<int64_t>(sizes.size()) != parts) return InvalidArgument("split has another count than the outputs");
  int64_t begin = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    if (sizes[k] < 1 || begin + sizes[k] > d) return InvalidArgument("split sizes exceed dim " + std::to_string(d));
    ASSIGN_OR_RETURN(Sym y, graph::ops::SliceAxis(x, axis, begin, begin + sizes[k], Name() + "." + std::to_string(k)));
    SetSym(k, y);
    begin += sizes[k];
  }
  if (begin != d) return InvalidArgument("split sizes do not add up to dim " + std::to_string(d));
  return OkStatus();
}

Status NodeTracer::Constant() {
  HostTensor h;
  if (const OnnxAttribute* a = Attr("value"); a && a->kind == OnnxAttribute::Kind::kTensor) {
    h = tensors_.at(static_cast<size_t>(a->tensor));
  } else if (const OnnxAttribute* f = Attr("value_float"); f && f->kind == OnnxAttribute::Kind::kFloat) {
    h.is_float = true;
    h.values = {f->f};
  } else if (const OnnxAttribute* fs = Attr("value_floats"); fs && fs->kind == OnnxAttribute::Kind::kFloats) {
    h.is_float = true;
    h.values = fs->floats;
    h.dims = {static_cast<int64_t>(fs->floats.size())};
  } else if (const OnnxAttribute* i = Attr("value_int"); i && i->kind == OnnxAttribute::Kind::kInt) {
    h.values = {static_cast<double>(i->i)};
  } else if (const OnnxAttribute* is = Attr("value_ints"); is && is->kind == OnnxAttribute::Kind::kInts) {
    for (int64_t v : is->ints) h.values.push_back(static_cast<double>(v));
    h.dims = {static_cast<int64_t>(is->ints.size())};
  } else {
    return InvalidArgument("kiln imports Constant with value, value_float(s) or value_int(s)");
  }
  return SetHost(0, std::move(h));
}

Status NodeTracer::Gather() {
  ASSIGN_OR_RETURN(auto data, AsHost(0));
  ASSIGN_OR_RETURN(auto idx, AsHost(1));
  int64_t axis = NormalizeAxis(Int("axis", 0), static_cast<int64_t>(data->dims.size()));
  if (data->dims.size() != 1 || axis != 0) return InvalidArgument("kiln gathers from 1-D known values (shapes)");
  HostTensor r;
  r.is_float = data->is_float;
  r.dims = idx->dims;
  const int64_t n = data->dims[0];
  for (double v : idx->values) {
    int64_t i = ToInt(v);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return InvalidArgument("index " + std::to_string(ToInt(v)) + " out of range");
    r.values.push_back(data->values[static_cast<size_t>(i)]);
  }
  return SetHost(0, std::move(r));
}

Status NodeTracer::Cast() {
  const int64_t to = Int("to", 1);
  // TensorProto.DataType: 1 FLOAT, 6 INT32, 7 INT64, 11 DOUBLE.
  const bool to_float = to == 1 || to == 11;
  if (!to_float && to != 6 && to != 7) return InvalidArgument("cast to data type " + std::to_string(to) + " is not supported");
  if (IsHost(0)) {
    ASSIGN_OR_RETURN(auto h, AsHost(0));
    HostTensor r = *h;
    r.is_float = to_float;
    if (!to_float) {
      for (double& v : r.values) v = std::trunc(v);
    }
    return SetHost(0, std::move(r));
  }
  if (!to_float) return InvalidArgument("kiln computes tensors in f32; a cast of a tensor to integers is not supported");
  ASSIGN_OR_RETURN(const Val* v, Get(node_->inputs[0]));
  env_[node_->outputs[0]] = *v;
  return OkStatus();
}

// Constant padding: pads [x1_begin, x2_begin, ..., x1_end, x2_end, ...] (>= 0), as
// concatenations with constant blocks (exporters write Pad with zero pads before average
// pooling; those are the identity).
Status NodeTracer::Pad() {
  if (String("mode", "constant") != "constant") {
    return InvalidArgument("mode '" + String("mode") + "': kiln imports constant padding");
  }
  ASSIGN_OR_RETURN(Sym x, AsSym(0));
  ASSIGN_OR_RETURN(auto pads, AsHost(1));
  double value = 0;
  if (Has(2)) {
    ASSIGN_OR_RETURN(auto v, AsHost(2));
    if (v->size() != 1) return InvalidArgument("constant_value must be a scalar");
    value = v->values[0];
  }
  const size_t rank = x.shape().size();
  if (pads->values.size() != 2 * rank) {
    return InvalidArgument("pads has " + std::to_string(pads->values.size()) + " values for a rank-" +
                           std::to_string(rank) + " input");
  }
  Sym y = x;
  for (size_t axis = 0; axis < rank; ++axis) {
    const int64_t before = ToInt(pads->values[axis]), after = ToInt(pads->values[axis + rank]);
    if (before < 0 || after < 0) return InvalidArgument("negative pads (cropping) are not supported");
    if (before == 0 && after == 0) continue;
    std::vector<Sym> parts;
    for (int64_t n : {before, int64_t{-1}, after}) {
      if (n == -1) {
        parts.push_back(y);
        continue;
      }
      if (n == 0) continue;
      Shape block = y.shape();
      block[axis] = n;
      RETURN_IF_ERROR(CheckSize(block));
      Tensor t(DType::kF32, block);
      std::fill(t.f32(), t.f32() + t.num_elements(), static_cast<float>(value));
      ir::ValueId id = tracer_->graph().AddConstant(tracer_->graph().UniqueName(Name() + ".pad"), std::move(t));
      parts.push_back(Sym{tracer_, id});
    }
    ASSIGN_OR_RETURN(y, graph::ops::Concat(parts, static_cast<int64_t>(axis), Name() + "." + std::to_string(axis)));
  }
  SetSym(0, y);
  return OkStatus();
}

StatusOr<Sym> NodeTracer::Output(const std::string& name) {
  auto it = env_.find(name);
  if (it == env_.end()) return InvalidArgument("the graph output '" + name + "' is not computed by any node");
  if (it->second.has_sym) return it->second.sym;
  return InvalidArgument("the graph output '" + name + "' does not depend on the input");
}

}  // namespace

StatusOr<Sym> OnnxNetwork::Forward(Sym x) {
  if (x.shape().size() != input_dims_.size()) {
    return InvalidArgument("ONNX model input '" + input_name_ + "' is " + ShapeToString(input_dims_) + ", got " +
                           ShapeToString(x.shape()));
  }
  for (size_t i = 0; i < input_dims_.size(); ++i) {
    if (input_dims_[i] != -1 && input_dims_[i] != x.shape()[i]) {
      return InvalidArgument("ONNX model input '" + input_name_ + "' is " + ShapeToString(input_dims_) +
                             " (-1: symbolic batch), got " + ShapeToString(x.shape()));
    }
  }
  NodeTracer t(x, tensors_, host_, params_, max_elements_);
  Val in;
  in.has_sym = true;
  in.sym = x;
  t.Define(input_name_, in);
  for (const OnnxNode& n : nodes_) {
    Status s = t.Run(n);
    if (!s.ok()) {
      return Status(s.code(), "ONNX node '" + n.name + "' (" + n.op_type + "): " + s.message());
    }
  }
  return t.Output(output_name_);
}

}  // namespace kiln::onnx_import
