#include "runtime/target.h"

#include "base/registry.h"
#include "base/tensor.h"

namespace kiln::runtime {
namespace {

NamedRegistry<Target>& Registry() {
  static auto* r = new NamedRegistry<Target>();
  return *r;
}

}  // namespace

void* Target::AllocateArena(int64_t bytes) const { return AlignedAlloc(bytes); }
void Target::FreeArena(void* arena) const { AlignedFree(arena); }

bool RegisterTarget(const Target* target) { return Registry().Register(std::string(target->name()), target); }

StatusOr<const Target*> FindTarget(std::string_view name) {
  if (const Target* t = Registry().Find(name)) return t;
  return NotFound("no target '" + std::string(name) + "' is linked into this program (targets: " +
                  Registry().NamesText() + ")");
}

std::vector<std::string> TargetNames() { return Registry().Names(); }

}  // namespace kiln::runtime
