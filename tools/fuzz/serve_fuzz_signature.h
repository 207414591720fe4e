// The model signature both request fuzz targets check against (infer_request_fuzz.cc,
// grpc_infer_fuzz.cc): an FP32 input [N,1,2,2] and an INT32 input [N,3], N <= 4, and two
// outputs; kRowBytes are the inputs' bytes per sample.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "serve/infer_request.h"

namespace kiln::serve::fuzz {

inline const ModelSignature& Signature() {
  static const ModelSignature sig = [] {
    ModelSignature s;
    s.inputs = {{"data", DType::kF32, {4, 1, 2, 2}}, {"ids", DType::kS32, {4, 3}}};
    s.outputs = {{"logits", DType::kF32, {4, 5}}, {"label", DType::kS32, {4}}};
    s.max_batch = 4;
    return s;
  }();
  return sig;
}

inline constexpr size_t kRowBytes[] = {16, 12};

// Ends the run with a message, so libFuzzer records the input as a crash.
[[noreturn]] inline void Fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s fuzz: %s\n", target, what);
  std::abort();
}

// A converted request must match the signature: batch in [1, max_batch], every input n rows.
inline void CheckRequest(const char* target, const InferRequest& req) {
  const ModelSignature& sig = Signature();
  if (req.n < 1 || req.n > sig.max_batch) Fail(target, "batch outside [1, max_batch]");
  if (req.inputs.size() != sig.inputs.size()) Fail(target, "wrong input count");
  for (size_t i = 0; i < req.inputs.size(); ++i) {
    if (req.inputs[i].size() != kRowBytes[i] * static_cast<size_t>(req.n)) {
      Fail(target, "input rows do not match the batch");
    }
  }
  if (req.outputs.empty()) Fail(target, "no outputs");
}

}  // namespace kiln::serve::fuzz
