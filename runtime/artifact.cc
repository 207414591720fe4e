#include "runtime/artifact.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "base/atomic_file.h"
#include "runtime/artifact_generated.h"

namespace kiln::runtime {

namespace {

constexpr size_t kAlignmentBytes = 64;

// CRC-32 (zlib) of `size` bytes.
uint32_t Crc32(const uint8_t* data, size_t size) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  return static_cast<uint32_t>(crc32_z(crc, data, size));
}

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

using Builder = flatbuffers::FlatBufferBuilder;

flatbuffers::Offset<flatbuffers::Vector<int64_t>> Longs(Builder& b, const Shape& s) {
  return b.CreateVector(s.data(), s.size());
}

flatbuffers::Offset<fb::TensorSpec> PackSpec(Builder& b, const TensorSpec& s) {
  auto name = b.CreateString(s.name);
  auto shape = Longs(b, s.shape);
  return fb::CreateTensorSpec(b, name, static_cast<fb::DType>(s.dtype), shape);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::TensorSpec>>> PackSpecs(
    Builder& b, const std::vector<TensorSpec>& specs) {
  std::vector<flatbuffers::Offset<fb::TensorSpec>> v;
  for (const auto& s : specs) v.push_back(PackSpec(b, s));
  return b.CreateVector(v);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::TensorRef>>> PackRefs(
    Builder& b, const std::vector<TensorRef>& refs) {
  std::vector<flatbuffers::Offset<fb::TensorRef>> v;
  for (const auto& r : refs) {
    auto dims = Longs(b, r.dims);
    auto layout = b.CreateString(r.layout);
    v.push_back(fb::CreateTensorRef(b, static_cast<fb::BufferKind>(r.kind), r.index, r.offset,
                                    static_cast<fb::DType>(r.dtype), dims, layout, r.layout_bytes));
  }
  return b.CreateVector(v);
}

// A byte vector whose data starts 64-byte aligned from the payload start.
flatbuffers::Offset<flatbuffers::Vector<uint8_t>> AlignedBytes(Builder& b, const void* data, size_t size) {
  b.ForceVectorAlignment(size, 1, kAlignmentBytes);
  return b.CreateVector(static_cast<const uint8_t*>(data), size);
}

flatbuffers::Offset<fb::TensorData> PackTensor(Builder& b, const TensorSpec& spec, const Tensor& t) {
  auto data = AlignedBytes(b, t.data(), static_cast<size_t>(t.size_bytes()));
  auto s = PackSpec(b, spec);
  return fb::CreateTensorData(b, s, data);
}

// Whether `a` and `b` are the same signature but for the first (batch) dim; else why not.
Status SameButBatch(const std::vector<TensorSpec>& a, const std::vector<TensorSpec>& b, const std::string& what) {
  if (a.size() != b.size()) {
    return InvalidArgument(what + ": " + std::to_string(b.size()) + " tensors, the main program has " +
                           std::to_string(a.size()));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    bool same = a[i].name == b[i].name && a[i].dtype == b[i].dtype && !a[i].shape.empty() &&
                a[i].shape.size() == b[i].shape.size() &&
                std::equal(a[i].shape.begin() + 1, a[i].shape.end(), b[i].shape.begin() + 1);
    if (!same) {
      return InvalidArgument(what + " '" + b[i].name + "' " + std::string(DTypeName(b[i].dtype)) +
                             ShapeToString(b[i].shape) + " differs from the main program's '" + a[i].name + "' " +
                             std::string(DTypeName(a[i].dtype)) + ShapeToString(a[i].shape) +
                             " in more than the batch dim");
    }
  }
  return OkStatus();
}

int64_t BatchOf(const std::vector<TensorSpec>& inputs) {
  return inputs.empty() || inputs[0].shape.empty() ? 0 : inputs[0].shape[0];
}

bool SameTensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.size_bytes() == 0 || std::memcmp(a.data(), b.data(), static_cast<size_t>(a.size_bytes())) == 0);
}

}  // namespace

