// The CPU backend's step implementations: the runtime-side half of backends/cpu. A compiled
// artifact lists StepDescs; a runtime without the compiler rebuilds its steps with CpuSteps()
// (STYLE.md section 1). Depends only on runtime/, base/ and oneDNN, never on ir/.
//
// Operands are dense row-major f32 tensors (NCHW activations, OIHW conv weights, NC / OI for
// dense) unless noted; `desc.kind` is the IR op name, and `desc.inputs` / `desc.outputs`
// follow that op's operand order. Attributes arrive as the lowering copies them from the IR:
// int -> ints[k] = {v}, int list -> ints[k], float -> floats[k], string -> strings[k].
//
// oneDNN kinds (primitive descriptors and primitives are built once, in Create; each Run
// only wraps the operand pointers in dnnl::memory objects):
//   conv2d                  src NCHW, weights OIHW[, bias C[, sum NCHW]] -> dst NCHW
//                           (sum: dst = conv + bias + sum, a oneDNN sum post-op; the sum
//                           operand is copied into dst first unless it is the same buffer)
//                           ints stride, padding_begin, padding_end, dilation (1 = dense)
//   conv2d_backward_data    diff_dst NCHW, weights OIHW -> diff_src NCHW (same ints)
//   conv2d_backward_weights src NCHW, diff_dst NCHW -> diff_weights OIHW[, diff_bias C]
//                           (ints with_bias {1} gives the second output)
//   pool2d                  src NCHW -> dst NCHW; strings kind "max"|"avg"; ints kernel,
//                           stride, padding_begin, padding_end, count_include_pad ({1} if absent)
//                           ints with_workspace {1} (max only): a second output, the
//                           workspace (layout "workspace", bytes from ChooseLayouts)
//   pool2d_backward         diff_dst, src[, workspace] -> diff_src (max: gradient to the
//                           window's maximum; without the forward's workspace it needs
//                           ScratchBytes() of arena scratch to recompute it)
//   dense                   src NC, weights OI[, bias C] -> dst NC
//   dense_backward_data     diff_dst NC, weights OI -> diff_src NC
//   dense_backward_weights  src NC, diff_dst NC -> diff_weights OI[, diff_bias C] (with_bias)
//   relu, sigmoid, tanh     src -> dst, any shape (outputs[0] may alias inputs[0])
//   relu_backward, sigmoid_backward, tanh_backward
//                           diff_dst, dst -> diff_src, written with the forward dst
//                           (outputs[0] may alias inputs[0])
//   add, mul                src0, src1 -> dst with NumPy broadcasting (a native loop when
//                           both inputs are broadcast: oneDNN 2.6 broadcasts only src1)
//   reduce_sum, reduce_mean src -> dst; ints axes, keepdims (dst has the same bytes either way)
//   softmax, log_softmax    src -> dst along ints axis (default -1)
//   softmax_backward, log_softmax_backward
//                           diff_dst, dst -> diff_src along axis
// Native kinds (plain C++ loops):
//   broadcast_to            src -> dst (ints shape)
//   reshape                 src -> dst (a copy unless both are the same bytes)
//   softmax_cross_entropy   logits NC f32, label N s32 -> loss N f32
//   softmax_cross_entropy_backward
//                           diff_loss N, logits NC, label N s32 -> diff_logits NC
//   argmax                  src NC -> dst N s32 (the first maximum wins)
//   fill                    () -> dst (floats value)
//   one_hot                 indices N s32 -> dst NC [N, depth] (ints depth; floats on_value,
//                           off_value); an index outside [0, depth) gives an all-off row
//   sgd_update              weight, grad, lr [], rescale_grad [][, mom] -> weight_out[, mom_out]
//                           floats wd, momentum, clip_gradient (<= 0 or absent: no clipping);
//                           outputs may alias the matching inputs
//   adam_update             weight, grad, mean, var, lr [], rescale_grad [] -> weight_out,
//                           mean_out, var_out; floats beta1, beta2, epsilon, wd,
//                           clip_gradient (< 0 or absent: no clipping); lr is the
//                           bias-corrected lr_t; outputs may alias the matching inputs
// The exact math of every kind is its IR op's reference kernel (ir/ops/*.cc).
//
// Update groups: sgd_update_group / adam_update_group (runtime::SplitGroup): several
// updates with the same attributes as one step; each member is checked and run as its kind.
//
// Blocked layouts: conv2d (all three kinds), pool2d (+backward), the activations (+backward)
// and reorder accept operands whose TensorRef names a oneDNN format tag (e.g. "aBcd16b",
// nChw16c); all other kinds require dense operands and reject blocked ones with
// InvalidArgument. `reorder` (src -> dst, same dims) converts between any two layouts.
// Layout queries (ChooseLayouts, not Create) may carry ints layout_for_training {1}: the
// step is part of a training graph, and convolutions then prefer channels-last for channel
// counts that 16-blocking pads (see layout_kernels.cc).
// Fused activations: conv2d and dense take strings activation "relu"|"sigmoid"|"tanh"|"clip"
// (floats activation_min, activation_max: relu6 is 0, 6), applied to dst as a oneDNN eltwise
// post-op (eltwise_clip for clip).
//
// Threading: steps are immutable; Run is const and may be called concurrently from many
// threads on distinct arenas. oneDNN primitives use the user scratchpad mode with the
// step's arena scratch, because the library-managed scratchpad of oneDNN 2.6 forbids
// running a primitive on another thread than the one that created it.
//
// Source: oneDNN v2.6 developer guide: "Convolution", "Pooling", "Inner Product", "Eltwise",
// "Binary", "Reduction", "Softmax", "LogSoftmax", "Primitive Attributes: Scratchpad".
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "runtime/step.h"

