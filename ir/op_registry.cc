#include "ir/op_registry.h"

#include <algorithm>
#include <map>

namespace kiln::ir {

// Declarations of every op definition function listed in ops.def.
#define KILN_OP(fn) const OpDef& fn();
#include "ir/ops/ops.def"
#undef KILN_OP

namespace {

const std::map<std::string, const OpDef*, std::less<>>& Registry() {
  static const auto* registry = [] {
    auto* m = new std::map<std::string, const OpDef*, std::less<>>();
#define KILN_OP(fn)                                                             \
  {                                                                             \
    const OpDef& d = fn();                                                      \
    KILN_CHECK(m->count(d.name) == 0, "op registered twice: " + d.name);        \
    (*m)[d.name] = &d;                                                          \
  }
#include "ir/ops/ops.def"
#undef KILN_OP
    return m;
  }();
  return *registry;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

const OpDef* FindOp(std::string_view name) {
  const auto& r = Registry();
  auto it = r.find(name);
  return it == r.end() ? nullptr : it->second;
}

std::vector<const OpDef*> AllOps() {
  std::vector<const OpDef*> out;
  for (const auto& [name, def] : Registry()) out.push_back(def);
  return out;
}

Status InferCtx::Error(const std::string& message) const {
  const OpDef* def = FindOp(node_.op);
  std::string shapes;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (i) shapes += ", ";
    std::string operand = def && i < def->input_names.size() ? def->input_names[i] : "input" + std::to_string(i);
    shapes += operand + " " + inputs_[i].Describe();
  }
  return InvalidArgument(node_.op + " \"" + node_.name + "\": " + message + " (" + shapes + ")");
}

StatusOr<std::vector<TensorType>> InferNodeTypes(const Node& node, const std::vector<TensorType>& input_types) {
  const OpDef* def = FindOp(node.op);
  if (!def) return NotFound("node \"" + node.name + "\": unknown op '" + node.op + "'");
  InferCtx ctx(node, input_types);
  int max_inputs = static_cast<int>(def->input_names.size());
  int min_inputs = def->min_inputs < 0 ? max_inputs : def->min_inputs;
  if (ctx.num_inputs() < min_inputs || ctx.num_inputs() > max_inputs) {
    return ctx.Error("takes " + (min_inputs == max_inputs ? std::to_string(max_inputs)
                                                          : std::to_string(min_inputs) + " to " + std::to_string(max_inputs)) +
                     " inputs, got " + std::to_string(ctx.num_inputs()));
  }
  for (const auto& [key, v] : node.attrs.map()) {
    bool ok = (std::holds_alternative<int64_t>(v) && (Contains(def->int_attrs, key) || Contains(def->float_attrs, key))) ||
              (std::holds_alternative<double>(v) && Contains(def->float_attrs, key)) ||
              (std::holds_alternative<std::vector<int64_t>>(v) && Contains(def->ints_attrs, key)) ||
              (std::holds_alternative<std::string>(v) && Contains(def->string_attrs, key));
    if (!ok) return ctx.Error("unknown attribute '" + key + "' or wrong attribute type");
  }
  if (def->verify_attrs) RETURN_IF_ERROR(def->verify_attrs(ctx));
  ASSIGN_OR_RETURN(std::vector<TensorType> out, def->infer_type(ctx));
  if (out.size() != def->output_names.size() && !def->output_names.empty() &&
      static_cast<int>(out.size()) > static_cast<int>(def->output_names.size())) {
    return Internal(node.op + " inferred " + std::to_string(out.size()) + " outputs");
  }
  return out;
}

}  // namespace kiln::ir
