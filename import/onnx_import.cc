#include "import/onnx_import.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "graph/ops.h"
#include "graph/parameter.h"

namespace kiln::onnx_import {

using graph::Sym;

namespace {

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string DimsText(const Shape& d) { return ShapeToString(d); }

// Element count of `dims`, or an error when a dim is negative or the product exceeds `max`.
StatusOr<int64_t> CheckedCount(const Shape& dims, int64_t max, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return InvalidArgument(what + ": negative dim in " + DimsText(dims));
    if (d != 0 && n > max / d) {
      return InvalidArgument(what + ": " + DimsText(dims) + " has more than " + std::to_string(max) +
                             " elements (kiln's limit, ImportOptions::max_tensor_elements)");
    }
    n *= d;
  }
  return n;
}

// Input positions that hold shapes, indices or scalars rather than tensor data (they stay
// host values; the others of a float initializer make it a parameter).
bool IsShapeOperand(const std::string& op, size_t i) {
  if (op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" || op == "Split" || op == "Expand" || op == "Tile") {
    return i >= 1;
  }
  if (op == "Slice" || op == "Clip" || op == "Pad" || op == "Resize" || op == "Dropout") return i >= 1;
  if (op == "ConstantOfShape" || op == "Shape" || op == "Range") return true;
  if (op == "Gather") return i == 1;
  return false;
}

// The graph's structure, checked before libonnx's checker and version converter see it
// (libonnx 1.12's converter dereferences a null producer for a graph output that no node
// writes, which its checker lets through; found by tools/fuzz.sh onnx): every node input
// defined before it (graph inputs, initializers, earlier outputs), every value defined
// once, every graph output defined, and no subgraph attributes (If/Loop/Scan bodies).
Status CheckGraphStructure(const onnx::GraphProto& g) {
  std::set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& n = g.node(i);
    const std::string where = "node '" + (n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name()) +
                              "' (" + n.op_type() + ")";
    for (const auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS || a.has_g() ||
          a.graphs_size() > 0) {
        return InvalidArgument(where + ": attribute '" + a.name() + "' holds a subgraph; kiln imports graphs without "
                               "control flow (no If, Loop, Scan)");
      }
    }
    for (const auto& in : n.input()) {
      if (!in.empty() && !defined.count(in)) {
        return InvalidArgument(where + ": input '" + in + "' is not defined before it (ONNX lists nodes in "
                               "topological order; a cycle or a missing producer)");
      }
    }
    for (const auto& out : n.output()) {
      if (out.empty()) continue;
      if (!defined.insert(out).second) return InvalidArgument(where + ": value '" + out + "' is defined twice");
    }
  }
  for (const auto& out : g.output()) {
    if (!defined.count(out.name())) {
      return InvalidArgument("graph output '" + out.name() + "' is not produced by any node");
    }
  }
  return OkStatus();
}

}  // namespace

// Reads a ModelProto into an OnnxNetwork: checks, conversion, initializers, nodes.
class Importer {
 public:
  explicit Importer(const ImportOptions& options) : options_(options) {}

  StatusOr<std::shared_ptr<OnnxNetwork>> Run(std::string_view bytes);

 private:
  Status ResolveExternalData(onnx::ModelProto& m);
  StatusOr<HostTensor> ReadTensor(const onnx::TensorProto& t, const std::string& what, Tensor* f32_out);
  Status ReadNode(const onnx::NodeProto& n, size_t index, OnnxNetwork& net, std::vector<std::string>& problems);

  ImportOptions options_;
  int opset_ = 0;
};

