#include "graph/nn.h"

#include <algorithm>

#include "runtime/parameter_store.h"

namespace kiln::graph::nn {

Parameter* Block::AddParameter(const std::string& local_name, Shape shape, std::shared_ptr<Initializer> init) {
  params_.push_back(std::make_unique<Parameter>(local_name, std::move(shape), std::move(init)));
  return params_.back().get();
}

void Block::Collect(const std::string& prefix, std::vector<std::pair<std::string, Parameter*>>& out) {
  for (auto& p : params_) {
    p->set_name(prefix + p->local_name());
    out.emplace_back(p->name(), p.get());
  }
  for (auto& [name, child] : children_) child->Collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Parameter*>> Block::CollectParams() {
  std::vector<std::pair<std::string, Parameter*>> out;
  Collect("", out);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

Status Block::Initialize(const Initializer& init, bool force_reinit) {
  for (auto& [name, p] : CollectParams()) RETURN_IF_ERROR(p->Initialize(init, force_reinit));
  return OkStatus();
}

Status Block::SaveParameters(const std::string& path) {
  std::vector<std::pair<std::string, const Tensor*>> entries;
  for (auto& [name, p] : CollectParams()) {
    ASSIGN_OR_RETURN(Tensor * t, p->Data());
    entries.emplace_back(name, t);
  }
  return runtime::WriteParamsFile(path, entries);
}

Status Block::LoadParameters(const std::string& path) {
  ASSIGN_OR_RETURN(auto loaded, runtime::ReadParamsFile(path));
  auto params = CollectParams();
  // Validate everything before changing anything.
  std::vector<std::string> names;
  for (auto& [name, p] : params) {
    names.push_back(name);
    auto it = loaded.find(name);
    if (it == loaded.end()) {
      std::string have;
      for (const auto& [k, t] : loaded) have += (have.empty() ? "" : ", ") + k;
      return InvalidArgument("Parameter '" + name + "' is missing in file '" + path + "', which contains parameters: [" +
                             have + "]");
    }
    bool ok = it->second.shape().size() == p->shape().size() && it->second.dtype() == DType::kF32;
    for (size_t i = 0; ok && i < p->shape().size(); ++i) ok = p->shape()[i] == 0 || p->shape()[i] == it->second.shape()[i];
    if (!ok) {
      return InvalidArgument("Failed loading Parameter '" + name + "' from saved params: shape incompatible expected " +
                             ShapeToString(p->shape()) + " vs saved " + ShapeToString(it->second.shape()));
    }
  }
  for (const auto& [k, t] : loaded) {
    if (std::find(names.begin(), names.end(), k) == names.end()) {
      return InvalidArgument("Parameter '" + k + "' loaded from file '" + path + "' is not present in this block");
    }
  }
  for (auto& [name, p] : params) RETURN_IF_ERROR(p->SetData(std::move(loaded.at(name))));
  return OkStatus();
}

StatusOr<Sym> Sequential::Forward(Sym x) {
  for (const auto& [name, child] : children()) {
    ASSIGN_OR_RETURN(x, child->Forward(x));
  }
  return x;
}

Conv2D::Conv2D(int64_t channels, int64_t kernel_size, Conv2DOptions options)
    : Conv2D(channels, std::array<int64_t, 2>{kernel_size, kernel_size}, std::move(options)) {}

Conv2D::Conv2D(int64_t channels, std::array<int64_t, 2> kernel_size, Conv2DOptions options)
    : channels_(channels), kernel_(kernel_size), o_(std::move(options)) {
  int64_t in_per_group = o_.groups >= 1 ? o_.in_channels / o_.groups : o_.in_channels;
  weight_ = AddParameter("weight", {channels_, in_per_group, kernel_[0], kernel_[1]}, o_.weight_initializer);
  if (o_.use_bias) bias_ = AddParameter("bias", {channels_}, Zero());
}

namespace {
// "value 'pool1' f32[4,16,4,4] (traced from input 'data' f32[4,3,28,28])": the value a layer
// was given and the graph input it came from, for shape errors.
std::string DescribeLayerInput(Sym x) {
  const ir::Graph& g = x.tracer->graph();
  const ir::Value& v = g.value(x.id);
  auto type = [](const ir::TensorType& t) { return std::string(DTypeName(t.dtype)) + ShapeToString(t.shape); };
  std::string s = "'" + v.name + "' " + type(v.type);
  if (g.Producer(x.id) == nullptr) return "input " + s;
  for (ir::ValueId id : g.ValuesOfKind(ir::ValueKind::kInput)) {
    const ir::Value& in = g.value(id);
    if (in.type.dtype == DType::kF32) return "value " + s + " (traced from input '" + in.name + "' " + type(in.type) + ")";
  }
  return "value " + s;
}

StatusOr<Sym> MaybeActivate(Sym y, const std::string& act, const std::string& name) {
  if (act.empty()) return y;
  return ops::Activation(y, act, name);
}
}  // namespace

StatusOr<Sym> Conv2D::Forward(Sym x) {
  if (x.shape().size() != 4) {
    return InvalidArgument("Conv2D '" + weight_->name() + "': input must be NCHW (rank 4), got " +
                           ShapeToString(x.shape()));
  }
  const int64_t groups = o_.groups;
  if (groups < 1 || x.shape()[1] % groups != 0 || channels_ % groups != 0) {
    return InvalidArgument("Conv2D '" + weight_->name() + "': groups " + std::to_string(groups) +
                           " must be >= 1 and divide the " + std::to_string(x.shape()[1]) + " input channels of " +
                           DescribeLayerInput(x) + " and the " + std::to_string(channels_) + " output channels");
  }
  if (Status st = weight_->SetShape({channels_, x.shape()[1] / groups, kernel_[0], kernel_[1]}); !st.ok()) {
    return InvalidArgument("Conv2D '" + weight_->name() + "': " + DescribeLayerInput(x) + " has " +
                           std::to_string(x.shape()[1]) + " channels, but the weight " +
                           ShapeToString(weight_->shape()) + " (OIHW) takes " +
                           std::to_string(weight_->shape()[1] * groups) +
                           " (fixed by in_channels or by the first batch): " + st.message());
  }
  Tracer& t = *x.tracer;
  ASSIGN_OR_RETURN(Sym w, t.Param(*weight_));
  std::optional<Sym> b;
  if (bias_) {
    ASSIGN_OR_RETURN(b, t.Param(*bias_));
  }
  std::string base = weight_->name().substr(0, weight_->name().size() - std::string("weight").size());
  std::string name = base.empty() ? "conv" : base.substr(0, base.size() - 1) + ".conv";
  ASSIGN_OR_RETURN(Sym y, ops::Convolution(x, w, b, ops::ConvArgs{o_.strides, o_.padding, o_.dilation, groups}, name));
  return MaybeActivate(y, o_.activation, name + "_" + o_.activation);
}

MaxPool2D::MaxPool2D(int64_t pool_size, int64_t strides, int64_t padding, bool ceil_mode)
    : pool_(pool_size), stride_(strides > 0 ? strides : pool_size), pad_(padding), ceil_mode_(ceil_mode) {}

StatusOr<Sym> MaxPool2D::Forward(Sym x) {
  return ops::Pooling(x,
                      ops::PoolArgs{"max", {pool_, pool_}, {stride_, stride_}, {pad_, pad_}, true,
                                    ceil_mode_ ? ops::CeilMode::kCeilMxnet : ops::CeilMode::kFloor},
                      "maxpool");
}

AvgPool2D::AvgPool2D(int64_t pool_size, int64_t strides, int64_t padding, bool count_include_pad, bool ceil_mode)
    : pool_(pool_size),
      stride_(strides > 0 ? strides : pool_size),
      pad_(padding),
      include_pad_(count_include_pad),
      ceil_mode_(ceil_mode) {}

StatusOr<Sym> AvgPool2D::Forward(Sym x) {
  return ops::Pooling(x,
                      ops::PoolArgs{"avg", {pool_, pool_}, {stride_, stride_}, {pad_, pad_}, include_pad_,
                                    ceil_mode_ ? ops::CeilMode::kCeilMxnet : ops::CeilMode::kFloor},
                      "avgpool");
}

namespace {
StatusOr<Sym> GlobalPool(Sym x, const char* type, const char* layer) {
  if (x.shape().size() != 4) {
    return InvalidArgument(std::string(layer) + ": input must be NCHW (rank 4), got " + ShapeToString(x.shape()));
  }
  int64_t h = x.shape()[2], w = x.shape()[3];
  return ops::Pooling(x, ops::PoolArgs{type, {h, w}, {1, 1}, {0, 0}, true},
                      std::string(type) == "avg" ? "global_avgpool" : "global_maxpool");
}
}  // namespace

StatusOr<Sym> GlobalAvgPool2D::Forward(Sym x) { return GlobalPool(x, "avg", "GlobalAvgPool2D"); }
StatusOr<Sym> GlobalMaxPool2D::Forward(Sym x) { return GlobalPool(x, "max", "GlobalMaxPool2D"); }

StatusOr<Sym> HybridConcurrent::Forward(Sym x) {
  std::vector<Sym> outs;
  for (const auto& [name, child] : children()) {
    ASSIGN_OR_RETURN(Sym y, child->Forward(x));
    outs.push_back(y);
  }
  if (outs.empty()) return InvalidArgument("HybridConcurrent: has no children");
  return ops::Concat(outs, axis_, "concurrent_concat");
}

PReLU::PReLU(int64_t in_channels, std::shared_ptr<Initializer> alpha_initializer) {
  alpha_ = AddParameter("alpha", {in_channels},
                        alpha_initializer ? std::move(alpha_initializer) : std::make_shared<Constant>(0.25));
}

StatusOr<Sym> PReLU::Forward(Sym x) {
  int64_t c = alpha_->shape()[0];
  if (c != 1 && (x.shape().size() < 2 || x.shape()[1] != c)) {
    return InvalidArgument("PReLU '" + alpha_->name() + "': " + std::to_string(c) + " slopes need " +
                           std::to_string(c) + " channels on axis 1, got " + DescribeLayerInput(x));
  }
  Tracer& t = *x.tracer;
  ASSIGN_OR_RETURN(Sym alpha, t.Param(*alpha_));
  if (c != 1) {
    Shape s(x.shape().size(), 1);
    s[1] = c;
    ASSIGN_OR_RETURN(alpha, ops::Reshape(alpha, s, "prelu_alpha"));
  }
  // relu(x) + alpha * (x - relu(x)): the negative part scaled by the learnable slope.
  ASSIGN_OR_RETURN(Sym pos, ops::Relu(x, "prelu_pos"));
  ASSIGN_OR_RETURN(Sym neg, ops::Sub(x, pos, "prelu_neg"));
  ASSIGN_OR_RETURN(Sym scaled, ops::Mul(neg, alpha, "prelu_scaled"));
  return ops::Add(pos, scaled, "prelu");
}

BatchNorm::BatchNorm(BatchNormOptions options) : o_(options) {
  gamma_ = AddParameter("gamma", {o_.in_channels}, std::make_shared<Constant>(1.0));
  beta_ = AddParameter("beta", {o_.in_channels}, Zero());
  running_mean_ = AddParameter("running_mean", {o_.in_channels}, Zero());
  running_var_ = AddParameter("running_var", {o_.in_channels}, std::make_shared<Constant>(1.0));
  running_mean_->set_grad_req("null");
  running_var_->set_grad_req("null");
  if (!o_.scale) gamma_->set_grad_req("null");
  if (!o_.center) beta_->set_grad_req("null");
}

StatusOr<Sym> BatchNorm::Forward(Sym x) {
  if (o_.axis != 1) {
    return InvalidArgument("BatchNorm '" + gamma_->name() + "': only axis 1 (channels of NCHW / NC) is supported, got " +
                           std::to_string(o_.axis));
  }
  if (x.shape().size() < 2) {
    return InvalidArgument("BatchNorm '" + gamma_->name() + "': input must have rank >= 2 (channels on axis 1), got " +
                           DescribeLayerInput(x));
  }
  int64_t c = x.shape()[1];
  for (Parameter* p : {gamma_, beta_, running_mean_, running_var_}) {
    if (Status st = p->SetShape({c}); !st.ok()) {
      return InvalidArgument("BatchNorm '" + p->name() + "': " + DescribeLayerInput(x) + " has " + std::to_string(c) +
                             " channels, but the layer takes " + std::to_string(p->shape()[0]) +
                             " (fixed by in_channels or by the first batch): " + st.message());
    }
  }
  Tracer& t = *x.tracer;
  ASSIGN_OR_RETURN(Sym gamma, t.Param(*gamma_));
  ASSIGN_OR_RETURN(Sym beta, t.Param(*beta_));
  ASSIGN_OR_RETURN(Sym mean, t.Param(*running_mean_));
  ASSIGN_OR_RETURN(Sym var, t.Param(*running_var_));
  std::string base = gamma_->name().substr(0, gamma_->name().size() - std::string("gamma").size());
  std::string name = base.empty() ? "batchnorm" : base.substr(0, base.size() - 1) + ".batchnorm";
  return ops::BatchNorm(x, gamma, beta, mean, var, ops::BatchNormArgs{o_.epsilon, o_.momentum, o_.use_global_stats},
                        name);
}

StatusOr<Sym> Dropout::Forward(Sym x) { return ops::Dropout(x, rate_, "dropout", axes_); }

Dense::Dense(int64_t units, DenseOptions options) : units_(units), o_(std::move(options)) {
  weight_ = AddParameter("weight", {units_, o_.in_units}, o_.weight_initializer);
  if (o_.use_bias) bias_ = AddParameter("bias", {units_}, Zero());
}

StatusOr<Sym> Dense::Forward(Sym x) {
  if (x.shape().empty()) return InvalidArgument("Dense '" + weight_->name() + "': input must have rank >= 1");
  int64_t k = 1;
  for (size_t i = 1; i < x.shape().size(); ++i) k *= x.shape()[i];
  if (Status st = weight_->SetShape({units_, k}); !st.ok()) {
    return InvalidArgument("Dense '" + weight_->name() + "': " + DescribeLayerInput(x) + " flattens to " +
                           std::to_string(k) + " features, but the weight " + ShapeToString(weight_->shape()) +
                           " takes " + std::to_string(weight_->shape()[1]) +
                           " (fixed by in_units or by the first batch): " + st.message());
  }
  Tracer& t = *x.tracer;
  ASSIGN_OR_RETURN(Sym w, t.Param(*weight_));
  std::optional<Sym> b;
  if (bias_) {
    ASSIGN_OR_RETURN(b, t.Param(*bias_));
  }
  std::string base = weight_->name().substr(0, weight_->name().size() - std::string("weight").size());
  std::string name = base.empty() ? "dense" : base.substr(0, base.size() - 1) + ".dense";
  ASSIGN_OR_RETURN(Sym y, ops::FullyConnected(x, w, b, name));
  return MaybeActivate(y, o_.activation, name + "_" + o_.activation);
}

}  // namespace kiln::graph::nn
