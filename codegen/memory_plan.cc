#include "codegen/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace kiln::codegen {
namespace {

int64_t Aligned(int64_t bytes, int64_t alignment) {
  return (std::max<int64_t>(bytes, 1) + alignment - 1) / alignment * alignment;
}

bool LiveTogether(const BufferLifetime& a, const BufferLifetime& b) {
  return a.first_step <= b.last_step && b.first_step <= a.last_step;
}

}  // namespace

MemoryPlan PlanMemory(const std::vector<BufferLifetime>& buffers, int64_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier first use, then index, so the plan is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int64_t sa = Aligned(buffers[a].bytes, alignment), sb = Aligned(buffers[b].bytes, alignment);
    if (sa != sb) return sa > sb;
    return buffers[a].first_step < buffers[b].first_step;
  });
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of placed buffers live together
  for (size_t i : order) {
    int64_t size = Aligned(buffers[i].bytes, alignment);
    busy.clear();
    for (size_t j : placed) {
      if (LiveTogether(buffers[i], buffers[j])) busy.emplace_back(plan.offsets[j], plan.offsets[j] + Aligned(buffers[j].bytes, alignment));
    }
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap between busy ranges that holds `size`; else above them all.
    int64_t best = -1, best_gap = 0, cursor = 0;
    for (const auto& [begin, end] : busy) {
      if (begin > cursor) {
        int64_t gap = begin - cursor;
        if (gap >= size && (best < 0 || gap < best_gap)) {
          best = cursor;
          best_gap = gap;
        }
      }
      cursor = std::max(cursor, end);
    }
    if (best < 0) best = cursor;
    plan.offsets[i] = best;
    plan.arena_bytes = std::max(plan.arena_bytes, best + size);
    placed.push_back(i);
  }
  return plan;
}

MemoryPlan NaivePlan(const std::vector<BufferLifetime>& buffers, int64_t alignment) {
  MemoryPlan plan;
  for (const BufferLifetime& b : buffers) {
    plan.offsets.push_back(plan.arena_bytes);
    plan.arena_bytes += Aligned(b.bytes, alignment);
  }
  return plan;
}

int64_t NaiveBytes(const std::vector<BufferLifetime>& buffers, int64_t alignment) {
  return NaivePlan(buffers, alignment).arena_bytes;
}

int64_t LowerBoundBytes(const std::vector<BufferLifetime>& buffers, int64_t alignment) {
  // Sweep over step boundaries: +size at first_step, -size after last_step.
  std::vector<std::pair<int, int64_t>> events;
  for (const BufferLifetime& b : buffers) {
    int64_t size = Aligned(b.bytes, alignment);
    events.emplace_back(b.first_step, size);
    events.emplace_back(b.last_step + 1, -size);
  }
  std::sort(events.begin(), events.end());  // at one step, frees (negative) come first
  int64_t live = 0, peak = 0;
  for (const auto& [step, delta] : events) {
    live += delta;
    peak = std::max(peak, live);
  }
  return peak;
}

Status CheckPlan(const std::vector<BufferLifetime>& buffers, const MemoryPlan& plan, int64_t alignment) {
  if (plan.offsets.size() != buffers.size()) return Internal("memory plan has the wrong number of offsets");
  auto range = [&](size_t i) {
    return "buffer " + std::to_string(i) + " steps [" + std::to_string(buffers[i].first_step) + ", " +
           std::to_string(buffers[i].last_step) + "] bytes [" + std::to_string(plan.offsets[i]) + ", " +
           std::to_string(plan.offsets[i] + Aligned(buffers[i].bytes, alignment)) + ")";
  };
  for (size_t i = 0; i < buffers.size(); ++i) {
    int64_t end = plan.offsets[i] + Aligned(buffers[i].bytes, alignment);
    if (plan.offsets[i] < 0 || plan.offsets[i] % alignment != 0 || end > plan.arena_bytes) {
      return Internal("memory plan: " + range(i) + " is misaligned or outside the arena of " +
                      std::to_string(plan.arena_bytes) + " bytes");
    }
    for (size_t j = i + 1; j < buffers.size(); ++j) {
      if (!LiveTogether(buffers[i], buffers[j])) continue;
      int64_t end_j = plan.offsets[j] + Aligned(buffers[j].bytes, alignment);
      if (plan.offsets[i] < end_j && plan.offsets[j] < end) {
        return Internal("memory plan: " + range(i) + " overlaps " + range(j) + " while both are live");
      }
    }
  }
  return OkStatus();
}

}  // namespace kiln::codegen
