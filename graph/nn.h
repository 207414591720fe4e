// Gluon-like layers (GLUON_SEMANTICS.md section 2). A Block traces itself into the graph of
// its input Sym; parameters exist from construction with unknown dims (0) that the first
// forward pass infers (deferred initialization), exactly as Gluon's in_channels=0/in_units=0.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/ops.h"
#include "graph/parameter.h"

namespace kiln::graph::nn {

class Block {
 public:
  virtual ~Block() = default;
  Block() = default;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  // Traces the block on `x`: adds its nodes to x's graph and returns the output.
  // Errors: shape errors naming the node, op and shapes; FailedPrecondition when a parameter
  // was never initialized.
  virtual StatusOr<Sym> Forward(Sym x) = 0;
  StatusOr<Sym> operator()(Sym x) { return Forward(x); }

  // Every parameter of this block and its children, keyed by structural name ("0.weight",
  // "conv1.bias"), sorted by name; also sets each parameter's name().
  std::vector<std::pair<std::string, Parameter*>> CollectParams();

  // Initializes every parameter (own initializer first, else `init`); parameters with
  // unknown dims are initialized during the first forward pass. Gluon's default global
  // initializer is Uniform(0.07). Errors: an initializer error naming the parameter.
  Status Initialize(const Initializer& init = Uniform(0.07), bool force_reinit = false);

  // save_parameters / load_parameters in MXNet's .params format with structural names
  // (runtime/parameter_store.h). The file is written atomically. Loading sets the shapes of
  // deferred parameters, so no forward pass is needed first. Errors: FailedPrecondition when
  // saving uninitialized parameters; NotFound/DataLoss/InvalidArgument from the file.
  Status SaveParameters(const std::string& path);
  Status LoadParameters(const std::string& path);

 protected:
  // Registers a parameter (local name "weight", "bias", ...). Owned by this block.
  Parameter* AddParameter(const std::string& local_name, Shape shape, std::shared_ptr<Initializer> init = nullptr);
  // Registers a child block under `name` (its parameters become "<name>.<param>").
  template <typename B>
  B* RegisterChild(const std::string& name, std::shared_ptr<B> child) {
    children_.emplace_back(name, child);
    return child.get();
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Block>>>& children() const { return children_; }

 private:
  void Collect(const std::string& prefix, std::vector<std::pair<std::string, Parameter*>>& out);
  std::vector<std::unique_ptr<Parameter>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Block>>> children_;
};

// Runs children in order; children are named "0", "1", ... (Gluon Sequential and
// HybridSequential; every kiln block is "hybridized": it always compiles to one graph).
class Sequential : public Block {
 public:
  // Appends a block and returns it.
  template <typename B>
  B* Add(std::shared_ptr<B> block) {
    return RegisterChild(std::to_string(children().size()), std::move(block));
  }
  StatusOr<Sym> Forward(Sym x) override;
  size_t size() const { return children().size(); }
};
using HybridSequential = Sequential;

// Conv2D(channels, kernel_size, {strides, padding, dilation, activation, use_bias,
// in_channels}): weight [channels, in_channels, KH, KW] OIHW, bias [channels] (zeros).
// Source: gluon.nn.Conv2D (layout NCHW).
struct Conv2DOptions {
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  std::string activation;  // "" or an ops::Activation name ("relu", "gelu", "relu6", ...)
  // Gluon's groups: weights [channels, in_channels/groups, KH, KW]; groups = in_channels =
  // channels is a depthwise convolution (MobileNet). Both channel counts must divide by it.
  int64_t groups = 1;
  bool use_bias = true;
  int64_t in_channels = 0;  // 0: inferred from the first input
  std::shared_ptr<Initializer> weight_initializer;
};
class Conv2D : public Block {
 public:
  Conv2D(int64_t channels, int64_t kernel_size, Conv2DOptions options = {});
  Conv2D(int64_t channels, std::array<int64_t, 2> kernel_size, Conv2DOptions options = {});
  StatusOr<Sym> Forward(Sym x) override;
  Parameter* weight() { return weight_; }
  Parameter* bias() { return bias_; }

 private:
  int64_t channels_;
  std::array<int64_t, 2> kernel_;
  Conv2DOptions o_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

// MaxPool2D / AvgPool2D(pool_size, strides (0 = pool_size), padding, ceil_mode): 'valid'
// convention by default; ceil_mode=true rounds the output size up (MXNet's 'full'
// convention, keeping a last window that starts in the padding; ops::CeilMode::kCeilPytorch
// through ops::Pooling drops it as PyTorch does). AvgPool2D with ceil_mode needs
// count_include_pad=false (ops::PoolArgs). Source: gluon.nn.MaxPool2D / AvgPool2D.
class MaxPool2D : public Block {
 public:
  explicit MaxPool2D(int64_t pool_size = 2, int64_t strides = 0, int64_t padding = 0, bool ceil_mode = false);
  StatusOr<Sym> Forward(Sym x) override;

