// Blocked layouts: naming oneDNN memory formats, the reorder kind, and the layout choices
// the CPU backend makes for the lowering (StepFactory::ChooseLayouts).
//
// Convolutions are created with format_tag::any, so oneDNN picks the layout its fastest
// implementation for this machine wants (e.g. nChw16c activations and OIhw16i16o weights
// with AVX-512); pooling and the activations take the layout of their input; everything
// else wants dense row-major operands. Only layouts that a oneDNN format tag describes are
// used (a chosen layout without a tag falls back to dense).
// Source: oneDNN dev guide "Memory Format Propagation", "Understanding Memory Formats",
// "Reorder".
#include <oneapi/dnnl/dnnl_debug.h>

#include <map>
#include <mutex>

#include "backends/cpu/kernels_cpu.h"
#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
namespace dn = dnnl;
using Tag = dn::memory::format_tag;

dn::memory::data_type DataType(DType dtype) {
  return dtype == DType::kS32 ? dn::memory::data_type::s32 : dn::memory::data_type::f32;
}

// Format tags by name ("aBcd16b"), built once from oneDNN's own names.
const std::map<std::string, Tag>& TagsByName() {
  static const auto* tags = [] {
    auto* m = new std::map<std::string, Tag>();
    for (int t = static_cast<int>(dnnl_a); t < static_cast<int>(dnnl_format_tag_last); ++t) {
      const char* name = dnnl_fmt_tag2str(static_cast<dnnl_format_tag_t>(t));
      if (name != nullptr && *name != '\0' && std::string(name) != "undef") m->emplace(name, static_cast<Tag>(t));
    }
    return m;
  }();
  return *tags;
}

// Exact match of every stride: memory::desc's operator== ignores the strides of size-1
// dims, but implementations check them (e.g. Acdb16a vs Abcd16a weights for IC = 1).
bool ExactlyEqual(const dnnl_memory_desc_t& a, const dnnl_memory_desc_t& b) {
  if (a.format_kind != b.format_kind || a.ndims != b.ndims || a.data_type != b.data_type) return false;
  const auto &x = a.format_desc.blocking, &y = b.format_desc.blocking;
  if (x.inner_nblks != y.inner_nblks) return false;
  for (int i = 0; i < a.ndims; ++i) {
    if (a.dims[i] != b.dims[i] || x.strides[i] != y.strides[i] || a.padded_dims[i] != b.padded_dims[i]) return false;
  }
  for (int i = 0; i < x.inner_nblks; ++i) {
    if (x.inner_blks[i] != y.inner_blks[i] || x.inner_idxs[i] != y.inner_idxs[i]) return false;
  }
  return true;
}

bool IsDenseRowMajor(const dn::memory::desc& md) {
  std::vector<int64_t> dims = md.dims();
  dn::memory::desc plain = PlainMd(dims, md.data_type() == dn::memory::data_type::s32 ? DType::kS32 : DType::kF32);
  return md.data.format_kind == dnnl_blocked && ExactlyEqual(md.data, plain.data);
}

}  // namespace

bool ParseGroupedLayout(const std::string& layout, int64_t* groups, std::string* tag) {
  // "g<G>:<5-D tag>", e.g. "g96:Goihw8g" (GroupedLayoutName).
  if (layout.size() < 4 || layout[0] != 'g') return false;
  size_t colon = layout.find(':');
  if (colon == std::string::npos || colon < 2 || colon > 10) return false;
  int64_t g = 0;
  for (size_t i = 1; i < colon; ++i) {
    if (layout[i] < '0' || layout[i] > '9') return false;
    g = g * 10 + (layout[i] - '0');
  }
  if (g < 1) return false;
  *groups = g;
  *tag = layout.substr(colon + 1);
  return true;
}

std::string GroupedLayoutName(int64_t groups, const dn::memory::desc& md5) {
  std::string name = LayoutName(md5);
  return name.empty() ? "" : "g" + std::to_string(groups) + ":" + name;
}

