// Targets: the runtime half of a backend (DESIGN.md backends/), registered by name ("cpu";
// later "cuda"). A runtime that loads an artifact finds the artifact's target here, checks
// that this machine can run what it was compiled for, and rebuilds its steps with the
// target's StepFactory; sessions allocate their arena on the target's device. A backend
// lives in backends/<name>/, links runtime/ and base/ only, and registers itself when it
// is linked (RegisterTarget from a static initializer; the Bazel library is alwayslink).
// The compile-side half (which kinds and post-ops the lowering may use, default lowering
// options, LLVM kernels) is compiler/target.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/step.h"

namespace kiln::runtime {

class Target {
 public:
  virtual ~Target() = default;
  // The registry name, e.g. "cpu".
  virtual std::string_view name() const = 0;
  // Where the arena and bound buffers of this target's steps live.
  virtual Device device() const = 0;
  // The instruction set the steps are built for on this machine, as the target names it
  // (CPU: oneDNN's effective ISA, e.g. "avx512_core_bf16"); artifacts record it.
  virtual std::string isa() const = 0;
  // OK when steps compiled for `isa` (an artifact's) can run on this machine.
  // Errors: FailedPrecondition naming both ISAs when this machine lacks instructions of
  // `isa`; InvalidArgument for an ISA name the target does not know.
  virtual Status CheckIsa(std::string_view isa) const = 0;
  // The steps of this target (kernels created from StepDescs).
  virtual const StepFactory& steps() const = 0;
  // A session's arena of `bytes` on device(), 64-byte aligned; FreeArena releases it.
  // Host targets use the aligned host allocator (the default). Throws std::bad_alloc.
  virtual void* AllocateArena(int64_t bytes) const;
  virtual void FreeArena(void* arena) const;
};

// Adds `target` (which must live for the process) under target->name(); a second target
// with the same name replaces nothing and is ignored (returns false).
bool RegisterTarget(const Target* target);
// The target registered as `name`. Errors: NotFound listing the registered targets, e.g.
// "no target 'cuda' is linked into this program (targets: cpu)".
StatusOr<const Target*> FindTarget(std::string_view name);
// Registered names, sorted.
std::vector<std::string> TargetNames();

}  // namespace kiln::runtime
