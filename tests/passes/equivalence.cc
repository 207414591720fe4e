#include "tests/passes/equivalence.h"

#include <catch2/catch.hpp>

#include "backends/cpu/kernels_cpu.h"
#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "ir/text.h"
#include "passes/autodiff.h"
#include "runtime/executable.h"

namespace kiln::testing {

Named RandomArguments(const ir::Graph& g, std::mt19937& rng, int classes) {
  Named args;
  std::uniform_real_distribution<double> u(-1, 1);
  for (const ir::Value& v : g.values()) {
    if (v.kind != ir::ValueKind::kInput && v.kind != ir::ValueKind::kParameter && v.kind != ir::ValueKind::kState) {
      continue;
    }
    ir::RefTensor t(v.type.shape);
    for (int64_t i = 0; i < t.size(); ++i) {
      if (v.type.dtype == DType::kS32) {
        t[i] = static_cast<double>(static_cast<int>(rng() % static_cast<unsigned>(classes)));
      } else if (v.name == "lr") {
        t[i] = 0.1;
      } else if (v.name == "rescale_grad") {
        t[i] = 0.5;
      } else {
        t[i] = u(rng);
      }
    }
    args[v.name] = t;
  }
  return args;
}

StatusOr<Named> RunReferenceNamed(const ir::Graph& g, const Named& args) {
  ir::RefEnv env;
  for (const auto& [name, t] : args) {
    if (auto v = g.FindValue(name)) env[*v] = t;
  }
  RETURN_IF_ERROR(ir::RunReference(g, env, /*apply_updates=*/true));
  Named out;
  for (const auto& [name, v] : g.outputs()) out["out:" + name] = env.at(v);
  for (const ir::Value& v : g.values()) {
    if (v.kind == ir::ValueKind::kParameter || v.kind == ir::ValueKind::kState) out[v.name] = env.at(v.id);
  }
  return out;
}

StatusOr<std::unique_ptr<runtime::Session>> BindSession(std::shared_ptr<const runtime::Executable> exe,
                                                        const Named& args, std::map<std::string, Tensor>* store) {
  std::map<std::string, Tensor*> bindings;
  for (const auto& spec : exe->params()) {
    (*store)[spec.name] = ir::FromRef(args.at(spec.name), spec.dtype);
    bindings[spec.name] = &(*store)[spec.name];
  }
  return runtime::Session::Create(std::move(exe), bindings);
}

StatusOr<Named> RunCompiledNamed(const ir::Graph& g, const Named& args, const codegen::LowerOptions& options,
                                 codegen::LowerStats* stats, const runtime::StepFactory* factory) {
  ASSIGN_OR_RETURN(auto exe, codegen::Lower(g, factory ? *factory : backends::cpu::CpuSteps(), stats, options));
  std::map<std::string, Tensor> store;
  ASSIGN_OR_RETURN(auto session, BindSession(exe, args, &store));
  std::vector<Tensor> inputs;
  for (const auto& spec : exe->inputs()) inputs.push_back(ir::FromRef(args.at(spec.name), spec.dtype));
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(&t);
  std::vector<Tensor> outputs(exe->outputs().size());
  std::vector<Tensor*> out_ptrs;
  for (Tensor& t : outputs) out_ptrs.push_back(&t);
  RETURN_IF_ERROR(session->Run(in_ptrs, out_ptrs));
  Named out;
  for (size_t i = 0; i < outputs.size(); ++i) out["out:" + exe->outputs()[i].name] = ir::ToRef(outputs[i]);
  for (const auto& [name, t] : store) out[name] = ir::ToRef(t);
  return out;
}

void ExpectNamedClose(const Named& got, const Named& want, double tol) {
  for (const auto& [name, w] : want) {
    INFO("value " << name);
    auto it = got.find(name);
    REQUIRE(it != got.end());
    REQUIRE(it->second.shape == w.shape);
    double worst = 0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < w.size(); ++i) {
      double err = std::abs(it->second[i] - w[i]) / std::max(1.0, std::abs(w[i]));
      if (err > worst) {
        worst = err;
        worst_i = i;
      }
    }
    INFO("worst element " << worst_i << " relative error " << worst);
    CHECK(worst <= tol);
  }
}

void ExpectEquivalent(const ir::Graph& before, const ir::Graph& after, uint32_t seed,
                      const std::vector<codegen::LowerOptions>& lowerings, double tol,
                      const runtime::StepFactory* factory) {
  std::mt19937 rng(seed);
  Named args = RandomArguments(before, rng);
  auto want = RunReferenceNamed(before, args);
  REQUIRE(want.ok());
  auto ref_after = RunReferenceNamed(after, args);
  REQUIRE(ref_after.ok());
  ExpectNamedClose(*ref_after, *want, 1e-9);
  for (const codegen::LowerOptions& options : lowerings) {
    INFO("lowering: blocked_layouts, plan_memory, pool_workspace, group_updates = "
         << options.blocked_layouts << options.plan_memory << options.pool_workspace << options.group_updates);
    auto got = RunCompiledNamed(after, args, options, nullptr, factory);
    INFO((got.ok() ? std::string() : got.status().ToString()));
    REQUIRE(got.ok());
    ExpectNamedClose(*got, *want, tol);
  }
}

int CountOp(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node& node : g.nodes()) n += node.op == op;
  return n;
}

ir::Graph ParseOrFail(const std::string& text) {
  auto g = ir::ParseGraph(text);
  INFO(text);
  INFO((g.ok() ? std::string() : g.status().ToString()));
  REQUIRE(g.ok());
  return std::move(g).value();
}

ir::Graph TraceLeNet(int64_t batch, bool training) {
  graph::Seed(3);
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(graph::Xavier()).ok());
  net->CollectParams();
  graph::Tracer t("lenet");
  graph::Sym x = t.Input("data", DType::kF32, {batch, 1, 28, 28});
  graph::Sym label = t.Input("label", DType::kS32, {batch});
  auto out = net->Forward(x);
  REQUIRE(out.ok());
  auto loss = graph::SoftmaxCrossEntropyLoss()(*out, label);
  REQUIRE(loss.ok());
  t.graph().AddOutput("loss", loss->id);
  t.graph().AddOutput("output", out->id);
  ir::Graph g = *t.TakeGraph();
  passes::PassManager pm;
  if (training) pm.Add(std::make_unique<passes::BuildTrainingGraph>("loss", passes::SgdOptions{0.9, 1e-3, -1}));
  pm.Add(std::make_unique<passes::DeadCodeElimination>());
  REQUIRE(pm.Run(g).ok());
  return g;
}

}  // namespace kiln::testing
