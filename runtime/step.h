// The executable's unit of work. A compiled graph is an ordered list of steps; each step has
// a kind (the op it runs, e.g. "conv2d"), attributes, and its operands as TensorRefs: slices
// of the arena or of bound buffers (inputs, outputs, parameters, constants). Step
// descriptions are plain data so that an artifact can store them and a runtime without the
// compiler can rebuild the steps (STYLE.md section 1; XLA thunks, oneDNN net_fwd lists).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace kiln::runtime {

// The memory a buffer lives in: host memory, or a device's (a GPU's global memory). Every
// buffer of one executable lives on its target's device (runtime/target.h); inputs and
// outputs of Session::Run are host tensors, copied at the edges by a device target.
enum class Device : uint8_t {
  kHost = 0,
  kCuda = 1,
};
const char* DeviceName(Device device);

// Where a tensor's bytes live.
enum class BufferKind : uint8_t {
  kArena = 0,     // offset into the session's arena
  kInput = 1,     // the run's input `index`
  kOutput = 2,    // the run's output `index`
  kParam = 3,     // bound parameter or optimizer state `index`
  kConstant = 4,  // the executable's constant `index`
};
const char* BufferKindName(BufferKind kind);

// A tensor operand: `dims` elements of `dtype` at byte `offset` of buffer (`kind`, `index`).
// With an empty `layout` the tensor is dense row-major (NCHW, OIHW, NC). Otherwise `layout`
// names a oneDNN format tag ("aBcd16b" = nChw16c: channels in blocks of 16, the last block
// zero-padded; "ABcd16b16a" = OIhw16i16o) and the tensor occupies `layout_bytes` bytes
// (padding included). Only arena tensors carry a layout: bound buffers are always dense.
// Source: oneDNN dev guide "Understanding Memory Formats".
struct TensorRef {
  BufferKind kind = BufferKind::kArena;
  int32_t index = 0;
  int64_t offset = 0;  // bytes
  DType dtype = DType::kF32;
  Shape dims;
  std::string layout;        // "" = dense row-major
  int64_t layout_bytes = 0;  // size in bytes when `layout` is set

  bool dense() const { return layout.empty(); }
  // Bytes the tensor occupies (dense: elements x element size).
  int64_t size_bytes() const { return dense() ? NumElements(dims) * DTypeSizeBytes(dtype) : layout_bytes; }
  // "arena+4096 f32[256,6,24,24]" (with " aBcd16b" when blocked).
  std::string ToString() const;
};

// A step as data: what to run, on what. `inputs` and `outputs` follow the op's operand
// order in the IR op registry (e.g. conv2d: src, weights[, bias] -> dst). `scratch` holds
// arena slices the step may use during its run (e.g. the max-pooling workspace).
struct StepDesc {
  std::string kind;
  std::string node_name;  // for error messages
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, double> floats;
  std::map<std::string, std::string> strings;
  std::vector<TensorRef> inputs;
  std::vector<TensorRef> outputs;
  std::vector<TensorRef> scratch;

  // `kind "node_name"` for messages.
  std::string Where() const { return kind + " \"" + node_name + "\""; }
};

// Addresses of every buffer a run may touch. Built by the Session for each run.
struct ExecContext {
  Device device = Device::kHost;  // where every address below points
  uint8_t* arena = nullptr;
  void* const* inputs = nullptr;
  void* const* outputs = nullptr;
  void* const* params = nullptr;
  const void* const* constants = nullptr;

  // Address of `ref`'s first byte.
  void* Ptr(const TensorRef& ref) const;
};

// A runnable step. Steps are immutable after creation and may run concurrently from many
// sessions (each with its own arena), so Run must not mutate the step.
class Step {
 public:
  explicit Step(StepDesc desc) : desc_(std::move(desc)) {}
  virtual ~Step() = default;
  const StepDesc& desc() const { return desc_; }
  // Runs the step. Errors: InvalidArgument for bad data (e.g. a label out of range), with
  // the node named; Internal for a backend failure.
  virtual Status Run(const ExecContext& ctx) const = 0;

 private:
  StepDesc desc_;
};

// Update groups: kind "<kind>_group" (e.g. sgd_update_group, adam_update_group) with ints
// group_size {k} stands for k steps of <kind> with the same attributes, run one after
// another as one step: their inputs and outputs are concatenated in member order (each
// member has inputs.size()/k inputs and outputs.size()/k outputs). The lowering groups
// a training graph's optimizer updates this way (one step per optimizer, not per
// parameter). Returns the member descriptions ("<node>#i"). Errors: InvalidArgument when
// the kind is not a group or the operand counts do not divide by group_size.
bool IsGroupKind(const std::string& kind);
StatusOr<std::vector<StepDesc>> SplitGroup(const StepDesc& group);

// Builds a Step from its description (a backend such as backends/cpu implements this).
class StepFactory {
 public:
  virtual ~StepFactory() = default;
  // Errors: Unimplemented for a kind the backend cannot run; InvalidArgument for
  // inconsistent operands, naming the node, the kind and the shapes.
  virtual StatusOr<std::unique_ptr<Step>> Create(const StepDesc& desc) const = 0;
  // Bytes of arena scratch the step needs (0 for most kinds); the lowering plans them.
  virtual StatusOr<int64_t> ScratchBytes(const StepDesc& desc) const = 0;

  // Layout negotiation (used by the lowering when blocked layouts are enabled). `desc`'s
  // inputs carry their current layouts; its outputs carry dims and dtype only. Returns the
  // layout each input must have (the lowering inserts a "reorder" step where it differs) and
  // the layout and byte size of each output. The default keeps everything dense.
  struct Layouts {
    std::vector<std::string> inputs;
    std::vector<int64_t> input_bytes;  // byte size in that layout (0 for dense)
    std::vector<std::string> outputs;
    std::vector<int64_t> output_bytes;  // 0 for dense outputs
  };
  virtual StatusOr<Layouts> ChooseLayouts(const StepDesc& desc) const;
  // Every operand dense (what the default ChooseLayouts returns).
  static Layouts DenseLayouts(const StepDesc& desc);
};

// A group step (see SplitGroup) whose members `factory` creates; it runs them in order.
// Errors: SplitGroup's, or the first member's creation error.
StatusOr<std::unique_ptr<Step>> CreateGroupStep(const StepDesc& group, const StepFactory& factory);
// The scratch a group step needs: the largest member's (members run one after another).
StatusOr<int64_t> GroupScratchBytes(const StepDesc& group, const StepFactory& factory);

}  // namespace kiln::runtime
