// fused_elementwise: a chain of elementwise ops (and an optional terminal reduction) fused
// into one node by passes/elementwise_fusion.h. Attributes:
//   expr   (string) the kernel IR text (ir/fused_expr.h), e.g.
//          "iter 64,10; in 0; in 1; const 0; select_gt 1 2 0 2; reduce sum 0"
//   layout (string) the output's layout name (that of the value the fused node replaces)
// Inputs src0..src15: dense f32, input k is `in k` of the expression (broadcast to the
// iteration shape). Output: dst, shape expr.OutputShape(). No gradient rule: fusion runs
// after autodiff. The reference kernel is ir::fused::EvaluateExpr (double precision).
#include "ir/fused_expr.h"
#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& FusedElementwiseDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "fused_elementwise";
    d.batch_rule = BatchRule::kBroadcasting;
    for (int i = 0; i < 16; ++i) d.input_names.push_back("src" + std::to_string(i));
    d.output_names = {"dst"};
    d.min_inputs = 1;
    d.string_attrs = {"expr", "layout"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      std::vector<Shape> shapes;
      for (int i = 0; i < c.num_inputs(); ++i) {
        RETURN_IF_ERROR(ops::CheckDType(c, i, DType::kF32));
        shapes.push_back(c.input(i).shape);
      }
      auto e = fused::ParseExpr(c.attrs().GetString("expr"), shapes);
      if (!e.ok()) return c.Error(e.status().message());
      if (e->NumReferencedInputs() != c.num_inputs()) {
        return c.Error("the expression reads " + std::to_string(e->NumReferencedInputs()) + " inputs");
      }
      return std::vector<TensorType>{{DType::kF32, e->OutputShape(), c.attrs().GetString("layout")}};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      std::vector<Shape> shapes;
      std::vector<const std::vector<double>*> data;
      for (const RefTensor* t : in) {
        shapes.push_back(t->shape);
        data.push_back(&t->data);
      }
      ASSIGN_OR_RETURN(fused::Expr e, fused::ParseExpr(node.attrs.GetString("expr"), shapes));
      out[0].data = fused::EvaluateExpr(e, data);
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
