#include "ir/text.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "ir/op_registry.h"

namespace kiln::ir {

namespace {
std::string FormatFloat(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}
}  // namespace

std::string PrintGraph(const Graph& g) {
  std::string s = "graph " + g.name() + " {\n";
  for (const Value& v : g.values()) {
    if (v.kind == ValueKind::kIntermediate) continue;
    s += "  " + std::string(ValueKindName(v.kind)) + " %" + v.name + " : " + v.type.ToString();
    if (v.kind == ValueKind::kConstant) {
      const Tensor& t = g.constants().at(v.id);
      s += " = [";
      for (int64_t i = 0; i < t.num_elements(); ++i) {
        if (i) s += ", ";
        s += t.dtype() == DType::kF32 ? FormatFloat(t.f32()[i]) : std::to_string(t.s32()[i]);
      }
      s += "]";
    }
    s += "\n";
  }
  for (const Node& n : g.nodes()) {
    s += "  ";
    for (size_t i = 0; i < n.outputs.size(); ++i) s += (i ? ", %" : "%") + g.value(n.outputs[i]).name;
    s += " = " + n.op + "[" + n.name + "](";
    for (size_t i = 0; i < n.inputs.size(); ++i) s += (i ? ", %" : "%") + g.value(n.inputs[i]).name;
    s += ")";
    if (!n.attrs.map().empty()) s += " " + AttrsToString(n.attrs);
    s += " :";
    for (size_t i = 0; i < n.outputs.size(); ++i) s += (i ? ", " : " ") + g.value(n.outputs[i]).type.ToString();
    s += "\n";
  }
  for (const auto& [name, v] : g.outputs()) s += "  output " + name + " = %" + g.value(v).name + "\n";
  for (const auto& [t, v] : g.updates()) s += "  update %" + g.value(t).name + " <- %" + g.value(v).name + "\n";
  return s + "}\n";
}

namespace {

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; }

class Parser {
 public:
  explicit Parser(std::string_view text) : t_(text) {}

  StatusOr<Graph> Parse() {
    Skip();
    if (!Keyword("graph")) return Err("expected 'graph'");
    std::string gname = Name();
    if (gname.empty()) return Err("expected a graph name");
    Graph g(gname);
    if (!Eat('{')) return Err("expected '{'");
    while (true) {
      Skip();
      if (Eat('}')) break;
      if (pos_ >= t_.size()) return Err("unexpected end of text, expected '}'");
      RETURN_IF_ERROR(Statement(g));
    }
    Skip();
    if (pos_ != t_.size()) return Err("text after the closing '}'");
    return g;
  }

 private:
  Status Statement(Graph& g) {
    size_t save = pos_;
    std::string word = Name();
    if (word == "input" || word == "param" || word == "state" || word == "const") return Argument(g, word);
    if (word == "output") {
      std::string name = Name();
      if (name.empty()) return Err("expected an output name");
      if (g.FindOutput(name)) return Err("duplicate output name '" + name + "'");
      if (!Eat('=')) return Err("expected '=' after output name");
      ASSIGN_OR_RETURN(ValueId v, Ref(g));
      g.AddOutput(name, v);
      return OkStatus();
    }
    if (word == "update") {
      ASSIGN_OR_RETURN(ValueId target, Ref(g));
      if (!Eat('<') || !Eat('-')) return Err("expected '<-'");
      ASSIGN_OR_RETURN(ValueId v, Ref(g));
      g.AddUpdate(target, v);
      return OkStatus();
    }
    pos_ = save;
    return NodeStmt(g);
  }

