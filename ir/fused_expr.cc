#include "ir/fused_expr.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace kiln::ir::fused {
namespace {

struct OpInfo {
  const char* name;
  Op op;
  Cmp cmp;
};
constexpr OpInfo kOps[] = {
    {"in", Op::kInput, Cmp::kLt},          {"const", Op::kConst, Cmp::kLt},       {"neg", Op::kNeg, Cmp::kLt},
    {"exp", Op::kExp, Cmp::kLt},           {"log", Op::kLog, Cmp::kLt},           {"relu", Op::kRelu, Cmp::kLt},
    {"sigmoid", Op::kSigmoid, Cmp::kLt},   {"tanh", Op::kTanh, Cmp::kLt},         {"abs", Op::kAbs, Cmp::kLt},
    {"sqrt", Op::kSqrt, Cmp::kLt},         {"add", Op::kAdd, Cmp::kLt},           {"sub", Op::kSub, Cmp::kLt},
    {"mul", Op::kMul, Cmp::kLt},           {"div", Op::kDiv, Cmp::kLt},           {"max", Op::kMax, Cmp::kLt},
    {"min", Op::kMin, Cmp::kLt},           {"select_lt", Op::kSelect, Cmp::kLt},  {"select_le", Op::kSelect, Cmp::kLe},
    {"select_gt", Op::kSelect, Cmp::kGt},  {"select_ge", Op::kSelect, Cmp::kGe},  {"select_eq", Op::kSelect, Cmp::kEq},
    {"select_ne", Op::kSelect, Cmp::kNe},
};

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  return w;
}

bool ParseInt(const std::string& s, int64_t& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtoll(s.c_str(), &end, 10);
  return *end == '\0';
}

bool ParseList(const std::string& s, std::vector<int64_t>& out) {
  out.clear();
  if (s.empty()) return true;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    int64_t v;
    if (!ParseInt(item, v)) return false;
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return true;
}

std::string List(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

double Apply(const ExprNode& n, const double* a) {
  switch (n.op) {
    case Op::kNeg: return -a[0];
    case Op::kExp: return std::exp(a[0]);
    case Op::kLog: return std::log(a[0]);
    case Op::kRelu: return a[0] > 0 ? a[0] : 0.0;
    case Op::kSigmoid: return 1.0 / (1.0 + std::exp(-a[0]));
    case Op::kTanh: return std::tanh(a[0]);
    case Op::kAbs: return std::fabs(a[0]);
    case Op::kSqrt: return std::sqrt(a[0]);
    case Op::kAdd: return a[0] + a[1];
    case Op::kSub: return a[0] - a[1];
    case Op::kMul: return a[0] * a[1];
    case Op::kDiv: return a[0] / a[1];
    case Op::kMax: return std::fmax(a[0], a[1]);
    case Op::kMin: return std::fmin(a[0], a[1]);
    case Op::kSelect: {
      bool c = false;
      switch (n.cmp) {
        case Cmp::kLt: c = a[0] < a[1]; break;
        case Cmp::kLe: c = a[0] <= a[1]; break;
        case Cmp::kGt: c = a[0] > a[1]; break;
        case Cmp::kGe: c = a[0] >= a[1]; break;
        case Cmp::kEq: c = a[0] == a[1]; break;
        case Cmp::kNe: c = a[0] != a[1]; break;
      }
      return c ? a[2] : a[3];
    }
    default: return n.value;
  }
}

}  // namespace

int Arity(Op op) {
  switch (op) {
    case Op::kInput:
    case Op::kConst: return 0;
    case Op::kAdd:
    case Op::kSub:
    case Op::kMul:
    case Op::kDiv:
    case Op::kMax:
    case Op::kMin: return 2;
    case Op::kSelect: return 4;
    default: return 1;
  }
}

std::string OpName(Op op, Cmp cmp) {
  for (const OpInfo& i : kOps) {
    if (i.op == op && (op != Op::kSelect || i.cmp == cmp)) return i.name;
  }
  return "?";
}

