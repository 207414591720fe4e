// Memory planning: offsets into one arena for buffers with known lifetimes.
//
// A buffer is live from the step that first touches it to the step that last touches it
// (inclusive; steps are numbered in schedule order). Two buffers whose lifetimes intersect
// may not overlap in the arena; buffers whose lifetimes are disjoint may share bytes.
// Placement is greedy by size with best fit: buffers are placed largest first, each at the
// smallest gap (among the buffers already placed that are live at the same time) it fits
// in, else above them — the "greedy by size" strategy of TensorFlow Lite's arena planner
// (Pisarchyk & Lee, "Efficient Memory Management for Deep Neural Net Inference", 2020).
// In-place reuse (an output sharing its input's buffer) is decided before planning, by
// merging the two buffers' lifetimes (codegen/plan_buffers.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/step_program.h"

namespace kiln::codegen {

struct BufferLifetime {
  int64_t bytes = 0;    // size; rounded up to the alignment when placed
  int first_step = 0;   // first step that reads or writes the buffer
  int last_step = 0;    // last step that reads or writes it (>= first_step)
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // per buffer, bytes from the arena base (multiples of alignment)
  int64_t arena_bytes = 0;       // peak: max over buffers of offset + aligned size
};

// The one memory report (runtime/step_program.h); plan_buffers fills it.
using MemoryReport = runtime::MemoryReport;

// Places every buffer. `alignment` must be a power of two. Never fails.
MemoryPlan PlanMemory(const std::vector<BufferLifetime>& buffers, int64_t alignment = 64);

// Every buffer in its own slot, in order (what an unplanned arena needs).
MemoryPlan NaivePlan(const std::vector<BufferLifetime>& buffers, int64_t alignment = 64);

// Sum of aligned sizes of all buffers, and the largest total live at one step.
int64_t NaiveBytes(const std::vector<BufferLifetime>& buffers, int64_t alignment = 64);
int64_t LowerBoundBytes(const std::vector<BufferLifetime>& buffers, int64_t alignment = 64);

// Checks a plan: every buffer inside [0, arena_bytes), aligned, and no two buffers that are
// live at the same step overlap. Errors: Internal naming the two buffers, their lifetimes
// and byte ranges.
Status CheckPlan(const std::vector<BufferLifetime>& buffers, const MemoryPlan& plan, int64_t alignment = 64);

}  // namespace kiln::codegen
