#include "passes/schedule.h"

#include <map>
#include <set>
#include <vector>

namespace kiln::passes {

StatusOr<bool> ScheduleUpdatesEarly::Run(ir::Graph& g) {
  const std::vector<ir::Node>& nodes = g.nodes();
  std::vector<std::vector<ir::NodeId>> users = g.ComputeUsers();
  // Update nodes and the values they update.
  std::map<size_t, std::vector<ir::ValueId>> targets;  // schedule position -> targets
  for (const auto& [target, nv] : g.updates()) {
    const ir::Node* p = g.Producer(nv);
    if (p != nullptr) targets[static_cast<size_t>(g.ScheduleIndex(p->id))].push_back(target);
  }
  if (targets.empty()) return false;
  // Each update's anchor: the latest node it must follow (-1: none).
  std::map<long, std::vector<size_t>> anchored;  // anchor position -> updates, in order
  for (const auto& [pos, ts] : targets) {
    long anchor = -1;
    for (ir::ValueId v : nodes[pos].inputs) {
      if (const ir::Node* p = g.Producer(v)) anchor = std::max<long>(anchor, g.ScheduleIndex(p->id));
    }
    for (ir::ValueId t : ts) {
      for (ir::NodeId u : users[static_cast<size_t>(t)]) {
        if (u != nodes[pos].id) anchor = std::max<long>(anchor, g.ScheduleIndex(u));
      }
    }
    anchored[anchor].push_back(pos);
  }
  std::vector<size_t> order;
  order.reserve(nodes.size());
  // Emits `pos`, then (depth first) the updates anchored at it.
  std::vector<size_t> stack;
  auto emit = [&](size_t first) {
    stack.push_back(first);
    while (!stack.empty()) {
      size_t pos = stack.back();
      stack.pop_back();
      order.push_back(pos);
      auto it = anchored.find(static_cast<long>(pos));
      if (it == anchored.end()) continue;
      for (auto u = it->second.rbegin(); u != it->second.rend(); ++u) stack.push_back(*u);
    }
  };
  if (auto it = anchored.find(-1); it != anchored.end()) {
    for (size_t pos : it->second) emit(pos);
  }
  for (size_t pos = 0; pos < nodes.size(); ++pos) {
    if (!targets.count(pos)) emit(pos);
  }
  bool changed = false;
  for (size_t i = 0; i < order.size(); ++i) changed = changed || order[i] != i;
  if (changed) g.PermuteSchedule(order);
  return changed;
}

}  // namespace kiln::passes
