#include "tests/codegen/step_harness.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <catch2/catch.hpp>

#include "backends/cpu/kernels_cpu.h"

namespace kiln::codegen_test {
namespace {

std::string Describe(const std::vector<ir::TensorType>& types) {
  std::string s;
  for (const auto& t : types) s += (s.empty() ? "" : ", ") + t.ToString();
  return s;
}

}  // namespace

int64_t Align64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// The StepDesc the lowering writes for `node`: every IR attribute copied (int -> {v}, list ->
// list, float -> floats, string -> strings), operands in the op's order.
StepDesc ToStepDesc(const ir::Node& node) {
  const ir::OpDef* def = ir::FindOp(node.op);
  StepDesc desc;
  desc.kind = node.op;
  desc.node_name = node.name;
  for (const auto& [key, value] : node.attrs.map()) {
    if (const auto* i = std::get_if<int64_t>(&value)) {
      bool is_float = def && std::count(def->float_attrs.begin(), def->float_attrs.end(), key);
      if (is_float) {
        desc.floats[key] = static_cast<double>(*i);
      } else {
        desc.ints[key] = {*i};
      }
    } else if (const auto* d = std::get_if<double>(&value)) {
      desc.floats[key] = *d;
    } else if (const auto* l = std::get_if<std::vector<int64_t>>(&value)) {
      desc.ints[key] = *l;
    } else {
      desc.strings[key] = std::get<std::string>(value);
    }
  }
  return desc;
}

void Write(void* dst, DType dtype, const std::vector<double>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      static_cast<float*>(dst)[i] = static_cast<float>(values[i]);
    } else {
      static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(values[i]);
    }
  }
}

std::vector<double> Read(const void* src, DType dtype, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = dtype == DType::kF32 ? static_cast<double>(static_cast<const float*>(src)[i])
                                  : static_cast<double>(static_cast<const int32_t*>(src)[i]);
  }
  return out;
}

// Creates the step for `desc` (dims and dtypes filled, buffers not yet), places the operands
// as `opts` says, writes `inputs`, runs and reads the outputs back.
StepRun CreateAndRun(StepDesc desc, const std::vector<std::vector<double>>& inputs, const Options& opts) {
  const runtime::StepFactory& factory = opts.factory ? *opts.factory : backends::cpu::CpuSteps();
  StatusOr<int64_t> scratch_bytes = factory.ScratchBytes(desc);
  if (!scratch_bytes.ok()) return {scratch_bytes.status(), {}};
  int64_t arena_bytes = 0;
  auto place_in_arena = [&](TensorRef& ref) {
    ref.kind = BufferKind::kArena;
    ref.offset = arena_bytes;
    arena_bytes = Align64(arena_bytes + ref.size_bytes());
  };
  std::vector<Buffer> in_buffers, out_buffers;
  for (size_t i = 0; i < desc.inputs.size(); ++i) {
    TensorRef& ref = desc.inputs[i];
    if (opts.placement == Placement::kIo) {
      ref.kind = BufferKind::kInput;
      ref.index = static_cast<int32_t>(i);
      in_buffers.emplace_back(ref.size_bytes());
    } else {
      place_in_arena(ref);
    }
  }
  for (size_t i = 0; i < desc.outputs.size(); ++i) {
    TensorRef& ref = desc.outputs[i];
    if (opts.placement == Placement::kIo) {
      ref.kind = BufferKind::kOutput;
      ref.index = static_cast<int32_t>(i);
      out_buffers.emplace_back(ref.size_bytes());
    } else if (opts.placement == Placement::kInPlace && static_cast<int>(i) < opts.num_in_place) {
      // sgd_update's mom_out aliases mom (input 4); every other kind aliases input i.
      // adam_update's mean_out/var_out alias mean/var (inputs 2, 3).
      size_t in = desc.kind == "sgd_update" && i == 1 ? 4 : desc.kind == "adam_update" && i > 0 ? i + 1 : i;
      const TensorRef& src = desc.inputs[in];
      ref.kind = src.kind;
      ref.offset = src.offset;
    } else {
      place_in_arena(ref);
    }
  }
  if (*scratch_bytes > 0 && opts.provide_scratch) {
    TensorRef scratch;
    scratch.dims = {*scratch_bytes / 4};
    place_in_arena(scratch);
    desc.scratch.push_back(scratch);
  }
  StatusOr<std::unique_ptr<runtime::Step>> step = factory.Create(desc);
  if (!step.ok()) return {step.status(), {}};

  Buffer arena(arena_bytes);
  std::vector<void*> in_ptrs, out_ptrs;
  for (Buffer& b : in_buffers) in_ptrs.push_back(b.data.get());
  for (Buffer& b : out_buffers) out_ptrs.push_back(b.data.get());
  ExecContext ctx;
  ctx.arena = arena.data.get();
  ctx.inputs = in_ptrs.data();
  ctx.outputs = out_ptrs.data();
  for (size_t i = 0; i < desc.inputs.size(); ++i) Write(ctx.Ptr(desc.inputs[i]), desc.inputs[i].dtype, inputs[i]);
  StepRun run;
  run.status = (*step)->Run(ctx);
  for (const TensorRef& ref : desc.outputs) run.outputs.push_back(Read(ctx.Ptr(ref), ref.dtype, NumElements(ref.dims)));
  return run;
}