StatusOr<std::string> SerializeArtifact(const ArtifactContents& contents) {
  const StepProgram& c = contents.program;
  if (!c.planned) return FailedPrecondition("artifact: the program \"" + c.name + "\" has no buffer plan");
  if (!c.writeback_steps.empty() && !contents.training) {
    return FailedPrecondition(
        "artifact: write-back steps (resident training parameters) belong to training artifacts only");
  }
  // Training: one flag pair per parameter; the eval program's parameters are the step's.
  std::vector<int32_t> eval_params;
  if (contents.training) {
    if (!contents.buckets.empty()) return InvalidArgument("artifact: a training artifact has no batch buckets");
    if (c.param_info.size() != c.params.size()) {
      return InvalidArgument("artifact: training step has " + std::to_string(c.params.size()) + " parameters but " +
                             std::to_string(c.param_info.size()) + " param_info entries");
    }
    const StepProgram& e = contents.eval;
    if (e.planned) {
      if (!e.writeback_steps.empty()) return FailedPrecondition("artifact: the eval program has write-back steps");
      if (e.target != c.target) return InvalidArgument("artifact: the eval program was lowered for target '" + e.target + "'");
      for (const TensorSpec& p : e.params) {
        auto it = std::find_if(c.params.begin(), c.params.end(), [&](const TensorSpec& q) {
          return q.name == p.name && q.dtype == p.dtype && q.shape == p.shape;
        });
        if (it == c.params.end()) {
          return InvalidArgument("artifact: the eval program's parameter " + p.ToString() +
                                 " is not a parameter of the training step");
        }
        eval_params.push_back(static_cast<int32_t>(it - c.params.begin()));
      }
    }
  }
  const std::vector<const Tensor*>& weights_in = contents.weights;
  if (weights_in.size() != c.params.size()) {
    return InvalidArgument("artifact: " + std::to_string(c.params.size()) + " parameters but " +
                           std::to_string(weights_in.size()) + " weight tensors");
  }
  // Buckets: the same graph at other batch sizes, same params, distinct batches.
  std::vector<int64_t> batches = {BatchOf(c.inputs)};
  for (size_t k = 0; k < contents.buckets.size(); ++k) {
    const StepProgram& bp = contents.buckets[k];
    std::string what = "artifact: batch bucket " + std::to_string(k);
    if (!bp.planned) return FailedPrecondition(what + " has no buffer plan");
    if (!bp.writeback_steps.empty()) return FailedPrecondition(what + " has write-back steps");
    if (bp.target != c.target) return InvalidArgument(what + " was lowered for target '" + bp.target + "'");
    if (bp.params.size() != c.params.size() ||
        !std::equal(bp.params.begin(), bp.params.end(), c.params.begin(), [](const TensorSpec& x, const TensorSpec& y) {
          return x.name == y.name && x.dtype == y.dtype && x.shape == y.shape;
        })) {
      return InvalidArgument(what + ": its parameters differ from the main program's (buckets share the weights)");
    }
    RETURN_IF_ERROR(SameButBatch(c.inputs, bp.inputs, what + " input"));
    RETURN_IF_ERROR(SameButBatch(c.outputs, bp.outputs, what + " output"));
    int64_t batch = BatchOf(bp.inputs);
    if (batch < 1 || std::find(batches.begin(), batches.end(), batch) != batches.end()) {
      return InvalidArgument(what + ": batch " + std::to_string(batch) + " is not a new batch size >= 1");
    }
    batches.push_back(batch);
  }
  Builder b(1 << 20);
  // Large byte vectors first (FlatBuffers builds back to front; order does not
  // matter for correctness, only for locality).
  std::vector<flatbuffers::Offset<fb::TensorData>> weights;
  for (size_t i = 0; i < c.params.size(); ++i) {
    const Tensor* t = weights_in[i];
    const TensorSpec& s = c.params[i];
    if (!t || t->empty() || t->dtype() != s.dtype || t->shape() != s.shape) {
      return InvalidArgument(
          "artifact: weight '" + s.name + "' must be " + std::string(DTypeName(s.dtype)) + ShapeToString(s.shape) +
          ", got " +
          (t && !t->empty() ? std::string(DTypeName(t->dtype())) + ShapeToString(t->shape()) : std::string("nothing")));
    }
    weights.push_back(PackTensor(b, s, *t));
  }
  // The constant pool: the main program's constants (its indices), then each bucket's
  // constants not already there.
  std::vector<const Tensor*> pool;
  for (const Tensor& t : c.constants) pool.push_back(&t);
  std::vector<std::vector<int32_t>> bucket_constants(contents.buckets.size());
  for (size_t k = 0; k < contents.buckets.size(); ++k) {
    for (const Tensor& t : contents.buckets[k].constants) {
      auto it = std::find_if(pool.begin(), pool.end(), [&](const Tensor* p) { return SameTensor(*p, t); });
      if (it == pool.end()) it = pool.insert(pool.end(), &t);
      bucket_constants[k].push_back(static_cast<int32_t>(it - pool.begin()));
    }
  }
  std::vector<int32_t> eval_constants;
  if (contents.training && contents.eval.planned) {
    for (const Tensor& t : contents.eval.constants) {
      auto it = std::find_if(pool.begin(), pool.end(), [&](const Tensor* p) { return SameTensor(*p, t); });
      if (it == pool.end()) it = pool.insert(pool.end(), &t);
      eval_constants.push_back(static_cast<int32_t>(it - pool.begin()));
    }
  }
  std::vector<flatbuffers::Offset<fb::TensorData>> constants;
  for (size_t i = 0; i < pool.size(); ++i) {
    const Tensor& t = *pool[i];
    constants.push_back(PackTensor(b, {"const" + std::to_string(i), t.dtype(), t.shape()}, t));
  }
  std::vector<flatbuffers::Offset<fb::Blob>> kernels;
  for (const NamedBlob& k : contents.kernels) {
    auto data = AlignedBytes(b, k.bytes.data(), k.bytes.size());
    kernels.push_back(fb::CreateBlob(b, b.CreateString(k.name), b.CreateString(k.target), data));
  }
  auto pack_steps = [&](const std::vector<StepDesc>& descs) {
    std::vector<flatbuffers::Offset<fb::Step>> steps;
    for (const StepDesc& d : descs) {
      std::vector<flatbuffers::Offset<fb::IntsAttr>> ints;
      for (const auto& [k, v] : d.ints) ints.push_back(fb::CreateIntsAttr(b, b.CreateString(k), Longs(b, v)));
      std::vector<flatbuffers::Offset<fb::FloatAttr>> floats;
      for (const auto& [k, v] : d.floats) floats.push_back(fb::CreateFloatAttr(b, b.CreateString(k), v));
      std::vector<flatbuffers::Offset<fb::StringAttr>> strings;
      for (const auto& [k, v] : d.strings) {
        strings.push_back(fb::CreateStringAttr(b, b.CreateString(k), b.CreateString(v)));
      }
      auto kind = b.CreateString(d.kind);
      auto node = b.CreateString(d.node_name);
      auto iv = b.CreateVector(ints);
      auto fv = b.CreateVector(floats);
      auto sv = b.CreateVector(strings);
      auto in = PackRefs(b, d.inputs);
      auto out = PackRefs(b, d.outputs);
      auto scratch = PackRefs(b, d.scratch);
      steps.push_back(fb::CreateStep(b, kind, node, iv, fv, sv, in, out, scratch));
    }
    return b.CreateVector(steps);
  };
  auto pack_memory = [&](const MemoryReport& m) {
    return fb::CreateMemoryReport(b, m.arena_bytes, m.naive_bytes, m.lower_bound_bytes, m.weight_bytes,
                                  m.constant_bytes, m.num_buffers, m.num_in_place, m.num_reorders, m.resident_bytes);
  };
  std::vector<flatbuffers::Offset<fb::Bucket>> buckets;
  for (size_t k = 0; k < contents.buckets.size(); ++k) {
    const StepProgram& bp = contents.buckets[k];
    auto in = PackSpecs(b, bp.inputs);
    auto out = PackSpecs(b, bp.outputs);
    auto st = pack_steps(bp.steps);
    auto pre = pack_steps(bp.prepack_steps);
    auto mem = pack_memory(bp.memory);
    auto consts = b.CreateVector(bucket_constants[k]);
    buckets.push_back(fb::CreateBucket(b, in, out, st, pre, bp.arena_bytes, mem, consts));
  }
  auto buckets_v = b.CreateVector(buckets);
  flatbuffers::Offset<fb::Training> training = 0;
  if (contents.training) {
    const TrainingInfo& t = *contents.training;
    flatbuffers::Offset<fb::Bucket> eval = 0;
    if (contents.eval.planned) {
      const StepProgram& e = contents.eval;
      auto in = PackSpecs(b, e.inputs);
      auto out = PackSpecs(b, e.outputs);
      auto st = pack_steps(e.steps);
      auto pre = pack_steps(e.prepack_steps);
      auto mem = pack_memory(e.memory);
      auto consts = b.CreateVector(eval_constants);
      eval = fb::CreateBucket(b, in, out, st, pre, e.arena_bytes, mem, consts);
    }
    std::vector<flatbuffers::Offset<fb::FloatAttr>> options;
    for (const auto& [k, v] : t.options) options.push_back(fb::CreateFloatAttr(b, b.CreateString(k), v));
    std::vector<uint8_t> state, updated;
    for (const ParamInfo& pi : c.param_info) {
      state.push_back(pi.state ? 1 : 0);
      updated.push_back(pi.updated ? 1 : 0);
    }
    auto optimizer = b.CreateString(t.optimizer);
    auto options_v = b.CreateVector(options);
    auto state_v = b.CreateVector(state);
    auto updated_v = b.CreateVector(updated);
    auto writeback_v = pack_steps(c.writeback_steps);
    auto eval_params_v = b.CreateVector(eval_params);
    training = fb::CreateTraining(b, optimizer, options_v, t.num_update, state_v, updated_v, writeback_v, eval,
                                  eval_params_v);
  }
  auto steps_v = pack_steps(c.steps);
  auto prepack_v = pack_steps(c.prepack_steps);
  std::vector<flatbuffers::Offset<fb::KeyValue>> metadata;
  for (const auto& [k, v] : contents.metadata) metadata.push_back(fb::CreateKeyValue(b, b.CreateString(k), b.CreateString(v)));
  auto memory = pack_memory(c.memory);
  auto name = b.CreateString(contents.model_name);
  auto inputs = PackSpecs(b, c.inputs);
  auto outputs = PackSpecs(b, c.outputs);
  auto params = PackSpecs(b, c.params);
  auto weights_v = b.CreateVector(weights);
  auto constants_v = b.CreateVector(constants);
  auto kernels_v = b.CreateVector(kernels);
  auto text = b.CreateString(contents.graph_text);
  auto target = b.CreateString(c.target.empty() ? std::string("cpu") : c.target);
  auto isa = b.CreateString(contents.isa);
  auto metadata_v = b.CreateVector(metadata);
  auto root = fb::CreateArtifact(b, kArtifactFormatVersion, name, inputs, outputs, params, steps_v, c.arena_bytes,
                                 memory, weights_v, constants_v, kernels_v, text, metadata_v, prepack_v, target, isa,
                                 buckets_v, training);
  fb::FinishArtifactBuffer(b, root);
  const uint8_t* payload = b.GetBufferPointer();
  size_t size = b.GetSize();
  if (size >= FLATBUFFERS_MAX_BUFFER_SIZE) return InvalidArgument("artifact: payload exceeds 2 GiB");

  std::string file(static_cast<size_t>(kArtifactHeaderBytes) + size, '\0');
  auto* h = reinterpret_cast<uint8_t*>(file.data());
  std::memcpy(h, kArtifactMagic, 8);
  PutU32(h + 8, kArtifactFormatVersion);
  PutU32(h + 12, Crc32(payload, size));
  PutU64(h + 16, size);
  std::memcpy(h + kArtifactHeaderBytes, payload, size);
  return file;
}

