#include "ir/graph.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace kiln::ir {

std::string TensorType::ToString() const {
  return std::string(DTypeName(dtype)) + ShapeToString(shape) + layout;
}

std::string TensorType::Describe() const {
  return (layout.empty() ? std::string() : layout + " ") + ShapeToString(shape);
}

std::string DefaultLayout(int64_t rank) {
  switch (rank) {
    case 1: return "N";
    case 2: return "NC";
    case 3: return "NCW";
    case 4: return "NCHW";
    default: return "";
  }
}

std::string_view ValueKindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInput: return "input";
    case ValueKind::kParameter: return "param";
    case ValueKind::kState: return "state";
    case ValueKind::kConstant: return "const";
    case ValueKind::kIntermediate: return "intermediate";
  }
  return "?";
}

int64_t Attrs::GetInt(const std::string& key, int64_t def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  KILN_CHECK(std::holds_alternative<int64_t>(it->second), "attribute " + key + " is not an int");
  return std::get<int64_t>(it->second);
}

double Attrs::GetFloat(const std::string& key, double def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  if (std::holds_alternative<int64_t>(it->second)) return static_cast<double>(std::get<int64_t>(it->second));
  KILN_CHECK(std::holds_alternative<double>(it->second), "attribute " + key + " is not a float");
  return std::get<double>(it->second);
}

std::vector<int64_t> Attrs::GetInts(const std::string& key, std::vector<int64_t> def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  KILN_CHECK(std::holds_alternative<std::vector<int64_t>>(it->second), "attribute " + key + " is not an int list");
  return std::get<std::vector<int64_t>>(it->second);
}

std::string Attrs::GetString(const std::string& key, std::string def) const {
  auto it = map_.find(key);
  if (it == map_.end()) return def;
  KILN_CHECK(std::holds_alternative<std::string>(it->second), "attribute " + key + " is not a string");
  return std::get<std::string>(it->second);
}

namespace {
std::string FormatDouble(double v) {
  // %.17g round-trips every double; make sure it reads back as a float, not an int.
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  std::string s = buf;
  if (std::isfinite(v) && s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}
}  // namespace

std::string AttrsToString(const Attrs& attrs) {
  std::string s = "{";
  bool first = true;
  for (const auto& [key, v] : attrs.map()) {
    if (!first) s += ", ";
    first = false;
    s += key + "=";
    if (auto* i = std::get_if<int64_t>(&v)) {
      s += std::to_string(*i);
    } else if (auto* d = std::get_if<double>(&v)) {
      s += FormatDouble(*d);
    } else if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
      s += ShapeToString(*l);
    } else {
      s += "\"" + std::get<std::string>(v) + "\"";
    }
  }
  return s + "}";
}

ValueId Graph::AddValue(const std::string& name, TensorType type, ValueKind kind) {
  KILN_CHECK(!name.empty(), "value names must not be empty");
  KILN_CHECK(value_by_name_.count(name) == 0, "duplicate value name '" + name + "'");
  Value v;
  v.id = static_cast<ValueId>(values_.size());
  v.name = name;
  v.type = std::move(type);
  v.kind = kind;
  values_.push_back(v);
  value_by_name_[name] = v.id;
  return v.id;
}

ValueId Graph::AddInput(const std::string& name, TensorType type) {
  return AddValue(name, std::move(type), ValueKind::kInput);
}
ValueId Graph::AddParameter(const std::string& name, TensorType type) {
  return AddValue(name, std::move(type), ValueKind::kParameter);
}
ValueId Graph::AddState(const std::string& name, TensorType type) {
  return AddValue(name, std::move(type), ValueKind::kState);
}
ValueId Graph::AddConstant(const std::string& name, Tensor data) {
  TensorType t{data.dtype(), data.shape(), DefaultLayout(static_cast<int64_t>(data.shape().size()))};
  ValueId id = AddValue(name, t, ValueKind::kConstant);
  constants_[id] = std::move(data);
  return id;
}

Node& Graph::AppendNode(const std::string& op, const std::string& name, std::vector<ValueId> inputs, Attrs attrs,
                        const std::vector<TensorType>& output_types, const std::vector<std::string>& output_names) {
  KILN_CHECK(!name.empty(), "node names must not be empty");
  KILN_CHECK(node_names_.count(name) == 0, "duplicate node name '" + name + "'");
  Node n;
  n.id = next_node_id_++;
  n.op = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < output_types.size(); ++i) {
    std::string vname = i < output_names.size() ? output_names[i]
                        : output_types.size() == 1 ? name
                                                   : name + "." + std::to_string(i);
    ValueId v = AddValue(vname, output_types[i], ValueKind::kIntermediate);
    values_[static_cast<size_t>(v)].producer = n.id;
    values_[static_cast<size_t>(v)].output_index = static_cast<int32_t>(i);
    n.outputs.push_back(v);
  }
  node_names_[name] = n.id;
  schedule_index_[n.id] = static_cast<int>(nodes_.size());
  nodes_.push_back(std::move(n));
  return nodes_.back();
}

