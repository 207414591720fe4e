// The real `kiln-serve` binary: started as a process on a free port with an artifact made by
// `kiln compile`, it answers health, metadata and inference over HTTP, and on SIGTERM
// finishes the request in flight and exits with status 0.
#include <catch2/catch.hpp>

#include <httplib.h>
#include <onnx/onnx_pb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace {

using json = nlohmann::json;

std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

struct Child {
  pid_t pid = -1;
  int out = -1;  // read end of its stdout
  std::string output;
  // Reads stdout until `needle` appears (or EOF); returns the text read so far.
  bool ReadUntil(const std::string& needle) {
    char buf[512];
    while (output.find(needle) == std::string::npos) {
      ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) return false;
      output.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
};

Child Spawn(const std::vector<std::string>& args) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  Child c;
  c.pid = ::fork();
  REQUIRE(c.pid >= 0);
  if (c.pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  c.out = fds[0];
  return c;
}

int WaitExit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_CASE("kiln compile, inspect and the kiln-serve binary", "[serve][binary]") {
  std::string artifact = TmpPath("bin_lenet.kiln");
  {
    Child compile = Spawn({"tools/kiln", "compile", "--model", "lenet", "--input-shape", "2,1,28,28", "-o", artifact,
                           "--name", "fashion"});
    compile.ReadUntil("\x01");  // to EOF
    INFO(compile.output);
    REQUIRE(WaitExit(compile.pid) == 0);
    CHECK_THAT(compile.output, Catch::Contains("wrote " + artifact));
  }
  {
    Child inspect = Spawn({"tools/kiln", "inspect", artifact});
    inspect.ReadUntil("\x01");
    INFO(inspect.output);
    REQUIRE(WaitExit(inspect.pid) == 0);
    CHECK_THAT(inspect.output, Catch::Contains("input    data: f32[2,1,28,28]"));
    CHECK_THAT(inspect.output, Catch::Contains("output   output: f32[2,10]"));
    CHECK_THAT(inspect.output, Catch::Contains("conv2d"));
    CHECK_THAT(inspect.output, Catch::Contains("arena (planned)"));
  }
  {
    std::string bogus = TmpPath("bogus.kiln");
    std::FILE* f = std::fopen(bogus.c_str(), "w");
    std::fputs("definitely not an artifact", f);
    std::fclose(f);
    Child inspect = Spawn({"tools/kiln", "inspect", bogus});
    inspect.ReadUntil("\x01");
    CHECK(WaitExit(inspect.pid) == 1);
  }

  Child server = Spawn({"serve/kiln-serve", artifact, "--port", "0", "--batch-delay-us", "300000"});
  REQUIRE(server.ReadUntil("\n"));
  INFO(server.output);
  auto at = server.output.find("ready on http://127.0.0.1:");
  REQUIRE(at != std::string::npos);
  int port = std::atoi(server.output.c_str() + at + std::strlen("ready on http://127.0.0.1:"));
  REQUIRE(port > 0);
  CHECK_THAT(server.output, Catch::Contains("model 'fashion'"));

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  auto ready = client.Get("/v2/health/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto meta = client.Get("/v2/models/fashion");
  REQUIRE(meta);
  CHECK(json::parse(meta->body)["inputs"][0]["shape"] == json({-1, 1, 28, 28}));
  json body = {{"inputs", {{{"name", "data"}, {"shape", {1, 1, 28, 28}}, {"datatype", "FP32"},
                            {"data", std::vector<float>(784, 0.5f)}}}}};
  auto bad = client.Post("/v2/models/fashion/infer", "{oops", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);

  // One request in flight (it waits 0.3 s for a batch) when SIGTERM arrives.
  std::atomic<int> in_flight_status{0};
  std::thread t([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    auto r = c.Post("/v2/models/fashion/infer", body.dump(), "application/json");
    if (r && r->status == 200 && json::parse(r->body)["outputs"][0]["data"].size() == 10) in_flight_status = 200;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(::kill(server.pid, SIGTERM) == 0);
  t.join();
  CHECK(in_flight_status == 200);
  server.ReadUntil("\x01");
  CHECK_THAT(server.output, Catch::Contains("SIGTERM received"));
  CHECK_THAT(server.output, Catch::Contains("stopped"));
  CHECK(WaitExit(server.pid) == 0);
}

// x [N,1,4,4] -> Conv 1x1 (2 filters: weights 2 and -1, biases 1 and 0.25) -> Relu ->
// GlobalAveragePool -> Flatten -> y [N,2], batch symbolic: out[0] = mean(2x + 1),
// out[1] = mean(relu(0.25 - x)).
std::string TinyOnnxModel() {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  auto value = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = v->mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
  };
  value(g->add_input(), "x", {1, 4, 4});
  value(g->add_output(), "y", {2});
  auto tensor = [&](const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float f : v) t->add_float_data(f);
  };
  tensor("w", {2, 1, 1, 1}, {2.f, -1.f});
  tensor("b", {2}, {1.f, 0.25f});
  auto node = [&](const std::string& op, std::vector<std::string> in, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op);
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
  };
  node("Conv", {"x", "w", "b"}, "c");
  node("Relu", {"c"}, "r");
  node("GlobalAveragePool", {"r"}, "p");
  node("Flatten", {"p"}, "y");
  std::string bytes;
  REQUIRE(m.SerializeToString(&bytes));
  return bytes;
}

TEST_CASE("an ONNX model: kiln compile model.onnx, then kiln-serve answers KServe v2 over HTTP",
          "[serve][binary][onnx]") {
  std::string onnx_path = TmpPath("tiny.onnx"), artifact = TmpPath("tiny.kiln");
  {
    std::FILE* f = std::fopen(onnx_path.c_str(), "wb");
    REQUIRE(f != nullptr);
    std::string bytes = TinyOnnxModel();
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  Child compile = Spawn({"tools/kiln", "compile", onnx_path, "--batch", "2", "-o", artifact});
  compile.ReadUntil("\x01");
  INFO(compile.output);
  REQUIRE(WaitExit(compile.pid) == 0);
  CHECK_THAT(compile.output, Catch::Contains("imported " + onnx_path) && Catch::Contains("input [2,1,4,4]"));

  Child server = Spawn({"serve/kiln-serve", artifact, "--port", "0"});
  REQUIRE(server.ReadUntil("\n"));
  INFO(server.output);
  auto at = server.output.find("ready on http://127.0.0.1:");
  REQUIRE(at != std::string::npos);
  int port = std::atoi(server.output.c_str() + at + std::strlen("ready on http://127.0.0.1:"));
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i) / 16.f;
  json body = {{"inputs", {{{"name", "data"}, {"shape", {1, 1, 4, 4}}, {"datatype", "FP32"}, {"data", x}}}}};
  auto r = client.Post("/v2/models/tiny/infer", body.dump(), "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
  auto out = json::parse(r->body)["outputs"][0];
  CHECK(out["shape"] == json({1, 2}));
  double mean = 0, relu = 0;
  for (float v : x) {
    mean += 2 * v + 1;
    relu += std::max(0.f, 0.25f - v);
  }
  CHECK(out["data"][0].get<double>() == Approx(mean / 16).epsilon(1e-6));
  CHECK(out["data"][1].get<double>() == Approx(relu / 16).epsilon(1e-6));
  REQUIRE(::kill(server.pid, SIGTERM) == 0);
  server.ReadUntil("\x01");
  CHECK(WaitExit(server.pid) == 0);

  // And the other way: kiln export-onnx writes a model that kiln compile imports again.
  std::string exported = TmpPath("mlp.onnx");
  Child ex = Spawn({"tools/kiln", "export-onnx", "--model", "mlp", "--input-shape", "1,1,4,4", "-o", exported});
  ex.ReadUntil("\x01");
  INFO(ex.output);
  REQUIRE(WaitExit(ex.pid) == 0);
  CHECK_THAT(ex.output, Catch::Contains("batch dim symbolic"));
  Child back = Spawn({"tools/kiln", "compile", exported, "--batch", "3", "-o", TmpPath("mlp_back.kiln")});
  back.ReadUntil("\x01");
  INFO(back.output);
  CHECK(WaitExit(back.pid) == 0);
  CHECK_THAT(back.output, Catch::Contains("input [3,1,4,4]"));
}

TEST_CASE("kiln-serve --model-repository: two models, and a second server on the same port is refused",
          "[serve][binary][repository]") {
  std::string repo = TmpPath("binary_repo");
  ::mkdir(repo.c_str(), 0755);
  for (const char* dir : {"/lenet", "/lenet/1", "/mlp", "/mlp/1"}) ::mkdir((repo + dir).c_str(), 0755);
  Child a = Spawn({"tools/kiln", "compile", "--model", "lenet", "--input-shape", "4,1,28,28", "-o",
                   repo + "/lenet/1/model.kiln"});
  REQUIRE(WaitExit(a.pid) == 0);
  Child b = Spawn({"tools/kiln", "compile", "--model", "mlp", "--input-shape", "2,1,4,4", "-o", repo + "/mlp/1/model.kiln"});
  REQUIRE(WaitExit(b.pid) == 0);
  Child server = Spawn({"serve/kiln-serve", "--model-repository", repo, "--port", "0"});
  REQUIRE(server.ReadUntil("\n"));
  INFO(server.output);
  auto at = server.output.find("ready on http://127.0.0.1:");
  REQUIRE(at != std::string::npos);
  int port = std::atoi(server.output.c_str() + at + std::strlen("ready on http://127.0.0.1:"));
  REQUIRE(port > 0);
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  auto index = client.Post("/v2/repository/index", "", "application/json");
  REQUIRE(index);
  CHECK(json::parse(index->body) == json::parse(R"([{"name":"lenet","version":"1","state":"READY"},
                                                   {"name":"mlp","version":"1","state":"READY"}])"));
  json lenet = {{"inputs", {{{"name", "data"}, {"shape", {1, 1, 28, 28}}, {"datatype", "FP32"},
                             {"data", std::vector<float>(784, 0.5f)}}}}};
  json mlp = {{"inputs", {{{"name", "data"}, {"shape", {2, 1, 4, 4}}, {"datatype", "FP32"},
                           {"data", std::vector<float>(32, 0.5f)}}}}};
  auto r1 = client.Post("/v2/models/lenet/versions/1/infer", lenet.dump(), "application/json");
  REQUIRE(r1);
  CHECK(r1->status == 200);
  auto r2 = client.Post("/v2/models/mlp/infer", mlp.dump(), "application/json");
  REQUIRE(r2);
  CHECK(r2->status == 200);
  CHECK(json::parse(r2->body)["outputs"][0]["shape"][0] == 2);
  // No SO_REUSEPORT: a second server on this port fails at once with the reason.
  Child second = Spawn({"serve/kiln-serve", repo + "/lenet/1/model.kiln", "--port", std::to_string(port)});
  CHECK(WaitExit(second.pid) == 1);
  REQUIRE(::kill(server.pid, SIGTERM) == 0);
  CHECK(WaitExit(server.pid) == 0);
}

}  // namespace
