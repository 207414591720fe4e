// The streaming KServe v2 request parser (serve/infer_request.h) without a server: values
// land in the model's rows whatever the key order or nesting, every malformed request gets
// the message the client needs, and responses are JSON that reads back to the same floats.
#include <catch2/catch.hpp>

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "serve/infer_request.h"

namespace kiln::serve {
namespace {

using json = nlohmann::json;

ModelSignature Sig() {
  ModelSignature s;
  s.inputs = {{"x", DType::kF32, {4, 2, 2}}, {"ids", DType::kS32, {4, 3}}};
  s.outputs = {{"y", DType::kF32, {4, 2}}, {"label", DType::kS32, {4}}};
  s.max_batch = 4;
  return s;
}

std::string ErrorOf(const std::string& body) {
  auto r = ParseInferRequest(body, Sig());
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

std::vector<float> Floats(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<int32_t> Ints(const std::vector<uint8_t>& b) {
  std::vector<int32_t> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

TEST_CASE("infer request: values land in the rows, any key order and nesting", "[serve][request]") {
  std::string body = R"({"outputs":[{"name":"label","parameters":{"a":[1,{"b":2}]}}],
    "inputs":[{"data":[[[1.5,-2],[3,4e-3]],[[5,6],[7,8]]],"shape":[2,2,2],"datatype":"FP32","name":"x"},
              {"name":"ids","datatype":"INT32","shape":[2,3],"data":[1,-2,3,2147483647,-2147483648,0],"extra":null}],
    "id":"req-7","parameters":{"priority":1}})";
  auto r = ParseInferRequest(body, Sig());
  REQUIRE(r.ok());
  CHECK(r->n == 2);
  CHECK(r->id == std::optional<std::string>("req-7"));
  CHECK(Floats(r->inputs[0]) == std::vector<float>{1.5f, -2.f, 3.f, 4e-3f, 5.f, 6.f, 7.f, 8.f});
  CHECK(Ints(r->inputs[1]) == std::vector<int32_t>{1, -2, 3, 2147483647, -2147483648, 0});
  CHECK(r->outputs == std::vector<int>{1});
  // No outputs named: every output.
  std::string plain = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2,2],"data":[0,0,0,0]},
                                     {"name":"ids","datatype":"INT32","shape":[1,3],"data":[0,0,0]}]})";
  auto all = ParseInferRequest(plain, Sig());
  REQUIRE(all.ok());
  CHECK(all->outputs == std::vector<int>{0, 1});
  CHECK(!all->id);
}

