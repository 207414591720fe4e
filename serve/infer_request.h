// KServe v2 inference requests and responses in JSON, parsed as a stream (nlohmann-json's
// SAX interface: no document tree is built) straight into the model's input rows.
//
// Request (KServe "Open Inference Protocol", V2 REST, $inference_request):
//   {"id"?: string, "parameters"?: {"binary_data_output"?: bool, ...},
//    "inputs": [{"name": string, "shape": [N, d1, ...], "datatype": string,
//                "parameters"?: {"binary_data_size"?: bytes, ...}, "data"?: [...]}],
//    "outputs"?: [{"name": string, "parameters"?: {"binary_data"?: bool, ...}}]}
// `data` is the tensor in row-major order, flat or nested to any depth up to 64. Keys may
// come in any order; unknown keys are ignored with their values. Every input's shape must
// be the model's with the batch dim N first, 1 <= N <= max_batch, the same N for every
// input; `data` must hold exactly N * d1 * ... numbers.
// Binary tensor data extension (KServe/Triton "binary_tensor_data"): the body is the JSON
// header (its length in bytes given by the HTTP header Inference-Header-Content-Length)
// followed by the raw little-endian tensors of the inputs that have "binary_data_size" (in
// the order they appear in "inputs"), each exactly N * d1 * ... * element size bytes.
// Datatypes: the wire datatype may differ from the model's and is converted, with range
// checks: a model FP32 input takes FP32, FP64, FP16, BF16, INT8, UINT8, INT16, UINT16,
// INT32, UINT32, INT64 and UINT64 (integers converted to the nearest float); a model INT32
// input takes the integer datatypes. A value that does not fit (|v| > FLT_MAX for FP32; not
// an integer or outside [-2^31, 2^31 - 1] for INT32; outside the wire datatype's own range
// in JSON, e.g. 300 as UINT8), and NaN or infinity in binary data, is an error naming the
// input and the flat index, e.g. "input 'data': value 1e+300 at index 17 is out of range
// for FP32".
// Memory: at most 8 bytes per number while parsing JSON data (numbers are held as double
// until the input is complete; a number takes at least 2 bytes of the body), then 4 bytes
// per value, so a request costs at most about 6x its body size.
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
  std::vector<bool> binary_outputs;          // per entry of `outputs`: send it as binary data
};

// KServe datatype names ("FP32", "INT32") of kiln's dtypes.
std::string KServeDatatype(DType dtype);

// Parses and validates `body` against `signature`. `json_bytes`: the length of the JSON
// header when the body carries binary tensor data (Inference-Header-Content-Length), or
// std::string_view::npos for a JSON-only body. Errors: InvalidArgument with a message meant
// for the client (the input's name, the expected and received shape or datatype, the index
// of a bad value, a binary size mismatch, or the JSON problem and its byte offset).
StatusOr<InferRequest> ParseInferRequest(std::string_view body, const ModelSignature& signature,
                                         size_t json_bytes = std::string_view::npos);

// One input tensor given outside JSON (the gRPC front end, serve/grpc_service.h), checked
// and converted exactly as ParseInferRequest does: the name against the signature (once
// each; `given`, sized by the caller or here to signature.inputs.size(), records which were
// set), `datatype` (a KServe name, converted to the model's dtype as above), `shape` ([N,
// d1, ...], the same N for every input). The values are either `raw` (`raw_bytes` of
// little-endian `datatype` elements: exactly N * d1 * ... * element size; NaN and infinity
// refused) or `values` (numbers, e.g. a protobuf's typed contents: exactly N * d1 * ... of
// them, each within `datatype`'s range and, for integer datatypes, an integer).
// `size_what` names the count in the size error ("raw_input_contents[0] has").
// Errors: InvalidArgument with the message ParseInferRequest gives for the same problem.
Status AddInferInput(const ModelSignature& signature, const std::string& name, const std::string& datatype,
                     const std::vector<int64_t>& shape, const uint8_t* raw, size_t raw_bytes,
                     const std::vector<double>* values, std::string_view size_what, std::vector<bool>* given,
                     InferRequest* request);

// The response body: {"model_name","model_version","id"?,"outputs":[{"name","datatype",
// "shape","data"}]}. `results[k]` holds the rows of output `request.outputs[k]` (n rows).
// Floats are written in the shortest form that reads back to the same float; a non-finite
// output is written as null (JSON has no NaN or infinity). Outputs marked in
// `request.binary_outputs` carry "parameters":{"binary_data_size":B} instead of "data" and
// their bytes follow the JSON; `*json_bytes` is then set to the JSON's length (for the
// Inference-Header-Content-Length header), else to npos.
std::string WriteInferResponse(const std::string& model_name, const std::string& version,
                               const InferRequest& request, const ModelSignature& signature,
                               const std::vector<std::vector<uint8_t>>& results, size_t* json_bytes = nullptr);

}  // namespace kiln::serve
