// KServe v2 gRPC ModelInferRequest -> InferRequest (serve/infer_request.h), for the gRPC
// front end (serve/grpc_service.h) and its fuzz target. Only protobuf and the request checks;
// no gRPC, no runtime.
#pragma once

#include "base/status.h"
#include "serve/infer_request.h"

namespace inference {
class ModelInferRequest;
}

namespace kiln::serve {

// Checks and converts a parsed ModelInferRequest against `signature` exactly as a JSON body
// would be (AddInferInput per input): each input either in the InferTensorContents field
// of its datatype (fp32_contents for FP32, fp64_contents, int_contents for INT8/16/32,
// uint_contents for UINT8/16/32, int64_contents, uint64_contents; values in another field
// are an error naming both) or in raw_input_contents (exactly one entry per input, then no
// typed contents; FP16 and BF16 only this way); every model input present; requested
// outputs by name (none: all). Errors: InvalidArgument with a message for the client.
StatusOr<InferRequest> GrpcInferRequest(const inference::ModelInferRequest& request, const ModelSignature& signature);

}  // namespace kiln::serve