Status WriteArtifact(const ArtifactContents& contents, const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, SerializeArtifact(contents));
  return WriteFileAtomically(path, bytes, "artifact");
}

// ---------------------------------------------------------------------------------------
// Reading.

namespace {

StatusOr<DType> ReadDType(fb::DType d, const std::string& what) {
  if (d == fb::DType::F32) return DType::kF32;
  if (d == fb::DType::S32) return DType::kS32;
  return InvalidArgument("artifact: " + what + " has unknown dtype " + std::to_string(static_cast<int>(d)));
}

// Element count of `s`, or an error when a dim is negative or the count exceeds
// `limit`.
StatusOr<int64_t> CheckedElements(const Shape& s, int64_t limit, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return InvalidArgument("artifact: " + what + " has a negative dim: " + ShapeToString(s));
    if (d != 0 && n > limit / d) {
      return InvalidArgument("artifact: " + what + " " + ShapeToString(s) + " has more than " + std::to_string(limit) +
                             " elements");
    }
    n *= d;
  }
  return n;
}

// Copies a [long] vector. FlatBuffers 2.0.8's verifier checks a vector's 4-byte
// length alignment but not 8-byte element alignment, so the elements are read
// with memcpy rather than through Vector::Get (found by the fuzzer under
// UBSan). Little-endian hosts only.
Shape ReadShape(const flatbuffers::Vector<int64_t>* v) {
  static_assert(FLATBUFFERS_LITTLEENDIAN, "artifacts are read on little-endian hosts");
  Shape s;
  if (v && v->size() > 0) {
    s.resize(v->size());
    std::memcpy(s.data(), v->Data(), v->size() * sizeof(int64_t));
  }
  return s;
}

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

