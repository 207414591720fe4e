// The generic oneDNN step: a list of primitives built once in Create, each with its
// arguments bound to operands or to regions of the step's arena scratch. Run wraps the
// pointers of this run in dnnl::memory objects (cheap: user-pointer memory allocates no
// data; the memory objects are pooled per step and re-pointed each run) and executes the
// primitives in order on a per-thread stream.
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

constexpr int64_t kAlignmentBytes = 64;

int64_t AlignUp(int64_t bytes) { return (bytes + kAlignmentBytes - 1) / kAlignmentBytes * kAlignmentBytes; }

uint8_t* AlignUp(uint8_t* p) {
  auto address = reinterpret_cast<uintptr_t>(p);
  return p + (static_cast<uintptr_t>(AlignUp(static_cast<int64_t>(address))) - address);
}

// One stream per thread: a stream may not be used by two threads at once, and creating one
// per Run would cost an allocation per step.
dnnl::stream& ThreadStream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

// Scratch for runs whose arena slice is missing or too small (a desc built by hand, or an
// artifact planned on a machine where oneDNN chose an implementation with less scratchpad).
// Per thread, because a thread runs one step at a time.
uint8_t* FallbackScratch(int64_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  size_t want = static_cast<size_t>(bytes + kAlignmentBytes);
  if (buffer.size() < want) buffer.resize(want);
  return AlignUp(buffer.data());
}

class DnnlStep final : public runtime::Step {
 public:
  struct Bound {
    int arg;
    dnnl::memory::desc md;
    bool in_scratch;
    TensorRef ref;           // when !in_scratch
    int64_t scratch_offset;  // when in_scratch, bytes from the aligned scratch base
  };
  struct Call {
    dnnl::primitive primitive;
    std::vector<Bound> args;
  };

  DnnlStep(StepDesc desc, std::vector<Call> calls, int64_t scratch_bytes)
      : Step(std::move(desc)), calls_(std::move(calls)), scratch_bytes_(scratch_bytes) {
    serial_ = RunsSerially(this->desc());
  }

  Status Run(const runtime::ExecContext& ctx) const override {
    uint8_t* scratch = ScratchBase(ctx);
    std::unique_ptr<ArgSets> sets;
    SerialScope serial_scope(serial_);
    try {
      sets = TakeArgSets();
      dnnl::stream& stream = ThreadStream();
      for (size_t c = 0; c < calls_.size(); ++c) {
        const Call& call = calls_[c];
        ArgSet& set = (*sets)[c];
        for (size_t i = 0; i < call.args.size(); ++i) {
          const Bound& b = call.args[i];
          void* ptr = b.in_scratch ? static_cast<void*>(scratch + b.scratch_offset) : ctx.Ptr(b.ref);
          set.memories[i].set_data_handle(ptr);
        }
        call.primitive.execute(stream, set.args);
      }
      stream.wait();
    } catch (const dnnl::error& e) {
      return DnnlError(desc(), e, /*at_run=*/true);
    }
    ReturnArgSets(std::move(sets));
    return OkStatus();
  }

 private:
  // The step's scratch slice, aligned to 64 bytes, when it holds scratch_bytes_.
  uint8_t* ScratchBase(const runtime::ExecContext& ctx) const {
    if (scratch_bytes_ == 0) return nullptr;
    if (!desc().scratch.empty()) {
      const TensorRef& slice = desc().scratch[0];
      auto* begin = static_cast<uint8_t*>(ctx.Ptr(slice));
      uint8_t* aligned = AlignUp(begin);
      if (slice.size_bytes() - (aligned - begin) >= scratch_bytes_) return aligned;
    }
    return FallbackScratch(scratch_bytes_);
  }

  // dnnl::memory objects for every argument of every call, re-pointed at each run's
  // buffers with set_data_handle: creating them per run cost more than a small primitive.
  // A step may run on several threads at once, so it keeps a pool of sets (one per
  // concurrent run), guarded by a mutex.
  struct ArgSet {
    std::vector<dnnl::memory> memories;         // in call.args order
    std::unordered_map<int, dnnl::memory> args;  // DNNL_ARG_* -> the same objects
  };
  using ArgSets = std::vector<ArgSet>;  // one per call

  std::unique_ptr<ArgSets> TakeArgSets() const {
    {
      std::lock_guard<std::mutex> lock(pool_mutex_);
      if (!pool_.empty()) {
        std::unique_ptr<ArgSets> sets = std::move(pool_.back());
        pool_.pop_back();
        return sets;
      }
    }
    auto sets = std::make_unique<ArgSets>(calls_.size());
    for (size_t c = 0; c < calls_.size(); ++c) {
      for (const Bound& b : calls_[c].args) {
        // A placeholder handle; every run sets the real one first.
        dnnl::memory m(b.md, Engine(), DNNL_MEMORY_NONE);
        (*sets)[c].memories.push_back(m);
        (*sets)[c].args.emplace(b.arg, m);
      }
    }
    return sets;
  }
  void ReturnArgSets(std::unique_ptr<ArgSets> sets) const {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    pool_.push_back(std::move(sets));
  }

