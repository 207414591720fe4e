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
#include "tools/fuzz/serve_fuzz_signature.h"

namespace {

constexpr const char* kTarget = "grpc_infer";

[[noreturn]] void Fail(const char* what) { kiln::serve::fuzz::Fail(kTarget, what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::serve;
  inference::ModelInferRequest message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  const ModelSignature& sig = fuzz::Signature();
  auto req = GrpcInferRequest(message, sig);
  if (!req.ok()) {
    if (req.status().message().empty()) Fail("an error without a message");
    return 0;
  }
  fuzz::CheckRequest(kTarget, *req);
  if (req->binary_outputs.size() != req->outputs.size()) Fail("outputs not resolved");
  for (int k : req->outputs) {
    if (k < 0 || k >= static_cast<int>(sig.outputs.size())) Fail("output index outside the signature");
  }
  return 0;
}