Shape Expr::OutputShape() const {
  if (reduce == Reduce::kNone) return iter;
  Shape out;
  size_t k = 0;
  for (size_t d = 0; d < iter.size(); ++d) {
    bool reduced = k < axes.size() && axes[k] == static_cast<int64_t>(d);
    if (reduced) ++k;
    if (!reduced) out.push_back(iter[d]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

int Expr::NumReferencedInputs() const {
  int n = 0;
  for (const ExprNode& x : nodes) {
    if (x.op == Op::kInput) n = std::max(n, static_cast<int>(x.input) + 1);
  }
  return n;
}

std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  size_t off = out.size() - std::min(out.size(), in.size());
  for (size_t i = out.size(); i-- > off;) {
    int64_t d = in[i - off];
    strides[i] = d == 1 ? 0 : stride;
    stride *= d;
  }
  return strides;
}

StatusOr<Expr> ParseExpr(std::string_view text, std::vector<Shape> input_shapes) {
  Expr e;
  e.inputs = std::move(input_shapes);
  std::vector<std::string> stmts;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t semi = text.find(';', pos);
    std::string st = Trim(text.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    if (!st.empty()) stmts.push_back(st);
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  auto err = [&](const std::string& st, const std::string& m) {
    return InvalidArgument("fused expression statement \"" + st + "\": " + m);
  };
  if (stmts.empty() || Words(stmts[0]).empty() || Words(stmts[0])[0] != "iter") {
    return InvalidArgument("fused expression must start with \"iter <shape>\": \"" + std::string(text) + "\"");
  }
  for (size_t s = 0; s < stmts.size(); ++s) {
    std::vector<std::string> w = Words(stmts[s]);
    const std::string& st = stmts[s];
    if (s == 0) {
      if (w.size() > 2 || !ParseList(w.size() == 2 ? w[1] : "", e.iter)) return err(st, "bad iteration shape");
      for (int64_t d : e.iter) {
        if (d < 0) return err(st, "negative dim");
      }
      continue;
    }
    if (w[0] == "reduce") {
      if (s + 1 != stmts.size()) return err(st, "reduce must be the last statement");
      if (w.size() < 2 || w.size() > 4) return err(st, "expected reduce sum|mean|max AXES [keepdims]");
      if (w[1] == "sum") e.reduce = Reduce::kSum;
      else if (w[1] == "mean") e.reduce = Reduce::kMean;
      else if (w[1] == "max") e.reduce = Reduce::kMax;
      else return err(st, "unknown reduction " + w[1]);
      size_t next = 2;
      if (w.size() > 2 && w[2] != "keepdims") {
        if (!ParseList(w[2], e.axes)) return err(st, "bad axes");
        next = 3;
      }
      if (w.size() > next) {
        if (w[next] != "keepdims" || w.size() > next + 1) return err(st, "expected keepdims");
        e.keepdims = true;
      }
      for (size_t i = 0; i < e.axes.size(); ++i) {
        if (e.axes[i] < 0 || e.axes[i] >= static_cast<int64_t>(e.iter.size()) || (i && e.axes[i] <= e.axes[i - 1])) {
          return err(st, "axes must be sorted, distinct and in [0, " + std::to_string(e.iter.size()) + ")");
        }
      }
      continue;
    }
    const OpInfo* info = nullptr;
    for (const OpInfo& i : kOps) {
      if (w[0] == i.name) info = &i;
    }
    if (info == nullptr) return err(st, "unknown op " + w[0]);
    ExprNode n;
    n.op = info->op;
    n.cmp = info->cmp;
    if (n.op == Op::kInput) {
      if (w.size() != 2 || !ParseInt(w[1], n.input) || n.input < 0) return err(st, "expected in K");
      if (n.input >= static_cast<int64_t>(e.inputs.size())) {
        return err(st, "input " + std::to_string(n.input) + " has no shape (" + std::to_string(e.inputs.size()) +
                           " inputs)");
      }
      const Shape& in = e.inputs[static_cast<size_t>(n.input)];
      if (in.size() > e.iter.size()) return err(st, "input " + ShapeToString(in) + " has a larger rank than iter");
      for (size_t i = 0; i < in.size(); ++i) {
        int64_t d = e.iter[e.iter.size() - in.size() + i];
        if (in[i] != d && in[i] != 1) {
          return err(st, "input shape " + ShapeToString(in) + " does not broadcast to " + ShapeToString(e.iter));
        }
      }
    } else if (n.op == Op::kConst) {
      char* end = nullptr;
      if (w.size() != 2) return err(st, "expected const X");
      n.value = std::strtod(w[1].c_str(), &end);
      if (*end != '\0') return err(st, "bad number");
    } else {
      if (static_cast<int>(w.size()) != 1 + Arity(n.op)) {
        return err(st, w[0] + " takes " + std::to_string(Arity(n.op)) + " operands");
      }
      for (size_t i = 1; i < w.size(); ++i) {
        int64_t a;
        if (!ParseInt(w[i], a) || a < 0 || a >= static_cast<int64_t>(e.nodes.size())) {
          return err(st, "operand " + w[i] + " is not an earlier value");
        }
        n.args.push_back(static_cast<int>(a));
      }
    }
    e.nodes.push_back(std::move(n));
  }
  if (e.nodes.empty()) return InvalidArgument("fused expression has no value: \"" + std::string(text) + "\"");
  return e;
}

std::string PrintExpr(const Expr& e) {
  std::string s = "iter " + List(e.iter);
  for (const ExprNode& n : e.nodes) {
    s += "; " + OpName(n.op, n.cmp);
    if (n.op == Op::kInput) {
      s += " " + std::to_string(n.input);
    } else if (n.op == Op::kConst) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", n.value);
      s += " " + std::string(buf);
    }
    for (int a : n.args) s += " " + std::to_string(a);
  }
  if (e.reduce != Reduce::kNone) {
    s += std::string("; reduce ") + (e.reduce == Reduce::kSum ? "sum" : e.reduce == Reduce::kMean ? "mean" : "max");
    if (!e.axes.empty()) s += " " + List(e.axes);
    if (e.keepdims) s += " keepdims";
  }
  return s;
}

uint64_t HashExpr(const Expr& e) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(PrintExpr(e));
  for (const Shape& s : e.inputs) mix("|" + List(s));
  return h;
}

std::vector<double> EvaluateExpr(const Expr& e, const std::vector<const std::vector<double>*>& inputs) {
  Shape out_shape = e.OutputShape();
  int64_t out_n = NumElements(out_shape);
  double init = e.reduce == Reduce::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
  std::vector<double> out(static_cast<size_t>(out_n), init);
  std::vector<int64_t> count(static_cast<size_t>(out_n), 0);
  std::vector<std::vector<int64_t>> in_strides;
  for (const Shape& s : e.inputs) in_strides.push_back(BroadcastStrides(s, e.iter));
  // Output strides over the iteration space: 0 along reduced axes.
  std::vector<bool> reduced(e.iter.size(), false);
  for (int64_t a : e.axes) reduced[static_cast<size_t>(a)] = true;
  std::vector<int64_t> out_strides(e.iter.size(), 0);
  int64_t stride = 1;
  for (size_t d = e.iter.size(); d-- > 0;) {
    if (e.reduce != Reduce::kNone && reduced[d]) continue;
    out_strides[d] = stride;
    stride *= e.iter[d];
  }
  int64_t total = NumElements(e.iter);
  std::vector<double> v(e.nodes.size());
  std::vector<int64_t> coord(e.iter.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t rem = i;
    for (size_t d = e.iter.size(); d-- > 0;) {
      coord[d] = rem % e.iter[d];
      rem /= e.iter[d];
    }
    for (size_t k = 0; k < e.nodes.size(); ++k) {
      const ExprNode& n = e.nodes[k];
      if (n.op == Op::kInput) {
        int64_t idx = 0;
        const auto& st = in_strides[static_cast<size_t>(n.input)];
        for (size_t d = 0; d < coord.size(); ++d) idx += coord[d] * st[d];
        v[k] = (*inputs[static_cast<size_t>(n.input)])[static_cast<size_t>(idx)];
        continue;
      }
      double a[4] = {0, 0, 0, 0};
      for (size_t j = 0; j < n.args.size(); ++j) a[j] = v[static_cast<size_t>(n.args[j])];
      v[k] = Apply(n, a);
    }
    int64_t o = 0;
    for (size_t d = 0; d < coord.size(); ++d) o += coord[d] * out_strides[d];
    double x = v.back();
    switch (e.reduce) {
      case Reduce::kNone: out[static_cast<size_t>(o)] = x; break;
      case Reduce::kSum:
      case Reduce::kMean: out[static_cast<size_t>(o)] += x; break;
      case Reduce::kMax: out[static_cast<size_t>(o)] = std::fmax(out[static_cast<size_t>(o)], x); break;
    }
    ++count[static_cast<size_t>(o)];
  }
  if (e.reduce == Reduce::kMean) {
    for (int64_t o = 0; o < out_n; ++o) {
      int64_t c = count[static_cast<size_t>(o)];
      out[static_cast<size_t>(o)] = c ? out[static_cast<size_t>(o)] / static_cast<double>(c)
                                      : std::numeric_limits<double>::quiet_NaN();
    }
  }
  return out;
}

}  // namespace kiln::ir::fused