Status Importer::ResolveExternalData(onnx::ModelProto& m) {
  for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
    const std::string what = "initializer '" + t.name() + "'";
    if (options_.model_dir.empty()) {
      return InvalidArgument(what + ": external data needs the model's folder (import the file, or set "
                             "ImportOptions::model_dir)");
    }
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
      try {
        if (kv.key() == "location") location = kv.value();
        if (kv.key() == "offset") offset = std::stoll(kv.value());
        if (kv.key() == "length") length = std::stoll(kv.value());
      } catch (const std::exception&) {
        return InvalidArgument(what + ": external_data " + kv.key() + " '" + kv.value() + "' is not a number");
      }
    }
    namespace fs = std::filesystem;
    fs::path rel(location);
    if (location.empty() || rel.is_absolute() || std::any_of(rel.begin(), rel.end(), [](const fs::path& p) {
          return p == "..";
        })) {
      return InvalidArgument(what + ": external data location '" + location +
                             "' must be a relative path inside the model's folder");
    }
    std::error_code ec;
    fs::path dir = fs::weakly_canonical(fs::path(options_.model_dir), ec);
    fs::path file = fs::weakly_canonical(dir / rel, ec);
    auto [d_end, f_it] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
    if (ec || d_end != dir.end()) {
      return InvalidArgument(what + ": external data location '" + location + "' leaves the model's folder " +
                             dir.string());
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) return NotFound(what + ": external data file " + file.string() + " cannot be opened");
    in.seekg(0, std::ios::end);
    const int64_t size = static_cast<int64_t>(in.tellg());
    if (offset < 0 || offset > size) {
      return InvalidArgument(what + ": external data offset " + std::to_string(offset) + " lies outside " +
                             file.string() + " (" + std::to_string(size) + " bytes)");
    }
    if (length < 0) length = size - offset;
    if (length > size - offset) {
      return InvalidArgument(what + ": external data [" + std::to_string(offset) + ", +" + std::to_string(length) +
                             ") lies outside " + file.string() + " (" + std::to_string(size) + " bytes)");
    }
    if (length > options_.max_tensor_elements * 8) return InvalidArgument(what + ": external data is too large");
    std::string data(static_cast<size_t>(length), '\0');
    in.seekg(offset);
    in.read(data.data(), length);
    if (!in) return InvalidArgument(what + ": reading external data from " + file.string() + " failed");
    t.set_raw_data(std::move(data));
    t.clear_external_data();
    t.set_data_location(onnx::TensorProto::DEFAULT);
  }
  return OkStatus();
}

StatusOr<HostTensor> Importer::ReadTensor(const onnx::TensorProto& t, const std::string& what, Tensor* f32_out) {
  HostTensor h;
  for (int64_t d : t.dims()) h.dims.push_back(d);
  ASSIGN_OR_RETURN(int64_t n, CheckedCount(h.dims, options_.max_tensor_elements, what));
  const auto type = t.data_type();
  size_t esize = 0;
  switch (type) {
    case onnx::TensorProto::FLOAT: esize = 4; h.is_float = true; break;
    case onnx::TensorProto::DOUBLE: esize = 8; h.is_float = true; break;
    case onnx::TensorProto::INT64: esize = 8; break;
    case onnx::TensorProto::INT32: esize = 4; break;
    default:
      return InvalidArgument(what + ": data type " + onnx::TensorProto::DataType_Name(type) +
                             " is not supported (kiln reads FLOAT, DOUBLE, INT64, INT32 tensors)");
  }
  const std::string& raw = t.raw_data();
  const size_t count = static_cast<size_t>(n);
  auto need = [&](size_t have, const char* field) -> Status {
    if (have != count) {
      return InvalidArgument(what + ": " + field + " holds " + std::to_string(have) + " values, but its shape " +
                             DimsText(h.dims) + " needs " + std::to_string(count));
    }
    return OkStatus();
  };
  std::vector<float> f32;
  if (!raw.empty() || t.has_raw_data()) {
    if (raw.size() != count * esize) {
      return InvalidArgument(what + ": raw_data has " + std::to_string(raw.size()) + " bytes, but its shape " +
                             DimsText(h.dims) + " of " + onnx::TensorProto::DataType_Name(type) + " needs " +
                             std::to_string(count * esize));
    }
  }
  const bool use_raw = t.has_raw_data();
  auto from_raw = [&](auto tag, size_t i) {
    using T = decltype(tag);
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    return v;
  };
  if (type == onnx::TensorProto::FLOAT) {
    if (!use_raw) RETURN_IF_ERROR(need(static_cast<size_t>(t.float_data_size()), "float_data"));
    f32.resize(count);
    for (size_t i = 0; i < count; ++i) f32[i] = use_raw ? from_raw(float{}, i) : t.float_data(static_cast<int>(i));
  } else if (type == onnx::TensorProto::DOUBLE) {
    if (!use_raw) RETURN_IF_ERROR(need(static_cast<size_t>(t.double_data_size()), "double_data"));
    f32.resize(count);
    for (size_t i = 0; i < count; ++i) {
      f32[i] = static_cast<float>(use_raw ? from_raw(double{}, i) : t.double_data(static_cast<int>(i)));
    }
  } else {
    if (!use_raw) {
      RETURN_IF_ERROR(need(static_cast<size_t>(type == onnx::TensorProto::INT64 ? t.int64_data_size()
                                                                                  : t.int32_data_size()),
                           type == onnx::TensorProto::INT64 ? "int64_data" : "int32_data"));
    }
    h.values.resize(count);
    for (size_t i = 0; i < count; ++i) {
      int64_t v = type == onnx::TensorProto::INT64
                      ? (use_raw ? from_raw(int64_t{}, i) : t.int64_data(static_cast<int>(i)))
                      : (use_raw ? from_raw(int32_t{}, i) : t.int32_data(static_cast<int>(i)));
      h.values[i] = static_cast<double>(v);
    }
    return h;
  }
  for (float v : f32) {
    if (!std::isfinite(v)) return InvalidArgument(what + ": holds a NaN or infinite value");
  }
  if (f32_out != nullptr) {
    Shape shape = h.dims;
    *f32_out = Tensor(DType::kF32, shape);
    if (count > 0) std::memcpy(f32_out->data(), f32.data(), count * sizeof(float));
  } else {
    h.values.assign(f32.begin(), f32.end());
  }
  return h;
}

