#include "runtime/parameter_store.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <zlib.h>

#include "base/atomic_file.h"

namespace kiln::runtime {
namespace {

constexpr uint64_t kListMagic = 0x112;
// The checksum trailer: "KILNCRC1" · u64 payload bytes · u32 CRC-32 · u32 0.
constexpr char kTrailerMagic[8] = {'K', 'I', 'L', 'N', 'C', 'R', 'C', '1'};
constexpr size_t kTrailerBytes = 24;

uint32_t Crc32(const void* data, size_t size) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  return static_cast<uint32_t>(crc32_z(crc, static_cast<const Bytef*>(data), size));
}
constexpr uint32_t kArrayMagicV2 = 0xF993FAC9;
constexpr int32_t kTypeF32 = 0;
constexpr int32_t kTypeS32 = 4;

template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes) : path_(path), b_(bytes) {}
  template <typename T>
  Status Get(T& v, const char* what) {
    if (pos_ + sizeof(T) > b_.size()) return Truncated(what);
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return OkStatus();
  }
  Status Bytes(void* dst, size_t n, const char* what) {
    if (n > b_.size() - pos_) return Truncated(what);
    std::memcpy(dst, b_.data() + pos_, n);
    pos_ += n;
    return OkStatus();
  }
  Status Bad(const std::string& m) const {
    return DataLoss("'" + path_ + "' is not a valid .params file: " + m + " at byte " + std::to_string(pos_));
  }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  Status Truncated(const char* what) const {
    return DataLoss("'" + path_ + "' is truncated: reading " + what + " at byte " + std::to_string(pos_) + " of " +
                    std::to_string(b_.size()));
  }
  const std::string& path_;
  const std::string& b_;
  size_t pos_ = 0;
};

}  // namespace

StatusOr<const Tensor*> ParamEntry::Read() {
  RETURN_IF_ERROR(Sync());
  return &value_;
}

StatusOr<Tensor*> ParamEntry::Mutable() {
  RETURN_IF_ERROR(Sync());
  ++version_;
  return &value_;
}

Status ParamEntry::Write(Tensor value) {
  RETURN_IF_ERROR(Sync());
  ++version_;
  if (!value_.empty() && value_.dtype() == value.dtype() && value_.shape() == value.shape()) {
    if (value.size_bytes() > 0) std::memcpy(value_.data(), value.data(), static_cast<size_t>(value.size_bytes()));
  } else {
    value_ = std::move(value);
  }
  return OkStatus();
}

Status ParamEntry::Sync() {
  if (holder_ == nullptr) return OkStatus();
  return holder_->Release();  // clears holder_ of every entry it holds
}

Status ParameterStore::Set(const std::string& name, Tensor value) {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    entries_[name] = std::make_shared<ParamEntry>(std::move(value));
    return OkStatus();
  }
  return it->second->Write(std::move(value));
}

std::shared_ptr<ParamEntry> ParameterStore::entry(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

Tensor* ParameterStore::Find(const std::string& name) {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second->value();
}

const Tensor* ParameterStore::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second->value();
}

std::vector<std::string> ParameterStore::Names() const {
  std::vector<std::string> names;
  for (const auto& [n, t] : entries_) names.push_back(n);
  return names;
}

Status ParameterStore::Save(const std::string& path, const std::vector<std::string>& names) const {
  std::vector<std::pair<std::string, const Tensor*>> entries;
  for (const std::string& k : names.empty() ? Names() : names) {
    std::shared_ptr<ParamEntry> e = entry(k);
    if (!e) return NotFound("cannot save parameter '" + k + "': not in the store");
    ASSIGN_OR_RETURN(const Tensor* t, e->Read());
    entries.emplace_back(k, t);
  }
  return WriteParamsFile(path, entries);
}

Status WriteParamsFile(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& entries) {
  std::string out;
  Put<uint64_t>(out, kListMagic);
  Put<uint64_t>(out, 0);
  Put<uint64_t>(out, entries.size());
  for (const auto& [k, t] : entries) {
    Put<uint32_t>(out, kArrayMagicV2);
    Put<int32_t>(out, 0);  // dense storage
    Put<int32_t>(out, static_cast<int32_t>(t->shape().size()));
    for (int64_t d : t->shape()) Put<int64_t>(out, d);
    Put<int32_t>(out, 1);  // cpu
    Put<int32_t>(out, 0);  // device id
    Put<int32_t>(out, t->dtype() == DType::kF32 ? kTypeF32 : kTypeS32);
    out.append(static_cast<const char*>(t->data()), static_cast<size_t>(t->size_bytes()));
  }
  Put<uint64_t>(out, entries.size());
  for (const auto& [k, t] : entries) {
    Put<uint64_t>(out, k.size());
    out += k;
  }
  // The checksum trailer (parameter_store.h): MXNet's NDArray::Load stops after the names.
  uint64_t payload = out.size();
  uint32_t crc = Crc32(out.data(), out.size());
  out.append(kTrailerMagic, 8);
  Put<uint64_t>(out, payload);
  Put<uint32_t>(out, crc);
  Put<uint32_t>(out, 0);
  return WriteFileAtomically(path, out, "parameter file");
}

StatusOr<std::map<std::string, Tensor>> ReadParamsFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument("parameter file '" + path + "' is a directory, not a .params file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open parameter file '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return DataLoss("cannot read parameter file '" + path + "'");
  return ParseParams(bytes, path);
}