TEST_CASE("infer request: malformed requests name the problem", "[serve][request]") {
  const std::string x = R"({"name":"x","datatype":"FP32","shape":[1,2,2],"data":[1,2,3,4]})";
  const std::string ids = R"({"name":"ids","datatype":"INT32","shape":[1,3],"data":[1,2,3]})";
  auto with = [&](const std::string& a, const std::string& b) { return "{\"inputs\":[" + a + "," + b + "]}"; };
  auto x_with = [&](const std::string& field, const std::string& value) {
    json j = json::parse(x);
    j[field] = json::parse(value);
    return with(j.dump(), ids);
  };
  CHECK_THAT(ErrorOf(""), Catch::Contains("malformed JSON in the request body at byte"));
  CHECK_THAT(ErrorOf("{\"inputs\": ["), Catch::Contains("malformed JSON"));
  CHECK_THAT(ErrorOf("[1,2]"), Catch::Contains("must be a JSON object, got an array"));
  CHECK_THAT(ErrorOf("{}"), Catch::Contains("non-empty \"inputs\""));
  CHECK_THAT(ErrorOf("{\"inputs\":[]}"), Catch::Contains("non-empty \"inputs\""));
  CHECK_THAT(ErrorOf("{\"inputs\":{}}"), Catch::Contains("\"inputs\" must be an array, got an object"));
  CHECK_THAT(ErrorOf("{\"inputs\":[1]}"), Catch::Contains("each entry of \"inputs\" must be an object"));
  CHECK_THAT(ErrorOf("{\"id\":5,\"inputs\":[]}"), Catch::Contains("\"id\" must be a string"));
  CHECK_THAT(ErrorOf("{\"inputs\":[" + x + "]}"), Catch::Contains("input 'ids' is missing"));
  CHECK_THAT(ErrorOf(with(x, x)), Catch::Contains("input 'x' is given twice"));
  CHECK_THAT(ErrorOf(x_with("name", "\"z\"")), Catch::Contains("unknown input 'z' (the model's inputs: 'x', 'ids')"));
  CHECK_THAT(ErrorOf(x_with("datatype", "\"STRING\"")), Catch::Contains("datatype STRING but the model expects FP32"));
  {
    json j = json::parse(ids);
    j["datatype"] = "FP32";
    CHECK_THAT(ErrorOf(with(x, j.dump())),
               Catch::Contains("datatype FP32 but the model expects INT32 (it converts the integer datatypes)"));
  }
  CHECK_THAT(ErrorOf(x_with("shape", "[1,2,3]")),
             Catch::Contains("shape [1,2,3] but the model expects [N,2,2] with 1 <= N <= 4"));
  CHECK_THAT(ErrorOf(x_with("shape", "[5,2,2]")), Catch::Contains("shape [5,2,2]"));
  CHECK_THAT(ErrorOf(x_with("shape", "[0,2,2]")), Catch::Contains("shape [0,2,2]"));
  CHECK_THAT(ErrorOf(x_with("shape", "[-1,2,2]")), Catch::Contains("shape [-1,2,2]"));
  CHECK_THAT(ErrorOf(x_with("shape", "[1.5,2,2]")), Catch::Contains("\"shape\" must hold integers"));
  CHECK_THAT(ErrorOf(x_with("shape", "\"1,2,2\"")), Catch::Contains("\"shape\" must be an array, got a string"));
  CHECK_THAT(ErrorOf(x_with("data", "[1,2,3]")), Catch::Contains("needs 4 values, \"data\" has 3"));
  CHECK_THAT(ErrorOf(x_with("data", "[1,2,\"3\",4]")), Catch::Contains("data must be numbers (at index 2), got a string"));
  CHECK_THAT(ErrorOf(x_with("data", "[1,2,true,4]")), Catch::Contains("got a boolean"));
  CHECK_THAT(ErrorOf(x_with("data", "[1,2,{},4]")), Catch::Contains("got an object"));
  CHECK_THAT(ErrorOf(x_with("data", "[1,2,3,1e300]")), Catch::Contains("input 'x': value 1e+300 at index 3 is out of range for FP32"));
  CHECK_THAT(ErrorOf(x_with("data", "[1,2,3,-3.5e38]")), Catch::Contains("at index 3 is out of range for FP32"));
  CHECK_THAT(ErrorOf(x_with("data", std::string(80, '[') + std::string(80, ']'))), Catch::Contains("nested deeper than 64"));
  {
    json j = json::parse(x);
    j.erase("data");
    CHECK_THAT(ErrorOf(with(j.dump(), ids)), Catch::Contains("input 'x' has no \"data\""));
    j = json::parse(x);
    j.erase("datatype");
    CHECK_THAT(ErrorOf(with(j.dump(), ids)), Catch::Contains("input 'x' has no \"datatype\""));
  }
  // Two "data" keys in one object.
  CHECK_THAT(ErrorOf("{\"inputs\":[{\"name\":\"x\",\"data\":[1],\"data\":[2]}]}"), Catch::Contains("\"data\" is given twice"));
  json idj = json::parse(ids);
  idj["data"] = json::parse("[1,2.5,3]");
  CHECK_THAT(ErrorOf(with(x, idj.dump())), Catch::Contains("INT32 data must be integers, got a fraction at index 1"));
  idj["data"] = json::parse("[1,2147483648,3]");
  CHECK_THAT(ErrorOf(with(x, idj.dump())), Catch::Contains("value 2147483648 at index 1 is out of range for INT32"));
  idj["data"] = json::parse("[1,2,3]");
  idj["shape"] = json::parse("[2,3]");
  idj["data"] = json::parse("[1,2,3,4,5,6]");
  CHECK_THAT(ErrorOf(with(x, idj.dump())), Catch::Contains("input 'ids' has batch 2 but another input has 1"));
  CHECK_THAT(ErrorOf(with(x, ids).insert(1, "\"outputs\":[{\"name\":\"q\"}],")),
             Catch::Contains("unknown output 'q' (the model's outputs: 'y', 'label')"));
  CHECK_THAT(ErrorOf(with(x, ids).insert(1, "\"outputs\":[{}],")), Catch::Contains("needs a \"name\" string"));
  // More values than any input takes: stopped while reading, not after.
  std::string many = "[";
  for (int i = 0; i < 100; ++i) many += "0,";
  many += "0]";
  CHECK_THAT(ErrorOf(x_with("data", many)), Catch::Contains("more than 16 values"));
}

