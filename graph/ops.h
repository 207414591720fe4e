// Low-level symbolic ops, in the spirit of MXNet's nd.Convolution, nd.Pooling, nd.dot,
// nd.relu, nd.softmax_cross_entropy (GLUON_SEMANTICS.md section 9). Each call adds one
// IR node and runs shape inference at once; errors name the node, the op and the shapes.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "graph/symbol.h"

namespace kiln::graph::ops {

// 2-D convolution: dst = conv(data, weight) + bias.
//   data:   [N, IC, IH, IW] NCHW;  weight: [OC, IC, KH, KW] OIHW;  bias: [OC], optional
//   dst:    [N, OC, OH, OW], OH = (IH + 2*PH - DH*(KH-1) - 1) / SH + 1 (floor)
// stride, pad (symmetric, as MXNet `pad`) and dilate are per (H, W); dilate 1 = dense.
// Errors: InvalidArgument if ranks are not 4, IC differs, or the dilated kernel exceeds
// the padded input. Source: MXNet Convolution; oneDNN "Convolution".
struct ConvArgs {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> pad{0, 0};
  std::array<int64_t, 2> dilate{1, 1};
  // num_group: weights are [OC, IC/groups, KH, KW]; groups = IC = OC is depthwise.
  int64_t groups = 1;
};
StatusOr<Sym> Convolution(Sym data, Sym weight, std::optional<Sym> bias, const ConvArgs& args = {},
                          const std::string& name = "conv");

// 2-D pooling ("max" or "avg") over NCHW; stride defaults to 1 as MXNet nd.Pooling (Gluon
// layers default it to the kernel). OH = (IH + 2*PH - KH) / SH + 1 ('valid' convention).
// count_include_pad: average divides by KH*KW (true, MXNet's default) or by the in-bounds count.
// ceil_mode (MXNet's pooling_convention 'full', PyTorch's ceil_mode=True): the output size
// rounds up, OH = ceil((H + 2p - K) / S) + 1, computed as extra end padding the last
// window reads; kCeilPytorch also drops a last window that would start in the end padding
// (PyTorch: if (OH - 1) * S >= H + p, OH -= 1; torchvision's squeezenet and googlenet), which
// MXNet keeps. Max pooling ignores the extra padding; average pooling supports it only
// with count_include_pad = false (the divisor counts the in-bounds elements, as PyTorch's):
// with count_include_pad = true the divisor would have to exclude the extra padding but not
// the real one, which the pool2d op cannot express yet (Unimplemented).
enum class CeilMode : uint8_t { kFloor, kCeilMxnet, kCeilPytorch };
struct PoolArgs {
  std::string pool_type = "max";
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> pad{0, 0};
  bool count_include_pad = true;
  CeilMode ceil_mode = CeilMode::kFloor;
};
// Errors: InvalidArgument naming the node for a window that lies wholly in the padding;
// Unimplemented for ceil_mode average pooling with count_include_pad.
StatusOr<Sym> Pooling(Sym data, const PoolArgs& args, const std::string& name = "pool");

// Fully connected: dst [N, M] = flatten(data) [N, K] x weight^T [K, M] + bias [M].
// Source: MXNet FullyConnected (flatten=True).
StatusOr<Sym> FullyConnected(Sym data, Sym weight, std::optional<Sym> bias, const std::string& name = "dense");

// dst [N, M] = a [N, K] x b^T where b is [M, K] (nd.dot(a, b.T)), no bias.
StatusOr<Sym> Dot(Sym a, Sym b_transposed, const std::string& name = "dot");

// Elementwise activations by name, any shape, f32 (formulas and sources in ir/ops/
// activation.cc and activation_src.cc): Gluon's act_type names "relu", "sigmoid", "tanh",
// "softrelu" (= softplus, log(1 + e^x)), and "elu" (alpha 1), "selu", "gelu" (erf form),
// "silu" / "swish" (beta 1), "hard_sigmoid" (alpha 0.2, beta 0.5, MXNet's defaults),
// "hard_swish" (x * relu6(x + 3) / 6), "softplus", "softsign" (x / (1 + |x|)), "relu6"
// (clip to [0, 6]), "leaky_relu" (alpha 0.01). Errors: InvalidArgument naming the node for another name.
StatusOr<Sym> Activation(Sym x, const std::string& act_type, const std::string& name = "");
// The parameterized ones. LeakyReLU: x > 0 ? x : alpha*x (alpha > 0). ELU: x > 0 ? x :
// alpha*(e^x - 1). Swish: x * sigmoid(beta*x). HardSigmoid: clip(alpha*x + beta, 0, 1)
// (PyTorch's Hardsigmoid is alpha = 1/6). Clip: min(max(x, a_min), a_max), a_min < a_max.
// Errors: InvalidArgument naming the node for an attribute out of range.
StatusOr<Sym> LeakyReLU(Sym x, double alpha, const std::string& name = "leaky_relu");
StatusOr<Sym> ELU(Sym x, double alpha = 1.0, const std::string& name = "elu");
StatusOr<Sym> Swish(Sym x, double beta = 1.0, const std::string& name = "swish");
StatusOr<Sym> HardSigmoid(Sym x, double alpha = 0.2, double beta = 0.5, const std::string& name = "hard_sigmoid");
StatusOr<Sym> Clip(Sym x, double a_min, double a_max, const std::string& name = "clip");
StatusOr<Sym> Relu(Sym x, const std::string& name = "relu");

// Joins `inputs` along `axis` (MXNet concat, dim=axis; negative counts from the end): every
// other dim equal. More than 16 inputs nest. Gradient: split. Errors: InvalidArgument
// naming the node and every input shape when dims differ; for an empty list.
StatusOr<Sym> Concat(const std::vector<Sym>& inputs, int64_t axis = 1, const std::string& name = "concat");
// Pieces of `sizes[i]` along `axis` (sizes sum to the dim, 1 to 16 pieces; MXNet split
// with uneven sections). Errors: InvalidArgument naming the node.
StatusOr<std::vector<Sym>> Split(Sym x, int64_t axis, const std::vector<int64_t>& sizes,
                                 const std::string& name = "split");
// x[..., begin:end, ...] along `axis` (MXNet slice_axis): 0 <= begin < end <= dim.
StatusOr<Sym> SliceAxis(Sym x, int64_t axis, int64_t begin, int64_t end, const std::string& name = "slice");
// dst dim i = src dim axes[i] (MXNet transpose; empty axes reverses the dims).
StatusOr<Sym> Transpose(Sym x, std::vector<int64_t> axes = {}, const std::string& name = "transpose");

// [N, x1..xn] -> [N, x1*...*xn] (row-major).
StatusOr<Sym> Flatten(Sym x, const std::string& name = "flatten");
// Reshape to `shape` with Gluon's special codes (MXNet 1.9 reshape, InferReshapeShape): the
// codes consume the input's dims left to right; 0 copies the next input dim, -1 infers one
// dim from the element count (at most one -1; it consumes an input dim), -2 copies all the
// remaining input dims, -3 merges the next two input dims into their product, -4 splits the
// next input dim into the two dims that follow it in `shape` (one of them may be -1); a
// positive value is that dim (and consumes an input dim). E.g. [2,3,4,5] with (0,-3,-2) ->
// [2,12,5], (-4,1,2,-2) -> [1,2,3,4,5], (-2) -> [2,3,4,5]. Errors: InvalidArgument naming
// the node, the input shape and the codes when a code has no input dim to consume or the
// element counts cannot match.
StatusOr<Sym> Reshape(Sym x, const Shape& shape, const std::string& name = "reshape");

// NumPy-broadcasting elementwise binary ops (MXNet broadcast_add, _sub, _mul, _div,
// _maximum, _minimum): shapes aligned at the trailing dims, each pair of dims equal or 1.
// maximum / minimum pass a tie's gradient to `a`. Errors: InvalidArgument naming the node
// and both shapes when they do not broadcast. The squeeze-and-excitation scaling
// x [N,C,H,W] * s [N,C,1,1] is Mul.
StatusOr<Sym> Add(Sym a, Sym b, const std::string& name = "add");
StatusOr<Sym> Mul(Sym a, Sym b, const std::string& name = "mul");
StatusOr<Sym> Sub(Sym a, Sym b, const std::string& name = "sub");
StatusOr<Sym> Div(Sym a, Sym b, const std::string& name = "div");
StatusOr<Sym> Maximum(Sym a, Sym b, const std::string& name = "maximum");
StatusOr<Sym> Minimum(Sym a, Sym b, const std::string& name = "minimum");
// Elementwise math (nd.exp, nd.log, nd.sqrt, nd.abs, nd.negative); log and sqrt give NaN
// below 0 (as NumPy), the numerics check (CompileOptions::check_numerics) finds them.
StatusOr<Sym> Exp(Sym x, const std::string& name = "exp");
StatusOr<Sym> Log(Sym x, const std::string& name = "log");
StatusOr<Sym> Sqrt(Sym x, const std::string& name = "sqrt");
StatusOr<Sym> Abs(Sym x, const std::string& name = "abs");
StatusOr<Sym> Negative(Sym x, const std::string& name = "negative");
// A constant f32 tensor of `shape` filled with `value`.
StatusOr<Sym> Fill(Tracer& t, const Shape& shape, double value, const std::string& name = "fill");

StatusOr<Sym> Softmax(Sym x, int64_t axis = -1, const std::string& name = "softmax");
StatusOr<Sym> LogSoftmax(Sym x, int64_t axis = -1, const std::string& name = "log_softmax");
// Sum / mean over `axes` (all axes when empty), keepdims as NumPy.
StatusOr<Sym> Sum(Sym x, std::vector<int64_t> axes = {}, bool keepdims = false, const std::string& name = "sum");
StatusOr<Sym> Mean(Sym x, std::vector<int64_t> axes = {}, bool keepdims = false, const std::string& name = "mean");

// Per-sample softmax cross-entropy: logits [N, C] f32, label [N] s32 -> loss [N] f32.
// (MXNet's nd.softmax_cross_entropy sums over the batch; kiln returns per-sample values,
// as Gluon's SoftmaxCrossEntropyLoss does; Sum() gives the MXNet op.)
StatusOr<Sym> SoftmaxCrossEntropy(Sym logits, Sym label, const std::string& name = "softmax_cross_entropy");

// MXNet nd.one_hot(indices, depth, on_value, off_value): indices s32 [N] -> f32 [N, depth],
// dst[n, c] = on_value if c == indices[n] else off_value. An index outside [0, depth) gives
// a row of off_value only (as MXNet; not an error). Not differentiable (integer input).
// Errors: InvalidArgument if indices is not s32 rank 1 or depth < 1.
StatusOr<Sym> OneHot(Sym indices, int64_t depth, double on_value = 1.0, double off_value = 0.0,
                     const std::string& name = "one_hot");

// Batch normalization over axis 1 of data [N, C, ...] (ir/ops/batch_norm.cc; MXNet 1.9
// BatchNorm, GLUON_SEMANTICS.md section 10): gamma, beta, running_mean, running_var [C].
// In training mode (Tracer::training()) without use_global_stats: normalizes with the
// batch's mean and biased variance and updates the running statistics in place inside the
// step, running = momentum * running + (1 - momentum) * batch (Gluon's momentum 0.9 is
// PyTorch's momentum 0.1; PyTorch folds the unbiased variance in, kiln the biased one as
// MXNet). Otherwise: normalizes with the running statistics, which are not changed.
// Errors: InvalidArgument naming the node when data has rank < 2 or a [C] operand differs.
struct BatchNormArgs {
  double epsilon = 1e-5;
  double momentum = 0.9;
  bool use_global_stats = false;
};
StatusOr<Sym> BatchNorm(Sym data, Sym gamma, Sym beta, Sym running_mean, Sym running_var,
                        const BatchNormArgs& args = {}, const std::string& name = "batch_norm");

// Inverted dropout (ir/ops/dropout.cc): in training mode, each element is zeroed with
// probability `rate` and the rest scaled by 1/(1 - rate), with a mask drawn from the
// per-step seed (Tracer::DropoutSeed); the identity at inference or for rate 0. `axes`
// (Gluon's Dropout axes; negative counts from the end): the mask is shared along them, e.g.
// {2, 3} on NCHW drops whole feature maps. Errors: InvalidArgument for rate outside [0, 1)
// or axes that are not distinct dims of x.
StatusOr<Sym> Dropout(Sym x, double rate, const std::string& name = "dropout", const std::vector<int64_t>& axes = {});

// Index of the largest value along axis 1 of [N, C]: s32 [N].
StatusOr<Sym> Argmax(Sym x, const std::string& name = "argmax");

}  // namespace kiln::graph::ops
