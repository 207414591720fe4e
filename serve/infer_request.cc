#include "serve/infer_request.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace kiln::serve {

using json = nlohmann::json;

std::string KServeDatatype(DType dtype) { return dtype == DType::kF32 ? "FP32" : "INT32"; }

namespace {

constexpr int kMaxDepth = 64;

// A datatype on the wire (KServe names) and the values it can carry.
struct Wire {
  const char* name;
  int bytes;
  bool integer;
  double lo, hi;
};

constexpr Wire kWires[] = {
    {"FP32", 4, false, -3.4028234663852886e38, 3.4028234663852886e38},
    {"FP64", 8, false, -1.7976931348623157e308, 1.7976931348623157e308},
    {"FP16", 2, false, -65504.0, 65504.0},
    {"BF16", 2, false, -3.3895313892515355e38, 3.3895313892515355e38},
    {"INT8", 1, true, -128.0, 127.0},
    {"UINT8", 1, true, 0.0, 255.0},
    {"INT16", 2, true, -32768.0, 32767.0},
    {"UINT16", 2, true, 0.0, 65535.0},
    {"INT32", 4, true, -2147483648.0, 2147483647.0},
    {"UINT32", 4, true, 0.0, 4294967295.0},
    {"INT64", 8, true, -9223372036854775808.0, 9223372036854775807.0},
    {"UINT64", 8, true, 0.0, 18446744073709551615.0},
};

const Wire* FindWire(const std::string& name) {
  for (const Wire& w : kWires) {
    if (name == w.name) return &w;
  }
  return nullptr;
}

float HalfToFloat(uint16_t h) {
  int exp = (h >> 10) & 0x1f;
  int mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// Element `i` of little-endian binary data of datatype `w`, as a double.
double Decode(const Wire& w, const uint8_t* p, size_t i) {
  p += i * static_cast<size_t>(w.bytes);
  std::string_view n = w.name;
  auto load = [&](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  if (n == "FP32") return load(float{});
  if (n == "FP64") return load(double{});
  if (n == "FP16") return HalfToFloat(load(uint16_t{}));
  if (n == "BF16") {
    uint32_t bits = static_cast<uint32_t>(load(uint16_t{})) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  if (n == "INT8") return load(int8_t{});
  if (n == "UINT8") return load(uint8_t{});
  if (n == "INT16") return load(int16_t{});
  if (n == "UINT16") return load(uint16_t{});
  if (n == "INT32") return load(int32_t{});
  if (n == "UINT32") return load(uint32_t{});
  if (n == "INT64") return static_cast<double>(load(int64_t{}));
  return static_cast<double>(load(uint64_t{}));
}

std::string NumberText(double v) {
  char buf[40];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e19) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

std::string Quote(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ShapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// The SAX handler: a stack of what each open container is, and the inputs as they come.
class RequestReader : public nlohmann::json_sax<json> {
 public:
  RequestReader(const ModelSignature& sig, std::string_view binary, bool has_binary)
      : sig_(sig), binary_(binary), has_binary_(has_binary) {
    for (const auto& s : sig.inputs) {
      int64_t row = 1;
      for (size_t i = 1; i < s.shape.size(); ++i) row *= s.shape[i];
      max_values_ = std::max(max_values_, row * sig.max_batch);
    }
    request_.inputs.resize(sig.inputs.size());
    seen_.assign(sig.inputs.size(), false);
  }

  Status status() const { return status_; }
  InferRequest Take() { return std::move(request_); }

  // The whole document was read: check what must be there.
  Status Finish() {
    if (!has_inputs_) return InvalidArgument("the request needs a non-empty \"inputs\" array");
    for (size_t i = 0; i < sig_.inputs.size(); ++i) {
      if (!seen_[i]) return InvalidArgument("input '" + sig_.inputs[i].name + "' is missing");
    }
    if (has_binary_ && binary_used_ != binary_.size()) {
      return InvalidArgument("the body has " + std::to_string(binary_.size()) + " bytes of binary data after the JSON, " +
                             "the inputs' binary_data_size add up to " + std::to_string(binary_used_));
    }
    if (request_.outputs.empty()) {
      for (size_t i = 0; i < sig_.outputs.size(); ++i) {
        request_.outputs.push_back(static_cast<int>(i));
        output_binary_.push_back(std::nullopt);
      }
    }
    for (const auto& b : output_binary_) request_.binary_outputs.push_back(b.value_or(binary_output_default_));
    return OkStatus();
  }

  bool null() override { return Scalar(Kind::kNull); }
  bool boolean(bool v) override {
    if (!Scalar(Kind::kBool)) return false;
    const Frame& f = frames_.back();
    if (f.role == Role::kRequestParams && f.key == "binary_data_output") binary_output_default_ = v;
    if (f.role == Role::kOutputParams && f.key == "binary_data") current_output_binary_ = v;
    return true;
  }
  bool number_integer(number_integer_t v) override { return Number(static_cast<double>(v), true); }
  bool number_unsigned(number_unsigned_t v) override { return Number(static_cast<double>(v), true); }
  bool number_float(number_float_t v, const string_t&) override { return Number(v, false); }
  bool string(string_t& v) override { return String(v); }
  bool binary(binary_t&) override { return Error("binary values are not JSON"); }
  bool key(string_t& k) override {
    frames_.back().key = k;
    return true;
  }
  bool start_object(std::size_t) override { return Open(true); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(false); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    std::string what = e.what();
    // nlohmann's text: "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    if (size_t at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
    if (status_.ok()) status_ = InvalidArgument("malformed JSON in the request body at byte " + std::to_string(position) + ": " + what);
    return false;
  }

 private:
  enum class Role {
    kRoot, kRequestParams, kInputs, kInput, kInputParams, kShape, kData, kOutputs, kOutput, kOutputParams, kSkip
  };
  enum class Kind { kNull, kBool, kNumber, kString, kObject, kArray };
  struct Frame {
    Role role;
    bool object;
    std::string key;  // the current key, for objects
  };
  // One entry of "inputs" while it is read.
  struct Pending {
    std::optional<std::string> name, datatype;
    std::optional<std::vector<int64_t>> shape;
    bool has_data = false;
    std::optional<int64_t> binary_size;
    std::vector<double> data;
    int64_t first_fraction = -1;  // index of the first non-integer literal
  };

  static const char* KindName(Kind k) {
    switch (k) {
      case Kind::kNull: return "null";
      case Kind::kBool: return "a boolean";
      case Kind::kNumber: return "a number";
      case Kind::kString: return "a string";
      case Kind::kObject: return "an object";
      case Kind::kArray: return "an array";
    }
    return "?";
  }

  bool Error(std::string message) {
    if (status_.ok()) status_ = InvalidArgument(std::move(message));
    return false;
  }

  std::string InputLabel() const {
    return pending_.name ? "input '" + *pending_.name + "'" : "input #" + std::to_string(input_count_);
  }

  // What a value at the current position is, or an error for a value of the wrong kind.
  // Returns the role of a container opened here.
  std::optional<Role> Place(Kind kind) {
    if (frames_.empty()) {
      if (kind != Kind::kObject) {
        Error(std::string("the request body must be a JSON object, got ") + KindName(kind));
        return std::nullopt;
      }
      return Role::kRoot;
    }
    Frame& f = frames_.back();
    auto want = [&](bool ok, const std::string& what) -> bool {
      if (!ok) Error(what + ", got " + KindName(kind));
      return ok;
    };
    switch (f.role) {
      case Role::kSkip: return Role::kSkip;
      case Role::kRoot:
        if (f.key == "inputs") {
          if (!want(kind == Kind::kArray, "\"inputs\" must be an array")) return std::nullopt;
          if (has_inputs_key_) return Error("\"inputs\" is given twice"), std::nullopt;
          has_inputs_key_ = true;
          return Role::kInputs;
        }
        if (f.key == "outputs") {
          if (!want(kind == Kind::kArray, "\"outputs\" must be an array")) return std::nullopt;
          if (has_outputs_key_) return Error("\"outputs\" is given twice"), std::nullopt;
          has_outputs_key_ = true;
          return Role::kOutputs;
        }
        if (f.key == "id" && !want(kind == Kind::kString, "\"id\" must be a string")) return std::nullopt;
        if (f.key == "parameters") {
          if (!want(kind == Kind::kObject, "\"parameters\" must be an object")) return std::nullopt;
          return Role::kRequestParams;
        }
        return Role::kSkip;
      case Role::kRequestParams:
        if (f.key == "binary_data_output" && !want(kind == Kind::kBool, "\"binary_data_output\" must be a boolean")) {
          return std::nullopt;
        }
        return Role::kSkip;
      case Role::kInputParams:
        if (f.key == "binary_data_size" &&
            !want(kind == Kind::kNumber, InputLabel() + ": \"binary_data_size\" must be a number of bytes")) {
          return std::nullopt;
        }
        return Role::kInputParams;
      case Role::kOutputParams:
        if (f.key == "binary_data" && !want(kind == Kind::kBool, "\"binary_data\" of an output must be a boolean")) {
          return std::nullopt;
        }
        return Role::kSkip;
      case Role::kInputs:
        if (!want(kind == Kind::kObject, "each entry of \"inputs\" must be an object")) return std::nullopt;
        return Role::kInput;
      case Role::kInput:
        if (f.key == "name" || f.key == "datatype") {
          if (!want(kind == Kind::kString, InputLabel() + ": \"" + f.key + "\" must be a string")) return std::nullopt;
        } else if (f.key == "shape") {
          if (!want(kind == Kind::kArray, InputLabel() + ": \"shape\" must be an array")) return std::nullopt;
          if (pending_.shape) return Error(InputLabel() + ": \"shape\" is given twice"), std::nullopt;
          pending_.shape.emplace();
          return Role::kShape;
        } else if (f.key == "data") {
          if (!want(kind == Kind::kArray, InputLabel() + ": \"data\" must be an array")) return std::nullopt;
          if (pending_.has_data) return Error(InputLabel() + ": \"data\" is given twice"), std::nullopt;
          pending_.has_data = true;
          return Role::kData;
        } else if (f.key == "parameters") {
          if (!want(kind == Kind::kObject, InputLabel() + ": \"parameters\" must be an object")) return std::nullopt;
          return Role::kInputParams;
        }
        return Role::kSkip;
      case Role::kShape:
        if (!want(kind == Kind::kNumber, InputLabel() + ": \"shape\" must hold integers")) return std::nullopt;
        return Role::kShape;
      case Role::kData:
        if (kind != Kind::kNumber && kind != Kind::kArray) {
          Error(InputLabel() + ": data must be numbers (at index " + std::to_string(pending_.data.size()) + "), got " +
                KindName(kind));
          return std::nullopt;
        }
        return Role::kData;
      case Role::kOutputs:
        if (!want(kind == Kind::kObject, "each entry of \"outputs\" must be an object")) return std::nullopt;
        return Role::kOutput;
      case Role::kOutput:
        if (f.key == "name" && !want(kind == Kind::kString, "an entry of \"outputs\" has a \"name\" that is not a string")) {
          return std::nullopt;
        }
        if (f.key == "parameters") {
          if (!want(kind == Kind::kObject, "\"parameters\" of an output must be an object")) return std::nullopt;
          return Role::kOutputParams;
        }
        return Role::kSkip;
    }
    return std::nullopt;
  }

  bool Open(bool object) {
    auto role = Place(object ? Kind::kObject : Kind::kArray);
    if (!role) return false;
    if (frames_.size() >= kMaxDepth) return Error("the request is nested deeper than " + std::to_string(kMaxDepth));
    if (*role == Role::kInput) {
      pending_ = Pending();
      input_count_++;
    }
    if (*role == Role::kOutput) {
      output_name_.reset();
      current_output_binary_.reset();
    }
    if (*role == Role::kInputParams && !frames_.empty() && frames_.back().role == Role::kInputParams) *role = Role::kSkip;
    frames_.push_back({*role, object, ""});
    return true;
  }

  bool Close() {
    Role role = frames_.back().role;
    frames_.pop_back();
    if (role == Role::kInput) return FinishInput();
    if (role == Role::kOutput) {
      if (!output_name_) return Error("each entry of \"outputs\" needs a \"name\" string");
      int index = -1;
      for (size_t i = 0; i < sig_.outputs.size(); ++i) {
        if (sig_.outputs[i].name == *output_name_) index = static_cast<int>(i);
      }
      if (index < 0) return Error("unknown output '" + *output_name_ + "'" + Known(sig_.outputs, "outputs"));
      request_.outputs.push_back(index);
      output_binary_.push_back(current_output_binary_);
    }
    return true;
  }

  bool Scalar(Kind kind) { return Place(kind).has_value(); }

  bool Number(double v, bool integer) {
    auto role = Place(Kind::kNumber);
    if (!role) return false;
    if (*role == Role::kShape) {
      if (!integer) return Error(InputLabel() + ": \"shape\" must hold integers");
      if (pending_.shape->size() >= 16) return Error(InputLabel() + ": \"shape\" has more than 16 dims");
      pending_.shape->push_back(static_cast<int64_t>(std::min(std::max(v, -1.0), 9.0e15)));
    } else if (*role == Role::kInputParams && frames_.back().key == "binary_data_size") {
      if (!integer || v < 0 || v > 9.0e15) {
        return Error(InputLabel() + ": \"binary_data_size\" must be a non-negative integer");
      }
      pending_.binary_size = static_cast<int64_t>(v);
    } else if (*role == Role::kData) {
      if (static_cast<int64_t>(pending_.data.size()) >= max_values_) {
        return Error(InputLabel() + ": data has more than " + std::to_string(max_values_) +
                     " values, more than any input of the model takes");
      }
      if (!integer && pending_.first_fraction < 0) pending_.first_fraction = static_cast<int64_t>(pending_.data.size());
      pending_.data.push_back(v);
    }
    return true;
  }

  bool String(const std::string& v) {
    auto role = Place(Kind::kString);
    if (!role) return false;
    const Frame& f = frames_.back();
    if (f.role == Role::kRoot && f.key == "id") request_.id = v;
    if (f.role == Role::kInput && f.key == "name") pending_.name = v;
    if (f.role == Role::kInput && f.key == "datatype") pending_.datatype = v;
    if (f.role == Role::kOutput && f.key == "name") output_name_ = v;
    return true;
  }

  static std::string Known(const std::vector<runtime::TensorSpec>& specs, const char* what) {
    std::string known;
    for (const auto& s : specs) known += (known.empty() ? "'" : ", '") + s.name + "'";
    return std::string(" (the model's ") + what + ": " + known + ")";
  }

  bool FinishInput() {
    has_inputs_ = true;
    Pending& p = pending_;
    if (!p.name) return Error("an input has no \"name\" string");
    const std::string& name = *p.name;
    int index = -1;  // the model input it names (AddInferInput reports an unknown one)
    for (size_t i = 0; i < sig_.inputs.size(); ++i) {
      if (sig_.inputs[i].name == name) index = static_cast<int>(i);
    }
    if (!p.datatype) {
      // Name checks first, so an unknown input is reported as such.
      if (index < 0) return Error("unknown input '" + name + "'" + Known(sig_.inputs, "inputs"));
      return Error("input '" + name + "' has no \"datatype\" string");
    }
    if (!p.shape) return Error("input '" + name + "' has no \"shape\" array");
    // Dims were clamped to [-1, 9e15] while read; AddInferInput refuses any that differ.
    const std::vector<int64_t>& shape = *p.shape;
    Status s;
    if (p.binary_size) {
      if (!has_binary_) {
        return Error("input '" + name + "' has \"binary_data_size\" but the request has no binary data " +
                     "(send the Inference-Header-Content-Length header)");
      }
      if (p.has_data) return Error("input '" + name + "' has both \"data\" and \"binary_data_size\"");
      int64_t want = *p.binary_size;
      if (want < 0) return Error("input '" + name + "': \"binary_data_size\" must be >= 0");
      // The size must match the shape (checked by AddInferInput) and the bytes be there.
      const Wire* wire = FindWire(*p.datatype);
      int64_t elements = 1;
      for (int64_t d : shape) elements = d > 0 && elements <= (int64_t{1} << 40) / d ? elements * d : elements;
      if (wire && !shape.empty() && want == elements * wire->bytes &&
          static_cast<int64_t>(binary_.size() - binary_used_) < want) {
        return Error("input '" + name + "': the binary data ends " +
                     std::to_string(want - static_cast<int64_t>(binary_.size() - binary_used_)) +
                     " bytes before its binary_data_size");
      }
      size_t take = std::min(static_cast<size_t>(want), binary_.size() - binary_used_);
      s = AddInferInput(sig_, name, *p.datatype, shape, reinterpret_cast<const uint8_t*>(binary_.data()) + binary_used_,
                        take, nullptr, "\"binary_data_size\" is", &seen_, &request_);
      if (s.ok()) binary_used_ += take;
    } else {
      if (index >= 0 && !p.has_data && !seen_[static_cast<size_t>(index)]) {
        return Error("input '" + name + "' has no \"data\"");
      }
      s = AddInferInput(sig_, name, *p.datatype, shape, nullptr, 0, &p.data, "\"data\" has", &seen_, &request_);
    }
    std::vector<double>().swap(p.data);
    if (!s.ok()) return Error(std::string(s.message()));
    return true;
  }

  const ModelSignature& sig_;
  std::string_view binary_;  // the bytes after the JSON header
  bool has_binary_ = false;
  size_t binary_used_ = 0;
  bool binary_output_default_ = false;
  std::optional<bool> current_output_binary_;
  std::vector<std::optional<bool>> output_binary_;  // per entry of request_.outputs
  Status status_;
  InferRequest request_;
  std::vector<Frame> frames_;
  std::vector<bool> seen_;
  Pending pending_;
  int input_count_ = 0;
  std::optional<std::string> output_name_;
  int64_t max_values_ = 0;
  bool has_inputs_ = false, has_inputs_key_ = false, has_outputs_key_ = false;
};

void AppendFloat(std::string* out, float v) {
  if (!std::isfinite(v)) {
    *out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

}  // namespace

Status AddInferInput(const ModelSignature& sig, const std::string& name, const std::string& datatype,
                     const std::vector<int64_t>& shape, const uint8_t* raw, size_t raw_bytes,
                     const std::vector<double>* values, std::string_view size_what, std::vector<bool>* given,
                     InferRequest* request) {
  auto error = [](std::string m) { return InvalidArgument(std::move(m)); };
  if (request->inputs.size() != sig.inputs.size()) request->inputs.resize(sig.inputs.size());
  if (given->size() != sig.inputs.size()) given->resize(sig.inputs.size(), false);
  int index = -1;
  for (size_t i = 0; i < sig.inputs.size(); ++i) {
    if (sig.inputs[i].name == name) index = static_cast<int>(i);
  }
  if (index < 0) {
    std::string known;
    for (const auto& s : sig.inputs) known += (known.empty() ? "'" : ", '") + s.name + "'";
    return error("unknown input '" + name + "' (the model's inputs: " + known + ")");
  }
  const runtime::TensorSpec& spec = sig.inputs[static_cast<size_t>(index)];
  if ((*given)[static_cast<size_t>(index)]) return error("input '" + name + "' is given twice");
  (*given)[static_cast<size_t>(index)] = true;
  const Wire* wire = FindWire(datatype);
  const bool to_float = spec.dtype == DType::kF32;
  if (wire == nullptr || (!to_float && !wire->integer)) {
    return error("input '" + name + "': datatype " + datatype + " but the model expects " + KServeDatatype(spec.dtype) +
                 (to_float ? " (it converts FP64, FP16, BF16 and the integer datatypes)"
                           : " (it converts the integer datatypes)"));
  }
  std::string expected = "[N";
  for (size_t i = 1; i < spec.shape.size(); ++i) expected += "," + std::to_string(spec.shape[i]);
  expected += "] with 1 <= N <= " + std::to_string(sig.max_batch);
  bool ok = shape.size() == spec.shape.size() && !shape.empty() && shape[0] >= 1 && shape[0] <= sig.max_batch;
  for (size_t i = 1; ok && i < shape.size(); ++i) ok = shape[i] == spec.shape[i];
  if (!ok) return error("input '" + name + "': shape " + ShapeText(shape) + " but the model expects " + expected);
  int n = static_cast<int>(shape[0]);
  if (request->n > 0 && n != request->n) {
    return error("input '" + name + "' has batch " + std::to_string(n) + " but another input has " +
                 std::to_string(request->n));
  }
  request->n = n;
  int64_t elements = n;
  for (size_t i = 1; i < shape.size(); ++i) elements *= shape[i];
  if (values == nullptr) {
    int64_t want = elements * wire->bytes;
    if (raw == nullptr || static_cast<int64_t>(raw_bytes) != want) {
      return error("input '" + name + "': shape " + ShapeText(shape) + " of " + wire->name + " needs " +
                   std::to_string(want) + " bytes, " + std::string(size_what) + " " + std::to_string(raw_bytes));
    }
  } else {
    if (static_cast<int64_t>(values->size()) != elements) {
      return error("input '" + name + "': shape " + ShapeText(shape) + " needs " + std::to_string(elements) +
                   " values, " + std::string(size_what) + " " + std::to_string(values->size()));
    }
    if (wire->integer) {
      for (size_t k = 0; k < values->size(); ++k) {
        double v = (*values)[k];
        if (std::isfinite(v) && v != std::floor(v)) {
          return error("input '" + name + "': " + wire->name + " data must be integers, got a fraction at index " +
                       std::to_string(k));
        }
      }
    }
  }
  std::vector<uint8_t>& bytes = request->inputs[static_cast<size_t>(index)];
  bytes.resize(static_cast<size_t>(elements) * 4);
  auto* out_f = reinterpret_cast<float*>(bytes.data());
  auto* out_i = reinterpret_cast<int32_t*>(bytes.data());
  const bool same = std::string_view(wire->name) == KServeDatatype(spec.dtype);
  for (int64_t i = 0; i < elements; ++i) {
    size_t k = static_cast<size_t>(i);
    if (values == nullptr && same && to_float) {  // FP32 to FP32: copy, but no NaN or infinity
      float f;
      std::memcpy(&f, raw + k * 4, 4);
      if (!std::isfinite(f)) {
        return error("input '" + name + "': value " + NumberText(f) + " at index " + std::to_string(i) + " is not finite");
      }
      out_f[k] = f;
      continue;
    }
    double v = values == nullptr ? Decode(*wire, raw, k) : (*values)[k];
    if (!std::isfinite(v)) {
      return error("input '" + name + "': value " + NumberText(v) + " at index " + std::to_string(i) + " is not finite");
    }
    if (values != nullptr && (v < wire->lo || v > wire->hi)) {
      return error("input '" + name + "': value " + NumberText(v) + " at index " + std::to_string(i) +
                   " is out of range for " + wire->name);
    }
    if (to_float) {
      if (std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max())) {
        return error("input '" + name + "': value " + NumberText(v) + " at index " + std::to_string(i) +
                     " is out of range for FP32");
      }
      out_f[k] = static_cast<float>(v);
    } else {
      if (v < -2147483648.0 || v > 2147483647.0) {
        return error("input '" + name + "': value " + NumberText(v) + " at index " + std::to_string(i) +
                     " is out of range for INT32");
      }
      out_i[k] = static_cast<int32_t>(v);
    }
  }
  return OkStatus();
}

StatusOr<InferRequest> ParseInferRequest(std::string_view body, const ModelSignature& signature, size_t json_bytes) {
  const bool has_binary = json_bytes != std::string_view::npos;
  if (has_binary && json_bytes > body.size()) {
    return InvalidArgument("Inference-Header-Content-Length is " + std::to_string(json_bytes) + " but the body has " +
                           std::to_string(body.size()) + " bytes");
  }
  std::string_view text = has_binary ? body.substr(0, json_bytes) : body;
  RequestReader reader(signature, has_binary ? body.substr(json_bytes) : std::string_view(), has_binary);
  bool ok = json::sax_parse(text.begin(), text.end(), &reader, json::input_format_t::json, /*strict=*/true);
  if (!ok || !reader.status().ok()) {
    Status s = reader.status();
    return s.ok() ? InvalidArgument("malformed JSON in the request body") : s;
  }
  RETURN_IF_ERROR(reader.Finish());
  return reader.Take();
}

std::string WriteInferResponse(const std::string& model_name, const std::string& version,
                               const InferRequest& request, const ModelSignature& signature,
                               const std::vector<std::vector<uint8_t>>& results, size_t* json_bytes) {
  std::string out = "{\"model_name\":" + Quote(model_name) + ",\"model_version\":" + Quote(version);
  if (request.id) out += ",\"id\":" + Quote(*request.id);
  out += ",\"outputs\":[";
  bool any_binary = false;
  for (size_t k = 0; k < request.outputs.size(); ++k) {
    const runtime::TensorSpec& spec = signature.outputs[static_cast<size_t>(request.outputs[k])];
    const bool binary = k < request.binary_outputs.size() && request.binary_outputs[k];
    out += k ? ",{" : "{";
    out += "\"name\":" + Quote(spec.name) + ",\"datatype\":\"" + KServeDatatype(spec.dtype) + "\",\"shape\":[" +
           std::to_string(request.n);
    for (size_t i = 1; i < spec.shape.size(); ++i) out += "," + std::to_string(spec.shape[i]);
    const std::vector<uint8_t>& bytes = results[k];
    if (binary) {
      any_binary = true;
      out += "],\"parameters\":{\"binary_data_size\":" + std::to_string(bytes.size()) + "}}";
      continue;
    }
    out += "],\"data\":[";
    size_t count = bytes.size() / 4;
    out.reserve(out.size() + count * 12);
    for (size_t i = 0; i < count; ++i) {
      if (i) out += ',';
      if (spec.dtype == DType::kF32) {
        float v;
        std::memcpy(&v, bytes.data() + i * 4, 4);
        AppendFloat(&out, v);
      } else {
        int32_t v;
        std::memcpy(&v, bytes.data() + i * 4, 4);
        out += std::to_string(v);
      }
    }
    out += "]}";
  }
  out += "]}";
  if (json_bytes) *json_bytes = any_binary ? out.size() : std::string::npos;
  if (any_binary) {
    for (size_t k = 0; k < request.outputs.size(); ++k) {
      if (k < request.binary_outputs.size() && request.binary_outputs[k]) {
        out.append(reinterpret_cast<const char*>(results[k].data()), results[k].size());
      }
    }
  }
  return out;
}

}  // namespace kiln::serve
