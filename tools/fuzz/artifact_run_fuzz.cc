// libFuzzer target for the runtime behind the loader: artifacts that pass validation (the
// checksum check off, so that mutated files get that far) are run through Session::Run
// with random inputs, including NaN, Inf, huge and denormal floats and out-of-range labels.
// A verified-but-hostile artifact must give a Status, never a crash, hang, out-of-bounds
// access or sanitizer report (runtime/model.h promises that every operand of a loaded
// artifact lies inside its buffer). Half the inputs run with numerics checking on
// (runtime/check_numerics.h), which then reads every output a step writes. Training
// artifacts run through runtime::TrainingSession instead (two optimizer steps, a forward
// pass of the eval program). Built and run by
// tools/fuzz.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>

#include "runtime/model.h"
#include "runtime/training.h"

namespace {

// Deterministic per input: a hash of the bytes seeds the input values.
uint64_t Hash(const uint8_t* data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; i += 1 + size / 4096) h = (h ^ data[i]) * 1099511628211ull;
  return h ^ size;
}

float RandomFloat(std::mt19937_64& rng) {
  switch (rng() % 16) {
    case 0: return std::numeric_limits<float>::quiet_NaN();
    case 1: return std::numeric_limits<float>::infinity();
    case 2: return -std::numeric_limits<float>::infinity();
    case 3: return std::numeric_limits<float>::max();
    case 4: return std::numeric_limits<float>::denorm_min();
    default: return std::normal_distribution<float>(0.f, 2.f)(rng);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  using namespace kiln::runtime;
  LoadOptions options;
  options.limits.verify_checksum = false;
  options.limits.max_arena_bytes = int64_t{1} << 26;  // keep sessions small under ASan
  options.limits.max_elements = int64_t{1} << 22;     // and every tensor (outputs are allocated per run)
  std::mt19937_64 rng(Hash(data, size));
  options.check_numerics = rng() % 2 == 0;
  auto model = Model::FromBytes(data, size, options);
  if (!model.ok()) return 0;
  auto random_tensor = [&](const TensorSpec& spec) {
    Tensor t(spec.dtype, spec.shape);
    bool all_finite = rng() % 2 == 0;  // half the runs reach the steps past the input check
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      if (spec.dtype == DType::kF32) {
        float v = RandomFloat(rng);
        t.f32()[i] = all_finite && !std::isfinite(v) ? 0.5f : v;
      } else {
        t.s32()[i] = static_cast<int32_t>(rng() % 24) - 4;  // labels and indices, some out of range
      }
    }
    return t;
  };
  if ((*model)->info().training) {
    auto run = TrainingSession::Create(*model);
    if (!run.ok()) return 0;
    const auto& specs = (*model)->inputs();
    const TensorSpec* data_spec = nullptr;
    const TensorSpec* label_spec = nullptr;
    for (const TensorSpec& spec : specs) {
      if (NumElements(spec.shape) > (int64_t{1} << 22)) return 0;
      if (spec.name == "data") data_spec = &spec;
      if (spec.name == "label") label_spec = &spec;
    }
    if (!data_spec || !label_spec) return 0;
    Tensor x = random_tensor(*data_spec), y = random_tensor(*label_spec), loss, out;
    for (int step = 0; step < 2; ++step) (void)(*run)->Step(x, y, &loss, &out);
    if ((*run)->has_eval()) {
      TensorSpec eval_spec{"data", DType::kF32, (*run)->eval_input_shape()};
      if (NumElements(eval_spec.shape) <= (int64_t{1} << 22)) (void)(*run)->Predict(random_tensor(eval_spec), &out);
    }
    return 0;
  }
  auto session = (*model)->NewSession();
  if (!session.ok()) return 0;
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : (*model)->inputs()) {
    if (NumElements(spec.shape) > (int64_t{1} << 22)) return 0;  // the loader's limits allow more; keep runs fast
    Tensor t = random_tensor(spec);
    inputs.push_back(std::move(t));
  }
  std::vector<const Tensor*> in;
  for (const Tensor& t : inputs) in.push_back(&t);
  std::vector<Tensor> outputs((*model)->outputs().size());
  std::vector<Tensor*> out;
  for (Tensor& t : outputs) out.push_back(&t);
  for (int run = 0; run < 2; ++run) (void)(*session)->Run(in, out);  // the second reuses the arena
  return 0;
}
