#include "serve/grpc_request.h"

#include "serve/proto/grpc_predict_v2.pb.h"

namespace kiln::serve {

namespace pb = ::inference;

namespace {

// The typed contents of `datatype` as numbers (the JSON path's `data`), or why not.
StatusOr<std::vector<double>> ContentsValues(const std::string& name, const std::string& datatype,
                                             const pb::InferTensorContents& c) {
  std::vector<double> v;
  // Which field holds this datatype, and that no other field holds values.
  int field = 0;
  if (datatype == "FP32") field = 6;
  if (datatype == "FP64") field = 7;
  if (datatype == "INT8" || datatype == "INT16" || datatype == "INT32") field = 2;
  if (datatype == "INT64") field = 3;
  if (datatype == "UINT8" || datatype == "UINT16" || datatype == "UINT32") field = 4;
  if (datatype == "UINT64") field = 5;
  if (datatype == "FP16" || datatype == "BF16") {
    return InvalidArgument("input '" + name + "': " + datatype +
                           " has no typed contents field; send it in raw_input_contents");
  }
  const int sizes[] = {0, c.bool_contents_size(), c.int_contents_size(), c.int64_contents_size(),
                       c.uint_contents_size(), c.uint64_contents_size(), c.fp32_contents_size(),
                       c.fp64_contents_size(), c.bytes_contents_size()};
  const char* names[] = {"",          "bool_contents",   "int_contents",  "int64_contents", "uint_contents",
                         "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"};
  for (int f = 1; f <= 8; ++f) {
    if (f != field && sizes[f] > 0) {
      return InvalidArgument("input '" + name + "': datatype " + datatype + " but the values are in " + names[f] +
                             (field ? std::string(" (they go in ") + names[field] + ")" : std::string()));
    }
  }
  switch (field) {
    case 2: v.assign(c.int_contents().begin(), c.int_contents().end()); break;
    case 3:
      for (int64_t x : c.int64_contents()) v.push_back(static_cast<double>(x));
      break;
    case 4: v.assign(c.uint_contents().begin(), c.uint_contents().end()); break;
    case 5:
      for (uint64_t x : c.uint64_contents()) v.push_back(static_cast<double>(x));
      break;
    case 6: v.assign(c.fp32_contents().begin(), c.fp32_contents().end()); break;
    case 7: v.assign(c.fp64_contents().begin(), c.fp64_contents().end()); break;
    default: break;  // an unknown datatype: AddInferInput names it
  }
  return v;
}

bool HasContents(const pb::InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() + c.uint_contents_size() +
             c.uint64_contents_size() + c.fp32_contents_size() + c.fp64_contents_size() + c.bytes_contents_size() >
         0;
}

}  // namespace

StatusOr<InferRequest> GrpcInferRequest(const pb::ModelInferRequest& req, const ModelSignature& sig) {
  InferRequest r;
  if (!req.id().empty()) r.id = req.id();
  if (req.inputs_size() == 0) return InvalidArgument("the request needs a non-empty \"inputs\" list");
  const bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size()) {
    return InvalidArgument("raw_input_contents has " + std::to_string(req.raw_input_contents_size()) +
                           " entries for " + std::to_string(req.inputs_size()) + " inputs (one per input)");
  }
  std::vector<bool> given(sig.inputs.size(), false);
  for (int i = 0; i < req.inputs_size(); ++i) {
    const pb::ModelInferRequest::InferInputTensor& in = req.inputs(i);
    std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
    if (raw) {
      if (HasContents(in.contents())) {
        return InvalidArgument("input '" + in.name() + "' has contents, but the request uses raw_input_contents");
      }
      const std::string& bytes = req.raw_input_contents(i);
      RETURN_IF_ERROR(AddInferInput(sig, in.name(), in.datatype(), shape,
                                    reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), nullptr,
                                    "raw_input_contents[" + std::to_string(i) + "] has", &given, &r));
    } else {
      ASSIGN_OR_RETURN(std::vector<double> values, ContentsValues(in.name(), in.datatype(), in.contents()));
      RETURN_IF_ERROR(
          AddInferInput(sig, in.name(), in.datatype(), shape, nullptr, 0, &values, "the contents have", &given, &r));
    }
  }
  for (size_t i = 0; i < sig.inputs.size(); ++i) {
    if (!given[i]) return InvalidArgument("input '" + sig.inputs[i].name + "' is missing");
  }
  for (const auto& out : req.outputs()) {
    int index = -1;
    for (size_t k = 0; k < sig.outputs.size(); ++k) {
      if (sig.outputs[k].name == out.name()) index = static_cast<int>(k);
    }
    if (index < 0) {
      std::string known;
      for (const auto& s : sig.outputs) known += (known.empty() ? "'" : ", '") + s.name + "'";
      return InvalidArgument("unknown output '" + out.name() + "' (the model's outputs: " + known + ")");
    }
    r.outputs.push_back(index);
  }
  if (r.outputs.empty()) {
    for (size_t k = 0; k < sig.outputs.size(); ++k) r.outputs.push_back(static_cast<int>(k));
  }
  r.binary_outputs.assign(r.outputs.size(), true);
  return r;
}

}  // namespace kiln::serve
