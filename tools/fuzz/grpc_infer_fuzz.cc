// libFuzzer target for kiln-serve's gRPC request path (serve/grpc_request.h): any bytes are
// parsed as a KServe v2 ModelInferRequest (protobuf) and, when they parse, converted against
// a two-input signature. Every message must give a Status, never a crash or a sanitizer
// report; one that converts must satisfy the signature (batch in [1, max_batch], every input
// n rows of its dtype, outputs named, all of them binary). Built and run by tools/fuzz.sh
// with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "serve/grpc_request.h"
#include "serve/proto/grpc_predict_v2.pb.h"

namespace {

const kiln::serve::ModelSignature& Signature() {
  static const kiln::serve::ModelSignature sig = [] {
    kiln::serve::ModelSignature s;
    s.inputs = {{"data", kiln::DType::kF32, {4, 1, 2, 2}}, {"ids", kiln::DType::kS32, {4, 3}}};
    s.outputs = {{"logits", kiln::DType::kF32, {4, 5}}, {"label", kiln::DType::kS32, {4}}};
    s.max_batch = 4;
    return s;
  }();
  return sig;
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "grpc_infer fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::serve;
  inference::ModelInferRequest message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  const ModelSignature& sig = Signature();
  auto req = GrpcInferRequest(message, sig);
  if (!req.ok()) {
    if (req.status().message().empty()) Fail("an error without a message");
    return 0;
  }
  if (req->n < 1 || req->n > sig.max_batch) Fail("batch outside [1, max_batch]");
  if (req->inputs.size() != sig.inputs.size()) Fail("wrong input count");
  const size_t row_bytes[] = {16, 12};
  for (size_t i = 0; i < req->inputs.size(); ++i) {
    if (req->inputs[i].size() != row_bytes[i] * static_cast<size_t>(req->n)) Fail("input rows do not match the batch");
  }
  if (req->outputs.empty() || req->binary_outputs.size() != req->outputs.size()) Fail("outputs not resolved");
  for (int k : req->outputs) {
    if (k < 0 || k >= static_cast<int>(sig.outputs.size())) Fail("output index outside the signature");
  }
  return 0;
}
