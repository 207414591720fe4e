// Internal to backends/cpu: the pieces the kernel files share. A kind is either planned as a
// short list of oneDNN primitive calls (DnnlPlan, run by the generic DnnlStep) or run by a
// native loop (NativeFn, run by NativeStep); some kinds pick per configuration.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "base/status.h"
#include "runtime/step.h"
#include "runtime/step_kinds.h"

namespace kiln::backends::cpu::internal {

using runtime::StepDesc;
using runtime::TensorRef;

// ---- Operand checks and messages (kernels_cpu.cc) ----

// One native loop: reads and writes the operands of `desc` through `ctx`.
using NativeFn = Status (*)(const StepDesc& desc, const runtime::ExecContext& ctx);

struct DnnlPlan;

// The kernels of a kind. `plan` (null for native-only kinds) returns the oneDNN calls, or
// nullopt when this configuration runs natively; `native` (null for oneDNN-only kinds)
// validates the operands and returns the loop. The kind's operands, attributes and layout
// rule are its line of the step-kind table (`info`, runtime/step_kinds.h).
struct KindSpec {
  const char* kind;
  StatusOr<std::optional<DnnlPlan>> (*plan)(const StepDesc& desc);
  StatusOr<NativeFn> (*native)(const StepDesc& desc);
  const runtime::StepKindInfo* info = nullptr;  // filled from the table
};

// The spec of `kind`, or nullptr.
const KindSpec* FindKind(std::string_view kind);

// `<kind> "<node>": <message> (src arena+0 f32[2,3,9,9], weights ..., dst ...)`: every
// operand named as the op names it, with its buffer, offset, dtype and dims.
std::string Describe(const StepDesc& desc, const std::string& message);
Status InvalidOperands(const StepDesc& desc, const std::string& message);

// Attribute readers. Errors: InvalidArgument naming the attribute when it is present but
// has the wrong number of values; absent attributes give `def`.
StatusOr<std::vector<int64_t>> GetInts(const StepDesc& desc, const std::string& key, size_t size,
                                       std::vector<int64_t> def);
int64_t GetInt(const StepDesc& desc, const std::string& key, int64_t def);
double GetFloat(const StepDesc& desc, const std::string& key, double def);

// Checks operand `ref` has rank `rank`; the error names it.
Status CheckRank(const StepDesc& desc, const TensorRef& ref, const char* name, size_t rank);

// ---- oneDNN plans and the generic step (dnnl_step.cc) ----

// Where a primitive argument's bytes live: an input, an output, or a region of the step's
// arena scratch (kScratchpad is the shared oneDNN scratchpad region).
struct ArgSource {
  enum Kind { kInput, kOutput, kScratch } kind;
  int index;
};
inline constexpr int kScratchpad = -1;
inline ArgSource In(int i) { return {ArgSource::kInput, i}; }
inline ArgSource Out(int i) { return {ArgSource::kOutput, i}; }
inline ArgSource Scratch(int region) { return {ArgSource::kScratch, region}; }

struct DnnlArg {
  int arg;  // DNNL_ARG_*
  dnnl::memory::desc md;
  ArgSource source;
};

struct DnnlCall {
  dnnl::primitive_desc_base pd;  // a reorder's is not a dnnl::primitive_desc
  std::vector<DnnlArg> args;
};

// An ordered list of primitive calls plus the scratch regions they use. All primitive
// descriptors must be created with UserScratchpad() attributes.
struct DnnlPlan {
  std::vector<DnnlCall> calls;
  std::vector<int64_t> region_bytes;  // scratch regions other than the scratchpad
  int64_t scratchpad_bytes = 0;       // max over calls: they run one after another