  Status Argument(Graph& g, const std::string& kind) {
    if (!Eat('%')) return Err("expected '%name'");
    std::string name = Name();
    if (name.empty() || g.FindValue(name)) return Err("missing or duplicate value name '" + name + "'");
    if (!Eat(':')) return Err("expected ':'");
    ASSIGN_OR_RETURN(TensorType type, Type());
    if (kind == "input") g.AddInput(name, type);
    if (kind == "param") g.AddParameter(name, type);
    if (kind == "state") g.AddState(name, type);
    if (kind == "const") {
      if (!Eat('=') || !Eat('[')) return Err("expected '= [' after a constant's type");
      // Every element takes at least one character: a shape claiming more cannot be
      // followed by its elements (and must not allocate first).
      int64_t elements = 1;
      for (int64_t d : type.shape) {
        if (d < 0 || d > static_cast<int64_t>(t_.size())) return Err("constant %" + name + " has a dim out of range");
        elements *= d;
        if (elements > static_cast<int64_t>(t_.size())) return Err("constant %" + name + " has more elements than the text");
      }
      Tensor t(type.dtype, type.shape);
      for (int64_t i = 0; i < t.num_elements(); ++i) {
        if (i && !Eat(',')) return Err("expected ',' between constant elements");
        ASSIGN_OR_RETURN(double v, Number());
        if (type.dtype == DType::kF32) {
          constexpr double kMax = std::numeric_limits<float>::max();
          t.f32()[i] = v > kMax    ? std::numeric_limits<float>::infinity()
                       : v < -kMax ? -std::numeric_limits<float>::infinity()
                                   : static_cast<float>(v);
        } else {
          if (!(v >= -2147483648.0 && v <= 2147483647.0) || v != std::floor(v)) {
            return Err("constant %" + name + ": s32 element " + std::to_string(v) + " is not a 32-bit integer");
          }
          t.s32()[i] = static_cast<int32_t>(v);
        }
      }
      if (!Eat(']')) return Err("constant %" + name + " has more elements than its shape");
      ValueId id = g.AddConstant(name, std::move(t));
      g.mutable_value(id).type.layout = type.layout;
    }
    return OkStatus();
  }

