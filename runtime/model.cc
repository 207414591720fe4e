#include "runtime/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <new>

#include "runtime/step_program.h"
#include "runtime/target.h"

namespace kiln::runtime {

namespace {

// A read/write private mapping of a whole file (writes, if a step ever did one, stay private
// to the process: copy on write).
struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (addr != MAP_FAILED) ::munmap(addr, size);
  }
};

// The batch an executable runs: its first input's first dim (1 for a graph without one).
int64_t BatchOf(const Executable& e) {
  return e.inputs().empty() || e.inputs()[0].shape.empty() ? 1 : e.inputs()[0].shape[0];
}

}  // namespace

StatusOr<std::shared_ptr<const Model>> Model::Load(const std::string& path, const LoadOptions& options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("artifact '" + path + "' does not exist");
    return InvalidArgument("cannot open artifact '" + path + "': " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("artifact '" + path + "' is not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return DataLoss("artifact '" + path + "' is empty (0 bytes)");
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  map->addr = ::mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map->addr == MAP_FAILED) return InvalidArgument("cannot map artifact '" + path + "': " + std::strerror(errno));
  const auto* data = static_cast<const uint8_t*>(map->addr);
  auto model = Build(map, data, map->size, options);
  if (!model.ok()) return model.status().WithContext("loading '" + path + "'");
  return model;
}

StatusOr<std::shared_ptr<const Model>> Model::FromBytes(const void* data, size_t size, const LoadOptions& options) {
  std::shared_ptr<void> copy(AlignedAlloc(static_cast<int64_t>(size)), AlignedFree);
  if (size) std::memcpy(copy.get(), data, size);
  return Build(copy, static_cast<const uint8_t*>(copy.get()), size, options);
}

StatusOr<std::shared_ptr<const Model>> Model::Build(std::shared_ptr<void> memory_keep, const uint8_t* data, size_t size,
                                                    const LoadOptions& options) {
  ASSIGN_OR_RETURN(ArtifactView view, ParseArtifact(data, size, options.limits));
  // The runtime takes the target explicitly, or finds the one the artifact names among the
  // targets linked into this program; either way it must be the artifact's.
  const Target* target = options.target;
  if (target == nullptr) {
    ASSIGN_OR_RETURN(target, FindTarget(view.target));
  } else if (target->name() != view.target) {
    return FailedPrecondition("artifact was compiled for target '" + view.target + "', but the runtime was given '" +
                              std::string(target->name()) + "'");
  }
  if (!view.isa.empty()) {
    Status isa = target->CheckIsa(view.isa);
    if (!isa.ok()) return isa.WithContext("artifact '" + view.model_name + "'");
  }

  std::shared_ptr<Model> model(new Model());
  ModelInfo& info = model->info_;
  info.name = view.model_name;
  info.target = view.target;
  info.isa = view.isa;
  info.format_version = view.format_version;
  info.file_bytes = view.file_bytes;
  info.arena_bytes = view.arena_bytes;
  info.memory = view.memory;
  info.params = view.params;
  info.steps = view.steps;
  info.prepack_steps = view.prepack_steps;
  for (const auto& k : view.kernels) {
    info.kernel_names.push_back(k.name + " (" + k.target + ", " + std::to_string(k.size_bytes) + " bytes)");
  }
  info.graph_text = view.graph_text;
  info.metadata = view.metadata;

  // Weights: in place when aligned, else copied (owned by `copies`, kept alive with the map).
  auto copies = std::make_shared<std::vector<Tensor>>();
  copies->reserve(view.params.size() + view.constants.size());
  info.weights_in_place = true;
  for (size_t i = 0; i < view.params.size(); ++i) {
    const uint8_t* p = view.weights[i];
    if (reinterpret_cast<uintptr_t>(p) % 64 == 0) {
      model->param_addresses_.push_back(const_cast<uint8_t*>(p));
    } else {
      info.weights_in_place = false;
      Tensor& t = copies->emplace_back(view.params[i].dtype, view.params[i].shape);
      std::memcpy(t.data(), p, static_cast<size_t>(t.size_bytes()));
      model->param_addresses_.push_back(t.data());
    }
  }
  // One executable per batch size (the main program and each bucket), all bound to the same
  // weights. The executables' deleters own the file memory and the weight copies, so sessions
  // (which hold their executable) keep the weights alive.
  auto build = [&](const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs,
                   const std::vector<const uint8_t*>& constant_bytes, const std::vector<TensorSpec>& constant_specs,
                   const std::vector<StepDesc>& steps, const std::vector<StepDesc>& prepack_steps,
                   int64_t arena_bytes, const MemoryReport& report, const std::vector<TensorSpec>& params,
                   const std::vector<StepDesc>& writeback_steps) -> StatusOr<std::shared_ptr<const Executable>> {
    StepProgram program;
    program.name = view.model_name;
    program.target = view.target;
    program.inputs = inputs;
    program.outputs = outputs;
    program.params = params;
    program.writeback_steps = writeback_steps;
    for (size_t i = 0; i < constant_bytes.size(); ++i) {
      Tensor t(constant_specs[i].dtype, constant_specs[i].shape);
      if (t.size_bytes() > 0) std::memcpy(t.data(), constant_bytes[i], static_cast<size_t>(t.size_bytes()));
      program.constants.push_back(std::move(t));
    }
    program.steps = steps;
    program.prepack_steps = prepack_steps;
    program.arena_bytes = std::max<int64_t>(arena_bytes, 64);
    program.memory = report;
    program.planned = true;
    auto built = Instantiate(program, *target);
    if (!built.ok()) return built.status().WithContext("artifact for target '" + view.target + "'");
    Executable* exe = new Executable(std::move(**built));
    return std::shared_ptr<const Executable>(exe, [memory_keep, copies](const Executable* e) { delete e; });
  };
  static const std::vector<StepDesc> kNoSteps;
  ASSIGN_OR_RETURN(model->exe_, build(view.inputs, view.outputs, view.constants, view.constant_specs, view.steps,
                                      view.prepack_steps, view.arena_bytes, view.memory, view.params,
                                      view.training ? view.training->writeback_steps : kNoSteps));
  if (view.training) {
    const ArtifactView::TrainingView& tv = *view.training;
    info.training = tv.info;
    info.param_info = tv.param_info;
    info.writeback_steps = tv.writeback_steps;
    if (tv.has_eval) {
      const ArtifactView::BucketView& e = tv.eval;
      auto exe = build(e.inputs, e.outputs, e.constants, e.constant_specs, e.steps, e.prepack_steps, e.arena_bytes,
                       e.memory, tv.eval_params, kNoSteps);
      if (!exe.ok()) return exe.status().WithContext("eval program");
      model->eval_ = *std::move(exe);
      info.eval_memory = e.memory;
    }
  }
  model->buckets_.push_back(model->exe_);
  for (size_t k = 0; k < view.buckets.size(); ++k) {
    const ArtifactView::BucketView& bk = view.buckets[k];
    auto exe = build(bk.inputs, bk.outputs, bk.constants, bk.constant_specs, bk.steps, bk.prepack_steps,
                     bk.arena_bytes, bk.memory, view.params, kNoSteps);
    if (!exe.ok()) return exe.status().WithContext("batch bucket " + std::to_string(bk.batch()));
    model->buckets_.push_back(*std::move(exe));
  }
  std::sort(model->buckets_.begin(), model->buckets_.end(),
            [](const auto& x, const auto& y) { return BatchOf(*x) < BatchOf(*y); });
  for (const auto& e : model->buckets_) {
    info.batch_sizes.push_back(BatchOf(*e));
  }
  for (const auto& bk : view.buckets) info.bucket_memory[bk.batch()] = bk.memory;
  model->check_numerics_ = options.check_numerics;
  return std::shared_ptr<const Model>(std::move(model));
}

StatusOr<std::unique_ptr<Session>> Model::NewSession() const { return NewSessionFor(exe_); }

StatusOr<std::unique_ptr<Session>> Model::NewSession(int64_t batch) const {
  for (const auto& e : buckets_) {
    if (BatchOf(*e) == batch) return NewSessionFor(e);
  }
  std::string have;
  for (int64_t b : info_.batch_sizes) have += (have.empty() ? "" : ", ") + std::to_string(b);
  return NotFound("model '" + info_.name + "' has no batch bucket " + std::to_string(batch) + " (it has " + have + ")");
}

int64_t Model::BucketFor(int64_t rows) const {
  for (int64_t b : info_.batch_sizes) {
    if (b >= rows) return b;
  }
  return 0;
}

const Executable& Model::executable(int64_t batch) const {
  for (const auto& e : buckets_) {
    if (BatchOf(*e) == batch) return *e;
  }
  return *exe_;
}

StatusOr<std::unique_ptr<Session>> Model::NewSessionFor(const std::shared_ptr<const Executable>& exe) const {
  if (info_.training) {
    return FailedPrecondition("model '" + info_.name +
                              "' is a training artifact (kiln compile --train): run it with runtime::TrainingSession "
                              "(runtime/training.h) or kiln-train, not as an inference model");
  }
  try {
    ASSIGN_OR_RETURN(auto session, Session::CreateWithAddresses(exe, param_addresses_));
    session->SetCheckNumerics(check_numerics_);
    return session;
  } catch (const std::bad_alloc&) {
    return InvalidArgument("model '" + info_.name + "': cannot allocate a session arena of " +
                           std::to_string(exe->arena_bytes()) + " bytes");
  }
}

}  // namespace kiln::runtime