dn::memory::desc MdOf(const TensorRef& ref) {
  if (ref.dense()) return PlainMd(ref);
  int64_t groups = 0;
  std::string grouped_tag;
  if (ParseGroupedLayout(ref.layout, &groups, &grouped_tag)) {
    // Grouped convolution weights [OC, IC/G, KH, KW] as oneDNN's 5-D [G, OC/G, IC/G, KH, KW].
    auto it = TagsByName().find(grouped_tag);
    Tag tag = it == TagsByName().end() || ref.dims.size() != 4 || ref.dims[0] % groups != 0 ? Tag::undef : it->second;
    dn::memory::dims d{groups, ref.dims.size() == 4 ? ref.dims[0] / groups : 0, ref.dims.size() == 4 ? ref.dims[1] : 0,
                       ref.dims.size() == 4 ? ref.dims[2] : 0, ref.dims.size() == 4 ? ref.dims[3] : 0};
    return dn::memory::desc(d, DataType(ref.dtype), tag);
  }
  auto it = TagsByName().find(ref.layout);
  // Unknown names are rejected by CheckLayouts before any plan is made.
  Tag tag = it == TagsByName().end() ? Tag::undef : it->second;
  return dn::memory::desc(dn::memory::dims(ref.dims.begin(), ref.dims.end()), DataType(ref.dtype), tag);
}

std::string LayoutName(const dn::memory::desc& md) {
  if (IsDenseRowMajor(md)) return "";
  // The first tag (in oneDNN's order) that describes exactly this layout.
  static std::mutex mu;
  static std::map<std::pair<std::vector<int64_t>, std::vector<int64_t>>, std::string> cache;
  const dnnl_memory_desc_t& c = md.data;
  if (c.format_kind != dnnl_blocked) return "";
  std::vector<int64_t> key_dims(c.dims, c.dims + c.ndims);
  std::vector<int64_t> key_layout(c.format_desc.blocking.strides, c.format_desc.blocking.strides + c.ndims);
  key_layout.push_back(c.format_desc.blocking.inner_nblks);
  for (int i = 0; i < c.format_desc.blocking.inner_nblks; ++i) {
    key_layout.push_back(c.format_desc.blocking.inner_blks[i]);
    key_layout.push_back(c.format_desc.blocking.inner_idxs[i]);
  }
  key_layout.push_back(c.data_type);
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(key_dims, key_layout);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  std::string found;
  for (const auto& [name, tag] : TagsByName()) {
    try {
      dn::memory::desc candidate(md.dims(), md.data_type(), tag);
      if (ExactlyEqual(candidate.data, c)) {
        found = name;
        break;
      }
    } catch (const dn::error&) {
      // A tag of another rank.
    }
  }
  cache[key] = found;
  return found;
}

Status CheckLayouts(const StepDesc& desc, bool blocked_ok) {
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const TensorRef& r : *refs) {
      if (r.dense()) continue;
      if (r.layout == kWorkspaceLayout && (desc.kind == "pool2d" || desc.kind == "pool2d_backward")) continue;
      if (!blocked_ok) return InvalidOperands(desc, "this kind takes dense row-major operands only");
      int64_t groups = 0;
      std::string grouped_tag;
      const bool grouped = ParseGroupedLayout(r.layout, &groups, &grouped_tag);
      auto it = TagsByName().find(grouped ? grouped_tag : r.layout);
      if (it == TagsByName().end()) return InvalidOperands(desc, "unknown layout \"" + r.layout + "\"");
      if (grouped && (r.dims.size() != 4 || r.dims[0] % groups != 0)) {
        return InvalidOperands(desc, "grouped layout " + r.layout + " does not describe dims " + ShapeToString(r.dims));
      }
      dn::memory::desc md;
      try {
        md = MdOf(r);
      } catch (const dn::error&) {
        // e.g. a 3-D tag on a 4-D operand (artifacts are untrusted input).
        return InvalidOperands(desc, "layout " + r.layout + " does not describe dims " + ShapeToString(r.dims));
      }
      if (static_cast<int64_t>(md.get_size()) != r.layout_bytes) {
        return InvalidOperands(desc, "layout " + r.layout + " needs " + std::to_string(md.get_size()) +
                                         " bytes, the operand says " + std::to_string(r.layout_bytes));
      }
    }
  }
  return OkStatus();
}

