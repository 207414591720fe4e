// ONNX import (DESIGN.md graph/ "onnx import (import/)"): an ONNX model becomes a kiln network,
// an nn::Block whose Forward traces the ONNX graph node by node into kiln IR, with the
// model's float initializers as its parameters. So an imported model goes through
// everything a C++-built one does: Predictor, the passes (batch-norm folding, fusion),
// artifacts (`kiln compile model.onnx`), serving and TrainStep.
//
// Parsing, checking and opset conversion use Debian's libonnx 1.12 (onnx/onnx_pb.h
// ModelProto, onnx::checker::check_model, onnx::version_conversion::ConvertVersion); no
// protobuf is parsed by hand. Before libonnx sees a graph, kiln checks its structure (every
// input defined before use, values defined once, outputs produced, no subgraphs: libonnx's
// converter crashes on some of these). Shapes are checked by kiln's own inference when the
// network is traced (libonnx's InferShapes crashes on malformed Conv weights, so it is not
// run; both found by the fuzzer, tools/fuzz.sh onnx).
//
// What is imported (ONNX operator docs, https://onnx.ai/onnx/operators/, opset 13 semantics):
//   - Models of opsets 7-17 of the default domain: a model below opset 13 (kImportOpset) is
//     converted to it with the version converter first (a conversion the converter has no
//     adapter for is an error naming it); opsets 14-17 are read as they are (the operators
//     above changed only types there, plus HardSwish-14, Shape-15's start/end and
//     BatchNormalization-14's training_mode, which the importer reads).
//   - NCHW CNN operators: Conv (2-D; group, pads, dilations, auto_pad), BatchNormalization
//     (inference), Relu, LeakyRelu, PRelu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Elu,
//     Selu (default alpha/gamma), Softplus, MaxPool / AveragePool (2-D; ceil_mode as PyTorch,
//     count_include_pad), GlobalAveragePool, GlobalMaxPool, Gemm, MatMul (2-D), Add, Sub,
//     Mul, Div (broadcasting), Concat, Flatten, Reshape, Transpose, Squeeze, Unsqueeze,
//     Slice (step 1), Split, Pad (constant), Softmax, LogSoftmax, ReduceMean, Dropout (inference: identity),
//     Identity, Constant; Shape, Gather, Cast, ConstantOfShape and integer arithmetic on
//     values known at trace time are computed then (the shape chains exporters write).
//   - One float input [N, ...]: N may be symbolic (dim_param; the batch is chosen when the
//     network is compiled, e.g. Predictor::Forward's input or `kiln compile --input-shape`),
//     every other dim fixed; one output.
//   - Initializers in the file or in external data files (TensorProto external_data:
//     location, offset, length), whose paths must stay inside the model's folder.
// Every problem of a model is reported at import, one line each, naming the node, its op
// type and the opset, and what kiln supports instead; nothing is silently dropped.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "graph/nn.h"

namespace kiln::onnx_import {

// The opset the importer's operator semantics follow; older models are converted to it.
inline constexpr int kImportOpset = 13;
// The default domain's opsets the importer accepts (ONNX 1.12 knows up to 17).
inline constexpr int kMinOpset = 7, kMaxOpset = 17;

struct ImportOptions {
  // Folder that external-data paths are relative to (and must stay inside). ImportOnnxFile
  // uses the model file's folder when this is empty; ImportOnnxBytes refuses external
  // data when it is empty.
  std::string model_dir;
  // Largest tensor (initializer, Constant, or a value computed at trace time) in elements:
  // a dim product above it is an error, not an allocation.
  int64_t max_tensor_elements = int64_t{1} << 31;
};

// One attribute of an ONNX node, as the importer keeps it (protobuf-free).
struct OnnxAttribute {
  enum class Kind : uint8_t { kInt, kFloat, kInts, kFloats, kString, kTensor, kOther };
  Kind kind = Kind::kOther;
  int64_t i = 0;
  double f = 0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::string s;
  int tensor = -1;  // kTensor: index into OnnxNetwork's constant tensors
};

struct OnnxNode {
  std::string name;     // the node's name, or "<op_type>_<index>" when the file has none
  std::string op_type;  // e.g. "Conv"
  std::vector<std::string> inputs, outputs;  // value names; "" = an omitted optional input
  std::map<std::string, OnnxAttribute> attributes;
};

// A value known when the graph is traced: integer initializers, Constant nodes, shape
// computations; and float initializers that are not network parameters. Row-major.
struct HostTensor {
  bool is_float = false;
  Shape dims;
  std::vector<double> values;  // int64 values are exact up to 2^53
  int64_t size() const { return static_cast<int64_t>(values.size()); }
};

// The imported network. Forward(x) traces the ONNX graph for x's shape (which must match
// the model's input, the batch dim excepted when it is symbolic) and returns the model's
// output. Parameters: the float initializers that ONNX nodes read as tensors, named as in
// the file (BatchNormalization's mean and variance with grad_req "null"); already set, so
// Initialize leaves them alone.
class OnnxNetwork final : public graph::nn::Block {
 public:
  StatusOr<graph::Sym> Forward(graph::Sym x) override;

  // The model's input and output names; the input's dims with -1 for a symbolic batch.
  const std::string& input_name() const { return input_name_; }
  const Shape& input_dims() const { return input_dims_; }
  const std::string& output_name() const { return output_name_; }
  int model_opset() const { return model_opset_; }  // before conversion
  const std::string& producer() const { return producer_; }
  const std::vector<OnnxNode>& nodes() const { return nodes_; }

  // The input shape for batch `n`. Errors: InvalidArgument when the model's batch is fixed
  // to another value (naming the input and its dims).
  StatusOr<Shape> InputShapeForBatch(int64_t n) const;

 private:
  friend class Importer;
  std::string input_name_, output_name_, producer_;
  Shape input_dims_;
  int model_opset_ = 0;
  std::vector<OnnxNode> nodes_;
  std::vector<HostTensor> tensors_;               // attribute tensors (Constant value, ...)
  std::map<std::string, HostTensor> host_;        // initializers known at trace time
  std::map<std::string, graph::Parameter*> params_;  // initializers that are parameters
  int64_t max_elements_ = 0;
};

// Imports the ONNX file at `path`. Errors: NotFound for a missing file; InvalidArgument
// for a file that does not parse as a ModelProto, fails kiln's structure check or the ONNX
// checker, has an unsupported opset, domain, operator, attribute, input or initializer
// (one line per problem: node name, op type, opset, what kiln supports); Unimplemented
// for a version conversion the converter cannot do.
StatusOr<std::shared_ptr<OnnxNetwork>> ImportOnnxFile(const std::string& path, ImportOptions options = {});

// Imports a model held in memory (e.g. fuzzing, HTTP uploads). Errors as ImportOnnxFile.
StatusOr<std::shared_ptr<OnnxNetwork>> ImportOnnxBytes(std::string_view bytes, const ImportOptions& options = {});

// The operator types the importer supports (sorted), for messages and docs.
const std::vector<std::string>& SupportedOperators();

}  // namespace kiln::onnx_import
