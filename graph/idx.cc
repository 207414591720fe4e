#include "graph/idx.h"

#include <cstdio>
#include <memory>
#include <utility>

namespace kiln::graph {
namespace {

constexpr uint8_t kUbyteType = 0x08;

uint32_t BigEndian32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Reads the whole file into `bytes`.
Status ReadWholeFile(const std::string& path, std::vector<uint8_t>& bytes) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return NotFound("cannot open IDX file " + path);
  if (std::fseek(f.get(), 0, SEEK_END) != 0) return DataLoss("cannot seek in IDX file " + path);
  const long size = std::ftell(f.get());
  if (size < 0 || std::fseek(f.get(), 0, SEEK_SET) != 0) return DataLoss("cannot size IDX file " + path);
  bytes.resize(static_cast<size_t>(size));
  if (size > 0 && std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    return DataLoss("short read of IDX file " + path);
  }
  return OkStatus();
}

// Checks the magic and the size of an IDX ubyte file with `num_dims` dims and returns the dims.
// The data starts at byte 4 + 4 * num_dims.
StatusOr<std::vector<int64_t>> ParseHeader(const std::string& path, const std::vector<uint8_t>& bytes,
                                           int num_dims, const char* what) {
  const uint64_t header_bytes = 4 + 4 * static_cast<uint64_t>(num_dims);
  const uint64_t file_bytes = bytes.size();
  if (file_bytes < 4) {
    return DataLoss(std::string("IDX ") + what + " file " + path + " is truncated: " + std::to_string(file_bytes) +
                    " bytes, shorter than the 4-byte magic");
  }
  const uint32_t magic = BigEndian32(bytes.data());
  const uint32_t expected_magic = (static_cast<uint32_t>(kUbyteType) << 8) | static_cast<uint32_t>(num_dims);
  if (magic != expected_magic) {
    return InvalidArgument(std::string("IDX ") + what + " file " + path + " has magic " + Hex32(magic) +
                           ", expected " + Hex32(expected_magic) + " (unsigned byte, " +
                           std::to_string(num_dims) + " dims)");
  }
  if (file_bytes < header_bytes) {
    return DataLoss(std::string("IDX ") + what + " file " + path + " is truncated: " + std::to_string(file_bytes) +
                    " bytes, shorter than its " + std::to_string(header_bytes) + "-byte header");
  }
  std::vector<int64_t> dims(num_dims);
  uint64_t data_bytes = 1;
  bool overflow = false;
  for (int i = 0; i < num_dims; ++i) {
    dims[i] = BigEndian32(bytes.data() + 4 + 4 * i);
    overflow = overflow || __builtin_mul_overflow(data_bytes, static_cast<uint64_t>(dims[i]), &data_bytes);
  }
  std::string dims_text;
  for (int i = 0; i < num_dims; ++i) dims_text += (i ? "," : "") + std::to_string(dims[i]);
  const uint64_t payload_bytes = file_bytes - header_bytes;
  if (overflow || data_bytes > payload_bytes) {
    return DataLoss(std::string("IDX ") + what + " file " + path + " is truncated: header dims [" + dims_text +
                    "] need " + (overflow ? std::string("more than 2^64") : std::to_string(data_bytes)) +
                    " data bytes, the file has " + std::to_string(payload_bytes) + " after the " +
                    std::to_string(header_bytes) + "-byte header (" + std::to_string(file_bytes) + " bytes in all)");
  }
  if (data_bytes < payload_bytes) {
    return DataLoss(std::string("IDX ") + what + " file " + path + " has " +
                    std::to_string(payload_bytes - data_bytes) + " trailing bytes: header dims [" + dims_text + "] need " + std::to_string(data_bytes) +
                    " data bytes, the file has " + std::to_string(payload_bytes) + " after the header");
  }
  return dims;
}

}  // namespace

StatusOr<IdxImages> ReadIdxImages(const std::string& path) {
  std::vector<uint8_t> bytes;
  RETURN_IF_ERROR(ReadWholeFile(path, bytes));
  ASSIGN_OR_RETURN(std::vector<int64_t> dims, ParseHeader(path, bytes, /*num_dims=*/3, "images"));
  if (dims[1] == 0 || dims[2] == 0) {
    return InvalidArgument("IDX images file " + path + " has an empty image size rows=" + std::to_string(dims[1]) +
                           " cols=" + std::to_string(dims[2]));
  }
  IdxImages images;
  images.count = dims[0];
  images.rows = dims[1];
  images.cols = dims[2];
  images.pixels.assign(bytes.begin() + 16, bytes.end());
  return images;
}

StatusOr<std::vector<int32_t>> ReadIdxLabels(const std::string& path) {
  std::vector<uint8_t> bytes;
  RETURN_IF_ERROR(ReadWholeFile(path, bytes));
  ASSIGN_OR_RETURN(std::vector<int64_t> dims, ParseHeader(path, bytes, /*num_dims=*/1, "labels"));
  (void)dims;
  return std::vector<int32_t>(bytes.begin() + 8, bytes.end());
}

StatusOr<Dataset> LoadIdxDataset(const std::string& dir, bool train) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte";
  const std::string labels_path = prefix + "-labels-idx1-ubyte";
  Dataset dataset;
  ASSIGN_OR_RETURN(dataset.images, ReadIdxImages(images_path));
  ASSIGN_OR_RETURN(dataset.labels, ReadIdxLabels(labels_path));
  if (static_cast<int64_t>(dataset.labels.size()) != dataset.images.count) {
    return InvalidArgument("IDX data set " + dir + ": " + std::to_string(dataset.images.count) + " images in " +
                           images_path + " but " + std::to_string(dataset.labels.size()) + " labels in " +
                           labels_path);
  }
  return dataset;
}

}  // namespace kiln::graph
