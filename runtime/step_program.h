// StepProgram: the lowered form of a graph as plain data, between the lowering (codegen/)
// and the runtime (DESIGN.md codegen/, runtime/). A program is what an Executable is built
// from (Instantiate) and what an artifact stores (runtime/artifact.h), so it can be
// printed, compared and tested without building any kernel.
//
// Its life, in the lowering pipeline (codegen/lower.h):
//   select_steps   IR -> one dense step per node; every intermediate in its own virtual
//                  buffer (`buffers`), operands dense row-major (NCHW, OIHW, NC)
//   assign_layouts the target's layouts per step (reorders where a consumer needs another
//                  layout, prepacked constant weights, resident trained weights, scratch)
//   group_updates  consecutive optimizer updates as one "<kind>_group" step
//   plan_buffers   liveness, in-place reuse, arena offsets, the MemoryReport
// Before plan_buffers an arena TensorRef's `index` is its virtual buffer and `offset` is
// within that buffer; after it, `index` is 0 and `offset` is the byte offset in the arena.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/tensor.h"
#include "runtime/executable.h"
#include "runtime/step.h"
#include "runtime/target.h"

namespace kiln::runtime {

// Memory figures of one program, in bytes (each buffer rounded up to 64 bytes); 0 = not
// reported. The one memory report of kiln: the lowering fills it (plan_buffers), artifacts
// store it, `kiln_opt --report` and `kiln inspect` print it.
struct MemoryReport {
  int64_t arena_bytes = 0;        // the planned arena (peak) of the run's tensors and scratch
  int64_t naive_bytes = 0;        // every arena tensor its own slot: the sum of all sizes
  int64_t lower_bound_bytes = 0;  // max over steps of the bytes live at that step
  int num_buffers = 0;
  int num_in_place = 0;  // outputs that reuse their input's buffer
  int num_reorders = 0;  // layout conversion steps the lowering inserted (prepack included)
  // Parameters kept in the steps' layouts for the session's lifetime, placed after the
  // planned arena (a session allocates arena_bytes + resident_bytes, aligned): prepacked
  // constant weights and resident training parameters and optimizer state. They are second
  // copies of the dense bound tensors and not counted in arena, naive or lower bound.
  int64_t resident_bytes = 0;
  int64_t weight_bytes = 0;    // bound parameters (dense), filled by artifact export
  int64_t constant_bytes = 0;  // the program's constants
  // "arena 1.2 MB (naive 4.5 MB, lower bound 1.1 MB), 42 buffers, 3 in place, 2 reorders"
  // (", 0.5 MB resident parameters" when there are any).
  std::string ToString() const;
};

// A virtual arena buffer of a program that plan_buffers has not placed yet.
struct BufferDesc {
  int64_t bytes = 1;   // size in bytes (>= 1; padding of blocked layouts included)
  std::string name;    // the IR value (or purpose, e.g. "scratch") it holds, for printing
  // Lives for the session's lifetime, after the planned region: a prepacked constant weight
  // or a resident training parameter. Never shared with another buffer.
  bool pinned = false;
};

// What the lowering knows about a bound parameter (same order as StepProgram::params).
struct ParamInfo {
  bool state = false;    // optimizer state (momentum, Adam mean/var) rather than a weight
  bool updated = false;  // the program writes a new value of it (training)
};

struct StepProgram {
  std::string name;     // the graph's name ("train_step", "forward")
  std::string target;   // the target it was lowered for ("cpu"); "" before assign_layouts
  // Signatures: dense row-major tensors, in binding order (TensorRef::index of kInput,
  // kOutput, kParam refers to these).
  std::vector<TensorSpec> inputs, outputs, params;
  std::vector<ParamInfo> param_info;  // lowering facts per params entry (not stored in artifacts)
  std::vector<Tensor> constants;      // BufferKind::kConstant index order
  // Steps in run order; steps run once per Session::Run. Prepack steps run once per
  // session before its first run (weight reorders into the steps' layouts); write-back
  // steps copy resident parameters back to the dense bound buffers (Session::WriteBack).
  std::vector<StepDesc> steps, prepack_steps, writeback_steps;
  bool has_backward = false;  // a training graph: layouts may favour the backward pass
  // Virtual arena buffers, until plan_buffers places them (then empty).
  std::vector<BufferDesc> buffers;
  bool planned = false;
  int64_t arena_bytes = 0;  // after planning: what a session allocates (>= 64)
  MemoryReport memory;      // after planning
};

// The text form of a program, one line per signature entry, buffer and step, e.g.
//   program "forward" target cpu (planned, arena 4352 bytes)
//   input 0 data: f32[2,1,28,28]
//   param 0 0.weight: f32[6,1,5,5]
//   buffer 3 "conv0_fwd" 18816 bytes
//   step 0 conv2d "conv0" {padding_begin=[0,0], activation=relu} (input0 f32[2,1,28,28], param0 f32[6,1,5,5] Acdb16a) -> (b3 f32[2,6,24,24] aBcd16b)
// Arena operands print as "b<buffer>+<offset>" before planning and "arena+<offset>" after.
// Deterministic (attributes sorted by name); used by the lowering-pass tests and dumps.
std::string PrintStepProgram(const StepProgram& program);
// One step in the same form as PrintStepProgram's step lines, without the index.
std::string PrintStep(const StepDesc& step, bool planned);

// Builds the executable of a planned program: every step (prepack and write-back steps
// included) created by `factory`, e.g. oneDNN primitives created here, once.
// Errors: FailedPrecondition for a program plan_buffers has not planned; the factory's
// errors with the step named ("instantiating step 3 (conv2d "conv0")").
StatusOr<std::shared_ptr<Executable>> Instantiate(const StepProgram& program, const StepFactory& factory);
// The same with a target's steps; the executable's sessions allocate on its device.
// Errors: as above; FailedPrecondition when the program was lowered for another target
// ("program "forward" was lowered for target 'cuda', not 'cpu'").
StatusOr<std::shared_ptr<Executable>> Instantiate(const StepProgram& program, const Target& target);

}  // namespace kiln::runtime
