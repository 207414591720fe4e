// Before/after equivalence of passes and lowerings: run a graph with the reference
// interpreter (double) or compiled by the CPU backend (f32), on the same named arguments,
// and compare every output and every parameter/state after the graph's updates.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>

#include "codegen/lower.h"
#include "ir/graph.h"
#include "ir/interpreter.h"
#include "runtime/executable.h"

namespace kiln::testing {

// Named values: graph arguments going in; outputs ("out:<name>") and parameters/state
// (by name, after updates) coming out.
using Named = std::map<std::string, ir::RefTensor>;

// Random arguments for every input, parameter and state of `g`: f32 uniform in [-1, 1]
// (lr / rescale_grad inputs: 0.1 and 1/N), s32 inputs (labels) in [0, classes).
Named RandomArguments(const ir::Graph& g, std::mt19937& rng, int classes = 10);

// Runs `g` with the reference interpreter, applying updates.
StatusOr<Named> RunReferenceNamed(const ir::Graph& g, const Named& args);

// Lowers `g` with the CPU backend and `options`, runs one step. `stats` (optional) gets the
// lowering statistics. `factory` (optional) replaces backends::cpu::CpuSteps() (e.g. the
// LLVM step factory for graphs with fused_elementwise nodes).
StatusOr<Named> RunCompiledNamed(const ir::Graph& g, const Named& args, const codegen::LowerOptions& options,
                                 codegen::LowerStats* stats = nullptr, const runtime::StepFactory* factory = nullptr);

// A session over `exe` whose parameters are bound to `store`'s tensors, each a copy of the
// argument of its name (write into them, then Session::Repack, to change a constant
// parameter). `store` must outlive the session. Errors: Session::Create's.
StatusOr<std::unique_ptr<runtime::Session>> BindSession(std::shared_ptr<const runtime::Executable> exe,
                                                        const Named& args, std::map<std::string, Tensor>* store);

// Checks that `got` has every key of `want` with equal shapes and values within
// |a - b| <= tol * max(1, |b|); Catch2 CHECKs name the key and element.
void ExpectNamedClose(const Named& got, const Named& want, double tol);

// Checks `after` against `before` on random arguments: the reference interpreter on both
// (to 1e-9), then `after` compiled with each of `lowerings` (and `factory`, the CPU one
// when null) against the reference on `before` (to `tol`).
void ExpectEquivalent(const ir::Graph& before, const ir::Graph& after, uint32_t seed,
                      const std::vector<codegen::LowerOptions>& lowerings, double tol,
                      const runtime::StepFactory* factory = nullptr);

// The number of nodes of `op` in `g`.
int CountOp(const ir::Graph& g, const std::string& op);
// The graph of an IR text; a parse error fails the test, showing the text and the error.
ir::Graph ParseOrFail(const std::string& text);
// LeNet-5 forward and per-sample loss (outputs "loss", "output") on [batch,1,28,28], traced
// through the front end with seed 3; `training` adds the backward pass and SGD (momentum
// 0.9, wd 1e-3). Dead code removed.
ir::Graph TraceLeNet(int64_t batch, bool training);

}  // namespace kiln::testing
