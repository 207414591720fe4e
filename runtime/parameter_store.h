// ParameterStore: named parameters and optimizer state, owned by the host and bound by
// sessions; save/load in MXNet's .params format (nd.save of a dict), so files are
// interchangeable with Gluon's save_parameters/load_parameters for f32 and s32 arrays.
//
// File layout (little-endian; GLUON_SEMANTICS.md section 7, MXNet src/ndarray/ndarray.cc):
//   u64 0x112 · u64 0 · u64 N · N records · u64 N · N names (u64 length + bytes)
//   record: u32 0xF993FAC9 · i32 stype 0 · i32 ndim · ndim x i64 dims · i32 dev_type 1 ·
//           i32 dev_id 0 · i32 type_flag (0 f32, 4 s32) · raw data
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/tensor.h"

namespace kiln::runtime {

class ParameterStore {
 public:
  // Adds or replaces `name`.
  void Set(const std::string& name, Tensor value) { tensors_[name] = std::move(value); }
  // The tensor named `name`, or nullptr.
  Tensor* Find(const std::string& name);
  const Tensor* Find(const std::string& name) const;
  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  void Erase(const std::string& name) { tensors_.erase(name); }
  // Names in sorted order (as Gluon's ParameterDict).
  std::vector<std::string> Names() const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

  // Writes the tensors named in `names` (all when empty) to `path` atomically: to
  // "<path>.tmp.<pid>" first, flushed, then renamed over `path`, so a crash never leaves
  // a half-written file. Errors: NotFound for an unknown name; InvalidArgument on I/O failure.
  Status Save(const std::string& path, const std::vector<std::string>& names = {}) const;

  // Reads `path` and sets every tensor in it. With `require_existing` each file entry
  // must name a tensor already in the store with the same dtype and shape, and every
  // tensor in the store must be in the file (Gluon's allow_missing=False,
  // ignore_extra=False). Nothing in the store changes unless the whole file is valid.
  // Errors: NotFound (no such file), DataLoss (truncated or not a .params file, with the
  // byte offset), InvalidArgument (missing/extra names, shape or dtype mismatch).
  Status Load(const std::string& path, bool require_existing = true);

 private:
  std::map<std::string, Tensor> tensors_;
};

// Writes (name, tensor) pairs to `path` in the .params format, atomically (temp file,
// fsync, rename). Errors: InvalidArgument on an I/O failure, naming the path.
Status WriteParamsFile(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& entries);

// Reads a .params file into name -> tensor. Errors as ParameterStore::Load.
StatusOr<std::map<std::string, Tensor>> ReadParamsFile(const std::string& path);

}  // namespace kiln::runtime
