// one_hot: integer indices to one-hot rows, as MXNet's nd.one_hot(indices, depth, on_value,
// off_value) (GLUON_SEMANTICS.md section 9; mxnet/src/operator/tensor/indexing_op.h
// one_hot_forward):
//   indices N [N] s32  ->  dst NC [N, depth] f32
//   dst[n, c] = on_value if c == indices[n] else off_value
// Attributes: depth (int, >= 1), on_value (float, default 1), off_value (float, default 0).
// An index outside [0, depth) (negative or too large) gives a row of off_value only, exactly
// as MXNet's kernel, which writes on_value only when 0 <= index < depth; it is not an error.
// (kiln takes rank-1 s32 indices; MXNet accepts any rank and float indices, truncated.)
// No gradient: the only input is an integer tensor, which is never differentiated, so the op
// has no grad rule; autodiff never asks for one unless a caller differentiates w.r.t. the
// indices themselves, which it refuses naming the node.
#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& OneHotDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "one_hot";
    d.batch_rule = BatchRule::kRowWise;
    d.input_names = {"indices"};
    d.output_names = {"dst"};
    d.int_attrs = {"depth"};
    d.float_attrs = {"on_value", "off_value"};
    d.verify_attrs = [](const InferCtx& c) -> Status {
      if (!c.attrs().Has("depth")) return c.Error("missing attribute depth");
      if (c.attrs().GetInt("depth") < 1) {
        return c.Error("depth=" + std::to_string(c.attrs().GetInt("depth")) + " must be >= 1");
      }
      return OkStatus();
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 1));
      RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kS32));
      return std::vector<TensorType>{{DType::kF32, {c.input(0).shape[0], c.attrs().GetInt("depth")}, "NC"}};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& idx = *in[0];
      int64_t depth = node.attrs.GetInt("depth");
      double on = node.attrs.GetFloat("on_value", 1.0), off = node.attrs.GetFloat("off_value", 0.0);
      for (int64_t n = 0; n < idx.size(); ++n) {
        for (int64_t c = 0; c < depth; ++c) out[0][n * depth + c] = off;
        double i = idx[n];
        if (i >= 0 && i < static_cast<double>(depth)) out[0][n * depth + static_cast<int64_t>(i)] = on;
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