// Runs `kind` with `attrs` on random inputs of `in_types` through the CPU step and the IR
// reference, and checks every output within kTolerance.
void CheckAgainstReference(const std::string& kind, const ir::Attrs& attrs, const std::vector<ir::TensorType>& in_types,
                           const Options& opts) {
  ir::Node node;
  node.op = kind;
  node.name = "test_" + kind;
  node.attrs = attrs;
  INFO(kind << " " << ir::AttrsToString(attrs) << " inputs: " << Describe(in_types) << " seed " << kSeed);
  StatusOr<std::vector<ir::TensorType>> out_types = ir::InferNodeTypes(node, in_types);
  REQUIRE(out_types.ok());
  INFO("outputs: " << Describe(*out_types));

  std::mt19937 rng(kSeed);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<std::vector<double>> inputs;
  std::vector<ir::RefTensor> ref_in;
  for (size_t i = 0; i < in_types.size(); ++i) {
    std::vector<double> v(static_cast<size_t>(in_types[i].num_elements()));
    if (opts.fill) {
      opts.fill(i, v, rng);
    } else {
      for (double& x : v) x = uniform(rng);
    }
    ir::RefTensor t(in_types[i].shape);
    t.data = v;
    ref_in.push_back(t);
    inputs.push_back(v);
  }
  std::vector<const ir::RefTensor*> ref_ptrs;
  for (const auto& t : ref_in) ref_ptrs.push_back(&t);
  std::vector<ir::RefTensor> ref_out;
  for (const auto& t : *out_types) ref_out.emplace_back(t.shape);
  REQUIRE(ir::FindOp(kind)->reference(node, ref_ptrs, ref_out).ok());

  StepDesc desc = ToStepDesc(node);
  for (const auto& t : in_types) desc.inputs.push_back(TensorRef{BufferKind::kArena, 0, 0, t.dtype, t.shape});
  for (const auto& t : *out_types) desc.outputs.push_back(TensorRef{BufferKind::kArena, 0, 0, t.dtype, t.shape});
  StepRun run = CreateAndRun(desc, inputs, opts);
  INFO(run.status.ToString());
  REQUIRE(run.status.ok());
  REQUIRE(run.outputs.size() == ref_out.size());
  for (size_t o = 0; o < ref_out.size(); ++o) {
    double worst = 0;
    int64_t worst_index = -1;
    for (size_t i = 0; i < ref_out[o].data.size(); ++i) {
      double want = ref_out[o].data[i], got = run.outputs[o][i];
      if (std::isnan(want) && std::isnan(got)) continue;
      double err = std::abs(got - want) / std::max(1.0, std::abs(want));
      if (!(err <= worst)) {  // also catches NaN errors
        worst = std::isnan(err) ? INFINITY : err;
        worst_index = static_cast<int64_t>(i);
      }
    }
    INFO("output " << o << ": worst relative error " << worst << " at " << worst_index);
    if ((*out_types)[o].dtype == DType::kS32) {
      CHECK(worst == 0);
    } else {
      CHECK(worst <= kTolerance);
    }
  }
}

ir::TensorType F32(Shape s) {
  auto rank = static_cast<int64_t>(s.size());
  return {DType::kF32, std::move(s), ir::DefaultLayout(rank)};
}
ir::TensorType S32(Shape s) {
  auto rank = static_cast<int64_t>(s.size());
  return {DType::kS32, std::move(s), ir::DefaultLayout(rank)};
}

// Fills integer labels in [0, classes) for input `label_input`.
Options WithLabels(size_t label_input, int64_t classes) {
  Options o;
  o.fill = [=](size_t i, std::vector<double>& v, std::mt19937& rng) {
    std::uniform_real_distribution<float> uniform(-3.f, 3.f);
    std::uniform_int_distribution<int64_t> label(0, classes - 1);
    for (double& x : v) x = i == label_input ? static_cast<double>(label(rng)) : uniform(rng);
  };
  return o;
}

}  // namespace kiln::codegen_test