  // Adds a scratch region of `bytes`; returns its index for Scratch().
  int AddRegion(int64_t bytes);
  // Appends a call, binding DNNL_ARG_SCRATCHPAD when the primitive needs one.
  void AddCall(const dnnl::primitive_desc_base& pd, std::vector<DnnlArg> args);
  // Byte offsets of the regions (then the scratchpad) in the scratch slice, each 64-aligned.
  std::vector<int64_t> RegionOffsets() const;
  int64_t ScratchBytes() const;
};

// Steps touching fewer bytes than this (inputs + outputs) run on the calling thread only,
// and their primitives are also *created* that way (oneDNN fixes a primitive's thread
// split when it is created): waking the OpenMP team costs more than it saves. LeNet
// inference at batch 1 on the 2-core dev machine: 30 us with every step parallel, 13 us.
inline constexpr int64_t kSerialBytes = 512 * 1024;
bool RunsSerially(const StepDesc& desc);

// Limits the calling thread's OpenMP team to one thread while it lives, when `serial`
// (oneDNN built with OpenMP sizes its parallel regions by omp_get_max_threads()).
class SerialScope {
 public:
  explicit SerialScope(bool serial);
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int previous_;
};

// The engine every primitive uses: `dnnl::engine(engine::kind::cpu, 0)`, created once.
const dnnl::engine& Engine();
// Attributes with scratchpad_mode::user (see kernels_cpu.h, "Threading").
dnnl::primitive_attr UserScratchpad();
// A dense row-major f32/s32 memory descriptor for `dims`; rank 0 becomes {1}.
dnnl::memory::desc PlainMd(const std::vector<int64_t>& dims, DType dtype = DType::kF32);
inline dnnl::memory::desc PlainMd(const TensorRef& ref) { return PlainMd(ref.dims, ref.dtype); }
// The descriptor of `ref` in its layout (dense row-major, or the oneDNN format tag it names).
dnnl::memory::desc MdOf(const TensorRef& ref);
// Convolution weights with `groups` G: G == 1 or a blocked layout, MdOf(wei); G > 1 and
// dense, the [OC, IC/G, KH, KW] bytes seen as oneDNN's grouped 5-D goihw [G, OC/G, IC/G,
// KH, KW] (the same memory).
dnnl::memory::desc ConvWeightsMd(const TensorRef& wei, int64_t groups);
// Grouped convolution weights in a blocked 5-D layout are named "g<G>:<tag>" (e.g.
// "g96:Goihw8g"; MdOf reads them as [G, OC/G, IC/G, KH, KW]). Parse: true and G and the tag
// for such a name. Name: the name of the 5-D `md5`, or "" when no tag describes it.
bool ParseGroupedLayout(const std::string& layout, int64_t* groups, std::string* tag);
std::string GroupedLayoutName(int64_t groups, const dnnl::memory::desc& md5);

// ---- Blocked layouts (layout_kernels.cc) ----

// The layout name of a max-pooling workspace operand (bytes only; the primitive knows its
// format).
inline constexpr const char* kWorkspaceLayout = "workspace";

// The name of the oneDNN format tag that describes `md` exactly ("aBcd16b"), or "" when
// `md` is dense row-major or no tag describes it.
std::string LayoutName(const dnnl::memory::desc& md);
// Checks every operand's layout: known tag names with matching byte sizes; when
// `blocked_ok` is false, every operand must be dense. Errors: InvalidArgument naming it.
Status CheckLayouts(const StepDesc& desc, bool blocked_ok);
// reorder: src -> dst with the same dims, any layouts (a copy when both are dense).
StatusOr<std::optional<DnnlPlan>> PlanReorder(const StepDesc& desc);
// StepFactory::ChooseLayouts for the CPU backend.
StatusOr<runtime::StepFactory::Layouts> ChooseCpuLayouts(const StepDesc& desc);

// Builds the primitives of `plan` and the step that runs them.
// Errors: as DnnlError when oneDNN fails to create a primitive.
StatusOr<std::unique_ptr<runtime::Step>> CreateDnnlStep(const StepDesc& desc, const DnnlPlan& plan);

// Converts a oneDNN exception into a Status naming the node, kind and shapes. At creation
// time: Unimplemented for dnnl_unimplemented, InvalidArgument for dnnl_invalid_arguments,
// Internal otherwise; at run time always Internal.
Status DnnlError(const StepDesc& desc, const dnnl::error& e, bool at_run);

// ---- Native steps (native_kernels.cc) ----

std::unique_ptr<runtime::Step> CreateNativeStep(const StepDesc& desc, NativeFn fn);
// True when some operand has zero elements: such oneDNN kinds run ZeroVolumeKernel instead,
// because oneDNN 2.6 treats zero-volume operands unevenly (reduction and convolution write
// the empty sums, inner product rejects K = 0 as invalid arguments).
bool HasZeroVolume(const StepDesc& desc);
// Writes what an empty sum gives: 0 (NaN for reduce_mean; the bias for conv2d/dense).
Status ZeroVolumeKernel(const StepDesc& desc, const runtime::ExecContext& ctx);

// Plans (conv_kernels.cc, pool_kernels.cc, eltwise_kernels.cc, binary_kernels.cc).
StatusOr<std::optional<DnnlPlan>> PlanConv2d(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanConv2dBackwardData(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanConv2dBackwardWeights(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanDense(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanDenseBackwardData(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanDenseBackwardWeights(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanPool2d(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanPool2dBackward(const StepDesc& desc);
// Max pool2d_backward without a workspace, NCHW or NHWC ("acdb") operands: a native loop.
bool NativePoolLayout(const StepDesc& desc);
StatusOr<NativeFn> NativePool2dBackward(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanEltwise(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanEltwiseBackward(const StepDesc& desc);
// elu, selu, gelu, silu, hard_sigmoid, hard_swish, softplus, clip and their backward ops,
// which read src (ir/ops/activation_src.cc).
StatusOr<std::optional<DnnlPlan>> PlanSrcActivation(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanSrcActivationBackward(const StepDesc& desc);
// batch_norm, batch_norm_training, batch_norm_backward (norm_kernels.cc).
StatusOr<std::optional<DnnlPlan>> PlanBatchNorm(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanBatchNormTraining(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanBatchNormBackward(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanSoftmax(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanSoftmaxBackward(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanBinary(const StepDesc& desc);
StatusOr<std::optional<DnnlPlan>> PlanReduce(const StepDesc& desc);

// Native kernels (native_kernels.cc, loss_kernels.cc): validate the operands, return the loop.
StatusOr<NativeFn> NativeBinary(const StepDesc& desc);
StatusOr<NativeFn> NativeReduce(const StepDesc& desc);
StatusOr<NativeFn> NativeBroadcastTo(const StepDesc& desc);
StatusOr<NativeFn> NativeReshape(const StepDesc& desc);
StatusOr<NativeFn> NativeFill(const StepDesc& desc);
StatusOr<NativeFn> NativeSgdUpdate(const StepDesc& desc);
StatusOr<NativeFn> NativeAdamUpdate(const StepDesc& desc);
StatusOr<NativeFn> NativeSoftmaxCrossEntropy(const StepDesc& desc);
StatusOr<NativeFn> NativeSoftmaxCrossEntropyBackward(const StepDesc& desc);
StatusOr<NativeFn> NativeArgmax(const StepDesc& desc);
StatusOr<NativeFn> NativeOneHot(const StepDesc& desc);  // one_hot_kernels.cc
StatusOr<NativeFn> NativeMovingAverage(const StepDesc& desc);  // norm_kernels.cc
StatusOr<NativeFn> NativeDropout(const StepDesc& desc);        // norm_kernels.cc
// softsign and its backward on dense operands (eltwise_kernels.cc).
StatusOr<NativeFn> NativeSoftsign(const StepDesc& desc);
StatusOr<NativeFn> NativeSoftsignBackward(const StepDesc& desc);
StatusOr<NativeFn> NativeConcat(const StepDesc& desc);         // movement_kernels.cc
StatusOr<NativeFn> NativeSplit(const StepDesc& desc);          // movement_kernels.cc
StatusOr<NativeFn> NativeTranspose(const StepDesc& desc);      // movement_kernels.cc

// NumPy broadcasting of `a` and `b` (aligned at the trailing dims), or nullopt.
std::optional<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);
// `dims` with leading 1s up to `rank`.
std::vector<int64_t> PadToRank(const std::vector<int64_t>& dims, size_t rank);

}  // namespace kiln::backends::cpu::internal
