#include "codegen/dot.h"

#include <map>
#include <sstream>
#include <tuple>

namespace kiln::codegen {
namespace {

// Escapes a label for a double-quoted DOT string.
std::string Esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string TypeText(const ir::TensorType& t) {
  return std::string(DTypeName(t.dtype)) + ShapeToString(t.shape) + t.layout;
}

}  // namespace

std::string GraphToDot(const ir::Graph& g) {
  std::ostringstream o;
  o << "digraph \"" << Esc(g.name()) << "\" {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n"
    << "  edge [fontname=\"monospace\", fontsize=8];\n";
  auto value_node = [&](ir::ValueId v) -> std::string {
    const ir::Node* p = g.Producer(v);
    return p ? "n" + std::to_string(p->id) : "v" + std::to_string(v);
  };
  for (const ir::Value& v : g.values()) {
    if (v.kind == ir::ValueKind::kIntermediate) continue;
    const char* kind = v.kind == ir::ValueKind::kInput       ? "input"
                       : v.kind == ir::ValueKind::kParameter ? "param"
                       : v.kind == ir::ValueKind::kState     ? "state"
                                                             : "const";
    o << "  v" << v.id << " [shape=ellipse, label=\"" << kind << " %" << Esc(v.name) << "\\n" << Esc(TypeText(v.type))
      << "\"];\n";
  }
  for (const ir::Node& n : g.nodes()) {
    std::string act = n.attrs.GetString("activation", "");
    bool fused = !act.empty();
    o << "  n" << n.id << " [shape=box" << (fused ? ", style=filled, fillcolor=\"#ffe0a0\"" : "") << ", label=\""
      << Esc(n.name) << "\\n" << Esc(n.op) << (fused ? " + " + Esc(act) : "") << "\"];\n";
    for (ir::ValueId in : n.inputs) {
      o << "  " << value_node(in) << " -> n" << n.id << " [label=\"" << Esc(TypeText(g.value(in).type)) << "\"];\n";
    }
  }
  int sink = 0;
  for (const auto& [name, v] : g.outputs()) {
    o << "  out" << sink << " [shape=doubleoctagon, label=\"output " << Esc(name) << "\"];\n";
    o << "  " << value_node(v) << " -> out" << sink++ << ";\n";
  }
  for (const auto& [target, v] : g.updates()) {
    o << "  out" << sink << " [shape=doubleoctagon, label=\"update %" << Esc(g.value(target).name) << "\"];\n";
    o << "  " << value_node(v) << " -> out" << sink++ << ";\n";
  }
  o << "}\n";
  return o.str();
}

std::string ExecutableToDot(const runtime::Executable& exe) {
  std::ostringstream o;
  o << "digraph executable {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n"
    << "  edge [fontname=\"monospace\", fontsize=8];\n";
  o << "  arena [shape=note, label=\"arena " << exe.arena_bytes() << " bytes\"];\n";
  using Key = std::tuple<int, int32_t, int64_t>;  // buffer kind, index, offset
  std::map<Key, std::string> writer;
  auto key = [](const runtime::TensorRef& r) { return Key{static_cast<int>(r.kind), r.index, r.offset}; };
  auto source = [&](const runtime::TensorRef& r) -> std::string {
    if (auto it = writer.find(key(r)); it != writer.end()) return it->second;
    std::string id = std::string(runtime::BufferKindName(r.kind)) + std::to_string(r.index) + "_" + std::to_string(r.offset);
    std::string label;
    switch (r.kind) {
      case runtime::BufferKind::kInput: label = "input " + exe.inputs()[static_cast<size_t>(r.index)].name; break;
      case runtime::BufferKind::kParam: label = "param " + exe.params()[static_cast<size_t>(r.index)].name; break;
      case runtime::BufferKind::kConstant: label = "const #" + std::to_string(r.index); break;
      default: label = r.ToString(); break;
    }
    o << "  " << id << " [shape=ellipse, label=\"" << Esc(label) << "\"];\n";
    writer[key(r)] = id;
    return id;
  };
  const auto& steps = exe.steps();
  for (size_t i = 0; i < steps.size(); ++i) {
    const runtime::StepDesc& d = steps[i]->desc();
    std::string id = "s" + std::to_string(i);
    auto act = d.strings.find("activation");
    bool fused = act != d.strings.end() && !act->second.empty();
    o << "  " << id << " [shape=box" << (fused ? ", style=filled, fillcolor=\"#ffe0a0\"" : "")
      << (d.kind == "reorder" ? ", style=dashed" : "") << ", label=\"#" << i << " " << Esc(d.kind)
      << (fused ? " + " + Esc(act->second) : "") << "\\n" << Esc(d.node_name) << "\"];\n";
    for (const auto& in : d.inputs) o << "  " << source(in) << " -> " << id << " [label=\"" << Esc(in.ToString()) << "\"];\n";
    for (const auto& out : d.outputs) {
      if (out.kind == runtime::BufferKind::kOutput) {
        std::string sink = "out" + std::to_string(out.index);
        o << "  " << sink << " [shape=doubleoctagon, label=\"output "
          << Esc(exe.outputs()[static_cast<size_t>(out.index)].name) << "\"];\n";
        o << "  " << id << " -> " << sink << " [label=\"" << Esc(out.ToString()) << "\"];\n";
      }
      writer[key(out)] = id;
    }
  }
  o << "}\n";
  return o.str();
}

}  // namespace kiln::codegen
