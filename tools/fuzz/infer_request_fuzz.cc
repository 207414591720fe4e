// libFuzzer target for kiln-serve's request parser (serve/infer_request.h
// ParseInferRequest): any body must give a Status, never a crash, an allocation beyond the
// stated bound or a sanitizer report; a body that parses must satisfy the signature (batch
// in [1, max_batch], every input n rows of its dtype, outputs named) and write a response
// that is valid JSON. Built and run by tools/fuzz.sh with clang++ -fsanitize=fuzzer,address,
// undefined.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "serve/infer_request.h"
#include "tools/fuzz/serve_fuzz_signature.h"

namespace {

constexpr const char* kTarget = "infer_request";

[[noreturn]] void Fail(const char* what) { kiln::serve::fuzz::Fail(kTarget, what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::serve;
  const ModelSignature& sig = fuzz::Signature();
  // A body starting with 'B' and a length byte has binary tensor data: that many bytes of
  // JSON header, then the binary section (the Inference-Header-Content-Length case).
  std::string_view body(reinterpret_cast<const char*>(data), size);
  size_t json_bytes = std::string_view::npos;
  if (size >= 2 && data[0] == 'B') {
    json_bytes = data[1];
    body = body.substr(2);
  }
  auto req = ParseInferRequest(body, sig, json_bytes);
  if (!req.ok()) {
    if (req.status().message().empty()) Fail("an error without a message");
    return 0;
  }
  fuzz::CheckRequest(kTarget, *req);
  std::vector<std::vector<uint8_t>> results;
  for (int k : req->outputs) {
    if (k < 0 || k > 1) Fail("output index out of range");
    results.emplace_back((k == 0 ? 20u : 4u) * static_cast<size_t>(req->n), uint8_t{0x7f});
  }
  if (req->binary_outputs.size() != req->outputs.size()) Fail("binary flags do not match the outputs");
  size_t header = 0;
  std::string response = WriteInferResponse("m", "1", *req, sig, results, &header);
  std::string_view json_part = header == std::string::npos ? std::string_view(response) : std::string_view(response).substr(0, header);
  if (nlohmann::json::parse(json_part, nullptr, false).is_discarded()) Fail("the response is not valid JSON");
  return 0;
}