StatusOr<std::optional<DnnlPlan>> PlanReorder(const StepDesc& desc) {
  const TensorRef& src = desc.inputs[0];
  const TensorRef& dst = desc.outputs[0];
  if (src.dims != dst.dims) return InvalidOperands(desc, "src and dst must have the same dims");
  dn::memory::desc src_md = MdOf(src), dst_md = MdOf(dst);
  // Grouped weights: the dense side is the same bytes seen as 5-D goihw.
  int64_t groups = 0;
  std::string tag;
  if (ParseGroupedLayout(dst.layout, &groups, &tag) && src.dense()) src_md = ConvWeightsMd(src, groups);
  if (ParseGroupedLayout(src.layout, &groups, &tag) && dst.dense()) dst_md = ConvWeightsMd(dst, groups);
  if (src_md.dims() != dst_md.dims()) return InvalidOperands(desc, "src and dst layouts describe different dims");
  dn::reorder::primitive_desc pd(Engine(), src_md, Engine(), dst_md, UserScratchpad());
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_FROM, src_md, In(0)}, {DNNL_ARG_TO, dst_md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

dn::memory::desc ConvWeightsMd(const TensorRef& wei, int64_t groups) {
  if (groups <= 1 || !wei.dense()) return MdOf(wei);
  dn::memory::dims d{groups, wei.dims[0] / groups, wei.dims[1], wei.dims[2], wei.dims[3]};
  return dn::memory::desc(d, DataType(wei.dtype), Tag::goihw);
}

namespace {

using Layouts = runtime::StepFactory::Layouts;
using runtime::StepFactory;

dn::memory::desc AnyMd(const TensorRef& ref) {
  return dn::memory::desc(dn::memory::dims(ref.dims.begin(), ref.dims.end()), DataType(ref.dtype), Tag::any);
}

// Sets `name` and `bytes` from a chosen descriptor (dense when no tag describes it).
void Take(const dn::memory::desc& md, std::string* name, int64_t* bytes) {
  *name = LayoutName(md);
  if (bytes != nullptr) *bytes = name->empty() ? 0 : static_cast<int64_t>(md.get_size());
}

struct ConvGeometry {
  dn::memory::dims strides, dilates, padding_l, padding_r;
  int64_t groups = 1;
};

StatusOr<ConvGeometry> ReadGeometry(const StepDesc& desc) {
  ConvGeometry g;
  ASSIGN_OR_RETURN(g.strides, GetInts(desc, "stride", 2, {1, 1}));
  ASSIGN_OR_RETURN(g.padding_l, GetInts(desc, "padding_begin", 2, {0, 0}));
  ASSIGN_OR_RETURN(auto dilation, GetInts(desc, "dilation", 2, {1, 1}));
  ASSIGN_OR_RETURN(g.padding_r, GetInts(desc, "padding_end", 2, {0, 0}));
  for (int64_t d : dilation) g.dilates.push_back(d - 1);
  g.groups = GetInt(desc, "groups", 1);
  return g;
}


// A descriptor for an activation operand: its current layout ("keep"), channels-last
// ("nhwc"), or oneDNN's choice ("any").
dn::memory::desc ActivationMd(const TensorRef& ref, const std::string& policy) {
  if (policy == "keep" && !ref.dense()) return MdOf(ref);
  if (policy == "nhwc") {
    return dn::memory::desc(dn::memory::dims(ref.dims.begin(), ref.dims.end()), DataType(ref.dtype), Tag::acdb);
  }
  return AnyMd(ref);
}

bool IsReference(const dn::primitive_desc_base& pd) { return std::string(pd.impl_info_str()).rfind("ref", 0) == 0; }

// The reference kernels and pooling's simple_nchw loop: correct, but many times slower than
// oneDNN's jit kernels.
bool IsSlowKernel(const dn::primitive_desc_base& pd) {
  return IsReference(pd) || std::string(pd.impl_info_str()).rfind("simple", 0) == 0;
}

// Tries the layout policies in order and keeps the first that oneDNN implements without
// falling back to its reference kernels:
//   keep  the inputs' current blocked layouts (no reorder after a producer in another layout),
//   nhwc  in training graphs (ints layout_for_training {1}, set by the lowering), channels-last
//         when a channel count is not a multiple of 16: nChw16c would pad 6 channels to 16
//         and move 2.7x the bytes through the backward pooling and activations (LeNet
//         training step 6.9 -> 5.9 ms); inference graphs keep oneDNN's faster blocked
//         convolutions (LeNet inference at batch 256: 1.58 -> 1.29 ms),
//   any   oneDNN's own choice.
StatusOr<Layouts> ChooseConvLayouts(const StepDesc& desc) {
  Layouts l = StepFactory::DenseLayouts(desc);
  ASSIGN_OR_RETURN(ConvGeometry g, ReadGeometry(desc));
  bool forward = desc.kind == "conv2d", backward_data = desc.kind == "conv2d_backward_data";
  // The two activation operands: (src, dst) forward, (diff_dst, diff_src) backward data,
  // (src, diff_dst) backward weights; src-side first.
  const TensorRef& act_in = desc.inputs[0];
  const TensorRef& act_other = forward || backward_data ? desc.outputs[0] : desc.inputs[1];
  const TensorRef& wei = forward || backward_data ? desc.inputs[1] : desc.outputs[0];
  // Grouped weights: oneDNN picks their 5-D layout too (e.g. Goihw8g for depthwise: its jit
  // kernels need it; with dense goihw every kind falls back to its reference kernel, ~10x
  // slower), named "g<G>:<tag>" (GroupedLayoutName). In training graphs forward, backward-data
  // and backward-weights choose theirs separately; the layout pass reorders the dense (or
  // resident) weight into each and diff_weights back for the update, as for ungrouped
  // weights (mobilenet_v2_1.0 training step, batch 32 at 64x64: 0.65-0.70 -> 0.21-0.29 s,
  // with training batch norm blocked; bench/README.md).
  bool grouped = g.groups > 1;
  bool training = GetInt(desc, "layout_for_training", 0) != 0;
  dn::memory::desc wei_md =
      !grouped ? AnyMd(wei)
               : dn::memory::desc({g.groups, wei.dims[0] / g.groups, wei.dims[1], wei.dims[2], wei.dims[3]},
                                  DataType(wei.dtype), Tag::any);
  auto take_weights = [&](const dn::memory::desc& md, std::string* name, int64_t* bytes) {
    if (!grouped) {
      Take(md, name, bytes);
      return;
    }
    *name = GroupedLayoutName(g.groups, md);
    if (bytes != nullptr) *bytes = name->empty() ? 0 : static_cast<int64_t>(md.get_size());
  };
  std::vector<std::string> policies;
  if (!act_in.dense() || (!forward && !backward_data && !act_other.dense())) policies.push_back("keep");
  if (training && (act_in.dims[1] % 16 != 0 || act_other.dims[1] % 16 != 0)) policies.push_back("nhwc");
  policies.push_back("any");
  for (size_t attempt = 0; attempt < policies.size(); ++attempt) {
    const std::string& policy = policies[attempt];
    bool last = attempt + 1 == policies.size();
    try {
      dn::memory::desc in_md = ActivationMd(act_in, policy);
      dn::memory::desc other_md = ActivationMd(act_other, policy == "keep" && forward ? "any" : policy);
      if (forward) {
        dn::convolution_forward::desc d(prop_kind::forward_training, algorithm::convolution_direct, in_md, wei_md,
                                        other_md, g.strides, g.dilates, g.padding_l, g.padding_r);
        dn::convolution_forward::primitive_desc pd(d, UserScratchpad(), Engine());
        if (IsReference(pd) && !last) continue;
        Take(pd.src_desc(), &l.inputs[0], &l.input_bytes[0]);
        take_weights(pd.weights_desc(), &l.inputs[1], &l.input_bytes[1]);
        Take(pd.dst_desc(), &l.outputs[0], &l.output_bytes[0]);
        if (desc.inputs.size() == 4) {  // the fused sum operand is read in dst's layout
          l.inputs[3] = l.outputs[0];
          l.input_bytes[3] = l.output_bytes[0];
        }
      } else if (backward_data) {
        // in_md: diff_dst, other_md: diff_src
        dn::memory::desc src_md = policy == "keep" ? AnyMd(act_other) : other_md;
        dn::convolution_forward::primitive_desc hint(
            dn::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_md,
                                          wei_md, in_md, g.strides, g.dilates, g.padding_l, g.padding_r),
            Engine());
        dn::convolution_backward_data::desc d(algorithm::convolution_direct, src_md, wei_md, in_md, g.strides,
                                              g.dilates, g.padding_l, g.padding_r);
        dn::convolution_backward_data::primitive_desc pd(d, UserScratchpad(), Engine(), hint);
        if (IsReference(pd) && !last) continue;
        Take(pd.diff_dst_desc(), &l.inputs[0], &l.input_bytes[0]);
        take_weights(pd.weights_desc(), &l.inputs[1], &l.input_bytes[1]);
        Take(pd.diff_src_desc(), &l.outputs[0], &l.output_bytes[0]);
      } else {
        // in_md: src, other_md: diff_dst
        dn::convolution_forward::primitive_desc hint(
            dn::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, in_md,
                                          wei_md, other_md, g.strides, g.dilates, g.padding_l, g.padding_r),
            Engine());
        dn::convolution_backward_weights::desc d(algorithm::convolution_direct, in_md, wei_md, other_md,
                                                 g.strides, g.dilates, g.padding_l, g.padding_r);
        dn::convolution_backward_weights::primitive_desc pd(d, UserScratchpad(), Engine(), hint);
        if (IsReference(pd) && !last) continue;
        Take(pd.src_desc(), &l.inputs[0], &l.input_bytes[0]);
        Take(pd.diff_dst_desc(), &l.inputs[1], &l.input_bytes[1]);
        take_weights(pd.diff_weights_desc(), &l.outputs[0], &l.output_bytes[0]);
      }
      return l;
    } catch (const dn::error& e) {
      if (last) throw;
    }
  }
  return l;
}

