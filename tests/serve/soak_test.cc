// A bounded soak of the server: for KILN_SOAK_SECONDS (default 20; the README names the
// 60 s run) good, malformed and slow clients over HTTP (JSON and binary tensor data) and
// gRPC (typed and raw contents) at once, plus raw-socket garbage and header tricklers.
// Holds: no crash, every good answer is exactly the expected logits (so the expected class),
// every malformed request is answered with its 4xx / INVALID_ARGUMENT, health checks answer
// throughout, and RSS after the soak is within 64 MiB of RSS after the warm-up phase.
// Catch2 v2 assertions are not thread-safe: the client threads count, the main thread checks.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <random>
#include <thread>

#include "serve/proto/grpc_predict_v2.grpc.pb.h"
#include "tests/serve/serve_test_util.h"

namespace kiln::serve::testing {
namespace {

namespace pb = ::inference;
using Clock = std::chrono::steady_clock;

// A precomputed request: images and the logits the model gives for them.
struct Case {
  std::vector<float> images, logits;
  std::string json;
};

// A raw TCP connection without assertions (for the client threads); -1 when it failed.
int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Counters {
  std::atomic<int64_t> good{0}, wrong{0}, malformed_answered{0}, malformed_unexpected{0}, garbage{0}, slow{0},
      health_failures{0};
};

std::vector<float> RawFloats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / 4);
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST_CASE("soak: mixed good, malformed and slow clients over HTTP and gRPC", "[serve][soak]") {
  const char* env = std::getenv("KILN_SOAK_SECONDS");
  const int seconds = env ? std::max(1, std::atoi(env)) : 20;
  // The clients write to sockets the server closes (the 413 case): cpp-httplib sends without
  // MSG_NOSIGNAL, so the client process ignores SIGPIPE, as clients do.
  std::signal(SIGPIPE, SIG_IGN);
  ServerOptions options;
  options.port = 0;
  options.grpc_port = 0;
  options.header_timeout_ms = 500;  // tricklers are dropped quickly
  options.batch_delay_us = 500;
  auto created = InferenceServer::Create(LeNet(), options);
  REQUIRE(created.ok());
  std::unique_ptr<InferenceServer> server = std::move(*created);
  REQUIRE(server->Start().ok());
  const int port = server->port(), grpc_port = server->grpc_port();

  std::vector<Case> cases;
  for (int k = 0; k < 12; ++k) {
    Case c;
    c.images = RandomImages(1 + k % kBatch, static_cast<uint32_t>(5000 + k));
    c.logits = Expected(c.images);
    c.json = InferBody(c.images).dump();
    cases.push_back(std::move(c));
  }

  Counters n;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto until_stopped = [&](auto body) {
    const uint32_t seed = static_cast<uint32_t>(threads.size() * 7919 + 1);
    threads.emplace_back([&, body, seed]() mutable {
      std::mt19937 rng(seed);
      for (uint64_t i = 0; !stop.load(); ++i) body(rng, i);
    });
  };

  // Good HTTP JSON clients (keep-alive).
  for (int t = 0; t < 2; ++t) {
    until_stopped([&, client = std::make_shared<httplib::Client>("127.0.0.1", port)](std::mt19937& rng, uint64_t) {
      const Case& c = cases[rng() % cases.size()];
      auto r = client->Post("/v2/models/lenet/infer", c.json, "application/json");
      if (!r || r->status != 200) return void(n.wrong++);
      auto out = json::parse(r->body, nullptr, false);
      if (out.is_discarded() || out["outputs"][0]["data"].get<std::vector<float>>() != c.logits) return void(n.wrong++);
      n.good++;
    });
  }
  // A good HTTP binary-tensor client.
  until_stopped([&, client = std::make_shared<httplib::Client>("127.0.0.1", port)](std::mt19937& rng, uint64_t) {
    const Case& c = cases[rng() % cases.size()];
    int count = static_cast<int>(c.images.size() / 784);
    json header = {{"inputs",
                    {{{"name", "data"},
                      {"shape", {count, 1, 28, 28}},
                      {"datatype", "FP32"},
                      {"parameters", {{"binary_data_size", c.images.size() * 4}}}}}},
                   {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}};
    std::string h = header.dump();
    std::string body = h + std::string(reinterpret_cast<const char*>(c.images.data()), c.images.size() * 4);
    httplib::Headers hs = {{"Inference-Header-Content-Length", std::to_string(h.size())}};
    auto r = client->Post("/v2/models/lenet/infer", hs, body, "application/octet-stream");
    if (!r || r->status != 200) return void(n.wrong++);
    if (!r->has_header("Inference-Header-Content-Length")) return void(n.wrong++);
    size_t json_len = std::stoul(r->get_header_value("Inference-Header-Content-Length"));
    if (json_len > r->body.size() || RawFloats(r->body.substr(json_len)) != c.logits) return void(n.wrong++);
    n.good++;
  });
  // Good gRPC clients: typed and raw contents.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials());
  for (int t = 0; t < 2; ++t) {
    until_stopped([&, t, stub = std::shared_ptr<pb::GRPCInferenceService::Stub>(
                             pb::GRPCInferenceService::NewStub(channel))](std::mt19937& rng, uint64_t) {
      const Case& c = cases[rng() % cases.size()];
      pb::ModelInferRequest req;
      req.set_model_name("lenet");
      auto* in = req.add_inputs();
      in->set_name("data");
      in->set_datatype("FP32");
      for (int64_t d : {static_cast<int64_t>(c.images.size() / 784), int64_t{1}, int64_t{28}, int64_t{28}}) {
        in->add_shape(d);
      }
      if (t == 0) {
        for (float v : c.images) in->mutable_contents()->add_fp32_contents(v);
      } else {
        req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(c.images.data()), c.images.size() * 4));
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      pb::ModelInferResponse resp;
      grpc::Status s = stub->ModelInfer(&ctx, req, &resp);
      if (!s.ok() || resp.raw_output_contents_size() != 1 || RawFloats(resp.raw_output_contents(0)) != c.logits) {
        return void(n.wrong++);
      }
      n.good++;
    });
  }
  // Malformed HTTP requests: each must get its 4xx.
  until_stopped([&, client = std::make_shared<httplib::Client>("127.0.0.1", port)](std::mt19937& rng, uint64_t i) {
    std::string body;
    int want = 400;
    switch (i % 5) {
      case 0: body = "{\"inputs\":[{\"name\":\"data\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":[1,2"; break;
      case 1: body = json({{"inputs", {{{"name", "data"}, {"shape", {1, 1, 28, 27}}, {"datatype", "FP32"},
                                        {"data", std::vector<float>(756, 0.f)}}}}}).dump(); break;
      case 2: body = "{\"inputs\":[{\"name\":\"data\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":[1e300" +
                     std::string(783 * 2, ' ') + "]}]}"; break;
      case 3: {
        body.resize(200 + rng() % 2000);
        for (char& ch : body) ch = static_cast<char>(rng() % 256);
        break;
      }
      default: body = std::string(9 << 20, '['); want = 413; break;  // over the 8 MiB limit
    }
    auto r = client->Post("/v2/models/lenet/infer", body, "application/json");
    if (r && r->status == want) {
      n.malformed_answered++;
    } else if (want == 413 && !r) {
      n.malformed_answered++;  // the server may close before the client finished sending
    } else {
      n.malformed_unexpected++;
    }
  });
  // Malformed gRPC requests.
  until_stopped([&, stub = std::shared_ptr<pb::GRPCInferenceService::Stub>(pb::GRPCInferenceService::NewStub(channel))](
                    std::mt19937&, uint64_t i) {
    pb::ModelInferRequest req;
    req.set_model_name("lenet");
    auto* in = req.add_inputs();
    in->set_name(i % 2 ? "data" : "nosuch");
    in->set_datatype("FP32");
    for (int64_t d : {1, 1, 28, 28}) in->add_shape(d);
    for (int k = 0; k < 784; ++k) in->mutable_contents()->add_fp32_contents(k == 3 ? std::nanf("") : 0.f);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    pb::ModelInferResponse resp;
    grpc::Status s = stub->ModelInfer(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      n.malformed_answered++;
    } else {
      n.malformed_unexpected++;
    }
  });
  // Raw-socket garbage, then close.
  until_stopped([&](std::mt19937& rng, uint64_t) {
    int fd = Connect(port);
    if (fd < 0) return;
    std::string junk(1 + rng() % 3000, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng() % 256);
    (void)::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    char buf[512];
    (void)::recv(fd, buf, sizeof buf, 0);
    ::close(fd);
    n.garbage++;
  });
  // Header tricklers: one byte every 50 ms until the server drops them.
  for (int t = 0; t < 3; ++t) {
    until_stopped([&](std::mt19937&, uint64_t) {
      int fd = Connect(port);
      if (fd < 0) return;
      const std::string req = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ";
      for (size_t k = 0; !stop.load(); ++k) {
        char ch = k < req.size() ? req[k] : 'a';
        if (::send(fd, &ch, 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      ::close(fd);
      n.slow++;
    });
  }

  // The main thread: health checks throughout, RSS after the warm-up and at the end.
  httplib::Client health("127.0.0.1", port);
  health.set_read_timeout(2, 0);
  const auto start = Clock::now();
  const auto warm = start + std::chrono::seconds(std::min(3, seconds / 4 + 1));
  int64_t rss_warm = -1, rss_peak = 0;
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    auto live = health.Get("/v2/health/ready");
    if (!live || live->status != 200) n.health_failures++;
    if (rss_warm < 0 && Clock::now() > warm) rss_warm = RssBytes();
    rss_peak = std::max(rss_peak, RssBytes());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  stop = true;
  for (auto& t : threads) t.join();
  const int64_t rss_end = RssBytes();

  INFO("good " << n.good << ", wrong " << n.wrong << ", malformed answered " << n.malformed_answered
               << ", unexpected " << n.malformed_unexpected << ", garbage " << n.garbage << ", slow " << n.slow
               << ", health failures " << n.health_failures << "; RSS after warm-up " << rss_warm / 1048576
               << " MiB, peak " << rss_peak / 1048576 << " MiB, end " << rss_end / 1048576 << " MiB");
  CHECK(n.wrong == 0);
  CHECK(n.malformed_unexpected == 0);
  CHECK(n.health_failures == 0);
  CHECK(n.good > seconds * 10);  // far more in practice; a stalled server fails this
  CHECK(n.malformed_answered > 0);
  CHECK(n.slow > 0);
  if (!kSanitized) CHECK(rss_end - rss_warm < int64_t{64} << 20);
  // Still correct afterwards.
  Running after;
  CheckStillServing(after);
  WARN("soak " << seconds << " s: " << n.good << " good answers (all exact), " << n.malformed_answered
               << " malformed requests answered, " << n.garbage << " garbage connections, " << n.slow
               << " tricklers dropped; RSS " << rss_warm / 1048576 << " -> " << rss_end / 1048576 << " MiB (peak "
               << rss_peak / 1048576 << ")");
}

}  // namespace
}  // namespace kiln::serve::testing
