// The model zoo: the CNNs people train and deploy, built from graph/nn.h layers with the
// structure and parameter names of torchvision 0.14 (resnet, mobilenetv2, mobilenetv3,
// densenet, squeezenet, vgg, googlenet, efficientnet), so that a torchvision state_dict maps
// onto kiln by name: BatchNorm's weight/bias are kiln's gamma/beta, running_mean and
// running_var keep their names, num_batches_tracked has no counterpart. Any input size
// (>= 32x32; the spatial dims shrink by 32) and any class count.
//
// Where the zoos differ, kiln follows torchvision (and says so):
//   - resnet*_v1 puts the bottleneck's stride on the 3x3 convolution (torchvision's, "v1.5");
//     Gluon's resnet50_v1 strides the first 1x1;
//   - BatchNorm momenta are torchvision's converted to Gluon's convention (kiln momentum =
//     1 - torch momentum: 0.9, and 0.99 in mobilenet_v3), eps torchvision's (1e-3 in
//     googlenet and mobilenet_v3); the running variance folds the biased batch variance
//     (MXNet), PyTorch the unbiased one (GLUON_SEMANTICS.md section 10);
//   - googlenet is torchvision's without the auxiliary classifiers (aux_logits=False,
//     transform_input=False), its "5x5" branch a 3x3 as torchvision's;
//   - efficientnet_b0 has no stochastic depth (torchvision drops residual branches at random
//     in training; at inference both are the identity);
//   - max pooling with ceil_mode uses PyTorch's rule (ops::CeilMode::kCeilPytorch).
// Dropout layers take ZooOptions::dropout when >= 0 (0 removes them), else the model's rate.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/nn.h"

namespace kiln::graph::zoo {

struct ZooOptions {
  int64_t classes = 1000;
  double dropout = -1;  // < 0: the model's own rates
};

// "resnet18_v1", "resnet50_v1", "mobilenet_v2_1.0", "mobilenet_v3_small", "densenet121",
// "squeezenet1.1", "vgg11_bn", "googlenet", "efficientnet_b0".
const std::vector<std::string>& ModelNames();

// The uninitialized network `name` (parameters with deferred shapes; Initialize() or
// LoadParameters() next). Errors: NotFound naming the known models; InvalidArgument for
// classes < 1 or dropout >= 1.
StatusOr<std::shared_ptr<nn::Block>> GetModel(const std::string& name, const ZooOptions& options = {});

// The initialization torchvision's constructors use, as kiln initializers: Kaiming-normal
// (fan_out) convolutions, N(0, 0.01) linear layers (densenet, vgg, googlenet differ in
// detail; the statistics, not the draws, matter for training from scratch), BatchNorm
// gamma 1 and beta 0, zero biases. Errors: an initializer's.
Status InitializeLikeTorchvision(nn::Block& net, const std::string& name);

// AdaptiveAvgPool2D(output) for the cases CNNs meet (torch.nn.AdaptiveAvgPool2d): an input
// H x W divisible by the output (average pooling with kernel = stride = H/OH), or 1 x 1 (the
// value repeated, vgg at small inputs). Errors: Unimplemented for other sizes, naming them.
class AdaptiveAvgPool2D : public nn::Block {
 public:
  explicit AdaptiveAvgPool2D(int64_t output) : output_(output) {}
  StatusOr<Sym> Forward(Sym x) override;

 private:
  int64_t output_;
};

}  // namespace kiln::graph::zoo
