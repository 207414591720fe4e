#include "ir/ops/op_util.h"

#include <cmath>
#include <cstdio>

namespace kiln::ir::ops {

Status CheckRank(const InferCtx& c, int i, int64_t rank) {
  if (c.input(i).rank() != rank) {
    const OpDef* def = FindOp(c.node().op);
    std::string operand = def && i < static_cast<int>(def->input_names.size()) ? def->input_names[static_cast<size_t>(i)]
                                                                                  : "input" + std::to_string(i);
    return c.Error(operand + " must have rank " + std::to_string(rank) + ", got rank " +
                   std::to_string(c.input(i).rank()));
  }
  return OkStatus();
}

Status CheckDType(const InferCtx& c, int i, DType dtype) {
  if (c.input(i).dtype != dtype) {
    const OpDef* def = FindOp(c.node().op);
    std::string operand = def && i < static_cast<int>(def->input_names.size()) ? def->input_names[static_cast<size_t>(i)]
                                                                                  : "input" + std::to_string(i);
    return c.Error(operand + " must be " + std::string(DTypeName(dtype)) + ", got " +
                   std::string(DTypeName(c.input(i).dtype)));
  }
  return OkStatus();
}

Status CheckIntList(const InferCtx& c, const std::string& key, size_t size, int64_t min) {
  if (!c.attrs().Has(key)) return c.Error("missing attribute " + key);
  std::vector<int64_t> v = c.attrs().GetInts(key);
  if (v.size() != size) {
    return c.Error(key + " must have " + std::to_string(size) + " values (H, W), got " + ShapeToString(v));
  }
  for (int64_t x : v) {
    if (x < min) return c.Error(key + "=" + ShapeToString(v) + " must be >= " + std::to_string(min));
  }
  return OkStatus();
}

StatusOr<Shape> BroadcastShapes(const InferCtx& c, const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return c.Error("shapes cannot be broadcast together: dim " + std::to_string(i) + " is " + std::to_string(da) +
                     " vs " + std::to_string(db));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> Strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

int64_t BroadcastIndex(int64_t out_index, const Shape& out_shape, const Shape& in_shape) {
  int64_t in_index = 0, in_stride = 1;
  size_t off = out_shape.size() - in_shape.size();
  for (size_t i = out_shape.size(); i-- > 0;) {
    int64_t coord = out_index % out_shape[i];
    out_index /= out_shape[i];
    if (i >= off) {
      int64_t d = in_shape[i - off];
      if (d != 1) in_index += coord * in_stride;
      in_stride *= d;
    }
  }
  return in_index;
}

int64_t NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < rank ? axis : -1;
}

Status CheckFusedActivation(const InferCtx& c) {
  std::string act = c.attrs().GetString("activation", "");
  if (act == "clip") {
    double lo = c.attrs().GetFloat("activation_min", 0), hi = c.attrs().GetFloat("activation_max", 6);
    if (!(lo < hi)) return c.Error("clip activation needs activation_min < activation_max");
    return OkStatus();
  }
  if (act.empty() || act == "relu" || act == "sigmoid" || act == "tanh") return OkStatus();
  return c.Error("activation must be relu, sigmoid, tanh or clip, got \"" + act + "\"");
}

void ApplyFusedActivation(const Attrs& attrs, RefTensor& dst) {
  std::string act = attrs.GetString("activation", "");
  const double lo = attrs.GetFloat("activation_min", 0), hi = attrs.GetFloat("activation_max", 6);
  for (int64_t i = 0; i < dst.size(); ++i) {
    double& x = dst[i];
    if (act == "clip") {
      x = std::min(std::max(x, lo), hi);
    } else if (act == "relu") {
      x = x > 0 ? x : 0;
    } else if (act == "sigmoid") {
      x = 1 / (1 + std::exp(-x));
    } else if (act == "tanh") {
      x = std::tanh(x);
    }
  }
}

Status NoGradForFused(const std::string& op, const Attrs& attrs) {
  if (attrs.GetString("activation", "").empty()) return OkStatus();
  return Unimplemented(op + " with a fused activation has no gradient rule: run fusion after autodiff");
}

int EmitConst(ElementwiseEmitter& e, double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "const %.17g", v);
  return e.Emit(buf);
}

}  // namespace kiln::ir::ops