StatusOr<Layouts> ChoosePoolLayouts(const StepDesc& desc) {
  Layouts l = StepFactory::DenseLayouts(desc);
  ASSIGN_OR_RETURN(auto kernel, GetInts(desc, "kernel", 2, {1, 1}));
  ASSIGN_OR_RETURN(auto strides, GetInts(desc, "stride", 2, {1, 1}));
  ASSIGN_OR_RETURN(auto padding_l, GetInts(desc, "padding_begin", 2, {0, 0}));
  ASSIGN_OR_RETURN(auto padding_r, GetInts(desc, "padding_end", 2, {0, 0}));
  auto it = desc.strings.find("kind");
  algorithm alg = it != desc.strings.end() && it->second == "avg" ? algorithm::pooling_avg_include_padding
                                                                  : algorithm::pooling_max;
  bool forward = desc.kind == "pool2d";
  const TensorRef& src = forward ? desc.inputs[0] : desc.inputs[1];
  const TensorRef& dst = forward ? desc.outputs[0] : desc.inputs[0];
  // The source keeps its layout; oneDNN picks the destination's to match. One exception: a
  // dense NCHW source (after a concat, e.g. GoogLeNet's and SqueezeNet's pools) for which
  // oneDNN has only its simple_nchw kernel is read channels-last instead (jit kernels; the
  // reorder before it costs far less: GoogLeNet's [32,512,4,4] 3x3 max pool 12-16 ms in
  // simple_nchw; bench/README.md).
  auto make = [&](const dn::memory::desc& src_md) {
    return dn::pooling_forward::primitive_desc(
        dn::pooling_forward::desc(prop_kind::forward_training, alg, src_md, AnyMd(dst), strides, kernel, padding_l,
                                  padding_r),
        UserScratchpad(), Engine());
  };
  dn::pooling_forward::primitive_desc pd = make(MdOf(src));
  std::string src_layout = src.layout;
  int64_t src_bytes = src.dense() ? 0 : src.layout_bytes;
  // The backward kinds make the same choice, so that a workspace written by the forward step
  // describes the src layout the backward step reads.
  if (src.dense() && src.dims.size() == 4 && src.dtype == DType::kF32 && IsSlowKernel(pd)) {
    dn::memory::desc nhwc(dn::memory::dims(src.dims.begin(), src.dims.end()), DataType(src.dtype), Tag::acdb);
    dn::pooling_forward::primitive_desc channels_last = make(nhwc);
    if (!IsSlowKernel(channels_last)) {
      pd = channels_last;
      Take(pd.src_desc(), &src_layout, &src_bytes);
    }
  }
  if (forward) {
    l.inputs[0] = src_layout;
    l.input_bytes[0] = src_bytes;
    Take(pd.dst_desc(), &l.outputs[0], &l.output_bytes[0]);
    if (l.outputs.size() == 2) {
      l.outputs[1] = kWorkspaceLayout;
      l.output_bytes[1] = static_cast<int64_t>(pd.workspace_desc().get_size());
    }
  } else if (alg == algorithm::pooling_max && desc.inputs.size() == 2 && (src_layout.empty() || src_layout == "acdb")) {
    // The native backward loop reads diff_dst and writes diff_src in src's layout.
    l.inputs[0] = src_layout;
    l.input_bytes[0] = src_layout.empty() ? 0 : NumElements(dst.dims) * DTypeSizeBytes(dst.dtype);
    l.inputs[1] = src_layout;
    l.input_bytes[1] = src_bytes;
    l.outputs[0] = src_layout;
    l.output_bytes[0] = src_bytes;
  } else {
    Take(pd.dst_desc(), &l.inputs[0], &l.input_bytes[0]);
    l.inputs[1] = src_layout;
    l.input_bytes[1] = src_bytes;
    if (l.inputs.size() == 3) {
      l.inputs[2] = desc.inputs[2].layout;
      l.input_bytes[2] = desc.inputs[2].layout_bytes;
    }
    l.outputs[0] = src_layout;
    l.output_bytes[0] = src_bytes;
  }
  return l;
}

}  // namespace

