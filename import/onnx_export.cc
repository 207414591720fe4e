#include "import/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "graph/parameter.h"
#include "graph/symbol.h"

namespace kiln::onnx_import {

namespace {

class Writer {
 public:
  Writer(const ir::Graph& g, onnx::GraphProto* out, const std::map<std::string, graph::Parameter*>& params,
         int64_t batch, bool dynamic)
      : g_(g), out_(out), params_(params), batch_(batch), dynamic_(dynamic) {}

  Status Node(const ir::Node& n);

  std::string Name(ir::ValueId v) const { return g_.value(v).name; }
  // A fresh value name for intermediate ONNX values of one kiln node.
  std::string Temp(const ir::Node& n, const std::string& what) { return n.name + "." + what + std::to_string(temps_++); }

  onnx::NodeProto* Add(const std::string& op, const std::vector<std::string>& in, const std::vector<std::string>& out,
                       const std::string& name) {
    onnx::NodeProto* p = out_->add_node();
    p->set_op_type(op);
    p->set_name(name);
    for (const auto& i : in) p->add_input(i);
    for (const auto& o : out) p->add_output(o);
    return p;
  }
  static void Ints(onnx::NodeProto* p, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void Int(onnx::NodeProto* p, const std::string& name, int64_t v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void Float(onnx::NodeProto* p, const std::string& name, double v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(v));
  }
  // An int64 initializer [values.size()].
  std::string IntConstant(const std::string& name, const std::vector<int64_t>& values) {
    onnx::TensorProto* t = out_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
    return name;
  }
  std::string FloatScalar(const std::string& name, double value) {
    onnx::TensorProto* t = out_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_float_data(static_cast<float>(value));
    return name;
  }
  // Writes `act` (a kiln activation name, or "") applied to `x` into `y`.
  Status Activation(const ir::Node& n, const std::string& act, const std::string& x, const std::string& y);

 private:
  const ir::Graph& g_;
  onnx::GraphProto* out_;
  const std::map<std::string, graph::Parameter*>& params_;
  int64_t batch_;
  bool dynamic_;
  int temps_ = 0;
};

Status Writer::Activation(const ir::Node& n, const std::string& act, const std::string& x, const std::string& y) {
  const ir::Attrs& a = n.attrs;
  if (act.empty()) {
    Add("Identity", {x}, {y}, n.name);
  } else if (act == "relu" || act == "sigmoid" || act == "tanh" || act == "softplus" || act == "softsign" ||
             act == "exp" || act == "log" ||
             act == "sqrt" || act == "abs" || act == "neg" || act == "selu" || act == "elu") {
    static const std::map<std::string, std::string> names = {
        {"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"}, {"softplus", "Softplus"}, {"softsign", "Softsign"}, {"exp", "Exp"},
        {"log", "Log"},   {"sqrt", "Sqrt"},       {"abs", "Abs"},   {"neg", "Neg"},           {"selu", "Selu"},
        {"elu", "Elu"}};
    auto* p = Add(names.at(act), {x}, {y}, n.name);
    if (act == "elu") Float(p, "alpha", a.GetFloat("alpha", 1.0));
  } else if (act == "leaky_relu") {
    Float(Add("LeakyRelu", {x}, {y}, n.name), "alpha", a.GetFloat("alpha", 0.01));
  } else if (act == "hard_sigmoid") {
    auto* p = Add("HardSigmoid", {x}, {y}, n.name);
    Float(p, "alpha", a.GetFloat("alpha", 0.2));
    Float(p, "beta", a.GetFloat("beta", 0.5));
  } else if (act == "hard_swish") {
    // x * relu6(x + 3) / 6 = x * HardSigmoid(x; 1/6, 1/2) (HardSwish itself is opset 14).
    std::string hs = Temp(n, "hsig");
    auto* p = Add("HardSigmoid", {x}, {hs}, n.name + ".hard_sigmoid");
    Float(p, "alpha", 1.0 / 6.0);
    Float(p, "beta", 0.5);
    Add("Mul", {x, hs}, {y}, n.name);
  } else if (act == "silu") {
    std::string in = x;
    double beta = a.GetFloat("beta", 1.0);
    if (beta != 1.0) {
      in = Temp(n, "beta_x");
      Add("Mul", {x, FloatScalar(Temp(n, "beta"), beta)}, {in}, n.name + ".beta");
    }
    std::string s = Temp(n, "sig");
    Add("Sigmoid", {in}, {s}, n.name + ".sigmoid");
    Add("Mul", {x, s}, {y}, n.name);
  } else if (act == "clip") {
    // a clip node's bounds, or a convolution's / dense's fused clip bounds
    const double lo = a.GetFloat("a_min", a.GetFloat("activation_min", 0));
    const double hi = a.GetFloat("a_max", a.GetFloat("activation_max", 6));
    Add("Clip", {x, FloatScalar(Temp(n, "min"), lo), FloatScalar(Temp(n, "max"), hi)}, {y}, n.name);
  } else {
    return Unimplemented("node \"" + n.name + "\" (" + n.op + "): activation '" + act +
                         "' has no ONNX opset 13 equivalent kiln writes");
  }
  return OkStatus();
}

Status Writer::Node(const ir::Node& n) {
  const ir::Attrs& a = n.attrs;
  std::vector<std::string> in;
  for (ir::ValueId v : n.inputs) in.push_back(Name(v));
  std::vector<std::string> out;
  for (ir::ValueId v : n.outputs) out.push_back(Name(v));
  const std::string& op = n.op;
  if (op == "conv2d") {
    const std::string act = a.GetString("activation", "");
    const bool sum = in.size() == 4;
    std::string conv_out = (act.empty() && !sum) ? out[0] : Temp(n, "conv");
    auto* p = Add("Conv", {in.begin(), in.begin() + std::min<size_t>(in.size(), 3)}, {conv_out}, n.name + ".conv");
    const ir::TensorType& w = g_.value(n.inputs[1]).type;
    Ints(p, "kernel_shape", {w.shape[2], w.shape[3]});
    Ints(p, "strides", a.GetInts("stride", {1, 1}));
    Ints(p, "dilations", a.GetInts("dilation", {1, 1}));
    auto pb = a.GetInts("padding_begin", {0, 0}), pe = a.GetInts("padding_end", {0, 0});
    Ints(p, "pads", {pb[0], pb[1], pe[0], pe[1]});
    Int(p, "group", a.GetInt("groups", 1));
    std::string pre = conv_out;
    if (sum) {
      pre = act.empty() ? out[0] : Temp(n, "sum");
      Add("Add", {conv_out, in[3]}, {pre}, n.name + ".sum");
    }
    if (!act.empty()) return Activation(n, act, pre, out[0]);
    return OkStatus();
  }
  if (op == "pool2d") {
    const bool max = a.GetString("kind", "max") == "max";
    auto* p = Add(max ? "MaxPool" : "AveragePool", {in[0]}, {out[0]}, n.name);
    Ints(p, "kernel_shape", a.GetInts("kernel"));
    Ints(p, "strides", a.GetInts("stride"));
    auto pb = a.GetInts("padding_begin", {0, 0}), pe = a.GetInts("padding_end", {0, 0});
    Ints(p, "pads", {pb[0], pb[1], pe[0], pe[1]});
    if (!max) Int(p, "count_include_pad", a.GetInt("count_include_pad", 1));
    if (!a.GetString("activation", "").empty()) return Unimplemented("node \"" + n.name + "\": fused pooling activation");
    return OkStatus();
  }
  if (op == "dense") {
    const std::string act = a.GetString("activation", "");
    std::string y = act.empty() ? out[0] : Temp(n, "gemm");
    Int(Add("Gemm", in, {y}, n.name + ".gemm"), "transB", 1);
    if (!act.empty()) return Activation(n, act, y, out[0]);
    return OkStatus();
  }
  if (op == "batch_norm") {
    const std::string act = a.GetString("activation", "");
    std::string y = act.empty() ? out[0] : Temp(n, "bn");
    Float(Add("BatchNormalization", in, {y}, n.name + ".bn"), "epsilon", a.GetFloat("epsilon", 1e-5));
    if (!act.empty()) return Activation(n, act, y, out[0]);
    return OkStatus();
  }
  static const std::map<std::string, std::string> binary = {{"add", "Add"},     {"sub", "Sub"},
                                                            {"mul", "Mul"},     {"div", "Div"},
                                                            {"maximum", "Max"}, {"minimum", "Min"}};
  if (auto it = binary.find(op); it != binary.end()) {
    Add(it->second, in, out, n.name);
    return OkStatus();
  }
  if (op == "concat") {
    Int(Add("Concat", in, out, n.name), "axis", a.GetInt("axis", 1));
    return OkStatus();
  }
  if (op == "split") {
    auto* p = Add("Split", {in[0], IntConstant(Temp(n, "sizes"), a.GetInts("sizes"))}, out, n.name);
    Int(p, "axis", a.GetInt("axis", 0));
    return OkStatus();
  }
  if (op == "transpose") {
    Ints(Add("Transpose", in, out, n.name), "perm", a.GetInts("axes"));
    return OkStatus();
  }
  if (op == "reshape") {
    const Shape& from = g_.value(n.inputs[0]).type.shape;
    Shape to = a.GetInts("shape");
    const bool batch_kept = !from.empty() && !to.empty() && from[0] == batch_ && to[0] == batch_;
    if (batch_kept && to.size() == 2) {
      Int(Add("Flatten", {in[0]}, out, n.name), "axis", 1);
      return OkStatus();
    }
    if (batch_kept) {
      to[0] = 0;  // ONNX Reshape: 0 copies the input's dim (the batch)
    } else if (dynamic_) {
      return Unimplemented("node \"" + n.name + "\" (reshape " + ShapeToString(from) + " -> " + ShapeToString(to) +
                           ") mixes the batch dim; export with ExportOptions::dynamic_batch = false");
    }
    Add("Reshape", {in[0], IntConstant(Temp(n, "shape"), to)}, out, n.name);
    return OkStatus();
  }
  if (op == "softmax" || op == "log_softmax") {
    Int(Add(op == "softmax" ? "Softmax" : "LogSoftmax", in, out, n.name), "axis", a.GetInt("axis", -1));
    return OkStatus();
  }
  if (op == "reduce_mean") {
    auto* p = Add("ReduceMean", in, out, n.name);
    Ints(p, "axes", a.GetInts("axes"));
    Int(p, "keepdims", a.GetInt("keepdims", 0));
    return OkStatus();
  }
  if (op == "reduce_sum") {
    auto* p = Add("ReduceSum", {in[0], IntConstant(Temp(n, "axes"), a.GetInts("axes"))}, out, n.name);
    Int(p, "keepdims", a.GetInt("keepdims", 0));
    return OkStatus();
  }
  if (n.inputs.size() == 1 && n.outputs.size() == 1) {
    Status s = Activation(n, op, in[0], out[0]);
    if (s.ok()) return s;
  }
  return Unimplemented("node \"" + n.name + "\" (" + op + "): kiln has no ONNX export for this op");
}

void FloatInitializer(onnx::GraphProto* g, const std::string& name, const Tensor& t) {
  onnx::TensorProto* p = g->add_initializer();
  p->set_name(name);
  p->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(std::string(static_cast<const char*>(t.data()), static_cast<size_t>(t.size_bytes())));
}

}  // namespace

Status ExportOnnx(graph::nn::Block& net, const Shape& input_shape, const std::string& path,
                  const ExportOptions& options) {
  std::map<std::string, graph::Parameter*> params;
  for (auto& [name, p] : net.CollectParams()) params[name] = p;
  graph::Tracer tracer("onnx_export");
  graph::Sym x = tracer.Input("data", DType::kF32, input_shape);
  ASSIGN_OR_RETURN(graph::Sym y, net.Forward(x));
  const ir::Graph& g = tracer.graph();

  onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name(options.producer);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* og = m.mutable_graph();
  og->set_name(net.CollectParams().empty() ? "kiln" : "kiln_network");
  auto value_info = [&](onnx::ValueInfoProto* v, const std::string& name, const Shape& shape) {
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    auto* s = v->mutable_type()->mutable_tensor_type()->mutable_shape();
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i == 0 && options.dynamic_batch) {
        s->add_dim()->set_dim_param("N");
      } else {
        s->add_dim()->set_dim_value(shape[i]);
      }
    }
  };
  value_info(og->add_input(), "data", input_shape);
  for (const ir::Value& v : g.values()) {
    if (v.kind == ir::ValueKind::kParameter || v.kind == ir::ValueKind::kState) {
      auto it = params.find(v.name);
      if (it == params.end() || it->second->data_or_null() == nullptr) {
        return FailedPrecondition("parameter '" + v.name + "' has no value (initialize or load the network first)");
      }
      FloatInitializer(og, v.name, *it->second->data_or_null());
    }
  }
  for (const auto& [id, t] : g.constants()) {
    if (t.dtype() != DType::kF32) return Unimplemented("constant '" + g.value(id).name + "' is not f32");
    FloatInitializer(og, g.value(id).name, t);
  }
  Writer w(g, og, params, input_shape.empty() ? 0 : input_shape[0], options.dynamic_batch);
  for (const ir::Node& n : g.nodes()) RETURN_IF_ERROR(w.Node(n));
  auto* id = og->add_node();
  id->set_op_type("Identity");
  id->set_name("output");
  id->add_input(g.value(y.id).name);
  id->add_output("output");
  value_info(og->add_output(), "output", y.shape());
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    return Internal(std::string("the exported model fails the ONNX checker: ") + e.what());
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) return Internal("serializing the ONNX model failed");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return InvalidArgument("cannot write " + tmp);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) return InvalidArgument("writing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return InvalidArgument("cannot rename " + tmp + " to " + path);
  return OkStatus();
}

}  // namespace kiln::onnx_import