 private:
  int64_t pool_, stride_, pad_;
  bool ceil_mode_;
};
class AvgPool2D : public Block {
 public:
  explicit AvgPool2D(int64_t pool_size = 2, int64_t strides = 0, int64_t padding = 0, bool count_include_pad = true,
                     bool ceil_mode = false);
  StatusOr<Sym> Forward(Sym x) override;

 private:
  int64_t pool_, stride_, pad_;
  bool include_pad_, ceil_mode_;
};
// GlobalAvgPool2D / GlobalMaxPool2D: [N, C, H, W] -> [N, C, 1, 1], the mean / max over each
// channel's H x W (a pooling window the size of the input, as gluon.nn.GlobalAvgPool2D).
// Errors: InvalidArgument for an input that is not rank 4.
class GlobalAvgPool2D : public Block {
 public:
  StatusOr<Sym> Forward(Sym x) override;
};
class GlobalMaxPool2D : public Block {
 public:
  StatusOr<Sym> Forward(Sym x) override;
};


// Dense(units, {activation, use_bias, in_units}): flattens [N, ...] to [N, K];
// weight [units, K] OI, bias [units] (zeros). Source: gluon.nn.Dense (flatten=True).
struct DenseOptions {
  std::string activation;
  bool use_bias = true;
  int64_t in_units = 0;
  std::shared_ptr<Initializer> weight_initializer;
};
class Dense : public Block {
 public:
  explicit Dense(int64_t units, DenseOptions options = {});
  StatusOr<Sym> Forward(Sym x) override;
  Parameter* weight() { return weight_; }
  Parameter* bias() { return bias_; }

 private:
  int64_t units_;
  DenseOptions o_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

// [N, x1..xn] -> [N, x1*...*xn].
class Flatten : public Block {
 public:
  StatusOr<Sym> Forward(Sym x) override { return ops::Flatten(x); }
};

// Activation(act_type): any name ops::Activation takes ("relu", "sigmoid", "tanh",
// "softrelu", "elu", "selu", "gelu", "swish", "hard_sigmoid", "hard_swish", "relu6", ...).
class Activation : public Block {
 public:
  explicit Activation(std::string act) : act_(std::move(act)) {}
  StatusOr<Sym> Forward(Sym x) override { return ops::Activation(x, act_); }

 private:
  std::string act_;
};

// Gluon's activation layers (mxnet.gluon.nn, MXNet 1.9 defaults), elementwise, any shape.
// LeakyReLU(alpha): x > 0 ? x : alpha*x, alpha > 0 (Gluon requires it explicitly).
class LeakyReLU : public Block {
 public:
  explicit LeakyReLU(double alpha) : alpha_(alpha) {}
  StatusOr<Sym> Forward(Sym x) override { return ops::LeakyReLU(x, alpha_); }

 private:
  double alpha_;
};
// ELU(alpha = 1.0): x > 0 ? x : alpha*(e^x - 1).
class ELU : public Block {
 public:
  explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
  StatusOr<Sym> Forward(Sym x) override { return ops::ELU(x, alpha_); }

 private:
  double alpha_;
};
// SELU: 1.0507 * elu(x; 1.6733) (Klambauer et al. 2017).
class SELU : public Block {
 public:
  StatusOr<Sym> Forward(Sym x) override { return ops::Activation(x, "selu"); }
};
// GELU: x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)) (the erf form, as Gluon and PyTorch's
// default; not the tanh approximation).
class GELU : public Block {
 public:
  StatusOr<Sym> Forward(Sym x) override { return ops::Activation(x, "gelu"); }
};
// Swish(beta = 1.0): x * sigmoid(beta*x); beta 1 is SiLU.
class Swish : public Block {
 public:
  explicit Swish(double beta = 1.0) : beta_(beta) {}
  StatusOr<Sym> Forward(Sym x) override { return ops::Swish(x, beta_); }

 private:
  double beta_;
};
// HardSigmoid(alpha = 0.2, beta = 0.5): clip(alpha*x + beta, 0, 1) (MXNet/ONNX defaults;
// torchvision's MobileNetV3 uses alpha = 1/6, GLUON_SEMANTICS.md).
class HardSigmoid : public Block {
 public:
  explicit HardSigmoid(double alpha = 0.2, double beta = 0.5) : alpha_(alpha), beta_(beta) {}
  StatusOr<Sym> Forward(Sym x) override { return ops::HardSigmoid(x, alpha_, beta_); }

