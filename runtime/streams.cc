#include "runtime/streams.h"

#include <omp.h>

#include <algorithm>
#include <string>

namespace kiln::runtime {

ThreadLimit::ThreadLimit(int threads) : previous_(omp_get_max_threads()) { omp_set_num_threads(threads); }

ThreadLimit::~ThreadLimit() { omp_set_num_threads(previous_); }

int MaxThreads() { return omp_get_max_threads(); }

Status RunConcurrently(int count, const std::function<Status(int)>& fn) {
  std::vector<Status> status(static_cast<size_t>(std::max(count, 0)));
  if (count == 1) {
    status[0] = fn(0);
  } else if (count > 1) {
#pragma omp parallel for num_threads(count) schedule(static, 1)
    for (int k = 0; k < count; ++k) status[static_cast<size_t>(k)] = fn(k);
  }
  for (Status& s : status) {
    if (!s.ok()) return s;
  }
  return OkStatus();
}

namespace {

// `spec` without its batch axis, for comparing parts.
std::string Signature(const TensorSpec& spec) {
  Shape rest(spec.shape.begin() + 1, spec.shape.end());
  return spec.name + " " + std::string(DTypeName(spec.dtype)) + "[N" + (rest.empty() ? "" : ",") +
         ShapeToString(rest).substr(1);
}

Status SameSpecs(const std::vector<TensorSpec>& a, const std::vector<TensorSpec>& b, const char* what, size_t part) {
  if (a.size() != b.size()) {
    return InvalidArgument("batch streams: part " + std::to_string(part) + " has " + std::to_string(b.size()) + " " +
                           what + "s, part 0 has " + std::to_string(a.size()));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].shape.empty() || b[i].shape.empty()) {
      return InvalidArgument(std::string("batch streams: ") + what + " '" + b[i].name + "' has no batch axis");
    }
    if (Signature(a[i]) != Signature(b[i])) {
      return InvalidArgument("batch streams: part " + std::to_string(part) + " " + what + " " + b[i].ToString() +
                             " does not match part 0's " + a[i].ToString());
    }
  }
  return OkStatus();
}

int64_t RowBytes(const TensorSpec& spec) {
  int64_t n = DTypeSizeBytes(spec.dtype);
  for (size_t i = 1; i < spec.shape.size(); ++i) n *= spec.shape[i];
  return n;
}

}  // namespace

BatchStreams::BatchStreams(std::vector<std::unique_ptr<Session>> parts) : parts_(std::move(parts)) {
  for (const auto& p : parts_) {
    first_row_.push_back(batch_);
    batch_ += p->executable().inputs().empty() ? p->executable().outputs()[0].shape[0]
                                                : p->executable().inputs()[0].shape[0];
  }
}

StatusOr<std::unique_ptr<BatchStreams>> BatchStreams::Create(std::vector<std::unique_ptr<Session>> parts) {
  if (parts.empty()) return InvalidArgument("batch streams: no parts");
  const Executable& first = parts[0]->executable();
  if (first.outputs().empty()) return InvalidArgument("batch streams: the parts have no outputs");
  for (size_t k = 0; k < parts.size(); ++k) {
    const Executable& e = parts[k]->executable();
    RETURN_IF_ERROR(SameSpecs(first.inputs(), e.inputs(), "input", k));
    RETURN_IF_ERROR(SameSpecs(first.outputs(), e.outputs(), "output", k));
    // Within a part every tensor must have the part's batch.
    int64_t n = e.inputs().empty() ? e.outputs()[0].shape[0] : e.inputs()[0].shape[0];
    for (const auto* specs : {&e.inputs(), &e.outputs()}) {
      for (const TensorSpec& s : *specs) {
        if (s.shape[0] != n) {
          return InvalidArgument("batch streams: part " + std::to_string(k) + " tensor " + s.ToString() +
                                 " does not have the part's batch " + std::to_string(n));
        }
      }
    }
  }
  return std::unique_ptr<BatchStreams>(new BatchStreams(std::move(parts)));
}

Status BatchStreams::Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs) {
  const Executable& first = parts_[0]->executable();
  if (inputs.size() != first.inputs().size() || outputs.size() != first.outputs().size()) {
    return InvalidArgument("batch streams: expected " + std::to_string(first.inputs().size()) + " inputs and " +
                           std::to_string(first.outputs().size()) + " outputs, got " + std::to_string(inputs.size()) +
                           " and " + std::to_string(outputs.size()));
  }
  // Other holders of the parts' parameters write back once, here, not from the
  // concurrent parts (every part then only reads the entries).
  for (const auto& p : parts_) RETURN_IF_ERROR(p->SyncBindings());
  auto whole = [&](const TensorSpec& s) {
    Shape shape = s.shape;
    shape[0] = batch_;
    return shape;
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec& s = first.inputs()[i];
    const Tensor* t = inputs[i];
    if (!t || t->dtype() != s.dtype || t->shape() != whole(s)) {
      return InvalidArgument("input '" + s.name + "' must be " + std::string(DTypeName(s.dtype)) +
                             ShapeToString(whole(s)) + ", got " +
                             (t ? std::string(DTypeName(t->dtype())) + ShapeToString(t->shape()) : "null"));
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorSpec& s = first.outputs()[i];
    Tensor* t = outputs[i];
    if (!t) return InvalidArgument("output '" + s.name + "' is null");
    if (t->empty() || t->dtype() != s.dtype || t->shape() != whole(s)) *t = Tensor(s.dtype, whole(s));
  }
  auto run_part = [&](size_t k) -> Status {
    std::vector<void*> in, out;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const TensorSpec& s = first.inputs()[i];
      in.push_back(const_cast<uint8_t*>(static_cast<const uint8_t*>(inputs[i]->data())) + first_row_[k] * RowBytes(s));
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const TensorSpec& s = first.outputs()[i];
      out.push_back(static_cast<uint8_t*>(outputs[i]->data()) + first_row_[k] * RowBytes(s));
    }
    Status s = parts_[k]->RunWithAddresses(in, out);
    if (s.ok()) return s;
    int64_t rows = parts_[k]->executable().outputs()[0].shape[0];
    return s.WithContext("stream " + std::to_string(k) + " (rows " + std::to_string(first_row_[k]) + ".." +
                         std::to_string(first_row_[k] + rows - 1) + ")");
  };
  return RunConcurrently(static_cast<int>(parts_.size()), [&](int k) { return run_part(static_cast<size_t>(k)); });
}

}  // namespace kiln::runtime