namespace kiln::backends::cpu {

// The CPU StepFactory: oneDNN primitives for conv/pool/dense/eltwise/softmax/binary/reduction,
// native loops for the rest (see the list above).
class CpuStepFactory final : public runtime::StepFactory {
 public:
  // Builds the step for `desc`. oneDNN primitive descriptors and primitives are created
  // here, once; Run never creates primitives.
  // Errors: Unimplemented for a kind this backend cannot run (or a configuration oneDNN
  // has no implementation for); InvalidArgument for a wrong number of operands, a wrong
  // dtype, missing or malformed attributes, or shapes that disagree. Every message names
  // the kind, the node and the operands with their shapes, e.g.
  //   conv2d "conv1": takes 2 to 4 inputs, got 1 (src arena+0 f32[2,3,9,9], dst ...)
  // Steps' Run returns InvalidArgument for bad data (a label outside [0, C)) and Internal
  // for a oneDNN execution failure, naming the node the same way.
  StatusOr<std::unique_ptr<runtime::Step>> Create(const runtime::StepDesc& desc) const override;

  // Bytes of arena scratch the step needs: oneDNN's scratchpad, plus for max pool2d_backward
  // a forward dst copy and the forward workspace, each aligned to 64 bytes. 0 for native
  // kinds. Depends only on the kind, attributes, dims and dtypes (not on offsets), and on
  // the machine's ISA (oneDNN picks the implementation). A step whose scratch slice is
  // missing or too small still runs, using a per-thread heap buffer instead.
  // Errors: as Create.
  StatusOr<int64_t> ScratchBytes(const runtime::StepDesc& desc) const override;

  // Layouts (see "Blocked layouts" above): convolutions take what oneDNN picks with
  // format_tag::any; pooling and activations follow their input; other kinds are dense.
  // Errors: Unimplemented for an unknown kind; oneDNN creation errors naming the node.
  StatusOr<Layouts> ChooseLayouts(const runtime::StepDesc& desc) const override;
};

// A process-wide CpuStepFactory.
const runtime::StepFactory& CpuSteps();

}  // namespace kiln::backends::cpu
