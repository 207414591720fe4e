// Batch streams: one batch run as K sub-batches on K sessions at once, one thread each
// (OpenVINO's "throughput streams"; data parallelism inside one process).
//
// With two cores, running every step of a small network on both cores makes each step pay
// for waking and joining the OpenMP team and splits small kernels finely; two sessions that
// each run half the batch on one core run whole steps without synchronization and keep
// each half's activations in that core's cache. LeNet-5 inference at batch 256 on the
// 2-core dev machine: about 1.4x the images/s of one session on both cores (bench/README.md).
//
// The sub-batch executables must be "batch separable": every input and output has the batch
// as axis 0 and no step mixes samples (passes/batch_separable.h checks an IR graph). The
// runner does not check this; the compiler that builds the parts must.
//
// Threading: the parts run inside one OpenMP parallel region of K threads (OpenMP is
// the threading runtime of Debian's oneDNN). oneDNN primitives and kiln's native loops
// called inside it run on the calling thread only (nested regions are inactive), so the
// parts' primitives are best created for one thread (ThreadLimit).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "base/status.h"
#include "base/tensor.h"
#include "runtime/executable.h"

namespace kiln::runtime {

// Limits the OpenMP team of the calling thread to `threads` while it lives (oneDNN sizes
// primitives created meanwhile for that many threads).
class ThreadLimit {
 public:
  explicit ThreadLimit(int threads);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int previous_;
};

// The number of threads an OpenMP parallel region would use now (omp_get_max_threads).
int MaxThreads();

// Runs fn(0), ..., fn(count - 1) at once, one OpenMP thread each (sequentially when
// count == 1). Returns the error of the lowest k that failed, else OK.
Status RunConcurrently(int count, const std::function<Status(int)>& fn);

class BatchStreams {
 public:
  // `parts` run rows [0, n0), [n0, n0 + n1), ... of each input and output, where n_k is the
  // batch (axis 0) of part k. Every part must have the same inputs and outputs (names,
  // dtypes, shapes apart from axis 0), each of rank >= 1. Errors: InvalidArgument naming
  // the part and the tensor that disagree; InvalidArgument for no parts.
  static StatusOr<std::unique_ptr<BatchStreams>> Create(std::vector<std::unique_ptr<Session>> parts);

  // Runs every part at once, one OpenMP thread each. `inputs` follow the parts' input order
  // and must have the summed batch; `outputs` are resized like Session::Run. Errors:
  // InvalidArgument naming the input and both shapes; the first failing part's error,
  // prefixed with its rows ("stream 1 (rows 128..255): ...").
  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs);

  int num_streams() const { return static_cast<int>(parts_.size()); }
  int64_t batch() const { return batch_; }
  Session& part(int k) { return *parts_[static_cast<size_t>(k)]; }

 private:
  explicit BatchStreams(std::vector<std::unique_ptr<Session>> parts);
  std::vector<std::unique_ptr<Session>> parts_;
  std::vector<int64_t> first_row_;  // per part
  int64_t batch_ = 0;
};

}  // namespace kiln::runtime