MemoryReport ReadMemory(const fb::MemoryReport* m) {
  MemoryReport r;
  if (!m) return r;
  r.arena_bytes = m->arena_bytes();
  r.naive_bytes = m->naive_bytes();
  r.lower_bound_bytes = m->lower_bound_bytes();
  r.weight_bytes = m->weight_bytes();
  r.constant_bytes = m->constant_bytes();
  r.num_buffers = m->num_buffers();
  r.num_in_place = m->num_in_place();
  r.num_reorders = m->num_reorders();
  r.resident_bytes = m->resident_bytes();
  return r;
}

StatusOr<TensorSpec> ReadSpec(const fb::TensorSpec* s, const std::string& what, const ArtifactLimits& limits) {
  if (!s) return InvalidArgument("artifact: " + what + " is missing");
  TensorSpec spec;
  spec.name = Str(s->name());
  if (spec.name.empty()) return InvalidArgument("artifact: " + what + " has no name");
  ASSIGN_OR_RETURN(spec.dtype, ReadDType(s->dtype(), what + " '" + spec.name + "'"));
  spec.shape = ReadShape(s->shape());
  if (spec.shape.size() > 16) return InvalidArgument("artifact: " + what + " '" + spec.name + "' has rank > 16");
  ASSIGN_OR_RETURN(int64_t n, CheckedElements(spec.shape, limits.max_elements, what + " '" + spec.name + "'"));
  (void)n;
  return spec;
}

StatusOr<std::vector<TensorSpec>> ReadSpecs(const flatbuffers::Vector<flatbuffers::Offset<fb::TensorSpec>>* v,
                                            const std::string& what, const ArtifactLimits& limits) {
  std::vector<TensorSpec> out;
  std::set<std::string> names;
  if (!v) return out;
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) {
    ASSIGN_OR_RETURN(TensorSpec s, ReadSpec(v->Get(i), what + " " + std::to_string(i), limits));
    if (!names.insert(s.name).second) return InvalidArgument("artifact: duplicate " + what + " name '" + s.name + "'");
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<TensorRef> ReadRef(const fb::TensorRef* r, const std::string& what, const ArtifactLimits& limits) {
  if (!r) return InvalidArgument("artifact: " + what + " is missing");
  TensorRef t;
  auto kind = static_cast<uint8_t>(r->kind());
  if (kind > static_cast<uint8_t>(BufferKind::kConstant)) {
    return InvalidArgument("artifact: " + what + " has unknown buffer kind " + std::to_string(kind));
  }
  t.kind = static_cast<BufferKind>(kind);
  t.index = r->index();
  t.offset = r->offset();
  ASSIGN_OR_RETURN(t.dtype, ReadDType(r->dtype(), what));
  t.dims = ReadShape(r->dims());
  if (t.dims.size() > 16) return InvalidArgument("artifact: " + what + " has rank > 16");
  t.layout = Str(r->layout());
  t.layout_bytes = r->layout_bytes();
  return t;
}

StatusOr<std::vector<TensorRef>> ReadRefs(const flatbuffers::Vector<flatbuffers::Offset<fb::TensorRef>>* v,
                                          const std::string& what, const ArtifactLimits& limits) {
  std::vector<TensorRef> out;
  if (!v) return out;
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) {
    ASSIGN_OR_RETURN(TensorRef r, ReadRef(v->Get(i), what + " " + std::to_string(i), limits));
    out.push_back(std::move(r));
  }
  return out;
}

