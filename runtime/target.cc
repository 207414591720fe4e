#include "runtime/target.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "base/tensor.h"

namespace kiln::runtime {
namespace {

std::mutex& RegistryMutex() {
  static auto* m = new std::mutex();
  return *m;
}
std::map<std::string, const Target*, std::less<>>& Registry() {
  static auto* r = new std::map<std::string, const Target*, std::less<>>();
  return *r;
}

}  // namespace

void* Target::AllocateArena(int64_t bytes) const { return AlignedAlloc(bytes); }
void Target::FreeArena(void* arena) const { AlignedFree(arena); }

bool RegisterTarget(const Target* target) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry().emplace(std::string(target->name()), target).second;
}

StatusOr<const Target*> FindTarget(std::string_view name) {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    auto it = Registry().find(name);
    if (it != Registry().end()) return it->second;
  }
  std::string names;
  for (const std::string& n : TargetNames()) names += (names.empty() ? "" : ", ") + n;
  return NotFound("no target '" + std::string(name) + "' is linked into this program (targets: " +
                  (names.empty() ? std::string("none") : names) + ")");
}

std::vector<std::string> TargetNames() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  std::vector<std::string> names;
  for (const auto& [n, t] : Registry()) names.push_back(n);
  return names;
}

}  // namespace kiln::runtime