Status Importer::ReadNode(const onnx::NodeProto& n, size_t index, OnnxNetwork& net,
                          std::vector<std::string>& problems) {
  OnnxNode node;
  node.op_type = n.op_type();
  node.name = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
  const std::string where = "node '" + node.name + "' (" + node.op_type + ", opset " + std::to_string(opset_) + ")";
  if (!n.domain().empty() && n.domain() != "ai.onnx") {
    problems.push_back(where + ": domain '" + n.domain() + "' is not supported (kiln imports the default domain)");
    return OkStatus();
  }
  const auto& ops = SupportedOperators();
  if (!std::binary_search(ops.begin(), ops.end(), node.op_type)) {
    problems.push_back(where + ": operator not supported; kiln imports " + Join(ops, ", "));
    return OkStatus();
  }
  for (const auto& i : n.input()) node.inputs.push_back(i);
  for (const auto& o : n.output()) node.outputs.push_back(o);
  for (const onnx::AttributeProto& a : n.attribute()) {
    OnnxAttribute attr;
    switch (a.type()) {
      case onnx::AttributeProto::INT: attr.kind = OnnxAttribute::Kind::kInt; attr.i = a.i(); break;
      case onnx::AttributeProto::FLOAT: attr.kind = OnnxAttribute::Kind::kFloat; attr.f = a.f(); break;
      case onnx::AttributeProto::INTS:
        attr.kind = OnnxAttribute::Kind::kInts;
        attr.ints.assign(a.ints().begin(), a.ints().end());
        break;
      case onnx::AttributeProto::FLOATS:
        attr.kind = OnnxAttribute::Kind::kFloats;
        attr.floats.assign(a.floats().begin(), a.floats().end());
        break;
      case onnx::AttributeProto::STRING: attr.kind = OnnxAttribute::Kind::kString; attr.s = a.s(); break;
      case onnx::AttributeProto::TENSOR: {
        attr.kind = OnnxAttribute::Kind::kTensor;
        auto t = ReadTensor(a.t(), where + " attribute '" + a.name() + "'", nullptr);
        if (!t.ok()) {
          problems.push_back(t.status().message());
          return OkStatus();
        }
        attr.tensor = static_cast<int>(net.tensors_.size());
        net.tensors_.push_back(std::move(t).value());
        break;
      }
      default: attr.kind = OnnxAttribute::Kind::kOther; break;
    }
    node.attributes[a.name()] = std::move(attr);
  }
  net.nodes_.push_back(std::move(node));
  return OkStatus();
}