// Reads a TensorData entry whose spec must equal `expected` (when given);
// returns its bytes.
StatusOr<const uint8_t*> ReadTensorBytes(const fb::TensorData* t, const TensorSpec* expected, TensorSpec* spec_out,
                                         const std::string& what, const ArtifactLimits& limits) {
  if (!t) return InvalidArgument("artifact: " + what + " is missing");
  ASSIGN_OR_RETURN(TensorSpec spec, ReadSpec(t->spec(), what, limits));
  if (expected && (spec.name != expected->name || spec.dtype != expected->dtype || spec.shape != expected->shape)) {
    return InvalidArgument("artifact: " + what + " is " + spec.ToString() + " but the signature says " +
                           expected->ToString());
  }
  int64_t bytes = NumElements(spec.shape) * DTypeSizeBytes(spec.dtype);
  const auto* data = t->data();
  int64_t have = data ? static_cast<int64_t>(data->size()) : 0;
  if (have != bytes) {
    return InvalidArgument("artifact: " + what + " '" + spec.name + "' " + ShapeToString(spec.shape) + " needs " +
                           std::to_string(bytes) + " bytes, the file holds " + std::to_string(have));
  }
  if (spec_out) *spec_out = spec;
  static const uint8_t kEmpty[kAlignmentBytes] = {};
  return data && have > 0 ? data->data() : kEmpty;
}

}  // namespace

Status ValidateTensorRef(const TensorRef& ref, const std::string& what, int64_t arena_bytes,
                         const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs,
                         const std::vector<TensorSpec>& params, const std::vector<TensorSpec>& constants,
                         const ArtifactLimits& limits) {
  ASSIGN_OR_RETURN(int64_t elements, CheckedElements(ref.dims, limits.max_elements, what));
  int64_t dense_bytes = elements * DTypeSizeBytes(ref.dtype);
  int64_t bytes = dense_bytes;
  if (!ref.dense()) {
    if (ref.kind != BufferKind::kArena) {
      return InvalidArgument("artifact: " + what + " (" + ref.ToString() + ") has a layout but is not in the arena");
    }
    if (ref.layout.size() > 64 || ref.layout_bytes < dense_bytes) {
      return InvalidArgument("artifact: " + what + " (" + ref.ToString() + ") has layout_bytes " +
                             std::to_string(ref.layout_bytes) + " < " + std::to_string(dense_bytes) + " dense bytes");
    }
    bytes = ref.layout_bytes;
  }
  if (ref.offset < 0)
    return InvalidArgument("artifact: " + what + " has a negative offset " + std::to_string(ref.offset));
  int64_t capacity = 0;
  const TensorSpec* bound = nullptr;
  auto pick = [&](const std::vector<TensorSpec>& specs, const char* name) -> Status {
    if (ref.index < 0 || static_cast<size_t>(ref.index) >= specs.size()) {
      return InvalidArgument("artifact: " + what + " (" + ref.ToString() + ") refers to " + name + " " +
                             std::to_string(ref.index) + " of " + std::to_string(specs.size()));
    }
    bound = &specs[static_cast<size_t>(ref.index)];
    capacity = NumElements(bound->shape) * DTypeSizeBytes(bound->dtype);
    return OkStatus();
  };
  switch (ref.kind) {
    case BufferKind::kArena:
      if (ref.index != 0) return InvalidArgument("artifact: " + what + " has arena index " + std::to_string(ref.index));
      capacity = arena_bytes;
      break;
    case BufferKind::kInput:
      RETURN_IF_ERROR(pick(inputs, "input"));
      break;
    case BufferKind::kOutput:
      RETURN_IF_ERROR(pick(outputs, "output"));
      break;
    case BufferKind::kParam:
      RETURN_IF_ERROR(pick(params, "parameter"));
      break;
    case BufferKind::kConstant:
      RETURN_IF_ERROR(pick(constants, "constant"));
      break;
  }
  if (bound && bound->dtype != ref.dtype) {
    return InvalidArgument("artifact: " + what + " (" + ref.ToString() + ") reads " +
                           std::string(DTypeName(ref.dtype)) + " from " + bound->ToString());
  }
  // offset + bytes <= capacity, written to avoid overflow (both are >= 0).
  if (ref.offset > capacity || bytes > capacity - ref.offset) {
    return InvalidArgument("artifact: " + what + " (" + ref.ToString() + ", " + std::to_string(bytes) +
                           " bytes) lies outside its buffer of " + std::to_string(capacity) + " bytes" +
                           (bound ? " (" + bound->ToString() + ")" : std::string(" (arena)")));
  }
  return OkStatus();
}