 private:
  double alpha_, beta_;
};
// HardSwish: x * relu6(x + 3) / 6 (Howard et al. 2019, MobileNetV3).
class HardSwish : public Block {
 public:
  StatusOr<Sym> Forward(Sym x) override { return ops::Activation(x, "hard_swish"); }
};

// HybridConcurrent(axis = 1): runs every child on the same input and concatenates their
// outputs along `axis` (gluon.contrib.nn.HybridConcurrent; Inception and SqueezeNet's
// fire modules). Children are named "0", "1", ... Errors: the children's, and concat's
// when their output shapes differ off the axis.
class HybridConcurrent : public Block {
 public:
  explicit HybridConcurrent(int64_t axis = 1) : axis_(axis) {}
  template <typename B>
  B* Add(std::shared_ptr<B> block) {
    return RegisterChild(std::to_string(children().size()), std::move(block));
  }
  StatusOr<Sym> Forward(Sym x) override;

 private:
  int64_t axis_;
};

// PReLU(alpha_initializer = Constant(0.25), in_channels = 1): x > 0 ? x : alpha * x with a
// learnable alpha [in_channels] broadcast along axis 1 (one slope for the layer by default,
// one per channel with in_channels = C; MXNet LeakyReLU act_type='prelu').
class PReLU : public Block {
 public:
  explicit PReLU(int64_t in_channels = 1, std::shared_ptr<Initializer> alpha_initializer = nullptr);
  StatusOr<Sym> Forward(Sym x) override;
  Parameter* alpha() { return alpha_; }

 private:
  Parameter* alpha_;
};

// BatchNorm(axis = 1, momentum = 0.9, epsilon = 1e-5, center = true, scale = true,
// use_global_stats = false, in_channels = 0): Gluon's defaults (GLUON_SEMANTICS.md section
// 10). Parameters: gamma [C] (ones), beta [C] (zeros), running_mean [C] (zeros),
// running_var [C] (ones); the running statistics have grad_req "null", and so do gamma
// with scale = false (fixed at 1, Gluon's fix_gamma) and beta with center = false (fixed at
// 0). Traced in training mode (graph::TrainStep) it normalizes with the batch's statistics
// and updates the running ones inside the compiled step; otherwise (Predictor, artifacts)
// with the running statistics. Errors: InvalidArgument for an axis other than 1, an input
// of rank < 2, or a channel count that differs from in_channels / the first batch.
struct BatchNormOptions {
  int64_t axis = 1;
  double momentum = 0.9;
  double epsilon = 1e-5;
  bool center = true;
  bool scale = true;
  bool use_global_stats = false;
  int64_t in_channels = 0;
};
class BatchNorm : public Block {
 public:
  explicit BatchNorm(BatchNormOptions options = {});
  StatusOr<Sym> Forward(Sym x) override;
  Parameter* gamma() { return gamma_; }
  Parameter* beta() { return beta_; }
  Parameter* running_mean() { return running_mean_; }
  Parameter* running_var() { return running_var_; }

 private:
  BatchNormOptions o_;
  Parameter *gamma_, *beta_, *running_mean_, *running_var_;
};

// Dropout(rate): inverted dropout in training mode (each element zeroed with probability
// rate, the others scaled by 1/(1 - rate); a new mask every step, reproducible from the
// step's seed), the identity at inference. Gluon's Dropout(rate, axes): with `axes` the
// mask is shared along those dims (e.g. {2, 3}: whole NCHW feature maps dropped). Errors:
// InvalidArgument for rate outside [0, 1) or axes that are not distinct dims of the input.
class Dropout : public Block {
 public:
  explicit Dropout(double rate, std::vector<int64_t> axes = {}) : rate_(rate), axes_(std::move(axes)) {}
  StatusOr<Sym> Forward(Sym x) override;

 private:
  double rate_;
  std::vector<int64_t> axes_;
};

// Convenience: std::make_shared for layers, e.g. net.Add(nn::Make<nn::Dense>(10)).
template <typename B, typename... Args>
std::shared_ptr<B> Make(Args&&... args) {
  return std::make_shared<B>(std::forward<Args>(args)...);
}

}  // namespace kiln::graph::nn

namespace kiln::graph {

// Gluon's SoftmaxCrossEntropyLoss(sparse_label=True): pred [N, C], label [N] s32 ->
// per-sample loss [N] (no reduction over the batch; Trainer.step(batch_size) takes the mean).
class SoftmaxCrossEntropyLoss {
 public:
  StatusOr<Sym> operator()(Sym pred, Sym label) const { return ops::SoftmaxCrossEntropy(pred, label, "loss"); }
};

}  // namespace kiln::graph
