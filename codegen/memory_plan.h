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
// merging the two buffers' lifetimes (codegen/lower.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

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

// Numbers for one graph (bytes, each buffer rounded up to the alignment).
struct MemoryReport {
  int64_t arena_bytes = 0;        // the planned arena (peak) of the run's tensors
  int64_t naive_bytes = 0;        // every buffer its own slot: the sum of all sizes
  int64_t lower_bound_bytes = 0;  // max over steps of the bytes live at that step
  int num_buffers = 0;
  int num_in_place = 0;  // outputs that reuse their input's buffer
  int num_reorders = 0;  // layout conversion steps the lowering inserted
  // Parameters kept in the steps' layouts for the session's lifetime, placed after the
  // planned arena (the session allocates arena_bytes + resident_bytes, aligned): prepacked
  // constant weights (LowerOptions::constant_params) and resident training parameters and
  // optimizer state (LowerOptions::resident_params). They are second copies of the dense
  // bound tensors and not counted in arena, naive or lower bound.
  int64_t resident_bytes = 0;
  // "arena 1.2 MB (naive 4.5 MB, lower bound 1.1 MB), 42 buffers, 3 in place, 2 reorders"
  // (", 0.5 MB resident parameters" when there are any).
  std::string ToString() const;
};

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