StatusOr<ArtifactView> ParseArtifact(const uint8_t* data, size_t size, const ArtifactLimits& limits) {
  if (size < 8 || std::memcmp(data, kArtifactMagic, 8) != 0) {
    return InvalidArgument("not a kiln artifact (bad magic; expected \"KILNAOT\" at byte 0)");
  }
  if (size < static_cast<size_t>(kArtifactHeaderBytes)) {
    return DataLoss("artifact truncated: " + std::to_string(size) + " bytes, the header alone is " +
                    std::to_string(kArtifactHeaderBytes));
  }
  uint32_t version = GetU32(data + 8);
  if (version != kArtifactFormatVersion) {
    return Unimplemented("artifact format version " + std::to_string(version) + "; this runtime reads version " +
                         std::to_string(kArtifactFormatVersion));
  }
  uint64_t payload_size = GetU64(data + 16);
  uint64_t have = size - static_cast<size_t>(kArtifactHeaderBytes);
  if (payload_size != have) {
    return DataLoss("artifact truncated or padded: the header announces " + std::to_string(payload_size) +
                    " payload bytes, the file holds " + std::to_string(have));
  }
  if (payload_size >= FLATBUFFERS_MAX_BUFFER_SIZE) return InvalidArgument("artifact payload exceeds 2 GiB");
  // A FlatBuffer starts with its root offset and the file identifier (found by
  // the fuzzer: reading the identifier of a shorter payload overran the
  // buffer).
  if (payload_size < 8) return DataLoss("artifact payload of " + std::to_string(payload_size) + " bytes is too short");
  const uint8_t* payload = data + kArtifactHeaderBytes;
  if (limits.verify_checksum) {
    uint32_t want = GetU32(data + 12), got = Crc32(payload, payload_size);
    if (want != got) {
      char msg[160];
      std::snprintf(msg, sizeof msg,
                    "artifact corrupted: CRC-32 of the payload is %08x, the "
                    "header says %08x",
                    got, want);
      return DataLoss(msg);
    }
  }
  if (reinterpret_cast<uintptr_t>(payload) % 8 != 0) {
    return InvalidArgument("artifact buffer must be 8-byte aligned (FlatBuffers verifier)");
  }
  flatbuffers::Verifier::Options vopts;
  vopts.max_depth = 16;
  vopts.max_tables = 10'000'000;
  flatbuffers::Verifier verifier(payload, payload_size, vopts);
  if (!fb::ArtifactBufferHasIdentifier(payload)) {
    return InvalidArgument(
        "artifact payload is not a kiln FlatBuffer (file "
        "identifier is not \"KILN\")");
  }
  if (!fb::VerifyArtifactBuffer(verifier)) {
    return DataLoss(
        "artifact payload fails the FlatBuffers verifier "
        "(corrupted or written by another schema)");
  }
  const fb::Artifact* a = fb::GetArtifact(payload);
  ArtifactView v;
  v.file_bytes = static_cast<int64_t>(size);
  v.format_version = a->format_version();
  if (v.format_version != kArtifactFormatVersion) {
    return Unimplemented("artifact payload format version " + std::to_string(v.format_version) +
                         "; this runtime reads version " + std::to_string(kArtifactFormatVersion));
  }
  v.model_name = Str(a->model_name());
  if (a->target()) {
    v.target = Str(a->target());
    if (v.target.empty()) return InvalidArgument("artifact: the target name is empty");
  }
  v.isa = Str(a->isa());
  ASSIGN_OR_RETURN(v.inputs, ReadSpecs(a->inputs(), "input", limits));
  ASSIGN_OR_RETURN(v.outputs, ReadSpecs(a->outputs(), "output", limits));
  ASSIGN_OR_RETURN(v.params, ReadSpecs(a->params(), "parameter", limits));
  if (v.outputs.empty()) return InvalidArgument("artifact: the graph has no outputs");
  v.arena_bytes = a->arena_bytes();
  if (v.arena_bytes < 0 || v.arena_bytes > limits.max_arena_bytes) {
    return InvalidArgument("artifact: arena of " + std::to_string(v.arena_bytes) + " bytes is outside [0, " +
                           std::to_string(limits.max_arena_bytes) + "]");
  }
  v.memory = ReadMemory(a->memory());

  // Weights: one per parameter, same spec.
  size_t num_weights = a->weights() ? a->weights()->size() : 0;
  if (num_weights != v.params.size()) {
    return InvalidArgument("artifact: " + std::to_string(v.params.size()) + " parameters but " +
                           std::to_string(num_weights) + " weight tensors");
  }
  for (size_t i = 0; i < num_weights; ++i) {
    ASSIGN_OR_RETURN(const uint8_t* p, ReadTensorBytes(a->weights()->Get(static_cast<flatbuffers::uoffset_t>(i)),
                                                       &v.params[i], nullptr, "weight " + std::to_string(i), limits));
    v.weights.push_back(p);
  }
  if (a->constants()) {
    for (flatbuffers::uoffset_t i = 0; i < a->constants()->size(); ++i) {
      TensorSpec spec;
      ASSIGN_OR_RETURN(const uint8_t* p, ReadTensorBytes(a->constants()->Get(i), nullptr, &spec,
                                                         "constant " + std::to_string(i), limits));
      v.constants.push_back(p);
      v.constant_specs.push_back(spec);
    }
  }
  if (a->kernels()) {
    for (flatbuffers::uoffset_t i = 0; i < a->kernels()->size(); ++i) {
      const fb::Blob* k = a->kernels()->Get(i);
      if (!k) return InvalidArgument("artifact: kernel " + std::to_string(i) + " is missing");
      ArtifactView::KernelInfo info{Str(k->name()), Str(k->target()), k->data() ? k->data()->data() : nullptr,
                                    k->data() ? static_cast<int64_t>(k->data()->size()) : 0};
      v.kernels.push_back(std::move(info));
    }
  }

  // Steps: read generically, then check every operand against the buffers.
  if (!a->steps() || a->steps()->size() == 0) return InvalidArgument("artifact: the graph has no steps");
  // The buffers a program's steps may address: its arena, signatures and constants.
  struct Buffers {
    int64_t arena_bytes;
    const std::vector<TensorSpec>* inputs;
    const std::vector<TensorSpec>* outputs;
    const std::vector<TensorSpec>* constants;
    const std::vector<TensorSpec>* params;
  };
  Buffers main_buffers{v.arena_bytes, &v.inputs, &v.outputs, &v.constant_specs, &v.params};
  auto read_steps = [&](const flatbuffers::Vector<flatbuffers::Offset<fb::Step>>* steps, const std::string& role,
                        const Buffers& buf, std::vector<StepDesc>* out) -> Status {
    if (!steps) return OkStatus();
    for (flatbuffers::uoffset_t i = 0; i < steps->size(); ++i) {
      const fb::Step* s = steps->Get(i);
      std::string where = role + " " + std::to_string(i);
      if (!s) return InvalidArgument("artifact: " + where + " is missing");
      StepDesc d;
      d.kind = Str(s->kind());
      d.node_name = Str(s->node_name());
      if (d.kind.empty()) return InvalidArgument("artifact: " + where + " has no kind");
      where += " (" + d.Where() + ")";
      if (s->ints()) {
        for (const fb::IntsAttr* at : *s->ints()) {
          if (!at || !at->key()) return InvalidArgument("artifact: " + where + " has an int attribute without a key");
          d.ints[at->key()->str()] = ReadShape(at->values());
        }
      }
      if (s->floats()) {
        for (const fb::FloatAttr* at : *s->floats()) {
          if (!at || !at->key()) return InvalidArgument("artifact: " + where + " has a float attribute without a key");
          d.floats[at->key()->str()] = at->value();
        }
      }
      if (s->strings()) {
        for (const fb::StringAttr* at : *s->strings()) {
          if (!at || !at->key()) return InvalidArgument("artifact: " + where + " has a string attribute without a key");
          d.strings[at->key()->str()] = Str(at->value());
        }
      }
      ASSIGN_OR_RETURN(d.inputs, ReadRefs(s->inputs(), where + " input", limits));
      ASSIGN_OR_RETURN(d.outputs, ReadRefs(s->outputs(), where + " output", limits));
      ASSIGN_OR_RETURN(d.scratch, ReadRefs(s->scratch(), where + " scratch", limits));
      auto check_all = [&](const std::vector<TensorRef>& refs, const char* role) -> Status {
        for (size_t k = 0; k < refs.size(); ++k) {
          RETURN_IF_ERROR(ValidateTensorRef(refs[k], where + " " + role + " " + std::to_string(k), buf.arena_bytes,
                                            *buf.inputs, *buf.outputs, *buf.params, *buf.constants, limits));
        }
        return OkStatus();
      };
      RETURN_IF_ERROR(check_all(d.inputs, "input"));
      RETURN_IF_ERROR(check_all(d.outputs, "output"));
      RETURN_IF_ERROR(check_all(d.scratch, "scratch"));
      for (const TensorRef& r : d.outputs) {
        if (r.kind == BufferKind::kInput || r.kind == BufferKind::kConstant) {
          return InvalidArgument("artifact: " + where + " writes to a read-only buffer (" + r.ToString() + ")");
        }
      }
      out->push_back(std::move(d));
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(read_steps(a->steps(), "step", main_buffers, &v.steps));
  RETURN_IF_ERROR(read_steps(a->prepack_steps(), "prepack step", main_buffers, &v.prepack_steps));
  // A bucket's (or the eval program's) arena, memory report, pool constants and steps, on
  // `params`; `role` prefixes its steps in messages ("bucket 0 step 3").
  auto read_body = [&](const fb::Bucket* fbk, const std::string& what, const std::string& role,
                       const std::vector<TensorSpec>& params, ArtifactView::BucketView* bk) -> Status {
    bk->arena_bytes = fbk->arena_bytes();
    if (bk->arena_bytes < 0 || bk->arena_bytes > limits.max_arena_bytes) {
      return InvalidArgument(what + ": arena of " + std::to_string(bk->arena_bytes) + " bytes is outside [0, " +
                             std::to_string(limits.max_arena_bytes) + "]");
    }
    bk->memory = ReadMemory(fbk->memory());
    if (fbk->constants()) {
      for (int32_t index : *fbk->constants()) {
        if (index < 0 || static_cast<size_t>(index) >= v.constants.size()) {
          return InvalidArgument(what + ": constant index " + std::to_string(index) + " outside the pool of " +
                                 std::to_string(v.constants.size()));
        }
        bk->constants.push_back(v.constants[static_cast<size_t>(index)]);
        bk->constant_specs.push_back(v.constant_specs[static_cast<size_t>(index)]);
      }
    }
    if (!fbk->steps() || fbk->steps()->size() == 0) return InvalidArgument(what + " has no steps");
    Buffers buf{bk->arena_bytes, &bk->inputs, &bk->outputs, &bk->constant_specs, &params};
    RETURN_IF_ERROR(read_steps(fbk->steps(), role + " step", buf, &bk->steps));
    return read_steps(fbk->prepack_steps(), role + " prepack step", buf, &bk->prepack_steps);
  };

  // Batch buckets: another batch of the same signatures, the shared weights, pool constants.
  if (a->buckets()) {
    std::vector<int64_t> batches = {BatchOf(v.inputs)};
    for (flatbuffers::uoffset_t k = 0; k < a->buckets()->size(); ++k) {
      const fb::Bucket* fbk = a->buckets()->Get(k);
      std::string what = "artifact: batch bucket " + std::to_string(k);
      if (!fbk) return InvalidArgument(what + " is missing");
      ArtifactView::BucketView bk;
      ASSIGN_OR_RETURN(bk.inputs, ReadSpecs(fbk->inputs(), "bucket input", limits));
      ASSIGN_OR_RETURN(bk.outputs, ReadSpecs(fbk->outputs(), "bucket output", limits));
      RETURN_IF_ERROR(SameButBatch(v.inputs, bk.inputs, what + " input"));
      RETURN_IF_ERROR(SameButBatch(v.outputs, bk.outputs, what + " output"));
      int64_t batch = bk.batch();
      if (batch < 1 || std::find(batches.begin(), batches.end(), batch) != batches.end()) {
        return InvalidArgument(what + ": batch " + std::to_string(batch) + " is not a new batch size >= 1");
      }
      for (const TensorSpec& o : bk.outputs) {
        if (o.shape[0] != batch) {
          return InvalidArgument(what + ": output '" + o.name + "' " + ShapeToString(o.shape) +
                                 " does not have the bucket's batch " + std::to_string(batch) + " first");
        }
      }
      batches.push_back(batch);
      RETURN_IF_ERROR(read_body(fbk, what, "bucket " + std::to_string(k), v.params, &bk));
      v.buckets.push_back(std::move(bk));
    }
  }

  // Training: flags per parameter, write-back steps, the eval program on its parameters.
  if (const fb::Training* t = a->training()) {
    if (!v.buckets.empty()) return InvalidArgument("artifact: a training artifact has batch buckets");
    ArtifactView::TrainingView tv;
    tv.info.optimizer = Str(t->optimizer());
    if (tv.info.optimizer != "sgd" && tv.info.optimizer != "adam") {
      return InvalidArgument("artifact: training optimizer '" + tv.info.optimizer + "' is not sgd or adam");
    }
    if (t->options()) {
      for (const fb::FloatAttr* at : *t->options()) {
        if (!at || !at->key()) return InvalidArgument("artifact: a training option has no key");
        tv.info.options[at->key()->str()] = at->value();
      }
    }
    tv.info.num_update = t->num_update();
    if (tv.info.num_update < 0) return InvalidArgument("artifact: training num_update is negative");
    size_t np = v.params.size();
    if (!t->param_state() || !t->param_updated() || t->param_state()->size() != np ||
        t->param_updated()->size() != np) {
      return InvalidArgument("artifact: training param_state and param_updated need one entry per parameter (" +
                             std::to_string(np) + ")");
    }
    for (flatbuffers::uoffset_t i = 0; i < np; ++i) {
      tv.param_info.push_back({t->param_state()->Get(i) != 0, t->param_updated()->Get(i) != 0});
    }
    RETURN_IF_ERROR(read_steps(t->writeback_steps(), "write-back step", main_buffers, &tv.writeback_steps));
    if (const fb::Bucket* e = t->eval()) {
      tv.has_eval = true;
      std::set<int> seen;
      if (t->eval_params()) {
        for (int32_t index : *t->eval_params()) {
          if (index < 0 || static_cast<size_t>(index) >= np || !seen.insert(index).second) {
            return InvalidArgument("artifact: eval parameter index " + std::to_string(index) +
                                   " is outside the parameters (" + std::to_string(np) + ") or repeated");
          }
          tv.eval_param_index.push_back(index);
          tv.eval_params.push_back(v.params[static_cast<size_t>(index)]);
        }
      }
      ASSIGN_OR_RETURN(tv.eval.inputs, ReadSpecs(e->inputs(), "eval input", limits));
      ASSIGN_OR_RETURN(tv.eval.outputs, ReadSpecs(e->outputs(), "eval output", limits));
      if (tv.eval.outputs.empty()) return InvalidArgument("artifact: the eval program has no outputs");
      RETURN_IF_ERROR(read_body(e, "artifact: the eval program", "eval", tv.eval_params, &tv.eval));
    }
    v.training = std::move(tv);
  }
  v.graph_text = Str(a->graph_text());
  if (a->metadata()) {
    for (const fb::KeyValue* kv : *a->metadata()) {
      if (kv) v.metadata[Str(kv->key())] = Str(kv->value());
    }
  }
  return v;
}

}  // namespace kiln::runtime
