#include "serve/http.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_set>

namespace kiln::serve {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
namespace ssl = net::ssl;

std::string JsonError(std::string_view message) {
  return nlohmann::json{{"error", std::string(message)}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool BearerTokenMatches(std::string_view authorization, const std::string& token) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (token.empty() || authorization.size() <= kPrefix.size() || authorization.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  std::string_view given = authorization.substr(kPrefix.size());
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ token[i % token.size()]);
  }
  return diff == 0;
}

HttpResponse JsonErrorResponse(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = JsonError(message);
  return r;
}

std::string HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return "";
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// What Stop needs of a connection of either stream type.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void ForceClose() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpOptions options;
  HttpHandler handler;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  net::strand<net::io_context::executor_type> accept_strand{net::make_strand(ioc)};
  tcp::acceptor acceptor{accept_strand};
  std::vector<std::thread> threads;
  int port = 0;
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> accepting{true};
  // Guards `stopped` and `live` (the connections to close at Stop).
  std::mutex mu;
  bool stopped = false;
  std::unordered_set<ConnectionBase*> live;
  std::optional<ssl::context> tls;  // set: every connection is TLS

  void Accept();
};

namespace {

using Clock = std::chrono::steady_clock;

// One connection over `Stream`: beast::tcp_stream, or beast::ssl_stream<beast::tcp_stream>
// for TLS (the handshake first, within the header timeout).
template <class Stream>
class Connection final : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
  using std::enable_shared_from_this<Connection<Stream>>::shared_from_this;
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  template <class... Tls>
  Connection(std::shared_ptr<HttpServer::Impl> server, tcp::socket socket, bool reject, Tls&... tls)
      : server_(std::move(server)), stream_(std::move(socket), tls...), reject_(reject) {
    server_->connections++;
    std::lock_guard<std::mutex> lock(server_->mu);
    server_->live.insert(this);
  }
  ~Connection() {
    {
      std::lock_guard<std::mutex> lock(server_->mu);
      server_->live.erase(this);
    }
    server_->connections--;
  }

