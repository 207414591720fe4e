#include "runtime/step_kinds.h"

#include <deque>
#include <string>

namespace kiln::runtime {
namespace {

constexpr OperandDType kS32 = OperandDType::kS32;
constexpr OperandDType kAny = OperandDType::kSameAsInput0;
constexpr AttrType kInt = AttrType::kInt;
constexpr AttrType kInts = AttrType::kInts;
constexpr AttrType kFloat = AttrType::kFloat;
constexpr AttrType kString = AttrType::kString;

// Attribute sets shared by several kinds.
std::vector<AttrInfo> ConvAttrs(std::vector<AttrInfo> extra = {}) {
  std::vector<AttrInfo> a = {{"stride", kInts, "[1,1]"},
                             {"padding_begin", kInts, "[0,0]"},
                             {"padding_end", kInts, "[0,0]"},
                             {"dilation", kInts, "[1,1]"},
                             {"groups", kInt, "1"}};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
std::vector<AttrInfo> PoolAttrs(std::vector<AttrInfo> extra = {}) {
  std::vector<AttrInfo> a = {{"kind", kString, "max"},
                             {"kernel", kInts},
                             {"stride", kInts},
                             {"padding_begin", kInts, "[0,0]"},
                             {"padding_end", kInts, "[0,0]"},
                             {"count_include_pad", kInt, "1"}};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
// conv2d and dense: relu | sigmoid | tanh | clip (to [activation_min, activation_max]).
const std::vector<AttrInfo> kActivationAttr = {
    {"activation", kString, ""}, {"activation_min", kFloat, "0"}, {"activation_max", kFloat, "6"}};
const std::vector<AttrInfo> kSgdAttrs = {
    {"wd", kFloat, "0"}, {"momentum", kFloat, "0"}, {"clip_gradient", kFloat, "-1"}};
const std::vector<AttrInfo> kAdamAttrs = {{"beta1", kFloat, "0.9"},
                                          {"beta2", kFloat, "0.999"},
                                          {"epsilon", kFloat, "1e-08"},
                                          {"wd", kFloat, "0"},
                                          {"clip_gradient", kFloat, "-1"}};

// Operands "<prefix>0" .. "<prefix>{n-1}"; the names live in a deque, whose elements never
// move, as long as the table.
std::vector<OperandInfo> Numbered(const char* prefix, int n, OperandDType dtype) {
  static auto* names = new std::deque<std::string>();
  std::vector<OperandInfo> out;
  for (int i = 0; i < n; ++i) {
    names->push_back(std::string(prefix) + std::to_string(i));
    out.push_back({names->back().c_str(), dtype});
  }
  return out;
}

StepKindInfo Eltwise(std::string_view kind) {
  return {kind, {{"src"}}, {{"dst"}}, 1, {}, {{0, 0}}, {}, LayoutRule::kFollowSource};
}
StepKindInfo EltwiseBackward(std::string_view kind) {
  return {kind, {{"diff_dst"}, {"dst"}}, {{"diff_src"}}, 2, {}, {{0, 0}}, {}, LayoutRule::kFollowSource};
}
// The activations whose backward reads src (ir/ops/activation_src.cc), with their float
// attributes and defaults.
StepKindInfo EltwiseWithAttrs(std::string_view kind, std::vector<AttrInfo> attrs) {
  return {kind, {{"src"}}, {{"dst"}}, 1, std::move(attrs), {{0, 0}}, {}, LayoutRule::kFollowSource};
}
StepKindInfo EltwiseBackwardFromSrc(std::string_view kind, std::vector<AttrInfo> attrs) {
  return {kind, {{"diff_dst"}, {"src"}}, {{"diff_src"}}, 2, std::move(attrs), {{0, 0}}, {}, LayoutRule::kFollowSource};
}

// The table. One line per kind; a new kind adds its line here (docs/architecture.md).
std::vector<StepKindInfo> MakeTable() {
  using L = LayoutRule;
  return {
      {"conv2d", {{"src"}, {"weights"}, {"bias"}, {"sum"}}, {{"dst"}}, 2, ConvAttrs(kActivationAttr), {}, {},
       L::kTargetChoice},
      {"conv2d_backward_data", {{"diff_dst"}, {"weights"}}, {{"diff_src"}}, 2, ConvAttrs({{"src_shape", kInts}}), {},
       {}, L::kTargetChoice},
      {"conv2d_backward_weights", {{"src"}, {"diff_dst"}}, {{"diff_weights"}, {"diff_bias"}}, 2,
       ConvAttrs({{"kernel", kInts}, {"with_bias", kInt, "0"}}), {}, {}, L::kTargetChoice},
      {"pool2d", {{"src"}}, {{"dst"}, {"workspace", OperandDType::kF32, /*opaque=*/true}}, 1, PoolAttrs({{"with_workspace", kInt, "0"}}), {}, {},
       L::kFollowSource},
      {"pool2d_backward", {{"diff_dst"}, {"src"}, {"workspace", OperandDType::kF32, /*opaque=*/true}}, {{"diff_src"}}, 2,
       PoolAttrs({{"activation", kString, ""}}), {}, {}, L::kFollowSource},
      {"dense", {{"src"}, {"weights"}, {"bias"}}, {{"dst"}}, 2, kActivationAttr, {}, {}, L::kDense},
      {"dense_backward_data", {{"diff_dst"}, {"weights"}}, {{"diff_src"}}, 2, {}, {}, {}, L::kDense},
      {"dense_backward_weights", {{"src"}, {"diff_dst"}}, {{"diff_weights"}, {"diff_bias"}}, 2,
       {{"with_bias", kInt, "0"}}, {}, {}, L::kDense},
      {"batch_norm", {{"src"}, {"scale"}, {"shift"}, {"mean"}, {"variance"}}, {{"dst"}}, 5,
       {{"epsilon", kFloat, "1e-05"}, {"activation", kString, ""}}, {{0, 0}}, {}, L::kFollowSourceData},
      {"batch_norm_training", {{"src"}, {"scale"}, {"shift"}}, {{"dst"}, {"mean"}, {"variance"}}, 3,
       {{"epsilon", kFloat, "1e-05"}}, {}, {}, L::kFollowSourceData},
      {"batch_norm_backward", {{"diff_dst"}, {"src"}, {"scale"}, {"shift"}, {"mean"}, {"variance"}},
       {{"diff_src"}, {"diff_scale"}, {"diff_shift"}}, 6, {{"epsilon", kFloat, "1e-05"}, {"use_global_stats", kInt, "0"}},
       {{0, 0}}, {}, L::kFollowSourceData},
      {"moving_average", {{"average"}, {"value"}}, {{"average_out"}}, 2, {{"momentum", kFloat, "0.9"}}, {{0, 0}}, {},
       L::kDense},
      {"dropout", {{"src"}, {"seed", kS32}}, {{"dst"}}, 2,
       {{"rate", kFloat, "0.5"}, {"salt", kInt, "0"}, {"axes", kInts, "[]"}}, {{0, 0}}, {}, L::kDense},
      Eltwise("relu"),
      EltwiseWithAttrs("elu", {{"alpha", kFloat, "1"}}),
      EltwiseBackwardFromSrc("elu_backward", {{"alpha", kFloat, "1"}}),
      EltwiseWithAttrs("selu", {}),
      EltwiseBackwardFromSrc("selu_backward", {}),
      EltwiseWithAttrs("gelu", {}),
      EltwiseBackwardFromSrc("gelu_backward", {}),
      EltwiseWithAttrs("silu", {{"beta", kFloat, "1"}}),
      EltwiseBackwardFromSrc("silu_backward", {{"beta", kFloat, "1"}}),
      EltwiseWithAttrs("hard_sigmoid", {{"alpha", kFloat, "0.2"}, {"beta", kFloat, "0.5"}}),
      EltwiseBackwardFromSrc("hard_sigmoid_backward", {{"alpha", kFloat, "0.2"}, {"beta", kFloat, "0.5"}}),
      EltwiseWithAttrs("hard_swish", {}),
      EltwiseBackwardFromSrc("hard_swish_backward", {}),
      EltwiseWithAttrs("softplus", {}),
      EltwiseBackwardFromSrc("softplus_backward", {}),
      // softsign: native loops on dense operands (oneDNN 2.6 has no soft_sign eltwise).
      {"softsign", {{"src"}}, {{"dst"}}, 1, {}, {{0, 0}}, {}, L::kDense},
      {"softsign_backward", {{"diff_dst"}, {"src"}}, {{"diff_src"}}, 2, {}, {{0, 0}}, {}, L::kDense},
      EltwiseWithAttrs("clip", {{"a_min", kFloat, "0"}, {"a_max", kFloat, "6"}}),
      EltwiseBackwardFromSrc("clip_backward", {{"a_min", kFloat, "0"}, {"a_max", kFloat, "6"}}),
      EltwiseWithAttrs("exp", {}),
      EltwiseBackwardFromSrc("exp_backward", {}),
      EltwiseWithAttrs("log", {}),
      EltwiseBackwardFromSrc("log_backward", {}),
      EltwiseWithAttrs("sqrt", {}),
      EltwiseBackwardFromSrc("sqrt_backward", {}),
      EltwiseWithAttrs("abs", {}),
      EltwiseBackwardFromSrc("abs_backward", {}),
      EltwiseWithAttrs("neg", {}),
      EltwiseBackwardFromSrc("neg_backward", {}),
      Eltwise("sigmoid"),
      Eltwise("tanh"),
      EltwiseBackward("relu_backward"),
      EltwiseBackward("sigmoid_backward"),
      EltwiseBackward("tanh_backward"),
      {"leaky_relu", {{"src"}}, {{"dst"}}, 1, {{"alpha", kFloat, "0.01"}}, {{0, 0}}, {}, L::kFollowSource},
      {"leaky_relu_backward", {{"diff_dst"}, {"dst"}}, {{"diff_src"}}, 2, {{"alpha", kFloat, "0.01"}}, {{0, 0}}, {},
       L::kFollowSource},
      {"add", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kFollowSourceSameDims},
      {"mul", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kFollowSourceSameDims},
      {"sub", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kFollowSourceSameDims},
      {"div", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kDense},
      {"maximum", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kFollowSourceSameDims},
      {"minimum", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kFollowSourceSameDims},
      {"greater_equal", {{"src0"}, {"src1"}}, {{"dst"}}, 2, {}, {}, {}, L::kDense},
      {"reduce_sum", {{"src"}}, {{"dst"}}, 1, {{"axes", kInts}, {"keepdims", kInt, "0"}}, {}, {}, L::kDense},
      {"reduce_mean", {{"src"}}, {{"dst"}}, 1, {{"axes", kInts}, {"keepdims", kInt, "0"}}, {}, {}, L::kDense},
      {"softmax", {{"src"}}, {{"dst"}}, 1, {{"axis", kInt, "-1"}}, {}, {}, L::kDense},
      {"log_softmax", {{"src"}}, {{"dst"}}, 1, {{"axis", kInt, "-1"}}, {}, {}, L::kDense},
      {"softmax_backward", {{"diff_dst"}, {"dst"}}, {{"diff_src"}}, 2, {{"axis", kInt, "-1"}}, {}, {}, L::kDense},
      {"log_softmax_backward", {{"diff_dst"}, {"dst"}}, {{"diff_src"}}, 2, {{"axis", kInt, "-1"}}, {}, {}, L::kDense},
      {"broadcast_to", {{"src", kAny}}, {{"dst", kAny}}, 1, {{"shape", kInts}}, {}, {}, L::kDense},
      {"reshape", {{"src", kAny}}, {{"dst", kAny}}, 1, {{"shape", kInts}}, {}, {}, L::kDense},
      {"concat", Numbered("src", 16, kAny), {{"dst", kAny}}, 1, {{"axis", kInt, "1"}}, {}, {}, L::kDense},
      {"split", {{"src", kAny}}, Numbered("dst", 16, kAny), 1, {{"axis", kInt, "1"}, {"sizes", kInts}}, {}, {},
       L::kDense},
      {"transpose", {{"src", kAny}}, {{"dst", kAny}}, 1, {{"axes", kInts}}, {}, {}, L::kDense},
      {"softmax_cross_entropy", {{"logits"}, {"label", kS32}}, {{"loss"}}, 2, {}, {}, {}, L::kDense},
      {"softmax_cross_entropy_backward", {{"diff_loss"}, {"logits"}, {"label", kS32}}, {{"diff_logits"}}, 3, {}, {},
       {}, L::kDense},
      {"argmax", {{"src"}}, {{"dst", kS32}}, 1, {}, {}, {}, L::kDense},
      {"fill", {}, {{"dst"}}, 0, {{"shape", kInts}, {"value", kFloat, "0"}}, {}, {}, L::kDense},
      {"one_hot", {{"indices", kS32}}, {{"dst"}}, 1,
       {{"depth", kInt}, {"on_value", kFloat, "1"}, {"off_value", kFloat, "0"}}, {}, {}, L::kDense},
      {"reorder", {{"src", kAny}}, {{"dst", kAny}}, 1, {}, {}, {}, L::kConvert},
      {"fused_elementwise", {{"src0"}, {"src1"}, {"src2"}, {"src3"}, {"src4"}, {"src5"}, {"src6"}, {"src7"},
                             {"src8"}, {"src9"}, {"src10"}, {"src11"}, {"src12"}, {"src13"}, {"src14"}, {"src15"}},
       {{"dst"}}, 1, {{"expr", kString}, {"layout", kString, ""}}, {}, {}, L::kDense},
      {"sgd_update", {{"weight"}, {"grad"}, {"lr"}, {"rescale_grad"}, {"mom"}}, {{"weight_out"}, {"mom_out"}}, 4,
       kSgdAttrs, {{0, 0}, {1, 4}}, {2, 3}, L::kFollowWeight, /*is_update=*/true},
      {"adam_update", {{"weight"}, {"grad"}, {"mean"}, {"var"}, {"lr"}, {"rescale_grad"}},
       {{"weight_out"}, {"mean_out"}, {"var_out"}}, 6, kAdamAttrs, {{0, 0}, {1, 2}, {2, 3}}, {4, 5},
       L::kFollowWeight, /*is_update=*/true},
  };
}

}  // namespace

const std::vector<StepKindInfo>& AllStepKinds() {
  static const auto* table = new std::vector<StepKindInfo>(MakeTable());
  return *table;
}

const StepKindInfo* FindStepKind(std::string_view kind) {
  for (const StepKindInfo& info : AllStepKinds()) {
    if (info.kind == kind) return &info;
  }
  return nullptr;
}

bool OutputReusesInput0(std::string_view kind) {
  const StepKindInfo* info = FindStepKind(kind);
  if (info == nullptr) return false;
  for (const InPlacePair& p : info->in_place) {
    if (p.output == 0 && p.input == 0) return true;
  }
  return false;
}

int UpdateInPlaceInput(std::string_view kind, int k) {
  const StepKindInfo* info = FindStepKind(kind);
  if (info == nullptr || !info->is_update) return -1;
  for (const InPlacePair& p : info->in_place) {
    if (p.output == k) return p.input;
  }
  return -1;
}

bool AcceptsBlockedLayouts(std::string_view kind) {
  const StepKindInfo* info = FindStepKind(kind);
  return info != nullptr && info->layout != LayoutRule::kDense;
}

size_t ExpectedOutputs(const StepKindInfo& info, const StepDesc& desc) {
  auto flag = [&](const char* key) {
    auto it = desc.ints.find(key);
    return it != desc.ints.end() && !it->second.empty() && it->second[0] != 0;
  };
  if (info.kind == "conv2d_backward_weights" || info.kind == "dense_backward_weights") return flag("with_bias") ? 2 : 1;
  if (info.kind == "sgd_update") return desc.inputs.size() == 5 ? 2 : 1;
  if (info.kind == "pool2d") return flag("with_workspace") ? 2 : 1;
  if (info.kind == "split") {
    auto it = desc.ints.find("sizes");
    return it == desc.ints.end() ? 1 : it->second.size();
  }
  return info.outputs.size();
}

}  // namespace kiln::runtime