StatusOr<std::shared_ptr<OnnxNetwork>> Importer::Run(std::string_view bytes) {
  onnx::ModelProto m;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgument("not an ONNX model: the bytes do not parse as an onnx.ModelProto (truncated, or "
                           "another format)");
  }
  if (!m.has_graph()) return InvalidArgument("ONNX model has no graph");
  int opset = -1;
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = static_cast<int>(o.version());
  }
  if (opset < 0) return InvalidArgument("ONNX model imports no opset of the default domain");
  if (opset < kMinOpset || opset > kMaxOpset) {
    return InvalidArgument("ONNX opset " + std::to_string(opset) + ": kiln imports opsets " +
                           std::to_string(kMinOpset) + "-" + std::to_string(kMaxOpset));
  }
  RETURN_IF_ERROR(CheckGraphStructure(m.graph()));
  RETURN_IF_ERROR(ResolveExternalData(m));
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("ONNX checker: ") + e.what());
  } catch (...) {
    return InvalidArgument("ONNX checker: the model is invalid");
  }
  const int model_opset = opset;
  if (opset < kImportOpset) {
    try {
      m = onnx::version_conversion::ConvertVersion(m, kImportOpset);
    } catch (const std::exception& e) {
      return Unimplemented("converting the model from opset " + std::to_string(opset) + " to " +
                           std::to_string(kImportOpset) + " (onnx version converter): " + e.what());
    } catch (...) {
      return Unimplemented("converting the model from opset " + std::to_string(opset) + " failed");
    }
    opset = kImportOpset;
  }
  // No onnx::shape_inference::InferShapes: libonnx 1.12's Conv/pool inference dereferences
  // null on a weight whose rank differs from the input's (tools/fuzz/regressions/onnx-*;
  // found by tools/fuzz.sh onnx). kiln's own shape inference checks every node when the
  // network is traced, with errors that name the ONNX node, its op and the shapes.
  opset_ = opset;
  const onnx::GraphProto& g = m.graph();
  auto net = std::make_shared<OnnxNetwork>();
  net->model_opset_ = model_opset;
  net->producer_ = m.producer_name() + (m.producer_version().empty() ? "" : " " + m.producer_version());
  net->max_elements_ = options_.max_tensor_elements;
  std::vector<std::string> problems;

  std::set<std::string> initializer_names;
  for (const auto& t : g.initializer()) initializer_names.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& in : g.input()) {
    if (!initializer_names.count(in.name())) inputs.push_back(&in);
  }
  if (inputs.size() != 1) {
    std::vector<std::string> names;
    for (const auto* in : inputs) names.push_back("'" + in->name() + "'");
    problems.push_back("the model has " + std::to_string(inputs.size()) + " inputs (" + Join(names, ", ") +
                       "); kiln imports models with one input");
  } else {
    const onnx::ValueInfoProto& in = *inputs[0];
    net->input_name_ = in.name();
    const auto& type = in.type();
    if (!type.has_tensor_type() || type.tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
      problems.push_back("input '" + in.name() + "': kiln imports a float tensor input");
    } else if (!type.tensor_type().has_shape()) {
      problems.push_back("input '" + in.name() + "' has no shape");
    } else {
      const auto& dims = type.tensor_type().shape().dim();
      for (int i = 0; i < dims.size(); ++i) {
        if (dims[i].has_dim_value() && dims[i].dim_value() >= 1) {
          net->input_dims_.push_back(dims[i].dim_value());
        } else if (i == 0) {
          net->input_dims_.push_back(-1);  // symbolic batch
        } else {
          problems.push_back("input '" + in.name() + "' dim " + std::to_string(i) + " is symbolic ('" +
                             dims[i].dim_param() + "'): kiln compiles for fixed shapes; only the batch dim (0) "
                             "may be symbolic");
        }
      }
      if (net->input_dims_.empty()) problems.push_back("input '" + in.name() + "' is a scalar; kiln needs [N, ...]");
    }
  }
  if (g.output_size() != 1) {
    problems.push_back("the model has " + std::to_string(g.output_size()) +
                       " outputs; kiln imports models with one output");
  } else {
    net->output_name_ = g.output(0).name();
  }

  for (int i = 0; i < g.node_size(); ++i) RETURN_IF_ERROR(ReadNode(g.node(i), static_cast<size_t>(i), *net, problems));

  // Which float initializers the nodes read as tensor data (network parameters), and which
  // are BatchNormalization statistics (grad_req "null").
  std::set<std::string> data_inputs, statistics;
  for (const OnnxNode& n : net->nodes_) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!IsShapeOperand(n.op_type, i)) data_inputs.insert(n.inputs[i]);
      if (n.op_type == "BatchNormalization" && (i == 3 || i == 4)) statistics.insert(n.inputs[i]);
    }
  }
  for (const onnx::TensorProto& t : g.initializer()) {
    const std::string what = "initializer '" + t.name() + "'";
    const bool is_float = t.data_type() == onnx::TensorProto::FLOAT || t.data_type() == onnx::TensorProto::DOUBLE;
    if (is_float && data_inputs.count(t.name())) {
      Tensor value;
      auto h = ReadTensor(t, what, &value);
      if (!h.ok()) {
        problems.push_back(h.status().message());
        continue;
      }
      if (value.num_elements() == 0 || value.shape().empty()) {
        // Scalars and empty tensors stay host values (graph constants when read as data).
        auto hv = ReadTensor(t, what, nullptr);
        if (hv.ok()) net->host_[t.name()] = std::move(hv).value();
        continue;
      }
      graph::Parameter* p = net->AddParameter(t.name(), value.shape());
      if (statistics.count(t.name())) p->set_grad_req("null");
      if (Status s = p->SetData(std::move(value)); !s.ok()) {
        problems.push_back(what + ": " + s.message());
        continue;
      }
      net->params_[t.name()] = p;
    } else {
      auto h = ReadTensor(t, what, nullptr);
      if (!h.ok()) {
        problems.push_back(h.status().message());
        continue;
      }
      net->host_[t.name()] = std::move(h).value();
    }
  }
  if (!problems.empty()) {
    return InvalidArgument("ONNX model (opset " + std::to_string(model_opset) + ", " +
                           std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") +
                           "):\n  " + Join(problems, "\n  "));
  }
  // Names as the parameter store sees them (the root block's structural names).
  (void)net->CollectParams();
  return net;
}