StatusOr<Layouts> ChooseCpuLayouts(const StepDesc& desc) {
  const std::string& kind = desc.kind;
  try {
    if (kind == "conv2d" || kind == "conv2d_backward_data" || kind == "conv2d_backward_weights") {
      if (HasZeroVolume(desc)) return StepFactory::DenseLayouts(desc);
      return ChooseConvLayouts(desc);
    }
    if (kind == "pool2d" || kind == "pool2d_backward") {
      if (HasZeroVolume(desc)) return StepFactory::DenseLayouts(desc);
      return ChoosePoolLayouts(desc);
    }
  } catch (const dn::error& e) {
    return DnnlError(desc, e, /*at_run=*/false);
  }
  Layouts l = StepFactory::DenseLayouts(desc);
  const runtime::StepKindInfo* info = runtime::FindStepKind(kind);
  if (info != nullptr && info->layout == runtime::LayoutRule::kFollowWeight && !desc.inputs.empty()) {
    // Elementwise over the weight's bytes: grad, state and outputs follow the weight's
    // layout (a resident blocked weight, codegen::LowerOptions::resident_params); the
    // scalar inputs of the table (lr, rescale_grad) stay dense.
    const TensorRef& weight = desc.inputs[0];
    int64_t bytes = weight.dense() ? 0 : weight.layout_bytes;
    auto scalar = [&](size_t i) {
      for (int s : info->scalar_inputs) {
        if (static_cast<size_t>(s) == i) return true;
      }
      return false;
    };
    for (size_t i = 0; i < l.inputs.size(); ++i) {
      if (scalar(i)) continue;
      l.inputs[i] = weight.layout;
      l.input_bytes[i] = bytes;
    }
    for (size_t j = 0; j < l.outputs.size(); ++j) {
      l.outputs[j] = weight.layout;
      l.output_bytes[j] = bytes;
    }
    return l;
  }
  if (info != nullptr && info->layout == runtime::LayoutRule::kFollowSourceSameDims && desc.inputs.size() == 2 &&
      desc.outputs.size() == 1) {
    // Same dims (no broadcasting): every operand in the first blocked input's layout, so a
    // residual add between blocked convolutions needs no reorder (oneDNN binary reads and
    // writes blocked memory, its padding included). Broadcasting stays dense.
    const TensorRef &a = desc.inputs[0], &b = desc.inputs[1], &dst = desc.outputs[0];
    if (a.dims != dst.dims || b.dims != dst.dims || a.dtype != DType::kF32) return l;
    const TensorRef* data = !a.dense() ? &a : !b.dense() ? &b : nullptr;
    int64_t groups = 0;
    std::string tag;
    if (data == nullptr || ParseGroupedLayout(data->layout, &groups, &tag)) return l;
    for (size_t i = 0; i < 2; ++i) {
      l.inputs[i] = data->layout;
      l.input_bytes[i] = data->layout_bytes;
    }
    l.outputs[0] = data->layout;
    l.output_bytes[0] = data->layout_bytes;
    return l;
  }
  if (info != nullptr && info->layout == runtime::LayoutRule::kFollowSourceData && !desc.inputs.empty()) {
    // Batch normalization: the operands of src's rank in src's layout, [C] vectors dense.
    const TensorRef* data = &desc.inputs[0];
    for (const TensorRef& in : desc.inputs) {
      if (in.dims.size() >= data->dims.size()) data = &in;
    }
    auto follow = [&](const TensorRef& r, std::string* layout, int64_t* bytes) {
      if (r.dims.size() != data->dims.size()) return;
      *layout = data->layout;
      *bytes = data->dense() ? 0 : data->layout_bytes;
    };
    for (size_t i = 0; i < l.inputs.size(); ++i) follow(desc.inputs[i], &l.inputs[i], &l.input_bytes[i]);
    for (size_t j = 0; j < l.outputs.size(); ++j) follow(desc.outputs[j], &l.outputs[j], &l.output_bytes[j]);
    return l;
  }
  if (info != nullptr && info->layout == runtime::LayoutRule::kFollowSource && !desc.inputs.empty()) {
    // Elementwise (pooling returned above): every operand in the layout of the data input
    // (dst for the backward kinds).
    const TensorRef& data = desc.inputs.back();
    for (auto& in : l.inputs) in = data.layout;
    for (auto& b : l.input_bytes) b = data.dense() ? 0 : data.layout_bytes;
    l.outputs[0] = data.layout;
    l.output_bytes[0] = data.dense() ? 0 : data.layout_bytes;
  }
  return l;
}

}  // namespace kiln::backends::cpu::internal
