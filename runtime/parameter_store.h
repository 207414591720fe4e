// ParamEntry and ParameterStore: every weight and optimizer-state tensor, its version and
// residency, named and bound by sessions; save/load in MXNet's .params format (nd.save of a dict), so files are
// interchangeable with Gluon's save_parameters/load_parameters for f32 and s32 arrays.
//
// File layout (little-endian; GLUON_SEMANTICS.md section 7, MXNet src/ndarray/ndarray.cc):
//   u64 0x112 · u64 0 · u64 N · N records · u64 N · N names (u64 length + bytes)
//   record: u32 0xF993FAC9 · i32 stype 0 · i32 ndim · ndim x i64 dims · i32 dev_type 1 ·
//           i32 dev_id 0 · i32 type_flag (0 f32, 4 s32) · raw data
//   then kiln's checksum trailer (24 bytes): "KILNCRC1" · u64 P · u32 CRC-32 · u32 0, where
//   P is the number of bytes before the trailer and the CRC-32 (zlib's) covers them.
//
// Why a trailer and not a sidecar file: it is written and renamed together with the data
// (one atomic file, never a stale or lost companion), and MXNet's NDArray::Load reads the
// header, the arrays and the names and stops there, so Gluon's load_parameters reads kiln's
// files unchanged. Files without the trailer (written by Gluon) load without a check; a
// file whose trailer does not match its bytes is DataLoss, so flipped weight bytes are
// detected instead of loaded.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/tensor.h"

namespace kiln::runtime {

// Something that holds newer copies of parameter entries than their dense values: a
// Session whose executable keeps updated weights in the steps' layouts between runs
// (resident parameters, codegen::LowerOptions::resident_params).
class ResidencyHolder {
 public:
  virtual ~ResidencyHolder() = default;
  // Writes the newer copies back into the entries' dense values and stops holding every
  // entry it holds. Errors: from the write-back steps.
  virtual Status Release() = 0;
};

// One weight or optimizer-state tensor, the unit of ownership: its dense value (NCHW/OIHW
// row-major, the address sessions bind), a version that every write through the entry or
// by a session's update bumps, and the holder, if any, whose resident copy is newer than
// the dense value. Reading or writing through the entry keeps the copies coherent by
// itself: the holder writes back first, and a write makes every session's prepacked or
// resident copy stale (a session compares versions before it runs). Entries are shared:
// graph::Parameter and graph::Trainer hold handles, ParameterStore names them, sessions
// bind them. Not thread-safe (as Gluon's parameters); sessions of one entry run one at a time.
class ParamEntry {
 public:
  explicit ParamEntry(Tensor value) : value_(std::move(value)) {}
  // The dense value to read. Errors: the holder's write-back.
  StatusOr<const Tensor*> Read();
  // The dense value to change in place: as Read, and the version is bumped.
  StatusOr<Tensor*> Mutable();
  // Replaces the value: copied into the bound buffer when dtype and shape agree (sessions
  // keep its address), else a new buffer (sessions bound to the old one must be rebuilt).
  // Errors: the holder's write-back.
  Status Write(Tensor value);
  // Writes the holder's copy back (if any); the version does not change.
  Status Sync();

  // The dense tensor without syncing: for binding addresses, not for reading values.
  Tensor& value() { return value_; }
  const Tensor& value() const { return value_; }
  uint64_t version() const { return version_; }
  void BumpVersion() { ++version_; }
  ResidencyHolder* holder() const { return holder_; }
  void set_holder(ResidencyHolder* holder) { holder_ = holder; }

 private:
  Tensor value_;
  uint64_t version_ = 0;
  ResidencyHolder* holder_ = nullptr;
};

// Named parameters and optimizer state (entries), bound by sessions by name
// (Session::Create(exe, store)); save/load in MXNet's .params format.
class ParameterStore {
 public:
  // Adds `name` with `value`, or writes `value` into the existing entry (ParamEntry::Write;
  // a holder's write-back error is returned).
  Status Set(const std::string& name, Tensor value);
  // Adds an existing entry under `name` (sharing it, e.g. a graph::Parameter's).
  void Add(const std::string& name, std::shared_ptr<ParamEntry> entry) { entries_[name] = std::move(entry); }
  // The entry named `name`, or null.
  std::shared_ptr<ParamEntry> entry(const std::string& name) const;
  // The dense tensor named `name` without syncing (binding), or nullptr.
  Tensor* Find(const std::string& name);
  const Tensor* Find(const std::string& name) const;
  bool Has(const std::string& name) const { return entries_.count(name) != 0; }
  void Erase(const std::string& name) { entries_.erase(name); }
  // Names in sorted order (as Gluon's ParameterDict).
  std::vector<std::string> Names() const;

  // Writes the tensors named in `names` (all when empty) to `path` atomically: to
  // "<path>.tmp.<pid>" first, flushed, then renamed over `path`, so a crash never leaves
  // a half-written file. Holders write back first. Errors: NotFound for an unknown name;
  // InvalidArgument on I/O failure; a holder's write-back error.
  Status Save(const std::string& path, const std::vector<std::string>& names = {}) const;

  // Reads `path` and sets every tensor in it (ParamEntry::Write). With `require_existing`
  // each file entry must name a tensor already in the store with the same dtype and shape,
  // and every tensor in the store must be in the file (Gluon's allow_missing=False,
  // ignore_extra=False). Nothing in the store changes unless the whole file is valid.
  // Errors: NotFound (no such file), DataLoss (truncated or not a .params file, with the
  // byte offset), InvalidArgument (missing/extra names, shape or dtype mismatch).
  Status Load(const std::string& path, bool require_existing = true);

 private:
  std::map<std::string, std::shared_ptr<ParamEntry>> entries_;
};

// Writes (name, tensor) pairs to `path` in the .params format with the checksum trailer,
// atomically (temp file, fsync, rename). Errors: InvalidArgument on an I/O failure, naming the path.
Status WriteParamsFile(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& entries);

// Reads a .params file into name -> tensor. Errors as ParameterStore::Load, and DataLoss
// when the checksum trailer does not match the bytes before it.
StatusOr<std::map<std::string, Tensor>> ReadParamsFile(const std::string& path);

// The same from the file's bytes (untrusted: every count, rank, dim and length is checked
// against the bytes left); `path` names the source in errors.
StatusOr<std::map<std::string, Tensor>> ParseParams(std::string bytes, const std::string& path);

// True when `bytes` end with a kiln checksum trailer that covers all bytes before it (the
// CRC itself is checked by ParseParams).
bool HasParamsChecksum(const std::string& bytes);

}  // namespace kiln::runtime
