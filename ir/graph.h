// The graph IR: typed values, nodes in schedule order, named outputs and in-place updates.
//
// Every Value has exactly one producer (a node, or none for inputs, parameters, optimizer
// state and constants). Nodes are kept in a valid topological order, which is also the
// execution schedule. Parameters and optimizer state are updated in place: the graph records
// `updates` (state value <- new value), which the update step writes back after the step.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "base/tensor.h"

namespace kiln::ir {

// Shape, element type and logical layout of a tensor value. `layout` names the dims in
// order ("NCHW", "OIHW", "NC", "OI", "N", "C", or "" when no standard name applies).
struct TensorType {
  DType dtype = DType::kF32;
  Shape shape;
  std::string layout;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t num_elements() const { return NumElements(shape); }
  int64_t size_bytes() const { return num_elements() * DTypeSizeBytes(dtype); }
  // "f32[8,3,32,32]NCHW".
  std::string ToString() const;
  // "NCHW [8,3,32,32]" (the form used in error messages).
  std::string Describe() const;
  bool operator==(const TensorType& o) const {
    return dtype == o.dtype && shape == o.shape && layout == o.layout;
  }
  bool operator!=(const TensorType& o) const { return !(*this == o); }
};

// Conventional layout name for an activation of the given rank (4 -> NCHW, 2 -> NC, 1 -> N).
std::string DefaultLayout(int64_t rank);

enum class ValueKind : uint8_t {
  kInput,         // fed per run (data, label, hyper-parameters such as the learning rate)
  kParameter,     // trainable weight, owned by the parameter store, updated in place
  kState,         // optimizer state (momentum), owned by the parameter store, updated in place
  kConstant,      // data stored in the graph
  kIntermediate,  // produced by a node
};
std::string_view ValueKindName(ValueKind kind);

using ValueId = int32_t;
using NodeId = int32_t;
inline constexpr int32_t kNoNode = -1;

struct Value {
  ValueId id = -1;
  std::string name;  // unique in the graph
  TensorType type;
  ValueKind kind = ValueKind::kIntermediate;
  NodeId producer = kNoNode;
  int32_t output_index = 0;
};

// One attribute: an integer, a float, an integer list or a string.
using AttrValue = std::variant<int64_t, double, std::vector<int64_t>, std::string>;

class Attrs {
 public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<const std::string, AttrValue>> init) : map_(init) {}

  void Set(const std::string& key, AttrValue v) { map_[key] = std::move(v); }
  bool Has(const std::string& key) const { return map_.count(key) != 0; }
  // Typed getters: the default when absent; KILN_CHECK on a type mismatch (the verifier
  // checks attribute types first, so a mismatch here is a programmer error).
  int64_t GetInt(const std::string& key, int64_t def = 0) const;
  double GetFloat(const std::string& key, double def = 0) const;
  std::vector<int64_t> GetInts(const std::string& key, std::vector<int64_t> def = {}) const;
  std::string GetString(const std::string& key, std::string def = "") const;
  const std::map<std::string, AttrValue>& map() const { return map_; }
  bool operator==(const Attrs& o) const { return map_ == o.map_; }

 private:
  std::map<std::string, AttrValue> map_;
};

// "{dilation=[1,1], stride=[2,2]}" (keys sorted; floats printed so they parse back exactly).
std::string AttrsToString(const Attrs& attrs);

struct Node {
  NodeId id = -1;
  std::string op;    // key in the op registry
  std::string name;  // unique in the graph, used in error messages
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  Attrs attrs;
};

class Graph {
 public:
  explicit Graph(std::string name = "main") : name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // Graph arguments. Names must be unique across all values; KILN_CHECK otherwise
  // (front ends make names unique with UniqueName()).
  ValueId AddInput(const std::string& name, TensorType type);
  ValueId AddParameter(const std::string& name, TensorType type);
  ValueId AddState(const std::string& name, TensorType type);
  ValueId AddConstant(const std::string& name, Tensor data);

  // Appends a node at the end of the schedule with already-inferred output types. Prefer
  // ir::Builder, which runs the op's attribute checks and shape inference first.
  Node& AppendNode(const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                   Attrs attrs, const std::vector<TensorType>& output_types,
                   const std::vector<std::string>& output_names = {});

  // Marks `value` as a named graph output (the runtime returns it to the caller).
  void AddOutput(const std::string& name, ValueId value);
  // Records that after the step, parameter/state `target` takes the value of `new_value`.
  void AddUpdate(ValueId target, ValueId new_value);

  const Value& value(ValueId id) const { return values_.at(static_cast<size_t>(id)); }
  Value& mutable_value(ValueId id) { return values_.at(static_cast<size_t>(id)); }
  const std::vector<Value>& values() const { return values_; }
  int num_values() const { return static_cast<int>(values_.size()); }
  std::optional<ValueId> FindValue(const std::string& name) const;

  // Nodes in schedule order.
  const std::vector<Node>& nodes() const { return nodes_; }
  // True when a node is named `name` (node names are unique, as value names).
  bool HasNodeName(const std::string& name) const { return node_names_.count(name) != 0; }
  std::vector<Node>& mutable_nodes() { return nodes_; }
  // The node producing `id`, or nullptr for graph arguments.
  const Node* Producer(ValueId id) const;
  // Index of node `id` in the schedule.
  int ScheduleIndex(NodeId id) const;

  const std::vector<std::pair<std::string, ValueId>>& outputs() const { return outputs_; }
  std::optional<ValueId> FindOutput(const std::string& name) const;
  const std::vector<std::pair<ValueId, ValueId>>& updates() const { return updates_; }
  const std::map<ValueId, Tensor>& constants() const { return constants_; }

  // Values of the given kind, in creation order.
  std::vector<ValueId> ValuesOfKind(ValueKind kind) const;
  // For every value, the nodes that read it (schedule order).
  std::vector<std::vector<NodeId>> ComputeUsers() const;

  // `base` if unused, else base_1, base_2, ...
  std::string UniqueName(const std::string& base) const;

  // Reorders the schedule to nodes()[order[0]], nodes()[order[1]], ...; `order` must be a
  // permutation of the positions (KILN_CHECK). The caller keeps every value defined before
  // its readers and no parameter read after its update (the verifier checks both).
  void PermuteSchedule(const std::vector<size_t>& order);

  // Removes nodes whose outputs are not needed by any output or update (dead-code
  // elimination of the schedule). Returns the number of nodes removed.
  int RemoveDeadNodes();

  // Rewrites every read of `from` (node inputs, graph outputs, update new values) to read
  // `to` instead; `from` is left without readers (RemoveDeadNodes then drops its producer).
  // The caller keeps types equal and `to` defined before every reader (the verifier checks).
  // Returns the number of reads rewritten.
  int ReplaceAllUsesWith(ValueId from, ValueId to);

 private:
  ValueId AddValue(const std::string& name, TensorType type, ValueKind kind);
  void RebuildIndex();

  std::string name_;
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::map<NodeId, int> schedule_index_;
  NodeId next_node_id_ = 0;
  std::map<std::string, ValueId> value_by_name_;
  std::map<std::string, int> node_names_;
  std::vector<std::pair<std::string, ValueId>> outputs_;
  std::vector<std::pair<ValueId, ValueId>> updates_;
  std::map<ValueId, Tensor> constants_;
};

}  // namespace kiln::ir