  Status NodeStmt(Graph& g) {
    std::vector<std::string> outs;
    do {
      if (!Eat('%')) return Err("expected a statement");
      outs.push_back(Name());
    } while (Eat(','));
    if (!Eat('=')) return Err("expected '='");
    std::string op = Name();
    if (!FindOp(op)) return Err("unknown op '" + op + "'");
    if (!Eat('[')) return Err("expected '[node name]' after the op");
    std::string nname = Name();
    if (nname.empty()) return Err("expected a node name in '[...]'");
    if (g.HasNodeName(nname)) return Err("duplicate node name '" + nname + "'");
    if (!Eat(']') || !Eat('(')) return Err("expected '](' after the node name");
    std::vector<ValueId> inputs;
    Skip();
    if (!Eat(')')) {
      do {
        ASSIGN_OR_RETURN(ValueId v, Ref(g));
        inputs.push_back(v);
      } while (Eat(','));
      if (!Eat(')')) return Err("expected ')'");
    }
    Attrs attrs;
    if (Eat('{')) {
      Skip();
      if (!Eat('}')) {
        do {
          std::string key = Name();
          if (!Eat('=')) return Err("expected '=' after attribute " + key);
          ASSIGN_OR_RETURN(AttrValue v, Attr());
          attrs.Set(key, v);
        } while (Eat(','));
        if (!Eat('}')) return Err("expected '}'");
      }
    }
    if (!Eat(':')) return Err("expected ':' before the output types");
    std::vector<TensorType> types;
    do {
      ASSIGN_OR_RETURN(TensorType t, Type());
      types.push_back(t);
    } while (Eat(','));
    if (types.size() != outs.size()) return Err("node [" + nname + "] names " + std::to_string(outs.size()) +
                                                " outputs but lists " + std::to_string(types.size()) + " types");
    Node probe;
    probe.op = op;
    probe.name = nname;
    probe.inputs = inputs;
    probe.attrs = attrs;
    std::vector<TensorType> in_types;
    for (ValueId v : inputs) in_types.push_back(g.value(v).type);
    auto inferred = InferNodeTypes(probe, in_types);
    if (!inferred.ok()) return Err(inferred.status().message());
    if (*inferred != types) return Err(op + " \"" + nname + "\": stored output types disagree with shape inference");
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].empty()) return Err("expected an output value name after '%'");
      if (g.FindValue(outs[i]) || std::find(outs.begin(), outs.begin() + static_cast<long>(i), outs[i]) !=
                                      outs.begin() + static_cast<long>(i)) {
        return Err("duplicate value name '" + outs[i] + "'");
      }
    }
    g.AppendNode(op, nname, inputs, attrs, types, outs);
    return OkStatus();
  }

  StatusOr<TensorType> Type() {
    Skip();
    TensorType t;
    std::string dt;
    while (pos_ < t_.size() && std::isalnum(static_cast<unsigned char>(t_[pos_]))) dt += t_[pos_++];
    ASSIGN_OR_RETURN(t.dtype, ParseDType(dt));
    ASSIGN_OR_RETURN(t.shape, IntList());
    while (pos_ < t_.size() && std::isalpha(static_cast<unsigned char>(t_[pos_]))) t.layout += t_[pos_++];
    return t;
  }

  StatusOr<std::vector<int64_t>> IntList() {
    if (!Eat('[')) return Err("expected '['");
    std::vector<int64_t> v;
    Skip();
    if (Eat(']')) return v;
    do {
      ASSIGN_OR_RETURN(int64_t d, Integer());
      v.push_back(d);
    } while (Eat(','));
    if (!Eat(']')) return Err("expected ']'");
    return v;
  }

  // The characters of a number literal ("-3", "1e-08", "nan"), after any whitespace.
  std::string NumberLiteral() {
    Skip();
    std::string lit;
    while (pos_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[pos_])) || t_[pos_] == '.' ||
                                t_[pos_] == '-' || t_[pos_] == '+')) {
      lit += t_[pos_++];
    }
    return lit;
  }

  // `lit` as a decimal integer that fits int64; `what` names it in errors.
  StatusOr<int64_t> ParseInteger(const std::string& lit, const std::string& what) const {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(lit.c_str(), &end, 10);
    if (lit.empty() || end != lit.c_str() + lit.size()) return Err("expected an integer, got '" + lit + "'");
    if (errno == ERANGE) return Err(what + " '" + lit + "' is out of range");
    return static_cast<int64_t>(v);
  }

  StatusOr<double> ParseDouble(const std::string& lit) const {
    char* end = nullptr;
    double d = std::strtod(lit.c_str(), &end);
    if (lit.empty() || end != lit.c_str() + lit.size()) return Err("expected a number, got '" + lit + "'");
    return d;
  }

  // A decimal integer that fits int64.
  StatusOr<int64_t> Integer() { return ParseInteger(NumberLiteral(), "integer"); }

  StatusOr<AttrValue> Attr() {
    Skip();
    if (pos_ < t_.size() && t_[pos_] == '[') {
      ASSIGN_OR_RETURN(auto v, IntList());
      return AttrValue(v);
    }
    if (Eat('"')) {
      std::string s;
      while (pos_ < t_.size() && t_[pos_] != '"') s += t_[pos_++];
      if (!Eat('"')) return Err("unterminated string");
      return AttrValue(s);
    }
    std::string lit = NumberLiteral();
    ASSIGN_OR_RETURN(double d, ParseDouble(lit));
    if (lit.find_first_of(".eEnNiI") != std::string::npos) return AttrValue(d);
    ASSIGN_OR_RETURN(int64_t v, ParseInteger(lit, "integer attribute"));
    return AttrValue(v);
  }

  StatusOr<double> Number() { return ParseDouble(NumberLiteral()); }

  StatusOr<ValueId> Ref(const Graph& g) {
    if (!Eat('%')) return Err("expected '%value'");
    std::string name = Name();
    auto v = g.FindValue(name);
    if (!v) return Err("undefined value %" + name);
    return *v;
  }

  std::string Name() {
    Skip();
    std::string s;
    while (pos_ < t_.size() && IsNameChar(t_[pos_])) s += t_[pos_++];
    return s;
  }
  bool Keyword(std::string_view w) {
    Skip();
    if (t_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void Skip() {
    while (pos_ < t_.size()) {
      if (std::isspace(static_cast<unsigned char>(t_[pos_]))) {
        ++pos_;
      } else if (t_[pos_] == '#') {
        while (pos_ < t_.size() && t_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  Status Err(const std::string& m) const {
    int line = 1;
    for (size_t i = 0; i < pos_ && i < t_.size(); ++i) line += t_[i] == '\n';
    return InvalidArgument("IR text line " + std::to_string(line) + ": " + m);
  }

  std::string_view t_;
  size_t pos_ = 0;
};

}  // namespace

StatusOr<Graph> ParseGraph(std::string_view text) { return Parser(text).Parse(); }

}  // namespace kiln::ir