void Graph::AddOutput(const std::string& name, ValueId value) { outputs_.emplace_back(name, value); }

void Graph::AddUpdate(ValueId target, ValueId new_value) { updates_.emplace_back(target, new_value); }

int Graph::ReplaceAllUsesWith(ValueId from, ValueId to) {
  int count = 0;
  for (Node& n : nodes_) {
    for (ValueId& in : n.inputs) {
      if (in == from) {
        in = to;
        ++count;
      }
    }
  }
  for (auto& [name, v] : outputs_) {
    if (v == from) {
      v = to;
      ++count;
    }
  }
  for (auto& [target, v] : updates_) {
    if (v == from) {
      v = to;
      ++count;
    }
  }
  return count;
}

std::optional<ValueId> Graph::FindValue(const std::string& name) const {
  auto it = value_by_name_.find(name);
  if (it == value_by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<ValueId> Graph::FindOutput(const std::string& name) const {
  for (const auto& [n, v] : outputs_) {
    if (n == name) return v;
  }
  return std::nullopt;
}

const Node* Graph::Producer(ValueId id) const {
  NodeId p = value(id).producer;
  if (p == kNoNode) return nullptr;
  auto it = schedule_index_.find(p);
  if (it == schedule_index_.end()) return nullptr;
  return &nodes_[static_cast<size_t>(it->second)];
}

int Graph::ScheduleIndex(NodeId id) const {
  auto it = schedule_index_.find(id);
  return it == schedule_index_.end() ? -1 : it->second;
}

std::vector<ValueId> Graph::ValuesOfKind(ValueKind kind) const {
  std::vector<ValueId> out;
  for (const Value& v : values_) {
    if (v.kind == kind) out.push_back(v.id);
  }
  return out;
}

std::vector<std::vector<NodeId>> Graph::ComputeUsers() const {
  std::vector<std::vector<NodeId>> users(values_.size());
  for (const Node& n : nodes_) {
    for (ValueId in : n.inputs) {
      auto& u = users[static_cast<size_t>(in)];
      if (u.empty() || u.back() != n.id) u.push_back(n.id);
    }
  }
  return users;
}

std::string Graph::UniqueName(const std::string& base) const {
  auto taken = [&](const std::string& s) { return value_by_name_.count(s) || node_names_.count(s); };
  if (!taken(base)) return base;
  for (int i = 1;; ++i) {
    std::string s = base + "_" + std::to_string(i);
    if (!taken(s)) return s;
  }
}

void Graph::RebuildIndex() {
  schedule_index_.clear();
  for (size_t i = 0; i < nodes_.size(); ++i) schedule_index_[nodes_[i].id] = static_cast<int>(i);
}

void Graph::PermuteSchedule(const std::vector<size_t>& order) {
  KILN_CHECK(order.size() == nodes_.size(), "PermuteSchedule: order has " + std::to_string(order.size()) +
                                                " positions, the schedule " + std::to_string(nodes_.size()));
  std::vector<bool> seen(nodes_.size(), false);
  std::vector<Node> reordered;
  reordered.reserve(nodes_.size());
  for (size_t i : order) {
    KILN_CHECK(i < nodes_.size() && !seen[i], "PermuteSchedule: order is not a permutation");
    seen[i] = true;
    reordered.push_back(std::move(nodes_[i]));
  }
  nodes_ = std::move(reordered);
  RebuildIndex();
}

int Graph::RemoveDeadNodes() {
  std::set<ValueId> live;
  for (const auto& [name, v] : outputs_) live.insert(v);
  for (const auto& [t, v] : updates_) live.insert(v);
  std::vector<bool> keep(nodes_.size(), false);
  for (size_t i = nodes_.size(); i-- > 0;) {
    const Node& n = nodes_[i];
    bool needed = false;
    for (ValueId o : n.outputs) needed = needed || live.count(o);
    if (!needed) continue;
    keep[i] = true;
    for (ValueId in : n.inputs) live.insert(in);
  }
  std::vector<Node> kept;
  int removed = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (keep[i]) {
      kept.push_back(std::move(nodes_[i]));
    } else {
      ++removed;
      node_names_.erase(nodes_[i].name);
      for (ValueId o : nodes_[i].outputs) {
        // The value stays in the table (ids are stable) but has no producer and no name.
        value_by_name_.erase(values_[static_cast<size_t>(o)].name);
        values_[static_cast<size_t>(o)].producer = kNoNode;
        values_[static_cast<size_t>(o)].name = "";
      }
    }
  }
  nodes_ = std::move(kept);
  RebuildIndex();
  return removed;
}

}  // namespace kiln::ir
