// KServe v2 inference requests and responses in JSON, parsed as a stream (nlohmann-json's
// SAX interface: no document tree is built) straight into the model's input rows.
//
// Request (KServe "Open Inference Protocol", V2 REST, $inference_request):
//   {"id"?: string, "parameters"?: {...},
//    "inputs": [{"name": string, "shape": [N, d1, ...], "datatype": "FP32" | "INT32",
//                "parameters"?: {...}, "data": [...]}],
//    "outputs"?: [{"name": string, "parameters"?: {...}}]}
// `data` is the tensor in row-major order, flat or nested to any depth up to 64. Keys may
// come in any order; unknown keys are ignored with their values. Every input's shape must
// be the model's with the batch dim N first, 1 <= N <= max_batch, the same N for every
// input; `data` must hold exactly N * d1 * ... numbers.
// Values: FP32 accepts any JSON number whose magnitude fits a float (|v| <= FLT_MAX) and
// converts it to the nearest float; INT32 accepts integers in [-2^31, 2^31 - 1]. Anything
// else is an error naming the input and the flat index, e.g. "input 'data': value 1e+300
// at index 17 is out of range for FP32".
// Memory: at most 8 bytes per number while parsing (numbers are held as double until the
// datatype is known; a number takes at least 2 bytes of the body), then 4 bytes per value,
// so a request costs at most about 6x its body size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/executable.h"

namespace kiln::serve {

// What a model takes and gives: every tensor has the batch dim first.
struct ModelSignature {
  std::vector<runtime::TensorSpec> inputs;
  std::vector<runtime::TensorSpec> outputs;
  int max_batch = 1;  // the most samples one request may carry
};

struct InferRequest {
  std::optional<std::string> id;             // echoed in the response when present
  int n = 0;                                 // samples (the inputs' batch dim)
  std::vector<std::vector<uint8_t>> inputs;  // per model input, in the model's order: n rows, row-major
  std::vector<int> outputs;                  // requested output indices (every output when none named)
};

// KServe datatype names ("FP32", "INT32") of kiln's dtypes.
std::string KServeDatatype(DType dtype);

// Parses and validates `body` against `signature`. Errors: InvalidArgument with a message
// meant for the client (the input's name, the expected and received shape or datatype,
// the index of a bad value, or the JSON problem and its byte offset).
StatusOr<InferRequest> ParseInferRequest(std::string_view body, const ModelSignature& signature);

// The response body: {"model_name","model_version","id"?,"outputs":[{"name","datatype",
// "shape","data"}]}. `results[k]` holds the rows of output `request.outputs[k]` (n rows).
// Floats are written in the shortest form that reads back to the same float; a non-finite
// output is written as null (JSON has no NaN or infinity).
std::string WriteInferResponse(const std::string& model_name, const std::string& version,
                               const InferRequest& request, const ModelSignature& signature,
                               const std::vector<std::vector<uint8_t>>& results);

}  // namespace kiln::serve