  std::vector<Call> calls_;
  int64_t scratch_bytes_;
  bool serial_ = false;
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<ArgSets>> pool_;
};

const char* StatusName(dnnl_status_t status) { return dnnl_status2str(status); }

}  // namespace

bool RunsSerially(const StepDesc& desc) {
  int64_t bytes = 0;
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const TensorRef& r : *refs) bytes += r.size_bytes();
  }
  return bytes < kSerialBytes;
}

SerialScope::SerialScope(bool serial) : previous_(serial ? omp_get_max_threads() : 0) {
  if (previous_ > 1) omp_set_num_threads(1);
}

SerialScope::~SerialScope() {
  if (previous_ > 1) omp_set_num_threads(previous_);
}

const dnnl::engine& Engine() {
  // Never destroyed: thread_local streams that outlive static destruction still refer to it.
  static const auto* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::memory::desc PlainMd(const std::vector<int64_t>& dims, DType dtype) {
  dnnl::memory::dims d = dims.empty() ? dnnl::memory::dims{1} : dnnl::memory::dims(dims.begin(), dims.end());
  // Row-major strides describe every rank the same way (nchw, oihw, nc, x, ...).
  dnnl::memory::dims strides(d.size(), 1);
  for (size_t i = d.size() - 1; i > 0; --i) strides[i - 1] = strides[i] * std::max<int64_t>(d[i], 1);
  auto type = dtype == DType::kS32 ? dnnl::memory::data_type::s32 : dnnl::memory::data_type::f32;
  return dnnl::memory::desc(d, type, strides);
}

int DnnlPlan::AddRegion(int64_t bytes) {
  region_bytes.push_back(bytes);
  return static_cast<int>(region_bytes.size()) - 1;
}

void DnnlPlan::AddCall(const dnnl::primitive_desc_base& pd, std::vector<DnnlArg> args) {
  dnnl::memory::desc scratchpad = pd.scratchpad_desc();
  auto bytes = static_cast<int64_t>(scratchpad.get_size());
  if (bytes > 0) {
    // Calls run one after another, so they share one scratchpad region.
    scratchpad_bytes = std::max(scratchpad_bytes, bytes);
    args.push_back({DNNL_ARG_SCRATCHPAD, scratchpad, Scratch(kScratchpad)});
  }
  calls.push_back({pd, std::move(args)});
}

std::vector<int64_t> DnnlPlan::RegionOffsets() const {
  std::vector<int64_t> offsets;
  int64_t end = 0;
  for (int64_t bytes : region_bytes) {
    offsets.push_back(end);
    end = AlignUp(end + bytes);
  }
  offsets.push_back(end);  // the scratchpad
  return offsets;
}

int64_t DnnlPlan::ScratchBytes() const { return AlignUp(RegionOffsets().back() + scratchpad_bytes); }

StatusOr<std::unique_ptr<runtime::Step>> CreateDnnlStep(const StepDesc& desc, const DnnlPlan& plan) {
  std::vector<int64_t> offsets = plan.RegionOffsets();
  std::vector<DnnlStep::Call> calls;
  try {
    for (const DnnlCall& call : plan.calls) {
      DnnlStep::Call c{dnnl::primitive(call.pd.get()), {}};
      for (const DnnlArg& a : call.args) {
        DnnlStep::Bound b{a.arg, a.md, false, TensorRef(), 0};
        switch (a.source.kind) {
          case ArgSource::kInput: b.ref = desc.inputs[static_cast<size_t>(a.source.index)]; break;
          case ArgSource::kOutput: b.ref = desc.outputs[static_cast<size_t>(a.source.index)]; break;
          case ArgSource::kScratch:
            b.in_scratch = true;
            b.scratch_offset = a.source.index == kScratchpad ? offsets.back()
                                                             : offsets[static_cast<size_t>(a.source.index)];
            break;
        }
        c.args.push_back(std::move(b));
      }
      calls.push_back(std::move(c));
    }
  } catch (const dnnl::error& e) {
    return DnnlError(desc, e, /*at_run=*/false);
  }
  return std::unique_ptr<runtime::Step>(new DnnlStep(desc, std::move(calls), plan.ScratchBytes()));
}

Status DnnlError(const StepDesc& desc, const dnnl::error& e, bool at_run) {
  std::string message = std::string(at_run ? "oneDNN execution failed: " : "oneDNN: ") + e.what() + " (status " +
                        StatusName(e.status) + "; plain row-major layouts)";
  if (at_run) return Internal(Describe(desc, message));
  switch (e.status) {
    case dnnl_unimplemented: return Unimplemented(Describe(desc, message));
    case dnnl_invalid_arguments: return InvalidArgument(Describe(desc, message));
    default: return Internal(Describe(desc, message));
  }
}

}  // namespace kiln::backends::cpu::internal
