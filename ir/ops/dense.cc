// dense (fully connected / inner product) and its backward ops.
//   dst[n,m] = bias[m] + sum_k src[n,k] * weights[m,k]      src NC [N,K], weights OI [M,K]
// The front end flattens higher-rank inputs first (Gluon Dense(flatten=True)).
// Source: MXNet FullyConnected (GLUON_SEMANTICS.md section 2); oneDNN "Inner Product".
#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& DenseDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "dense";
    d.batch_rule = BatchRule::kPerSampleData;
    d.input_names = {"src", "weights", "bias"};
    d.output_names = {"dst"};
    d.min_inputs = 2;
    d.string_attrs = {"activation"};  // fused by passes/fusion.h: dst = act(dense(src))
    d.float_attrs = {"activation_min", "activation_max"};  // activation "clip"
    d.verify_attrs = ops::CheckFusedActivation;
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 2));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 2));
      for (int i = 0; i < c.num_inputs(); ++i) RETURN_IF_ERROR(ops::CheckDType(c, i, DType::kF32));
      const Shape& src = c.input(0).shape;
      const Shape& wei = c.input(1).shape;
      if (src[1] != wei[1]) {
        return c.Error("src has K=" + std::to_string(src[1]) + " features but weights expect K=" +
                       std::to_string(wei[1]));
      }
      if (c.num_inputs() == 3 && (c.input(2).rank() != 1 || c.input(2).shape[0] != wei[0])) {
        return c.Error("bias must have shape [M]=[" + std::to_string(wei[0]) + "]");
      }
      return std::vector<TensorType>{{DType::kF32, {src[0], wei[0]}, "NC"}};
    };
    d.grad = [](GradCtx& g) -> Status {
      RETURN_IF_ERROR(ops::NoGradForFused("dense", g.attrs()));
      ValueId dy = g.OutputGrad(0);
      if (g.NeedsGrad(0)) {
        ASSIGN_OR_RETURN(ValueId dx, g.Emit1("dense_backward_data", {dy, g.Input(1)}, {}, "diff_src"));
        g.SetInputGrad(0, dx);
      }
      bool bias = g.num_inputs() == 3;
      if (g.NeedsGrad(1) || (bias && g.NeedsGrad(2))) {
        ASSIGN_OR_RETURN(auto dw, g.Emit("dense_backward_weights", {g.Input(0), dy},
                                         Attrs{{"with_bias", int64_t{bias ? 1 : 0}}}, "diff_weights"));
        g.SetInputGrad(1, dw[0]);
        if (bias) g.SetInputGrad(2, dw[1]);
      }
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      const RefTensor& wei = *in[1];
      int64_t n = src.shape[0], k = src.shape[1], m = wei.shape[0];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          double s = in.size() == 3 ? (*in[2])[j] : 0.0;
          for (int64_t l = 0; l < k; ++l) s += src[i * k + l] * wei[j * k + l];
          out[0][i * m + j] = s;
        }
      ops::ApplyFusedActivation(node.attrs, out[0]);
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// diff_src [N,K] = diff_dst [N,M] x weights [M,K].
const OpDef& DenseBackwardDataDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "dense_backward_data";
    d.input_names = {"diff_dst", "weights"};
    d.output_names = {"diff_src"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 2));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 2));
      if (c.input(0).shape[1] != c.input(1).shape[0]) return c.Error("diff_dst M does not match weights M");
      return std::vector<TensorType>{{DType::kF32, {c.input(0).shape[0], c.input(1).shape[1]}, "NC"}};
    };
    d.reference = [](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& dy = *in[0];
      const RefTensor& wei = *in[1];
      int64_t n = dy.shape[0], m = dy.shape[1], k = wei.shape[1];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j)
          for (int64_t l = 0; l < k; ++l) out[0][i * k + l] += dy[i * m + j] * wei[j * k + l];
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// diff_weights [M,K] = diff_dst^T [M,N] x src [N,K]; diff_bias [M] = sum_n diff_dst (with_bias=1).
const OpDef& DenseBackwardWeightsDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "dense_backward_weights";
    d.input_names = {"src", "diff_dst"};
    d.output_names = {"diff_weights", "diff_bias"};
    d.int_attrs = {"with_bias"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 2));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 2));
      if (c.input(0).shape[0] != c.input(1).shape[0]) return c.Error("src N does not match diff_dst N");
      int64_t m = c.input(1).shape[1];
      std::vector<TensorType> out{{DType::kF32, {m, c.input(0).shape[1]}, "OI"}};
      if (c.attrs().GetInt("with_bias")) out.push_back({DType::kF32, {m}, "C"});
      return out;
    };
    d.reference = [](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      const RefTensor& dy = *in[1];
      int64_t n = src.shape[0], k = src.shape[1], m = dy.shape[1];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          for (int64_t l = 0; l < k; ++l) out[0][j * k + l] += dy[i * m + j] * src[i * k + l];
          if (out.size() == 2) out[1][j] += dy[i * m + j];
        }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
