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
  CHECK_THAT(ErrorOf(x_with("datatype", "\"INT32\"")), Catch::Contains("datatype INT32 but the model expects FP32"));
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

}  // namespace
}  // namespace kiln::serve
