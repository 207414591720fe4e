// softmax_cross_entropy: per-sample loss against integer class labels, as Gluon's
// SoftmaxCrossEntropyLoss(sparse_label=True) returns it (GLUON_SEMANTICS.md section 3):
//   logits NC [N,C] f32, label N [N] s32  ->  loss N [N] f32
//   loss[n] = -log_softmax(logits[n])[label[n]]
// The batch mean is taken by Trainer.step(batch_size) (rescale 1/N) or by reduce_mean.
// Unlike MXNet's pick(mode='clip'), a label outside [0, C) is an error, not clamped.
// softmax_cross_entropy_backward: diff_logits[n,c] = diff_loss[n] * (softmax[n,c] - [c == label[n]]).
#include <cmath>
#include <limits>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

Status CheckLabels(const Node& node, const RefTensor& label, int64_t classes) {
  for (int64_t n = 0; n < label.size(); ++n) {
    double l = label[n];
    if (!(l >= 0 && l < static_cast<double>(classes))) {
      return InvalidArgument(node.op + " \"" + node.name + "\": label " + std::to_string(l) + " of sample " +
                             std::to_string(n) + " is outside [0, " + std::to_string(classes) + ")");
    }
  }
  return OkStatus();
}

// Writes softmax of row n into p.
void SoftmaxRow(const RefTensor& x, int64_t n, int64_t c, std::vector<double>& p) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < c; ++j) m = std::max(m, x[n * c + j]);
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += std::exp(x[n * c + j] - m);
  p.resize(static_cast<size_t>(c));
  for (int64_t j = 0; j < c; ++j) p[static_cast<size_t>(j)] = std::exp(x[n * c + j] - m) / s;
}

Status CheckLossInputs(const InferCtx& c, int logits, int label) {
  RETURN_IF_ERROR(ops::CheckRank(c, logits, 2));
  RETURN_IF_ERROR(ops::CheckRank(c, label, 1));
  RETURN_IF_ERROR(ops::CheckDType(c, logits, DType::kF32));
  RETURN_IF_ERROR(ops::CheckDType(c, label, DType::kS32));
  if (c.input(label).shape[0] != c.input(logits).shape[0]) return c.Error("logits and label disagree on the batch size N");
  return OkStatus();
}

}  // namespace

const OpDef& SoftmaxCrossEntropyDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "softmax_cross_entropy";
    d.batch_rule = BatchRule::kRowWise;
    d.input_names = {"logits", "label"};
    d.output_names = {"loss"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(CheckLossInputs(c, 0, 1));
      return std::vector<TensorType>{{DType::kF32, {c.input(0).shape[0]}, "N"}};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      ASSIGN_OR_RETURN(ValueId dx, g.Emit1("softmax_cross_entropy_backward", {g.OutputGrad(0), g.Input(0), g.Input(1)},
                                           {}, "diff_logits"));
      g.SetInputGrad(0, dx);
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& x = *in[0];
      int64_t n = x.shape[0], c = x.shape[1];
      RETURN_IF_ERROR(CheckLabels(node, *in[1], c));
      std::vector<double> p;
      for (int64_t i = 0; i < n; ++i) {
        SoftmaxRow(x, i, c, p);
        out[0][i] = -std::log(p[static_cast<size_t>((*in[1])[i])]);
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& SoftmaxCrossEntropyBackwardDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "softmax_cross_entropy_backward";
    d.input_names = {"diff_loss", "logits", "label"};
    d.output_names = {"diff_logits"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(CheckLossInputs(c, 1, 2));
      if (c.input(0).shape != Shape{c.input(1).shape[0]}) return c.Error("diff_loss must have shape [N]");
      return std::vector<TensorType>{c.input(1)};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& x = *in[1];
      int64_t n = x.shape[0], c = x.shape[1];
      RETURN_IF_ERROR(CheckLabels(node, *in[2], c));
      std::vector<double> p;
      for (int64_t i = 0; i < n; ++i) {
        SoftmaxRow(x, i, c, p);
        int64_t label = static_cast<int64_t>((*in[2])[i]);
        for (int64_t j = 0; j < c; ++j) {
          out[0][i * c + j] = (*in[0])[i] * (p[static_cast<size_t>(j)] - (j == label ? 1.0 : 0.0));
        }
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// argmax along axis 1 of NC [N,C] -> s32 [N]; ties go to the first maximum. Not differentiable.
const OpDef& ArgmaxDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "argmax";
    d.batch_rule = BatchRule::kRowWise;
    d.input_names = {"src"};
    d.output_names = {"dst"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 2));
      return std::vector<TensorType>{{DType::kS32, {c.input(0).shape[0]}, "N"}};
    };
    d.reference = [](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& x = *in[0];
      int64_t n = x.shape[0], c = x.shape[1];
      for (int64_t i = 0; i < n; ++i) {
        int64_t best = 0;
        for (int64_t j = 1; j < c; ++j) {
          if (x[i * c + j] > x[i * c + best]) best = j;
        }
        out[0][i] = static_cast<double>(best);
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// fill: a constant f32 tensor of attribute `shape`, every element `value` (no inputs).
const OpDef& FillDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "fill";
    d.elementwise = [](ElementwiseEmitter& e, const Node& n, const std::vector<int>&) {
      return ops::EmitConst(e, n.attrs.GetFloat("value"));
    };
    d.output_names = {"dst"};
    d.ints_attrs = {"shape"};
    d.float_attrs = {"value"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      Shape s = c.attrs().GetInts("shape");
      for (int64_t x : s) {
        if (x < 0) return c.Error("shape " + ShapeToString(s) + " has a negative dim");
      }
      return std::vector<TensorType>{{DType::kF32, s, s.empty() ? "" : DefaultLayout(static_cast<int64_t>(s.size()))}};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>&, std::vector<RefTensor>& out) {
      for (double& v : out[0].data) v = node.attrs.GetFloat("value");
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
