// The server against hostile and careless clients, over real sockets on loopback (bounded in
// count and time): slow headers, connection floods, chunked and compressed bodies past the
// limit, a second server on a used port, out-of-range values, a full queue, queued requests
// past their timeout, many large bodies at once (RSS bounded and given back). After each,
// the server must still answer health checks and correct inferences.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <thread>

#include "tests/serve/serve_test_util.h"

namespace kiln::serve {
namespace {

using namespace kiln::serve::testing;
using Clock = std::chrono::steady_clock;

// A raw TCP connection to the server (for what no well-behaved client library sends).
class RawSocket {
 public:
  explicit RawSocket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawSocket() { ::close(fd_); }
  // Sends all of `data`; false once the server closed the connection.
  bool Send(const std::string& data) {
    size_t at = 0;
    while (at < data.size()) {
      ssize_t n = ::send(fd_, data.data() + at, data.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until the server closes the connection or `timeout` passes.
  std::string ReadAll(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    std::string out;
    auto end = Clock::now() + timeout;
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    while (Clock::now() < end) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // True when the server closed the connection (recv returns 0 or a reset) within `timeout`.
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_ = -1;
};

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return -1;
  return std::atoi(response.c_str() + 9);
}

std::string BodyOf(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// A health check must answer 200 quickly even now.
void CheckHealthFast(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(2, 0);
  auto t0 = Clock::now();
  auto res = c.Get("/v2/health/live");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(Clock::now() - t0 < std::chrono::milliseconds(1000));
}

TEST_CASE("limits: slow clients trickling headers do not starve health checks", "[serve][limits]") {
  Running r({.http_threads = 2, .header_timeout_ms = 1000});
  // 32 clients (16x the I/O threads) each send a partial request line, then one byte every
  // 150 ms: they never finish their headers.
  std::vector<std::unique_ptr<RawSocket>> slow;
  for (int i = 0; i < 32; ++i) {
    slow.push_back(std::make_unique<RawSocket>(r.server->port()));
    REQUIRE(slow.back()->Send("GET /v2/health/live HTTP/1.1\r\nX-Slow: "));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (auto& s : slow) s->Send("a");
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  });
  // While they trickle, health checks and inferences are answered at once.
  for (int i = 0; i < 5; ++i) {
    CheckHealthFast(r.server->port());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CheckStillServing(r);
  stop = true;
  trickle.join();
  // Each was dropped at its header deadline (1 s after its first byte).
  for (auto& s : slow) CHECK(s->ClosedWithin(std::chrono::milliseconds(3000)));
  CheckStillServing(r);
}

TEST_CASE("limits: connections past the cap get 503; idle ones are dropped at the deadline", "[serve][limits]") {
  Running r({.max_connections = 6, .header_timeout_ms = 800});
  r.client.reset();  // only raw sockets here
  std::vector<std::unique_ptr<RawSocket>> idle;
  for (int i = 0; i < 6; ++i) idle.push_back(std::make_unique<RawSocket>(r.server->port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RawSocket extra(r.server->port());
  std::string res = extra.ReadAll(std::chrono::milliseconds(2000));
  CHECK(StatusOf(res) == 503);
  CHECK_THAT(BodyOf(res), Catch::Contains("too many connections"));
  // The idle connections never sent a request: closed after the header timeout.
  for (auto& s : idle) CHECK(s->ClosedWithin(std::chrono::milliseconds(3000)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CheckHealthFast(r.server->port());
}

TEST_CASE("limits: chunked and compressed bodies cannot pass the body limit", "[serve][limits]") {
  Running r({.max_body_bytes = 64 * 1024});
  SECTION("a chunked body is counted as it is decoded: 413 past the limit") {
    RawSocket s(r.server->port());
    REQUIRE(s.Send("POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"));
    std::string chunk(4096, ' ');
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    for (int i = 0; i < 64 && s.Send(size + chunk + "\r\n"); ++i) {  // 256 KiB offered, the server stops at 64
    }
    std::string res = s.ReadAll();
    CHECK(StatusOf(res) == 413);
    CHECK_THAT(BodyOf(res), Catch::Contains("65536 bytes"));
  }
  SECTION("a valid chunked body under the limit is served") {
    auto images = RandomImages(1, 91);
    std::string body = InferBody(images).dump();
    RawSocket s(r.server->port());
    std::string req = "POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    for (size_t at = 0; at < body.size(); at += 1000) {
      std::string part = body.substr(at, 1000);
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", part.size());
      req += size + part + "\r\n";
    }
    req += "0\r\n\r\n";
    REQUIRE(s.Send(req));
    std::string res = s.ReadAll();
    REQUIRE(StatusOf(res) == 200);
    json j = json::parse(BodyOf(res));
    std::vector<float> want = Expected(images);
    for (size_t i = 0; i < want.size(); ++i) CHECK(j["outputs"][0]["data"][i].get<float>() == want[i]);
  }
  SECTION("Content-Length over the limit: 413 before the body is read") {
    RawSocket s(r.server->port());
    REQUIRE(s.Send("POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n"));
    std::string res = s.ReadAll();
    CHECK(StatusOf(res) == 413);
    CHECK_THAT(BodyOf(res), Catch::Contains("67108864 bytes exceeds the limit of 65536"));
  }
  SECTION("a gzip body is refused (415), nothing is inflated") {
    RawSocket s(r.server->port());
    std::string gz(1000, '\x1f');
    REQUIRE(s.Send("POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 1000\r\n\r\n" + gz));
    std::string res = s.ReadAll();
    CHECK(StatusOf(res) == 415);
    CHECK_THAT(BodyOf(res), Catch::Contains("Content-Encoding 'gzip'"));
  }
  SECTION("oversized headers: 431") {
    RawSocket s(r.server->port());
    s.Send("GET /v2/health/live HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    std::string res = s.ReadAll();
    CHECK(StatusOf(res) == 431);
  }
  SECTION("malformed HTTP: 400 with a JSON body") {
    RawSocket s(r.server->port());
    REQUIRE(s.Send("GARBAGE\r\n\r\n"));
    std::string res = s.ReadAll();
    CHECK(StatusOf(res) == 400);
    CHECK(json::parse(BodyOf(res), nullptr, false).contains("error"));
  }
  SECTION("a form-encoded 16 KB body is a 400 about JSON, not a 413") {
    std::string form;
    while (form.size() < 16 * 1024) form += "a=b&";
    auto res = r.client->Post("/v2/models/lenet/infer", form, "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("malformed JSON"));
  }
  CheckStillServing(r);
}

TEST_CASE("limits: a second server on a used port is refused; ports are checked", "[serve][limits]") {
  Running r;
  auto second = InferenceServer::Create(LeNet(), {.port = r.server->port()});
  REQUIRE(second.ok());
  Status st = (*second)->Start();
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::Contains("127.0.0.1:" + std::to_string(r.server->port())));
  CHECK_THAT(st.message(), Catch::Contains("in use"));
  auto bad = InferenceServer::Create(LeNet(), {.port = 70000});
  REQUIRE(bad.ok());
  CHECK_THAT((*bad)->Start().message(), Catch::Contains("outside [0, 65535]"));
  CheckStillServing(r);  // all traffic still reaches the first server
}

TEST_CASE("limits: out-of-range and non-finite values are 400 naming the input and index", "[serve][limits]") {
  Running r;
  auto images = RandomImages(1, 3);
  std::string body = InferBody(images).dump();
  auto with_value = [&](const std::string& literal) {
    std::string b = body;
    size_t at = b.find("\"data\":[") + 8;
    size_t comma = b.find(',', at);
    comma = b.find(',', comma + 1);  // replace the value at index 2
    size_t next = b.find(',', comma + 1);
    return b.substr(0, comma + 1) + literal + b.substr(next);
  };
  for (const char* v : {"1e300", "-1e39", "3.5e38"}) {
    auto res = r.Post(with_value(v));
    REQUIRE(res);
    INFO(v << " -> " << res->body);
    CHECK(res->status == 400);
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(),
               Catch::Contains("input 'data': value") && Catch::Contains("at index 2 is out of range for FP32"));
  }
  // NaN and Infinity are not JSON; a literal past double's range is a JSON error too.
  for (const char* v : {"NaN", "Infinity", "1e400"}) {
    auto res = r.Post(with_value(v));
    REQUIRE(res);
    INFO(v << " -> " << res->body);
    CHECK(res->status == 400);
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("malformed JSON"));
  }
  CheckStillServing(r);
}

TEST_CASE("limits: a full queue answers 503, an expired request 504", "[serve][limits]") {
  SECTION("queue") {
    // Requests wait 400 ms for a batch of 4; the queue holds 2.
    Running r({.batch_delay_us = 400000, .max_queue = 2});
    std::atomic<int> ok{0};
    std::vector<std::thread> first;
    for (int c = 0; c < 2; ++c) {
      first.emplace_back([&, c] {
        httplib::Client client("127.0.0.1", r.server->port());
        client.set_read_timeout(10, 0);
        auto images = RandomImages(1, static_cast<uint32_t>(20 + c));
        auto res = client.Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
        if (res && res->status == 200) ok++;
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto res = r.Post(InferBody(RandomImages(1, 22)).dump());
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("is full"));
    for (auto& t : first) t.join();
    CHECK(ok == 2);
    CheckStillServing(r);
  }
  SECTION("timeout") {
    // The first request waits 300 ms for its batch, longer than its 100 ms timeout.
    Running r({.batch_delay_us = 300000, .request_timeout_ms = 100});
    auto res = r.Post(InferBody(RandomImages(1, 23)).dump());
    REQUIRE(res);
    CHECK(res->status == 504);
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("request timeout of 100 ms"));
  }
}

TEST_CASE("limits: versioned routes, unknown versions and wrong methods", "[serve][limits]") {
  Running r;
  auto images = RandomImages(2, 8);
  CheckLogits(r.Post(InferBody(images).dump(), "/v2/models/lenet/versions/1/infer"), images);
  auto ready = r.client->Get("/v2/models/lenet/versions/1/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto meta = r.client->Get("/v2/models/lenet/versions/1");
  REQUIRE(meta);
  CHECK(json::parse(meta->body)["versions"] == json({"1"}));
  auto other = r.Post(InferBody(images).dump(), "/v2/models/lenet/versions/2/infer");
  REQUIRE(other);
  CHECK(other->status == 404);
  CHECK_THAT(json::parse(other->body)["error"].get<std::string>(), Catch::Contains("no version '2'"));
  auto get_infer = r.client->Get("/v2/models/lenet/infer");
  REQUIRE(get_infer);
  CHECK(get_infer->status == 405);
  auto nowhere = r.client->Get("/v3/anything");
  REQUIRE(nowhere);
  CHECK(nowhere->status == 404);
  CHECK(json::parse(nowhere->body).contains("error"));
}

TEST_CASE("limits: 16 concurrent 8 MB bodies: memory bounded and given back", "[serve][limits][memory]") {
  Running r;
  // Warm up (sessions, arenas), then the baseline.
  CheckStillServing(r);
  int64_t before = RssBytes();
  // {"inputs":[{"name":"data","data":[[],[],...]}]} of 8 MB: 2.7 million empty arrays, which
  // a document tree would hold as 2.7 million nodes.
  std::string body = "{\"inputs\":[{\"name\":\"data\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"data\":[";
  while (body.size() < (size_t{8} << 20) - 64) body += "[],";
  body += "[]]}]}";
  std::atomic<int64_t> peak{0};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max<int64_t>(peak, RssBytes());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  // Raw sockets sending the one shared body: no client-side copies in this process.
  std::vector<std::thread> clients;
  std::atomic<int> bad_request{0};
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&] {
      RawSocket s(r.server->port());
      std::string head = "POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
      if (s.Send(head) && s.Send(body) && StatusOf(s.ReadAll(std::chrono::milliseconds(30000))) == 400) bad_request++;
    });
  }
  for (auto& t : clients) t.join();
  done = true;
  sampler.join();
  CHECK(bad_request == 16);  // 784 values needed, none given
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int64_t after = RssBytes();
  // Each request holds its 8 MB body once in the server: the bound is 2 x 8 MB per
  // concurrent request, and everything but 32 MB given back afterwards.
  WARN("RSS before " << before / 1e6 << " MB, peak " << peak / 1e6 << " MB, after " << after / 1e6 << " MB");
  if (!kSanitized) {
    CHECK(peak - before < 16 * 2 * (int64_t{8} << 20));
    CHECK(after - before < (int64_t{32} << 20));
  }
  CheckStillServing(r);
}

TEST_CASE("auth: bearer tokens guard every endpoint but liveness", "[serve][auth]") {
  Running r({.auth_token = "s3cret-Token_1"});
  httplib::Client& c = *r.client;
  auto live = c.Get("/v2/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);
  for (const char* path : {"/v2/health/ready", "/v2", "/v2/models/lenet", "/metrics"}) {
    auto res = c.Get(path);
    REQUIRE(res);
    INFO(path);
    CHECK(res->status == 401);
    CHECK(res->get_header_value("WWW-Authenticate") == "Bearer");
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("Authorization: Bearer"));
  }
  auto images = RandomImages(1, 70);
  auto no_token = c.Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
  REQUIRE(no_token);
  CHECK(no_token->status == 401);
  for (const char* wrong : {"Bearer s3cret-Token_2", "Bearer s3cret-Token_", "Bearer ", "Basic czNjcmV0", "s3cret-Token_1"}) {
    auto res = c.Get("/v2/health/ready", {{"Authorization", wrong}});
    REQUIRE(res);
    INFO(wrong);
    CHECK(res->status == 401);
  }
  httplib::Headers ok = {{"Authorization", "Bearer s3cret-Token_1"}};
  auto ready = c.Get("/v2/health/ready", ok);
  REQUIRE(ready);
  CHECK(ready->status == 200);
  CheckLogits(c.Post("/v2/models/lenet/infer", ok, InferBody(images).dump(), "application/json"), images);
}

TEST_CASE("auth: token files", "[serve][auth]") {
  auto write = [](const std::string& name, const std::string& text) {
    std::string path = TmpPath(name);
    std::ofstream(path) << text;
    return path;
  };
  auto t = ReadTokenFile(write("token_ok", "  abc.DEF-123_~+/=  \nsecond line\n"));
  REQUIRE(t.ok());
  CHECK(*t == "abc.DEF-123_~+/=");
  CHECK(ReadTokenFile(write("token_empty", "\n")).status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(ReadTokenFile(write("token_bad", "a b\"c")).status().message(), Catch::Contains("may hold only"));
  CHECK(ReadTokenFile(TmpPath("no_such_token")).status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln::serve