const std::vector<std::string>& SupportedOperators() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v = {
        "Add",          "AveragePool", "BatchNormalization", "Cast",       "Clip",
        "Concat",       "Constant",    "ConstantOfShape",    "Conv",       "Div",
        "Dropout",      "Elu",         "Flatten",            "Gather",     "Gemm",
        "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity",
        "LeakyRelu",    "LogSoftmax",  "MatMul",             "MaxPool",    "Mul",
        "Pad",          "PRelu",        "ReduceMean",  "Relu",               "Reshape",    "Selu",
        "Shape",        "Sigmoid",     "Slice",              "Softmax",    "Softplus",
        "Softsign",     "Split",        "Squeeze",     "Sub",                "Tanh",       "Transpose",
        "Unsqueeze"};
    std::sort(v.begin(), v.end());
    return v;
  }();
  return ops;
}

StatusOr<std::shared_ptr<OnnxNetwork>> ImportOnnxBytes(std::string_view bytes, const ImportOptions& options) {
  Importer importer(options);
  return importer.Run(bytes);
}

StatusOr<std::shared_ptr<OnnxNetwork>> ImportOnnxFile(const std::string& path, ImportOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("ONNX model " + path + " cannot be opened");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (options.model_dir.empty()) {
    options.model_dir = std::filesystem::path(path).parent_path().string();
    if (options.model_dir.empty()) options.model_dir = ".";
  }
  auto net = ImportOnnxBytes(buffer.str(), options);
  if (!net.ok()) return net.status().WithContext(path);
  return net;
}

StatusOr<Shape> OnnxNetwork::InputShapeForBatch(int64_t n) const {
  Shape s = input_dims_;
  if (s.empty()) return InvalidArgument("the model has no input shape");
  if (s[0] != -1 && s[0] != n) {
    return InvalidArgument("input '" + input_name_ + "' " + DimsText(input_dims_) + " has a fixed batch of " +
                           std::to_string(s[0]) + ", not " + std::to_string(n) +
                           " (export the model with a symbolic batch dim to compile other batch sizes)");
  }
  s[0] = n;
  return s;
}

}  // namespace kiln::onnx_import