bool HasParamsChecksum(const std::string& bytes) {
  if (bytes.size() < kTrailerBytes) return false;
  const char* t = bytes.data() + bytes.size() - kTrailerBytes;
  uint64_t payload = 0;
  std::memcpy(&payload, t + 8, 8);
  return std::memcmp(t, kTrailerMagic, 8) == 0 && payload == bytes.size() - kTrailerBytes;
}

StatusOr<std::map<std::string, Tensor>> ParseParams(std::string bytes, const std::string& path) {
  if (HasParamsChecksum(bytes)) {
    const char* t = bytes.data() + bytes.size() - kTrailerBytes;
    uint32_t stored = 0;
    std::memcpy(&stored, t + 16, 4);
    size_t payload = bytes.size() - kTrailerBytes;
    uint32_t actual = Crc32(bytes.data(), payload);
    if (stored != actual) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "CRC-32 0x%08x of its first %zu bytes, the trailer says 0x%08x", actual, payload,
                    stored);
      return DataLoss("'" + path + "' is corrupted: " + buf +
                      " (bytes changed after kiln wrote it: a bad disk, a partial copy or an edit)");
    }
    bytes.resize(payload);
  }
  Reader r(path, bytes);
  uint64_t magic = 0, reserved = 0, n = 0;
  RETURN_IF_ERROR(r.Get(magic, "the header"));
  if (magic != kListMagic) return r.Bad("wrong magic number");
  RETURN_IF_ERROR(r.Get(reserved, "the header"));
  RETURN_IF_ERROR(r.Get(n, "the array count"));
  if (n > bytes.size()) return r.Bad("array count " + std::to_string(n) + " exceeds the file size");
  std::vector<Tensor> arrays;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t amagic = 0;
    int32_t stype = 0, ndim = 0, dev_type = 0, dev_id = 0, type_flag = 0;
    RETURN_IF_ERROR(r.Get(amagic, "an array header"));
    if (amagic != kArrayMagicV2) return r.Bad("unsupported array record version");
    RETURN_IF_ERROR(r.Get(stype, "an array header"));
    if (stype != 0) return r.Bad("sparse arrays are not supported");
    RETURN_IF_ERROR(r.Get(ndim, "an array shape"));
    if (ndim < 0 || ndim > 8) return r.Bad("rank " + std::to_string(ndim) + " is out of range");
    Shape shape(static_cast<size_t>(ndim));
    int64_t elements = 1;
    for (auto& d : shape) {
      RETURN_IF_ERROR(r.Get(d, "an array shape"));
      if (d < 0 || d > (int64_t{1} << 40)) return r.Bad("dim " + std::to_string(d) + " is out of range");
      elements *= d;
      if (elements > static_cast<int64_t>(bytes.size())) return r.Bad("array larger than the file");
    }
    RETURN_IF_ERROR(r.Get(dev_type, "an array context"));
    RETURN_IF_ERROR(r.Get(dev_id, "an array context"));
    RETURN_IF_ERROR(r.Get(type_flag, "an array dtype"));
    DType dtype;
    if (type_flag == kTypeF32) {
      dtype = DType::kF32;
    } else if (type_flag == kTypeS32) {
      dtype = DType::kS32;
    } else {
      return r.Bad("unsupported dtype flag " + std::to_string(type_flag) + " (kiln reads f32 and s32)");
    }
    Tensor t(dtype, shape);
    RETURN_IF_ERROR(r.Bytes(t.data(), static_cast<size_t>(t.size_bytes()), "array data"));
    arrays.push_back(std::move(t));
  }
  uint64_t k = 0;
  RETURN_IF_ERROR(r.Get(k, "the name count"));
  if (k != n) return r.Bad("name count " + std::to_string(k) + " does not match array count " + std::to_string(n));
  std::map<std::string, Tensor> out;
  for (uint64_t i = 0; i < k; ++i) {
    uint64_t len = 0;
    RETURN_IF_ERROR(r.Get(len, "a name length"));
    if (len > 4096) return r.Bad("name length " + std::to_string(len) + " is out of range");
    std::string name(static_cast<size_t>(len), '\0');
    RETURN_IF_ERROR(r.Bytes(name.data(), static_cast<size_t>(len), "a name"));
    if (out.count(name)) return r.Bad("duplicate name '" + name + "'");
    out[name] = std::move(arrays[static_cast<size_t>(i)]);
  }
  if (!r.AtEnd()) return r.Bad("trailing bytes after the names (and no valid kiln checksum trailer)");
  return out;
}

Status ParameterStore::Load(const std::string& path, bool require_existing) {
  ASSIGN_OR_RETURN(auto loaded, ReadParamsFile(path));
  if (require_existing) {
    for (const auto& [name, t] : entries_) {
      if (!loaded.count(name)) {
        return InvalidArgument("parameter '" + name + "' is missing in file '" + path + "'");
      }
    }
    for (const auto& [name, t] : loaded) {
      const Tensor* cur = Find(name);
      if (!cur) return InvalidArgument("parameter '" + name + "' loaded from file '" + path + "' is not in the store");
      if (cur->dtype() != t.dtype() || cur->shape() != t.shape()) {
        return InvalidArgument("parameter '" + name + "': shape incompatible, expected " +
                               std::string(DTypeName(cur->dtype())) + ShapeToString(cur->shape()) + " vs saved " +
                               std::string(DTypeName(t.dtype())) + ShapeToString(t.shape()));
      }
    }
  }
  for (auto& [name, t] : loaded) RETURN_IF_ERROR(Set(name, std::move(t)));
  return OkStatus();
}

}  // namespace kiln::runtime