TEST_CASE("infer response: JSON that reads back to the same values", "[serve][request]") {
  ModelSignature sig = Sig();
  InferRequest req;
  req.n = 2;
  req.id = "a\"b";
  req.outputs = {0, 1};
  std::vector<float> y = {0.1f, -3.4028235e38f, 1e-45f, std::numeric_limits<float>::quiet_NaN()};
  std::vector<int32_t> label = {7, -2147483647 - 1};
  std::vector<std::vector<uint8_t>> results(2);
  results[0].resize(16);
  std::memcpy(results[0].data(), y.data(), 16);
  results[1].resize(8);
  std::memcpy(results[1].data(), label.data(), 8);
  std::string text = WriteInferResponse("m", "1", req, sig, results);
  json j = json::parse(text);
  CHECK(j["model_name"] == "m");
  CHECK(j["model_version"] == "1");
  CHECK(j["id"] == "a\"b");
  CHECK(j["outputs"][0]["shape"] == json({2, 2}));
  CHECK(j["outputs"][0]["datatype"] == "FP32");
  for (int i = 0; i < 3; ++i) CHECK(j["outputs"][0]["data"][i].get<float>() == y[static_cast<size_t>(i)]);
  CHECK(j["outputs"][0]["data"][3].is_null());  // NaN: JSON has none
  CHECK(j["outputs"][1]["shape"] == json({2}));
  CHECK(j["outputs"][1]["data"] == json({7, -2147483647 - 1}));
}

// A body with binary tensor data: the JSON header, then the raw tensors.
std::string BinaryBody(const json& header, const std::string& bytes, size_t* json_bytes) {
  std::string text = header.dump();
  *json_bytes = text.size();
  return text + bytes;
}