  void Start() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(opt().header_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->Close();  // not TLS (a plain HTTP client), or too slow: drop it
        self->Serve();
      });
    } else {
      Serve();
    }
  }

  void Serve() {
    if (reject_) {
      return Fail(503, "too many connections: the server accepts " + std::to_string(server_->options.max_connections) +
                           " at once");
    }
    WaitForRequest();
  }

  // Called at Stop, after the I/O threads were joined (no concurrent access).
  void ForceClose() override {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

  // Posts the response onto this connection's strand (from any thread, once).
  void Respond(HttpResponse response) {
    {
      std::lock_guard<std::mutex> lock(server_->mu);
      if (server_->stopped) return;
    }
    net::post(stream_.get_executor(),
              [self = shared_from_this(), r = std::move(response)]() mutable { self->Write(std::move(r), true); });
  }

 private:
  const HttpOptions& opt() const { return server_->options; }

  // Waits for the first byte of the next request, then reads it: up to the header timeout
  // on a new connection (it must send its request), the idle timeout between keep-alive
  // requests.
  void WaitForRequest() {
    if (buffer_.size() > 0) return ReadHeader();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(served_ ? opt().idle_timeout_ms : opt().header_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->Close();
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(opt().max_header_bytes));
    // No body limit while the headers are read (Beast would fail a large Content-Length
    // before the header is complete, without its value); OnHeader checks it, then sets it.
    parser_->body_limit(boost::none);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(opt().header_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      return Fail(431, "the request's headers exceed " + std::to_string(opt().max_header_bytes) + " bytes");
    }
    if (ec == beast::error::timeout) return Close();  // a slow client: drop it
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset) return Close();
    if (ec) return Fail(400, "malformed HTTP request: " + ec.message());
    auto& req = parser_->get();
    std::string encoding = Lower(std::string(req[http::field::content_encoding]));
    if (!encoding.empty() && encoding != "identity") {
      return Fail(415, "Content-Encoding '" + encoding + "' is not accepted: send the body uncompressed");
    }
    if (auto length = parser_->content_length(); length && *length > static_cast<uint64_t>(opt().max_body_bytes)) {
      return Fail(413, "the request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                           std::to_string(opt().max_body_bytes) + " bytes");
    }
    // Counted on the decoded bytes, so a chunked body stops at the limit too.
    parser_->body_limit(static_cast<uint64_t>(opt().max_body_bytes));
    if (Lower(std::string(req[http::field::expect])) == "100-continue") {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(opt().write_timeout_ms));
      return http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(opt().body_timeout_ms));
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec == http::error::body_limit) {
        return self->Fail(413, "the request body exceeds the limit of " + std::to_string(self->opt().max_body_bytes) +
                                   " bytes");
      }
      if (ec == beast::error::timeout) return self->Close();
      if (ec) return self->Fail(400, "malformed HTTP request body: " + ec.message());
      self->Dispatch();
    });
  }

  void Dispatch() {
    beast::get_lowest_layer(stream_).expires_never();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    for (const auto& f : req) r.headers.emplace_back(Lower(std::string(f.name_string())), std::string(f.value()));
    r.body = std::move(req.body());
    parser_.reset();
    server_->in_flight++;
    dispatched_ = true;
    served_ = true;
    auto self = shared_from_this();
    auto once = std::make_shared<std::atomic<bool>>(false);
    server_->handler(std::move(r), [self, once](HttpResponse response) {
      if (once->exchange(true)) return;
      self->Respond(std::move(response));
    });
  }

  void Fail(int status, const std::string& message) {
    keep_alive_ = false;
    Write(JsonErrorResponse(status, message), false);
  }

  void Write(HttpResponse r, bool from_handler) {
    auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version_);
    msg->set(http::field::server, "kiln");
    msg->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) msg->set(k, v);
    msg->body() = std::move(r.body);
    msg->keep_alive(keep_alive_ && server_->accepting.load());
    msg->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(opt().write_timeout_ms));
    http::async_write(stream_, *msg, [self = shared_from_this(), msg, from_handler](beast::error_code ec, size_t) {
      if (from_handler && self->dispatched_) {
        self->dispatched_ = false;
        self->server_->in_flight--;
      }
      if (ec || !msg->keep_alive()) return self->Close();
      self->WaitForRequest();
    });
  }

  void Close() {
    beast::error_code ec;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool reject_ = false;
  bool keep_alive_ = false;
  bool dispatched_ = false;
  bool served_ = false;  // a request was read on this connection
  unsigned version_ = 11;
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (!self->accepting.load() || !self->acceptor.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      bool reject = self->connections.load() >= self->options.max_connections;
      if (self->tls) {
        std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(self, std::move(socket), reject, *self->tls)
            ->Start();
      } else {
        std::make_shared<Connection<beast::tcp_stream>>(self, std::move(socket), reject)->Start();
      }
    }
    self->Accept();
  });
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpOptions options, HttpHandler handler) {
  std::string where = options.host + ":" + std::to_string(options.port);
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("http: port " + std::to_string(options.port) + " is outside [0, 65535]");
  }
  if (options.io_threads < 1 || options.max_connections < 1 || options.max_header_bytes < 64 ||
      options.max_header_bytes > (int64_t{1} << 30) || options.max_body_bytes < 1 || options.header_timeout_ms < 1 ||
      options.body_timeout_ms < 1 || options.idle_timeout_ms < 1 || options.write_timeout_ms < 1) {
    return InvalidArgument("http: io threads, connections, limits and timeouts must be positive");
  }
  auto impl = std::make_shared<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  if (impl->options.tls_cert_file.empty() != impl->options.tls_key_file.empty()) {
    return InvalidArgument("http: TLS needs both a certificate and a private key file");
  }
  if (!impl->options.tls_cert_file.empty()) {
    // TLS 1.2 and 1.3 only (OpenSSL through Boost.Asio's ssl::context).
    beast::error_code tls_ec;
    impl->tls.emplace(ssl::context::tls_server);
    impl->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    impl->tls->use_certificate_chain_file(impl->options.tls_cert_file, tls_ec);
    if (tls_ec) return InvalidArgument("http: TLS certificate '" + impl->options.tls_cert_file + "': " + tls_ec.message());
    impl->tls->use_private_key_file(impl->options.tls_key_file, ssl::context::pem, tls_ec);
    if (tls_ec) return InvalidArgument("http: TLS private key '" + impl->options.tls_key_file + "': " + tls_ec.message());
  }
  beast::error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto endpoints = resolver.resolve(impl->options.host, std::to_string(impl->options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) return InvalidArgument("http: cannot resolve host '" + impl->options.host + "': " + ec.message());
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  impl->acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR (TIME_WAIT reuse) only: Linux still refuses a port another socket listens on.
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return InvalidArgument("http: cannot listen on " + where + ": " + ec.message());
  impl->port = impl->acceptor.local_endpoint().port();
  impl->work.emplace(impl->ioc.get_executor());
  impl->Accept();
  for (int i = 0; i < impl->options.io_threads; ++i) {
    impl->threads.emplace_back([p = impl.get()] { p->ioc.run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

int HttpServer::port() const { return impl_->port; }
int64_t HttpServer::connections() const { return impl_->connections.load(); }
int64_t HttpServer::in_flight() const { return impl_->in_flight.load(); }

void HttpServer::StopAccepting() {
  if (!impl_->accepting.exchange(false)) return;
  std::promise<void> closed;
  net::post(impl_->accept_strand, [this, &closed] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    closed.set_value();
  });
  if (impl_->threads.empty()) {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  } else {
    closed.get_future().wait();
  }
}

void HttpServer::Stop(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
  }
  StopAccepting();
  auto deadline = Clock::now() + drain;
  while (impl_->in_flight.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopped = true;  // responders called from now on do nothing
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Abort every pending operation and run their handlers, so that the connections they own
  // are released while the io_context is alive.
  // Under the lock: a connection whose last owner (a responder on a worker thread) lets go
  // now blocks in its destructor until this is done, and one already past it is not listed.
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (ConnectionBase* c : impl_->live) c->ForceClose();
  }
  impl_->ioc.restart();
  impl_->ioc.run();
}

}  // namespace kiln::serve