template <typename T>
std::string Raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST_CASE("infer request: binary tensor data and datatype conversion", "[serve][request]") {
  json header = {{"inputs",
                  {{{"name", "x"}, {"shape", {1, 2, 2}}, {"datatype", "FP32"}, {"parameters", {{"binary_data_size", 16}}}},
                   {{"name", "ids"}, {"shape", {1, 3}}, {"datatype", "INT64"}, {"parameters", {{"binary_data_size", 24}}}}}},
                 {"outputs", {{{"name", "label"}, {"parameters", {{"binary_data", true}}}}, {{"name", "y"}}}}};
  std::vector<float> x = {1.5f, -2.f, 0.25f, 1e-30f};
  std::vector<int64_t> ids = {7, -8, 2147483647};
  size_t json_bytes = 0;
  std::string body = BinaryBody(header, Raw(x) + Raw(ids), &json_bytes);
  auto r = ParseInferRequest(body, Sig(), json_bytes);
  REQUIRE(r.ok());
  CHECK(Floats(r->inputs[0]) == x);
  CHECK(Ints(r->inputs[1]) == std::vector<int32_t>{7, -8, 2147483647});
  CHECK(r->outputs == std::vector<int>{1, 0});
  CHECK(r->binary_outputs == std::vector<bool>{true, false});
  // The response: JSON header, then label's 4 bytes.
  std::vector<std::vector<uint8_t>> results = {{5, 0, 0, 0}, std::vector<uint8_t>(8, 0)};
  size_t out_json = 0;
  std::string response = WriteInferResponse("m", "1", *r, Sig(), results, &out_json);
  REQUIRE(out_json < response.size());
  json j = json::parse(response.substr(0, out_json));
  CHECK(j["outputs"][0]["name"] == "label");
  CHECK(j["outputs"][0]["parameters"]["binary_data_size"] == 4);
  CHECK(!j["outputs"][0].contains("data"));
  CHECK(j["outputs"][1]["data"] == json({0.0, 0.0}));
  CHECK(response.substr(out_json) == std::string("\x05\0\0\0", 4));

  // Conversions into the FP32 input: UINT8 pixels and FP16 / BF16 halves.
  auto with_x = [&](const char* datatype, const std::string& raw, int64_t size) {
    json h = {{"inputs",
               {{{"name", "x"}, {"shape", {1, 2, 2}}, {"datatype", datatype}, {"parameters", {{"binary_data_size", size}}}},
                {{"name", "ids"}, {"shape", {1, 3}}, {"datatype", "INT32"}, {"data", {1, 2, 3}}}}}};
    size_t jb = 0;
    std::string b = BinaryBody(h, raw, &jb);
    return ParseInferRequest(b, Sig(), jb);
  };
  auto u8 = with_x("UINT8", std::string("\x00\x01\x80\xff", 4), 4);
  REQUIRE(u8.ok());
  CHECK(Floats(u8->inputs[0]) == std::vector<float>{0.f, 1.f, 128.f, 255.f});
  // FP16: 1.0 (0x3c00), -2.0 (0xc000), 65504 (0x7bff), 2^-24 (0x0001, subnormal).
  auto f16 = with_x("FP16", Raw(std::vector<uint16_t>{0x3c00, 0xc000, 0x7bff, 0x0001}), 8);
  REQUIRE(f16.ok());
  CHECK(Floats(f16->inputs[0]) == std::vector<float>{1.f, -2.f, 65504.f, 5.9604645e-8f});
  auto bf16 = with_x("BF16", Raw(std::vector<uint16_t>{0x3f80, 0xc040, 0x0000, 0x4049}), 8);
  REQUIRE(bf16.ok());
  CHECK(Floats(bf16->inputs[0]) == std::vector<float>{1.f, -3.f, 0.f, 3.140625f});
  auto fail = [&](const StatusOr<InferRequest>& s) {
    REQUIRE(!s.ok());
    return s.status().message();
  };
  CHECK_THAT(fail(with_x("FP32", Raw(std::vector<float>{1, std::numeric_limits<float>::quiet_NaN(), 0, 0}), 16)),
             Catch::Contains("input 'x': value nan at index 1 is not finite"));
  CHECK_THAT(fail(with_x("FP16", Raw(std::vector<uint16_t>{0, 0, 0x7c00, 0}), 8)), Catch::Contains("index 2 is not finite"));
  CHECK_THAT(fail(with_x("FP64", Raw(std::vector<double>{0, 0, 0, 1e300}), 32)),
             Catch::Contains("value 1e+300 at index 3 is out of range for FP32"));
  CHECK_THAT(fail(with_x("FP32", Raw(x), 12)), Catch::Contains("needs 16 bytes, \"binary_data_size\" is 12"));
  CHECK_THAT(fail(with_x("FP32", Raw(x).substr(0, 10), 16)), Catch::Contains("the binary data ends 6 bytes before"));
  CHECK_THAT(fail(with_x("FP32", Raw(x) + "zz", 16)), Catch::Contains("2 bytes of binary data") ||
                                                          Catch::Contains("18 bytes of binary data"));
  // binary_data_size without binary data (no Inference-Header-Content-Length).
  json h = {{"inputs", {{{"name", "x"}, {"shape", {1, 2, 2}}, {"datatype", "FP32"}, {"parameters", {{"binary_data_size", 16}}}}}}};
  CHECK_THAT(ErrorOf(h.dump()), Catch::Contains("no binary data"));
  CHECK(!ParseInferRequest("{}", Sig(), 5).ok());  // header length past the body
  // JSON values checked against the wire datatype, then the model's.
  const std::string ok_ids = R"({"name":"ids","datatype":"INT32","shape":[1,3],"data":[1,2,3]})";
  auto json_x = [&](const char* datatype, const char* data) {
    return "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"" + std::string(datatype) + "\",\"shape\":[1,2,2],\"data\":" + data +
           "}," + ok_ids + "]}";
  };
  CHECK_THAT(ErrorOf(json_x("UINT8", "[0,1,300,3]")), Catch::Contains("value 300 at index 2 is out of range for UINT8"));
  CHECK_THAT(ErrorOf(json_x("INT8", "[0,1,-129,3]")), Catch::Contains("value -129 at index 2 is out of range for INT8"));
  CHECK_THAT(ErrorOf(json_x("UINT8", "[0,1,2.5,3]")), Catch::Contains("UINT8 data must be integers"));
  CHECK_THAT(ErrorOf(json_x("FP16", "[0,1,70000,3]")), Catch::Contains("value 70000 at index 2 is out of range for FP16"));
  auto converted = ParseInferRequest(json_x("UINT8", "[0,1,255,3]"), Sig());
  REQUIRE(converted.ok());
  CHECK(Floats(converted->inputs[0]) == std::vector<float>{0, 1, 255, 3});
  // Request-level binary_data_output: every output binary.
  json all = json::parse(json_x("FP32", "[0,0,0,0]"));
  all["parameters"] = {{"binary_data_output", true}};
  auto every = ParseInferRequest(all.dump(), Sig());
  REQUIRE(every.ok());
  CHECK(every->binary_outputs == std::vector<bool>{true, true});
}

}  // namespace
}  // namespace kiln::serve
