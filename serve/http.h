// The HTTP/1.1 transport of kiln-serve: Boost.Beast over Asio, asynchronous, with limits
// that hold against hostile clients.
//
// Why Beast (Debian's libboost1.81-dev) and not cpp-httplib 0.11: httplib serves each
// connection on a thread of a fixed pool and its timeouts are per recv(), so 16 clients
// trickling one header byte every few seconds hold all 16 threads and health checks starve;
// its body limit is not applied to chunked bodies and gzip bodies are inflated before any
// limit; it sets SO_REUSEPORT, so a second server on a used port starts and steals half the
// traffic. Beast parses incrementally with a header limit and a body limit on the decoded
// bytes (chunked included), Asio gives deadlines for a whole operation (not per read), and
// no connection holds a thread while it waits: slow clients cost a socket, not a worker.
// libmicrohttpd would also do (event loop, limits) but its TLS is GnuTLS, not OpenSSL.
//
// Behaviour (every error answered by this layer has a JSON body {"error": "..."}):
//   - bind: SO_REUSEADDR only (a port in TIME_WAIT can be reused), never SO_REUSEPORT, so
//     a port another server listens on is refused: Start fails with "address in use".
//   - each request's start line and headers must arrive within `header_timeout_ms` of their
//     first byte and fit in `max_header_bytes` (else 431, then close); the body must
//     arrive within `body_timeout_ms`. A new connection must start its request within
//     `header_timeout_ms`; `idle_timeout_ms` applies between keep-alive requests. A
//     timed-out connection is closed without a response (the client is not keeping up).
//   - bodies: Content-Length above `max_body_bytes` gets 413 before the body is read; a
//     chunked body is counted as it is decoded and gets 413 once it passes the limit; a
//     Content-Encoding other than "identity" gets 415 (nothing is decompressed, so there is
//     no inflated size to bound); "Expect: 100-continue" is answered.
//   - connections: at most `max_connections` open; one more is answered 503 and closed.
//   - malformed HTTP: 400, then close. Responses carry Content-Length; HTTP/1.0 and 1.1.
// Per connection the memory is bounded by max_header_bytes + max_body_bytes + the response.
// Source: RFC 9110/9112 (status codes 413/415/431/503, 100-continue), Boost.Beast docs
// (http::request_parser header_limit/body_limit, beast::tcp_stream expires_after).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace kiln::serve {

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent
  std::string path;    // the request target up to '?', not percent-decoded
  std::string query;   // after '?', "" if none
  std::string body;    // de-chunked; at most max_body_bytes
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  // The first header named `lower_name` (lower-case), "" if absent.
  std::string Header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Sends the response for one request. Call it exactly once, from any thread; later calls
// are ignored. Not calling it leaves the connection open until the server stops.
using HttpResponder = std::function<void(HttpResponse)>;
// Called on an I/O thread for every complete request; must not block (hand slow work to
// another thread and respond from there).
using HttpHandler = std::function<void(HttpRequest request, HttpResponder respond)>;

struct HttpOptions {
  std::string host = "127.0.0.1";  // an IPv4/IPv6 address or a name resolved at Start
  int port = 8000;                 // 0: any free port (see HttpServer::port)
  int io_threads = 2;              // threads running the event loop
  int max_connections = 512;       // open at once; one more gets 503
  int64_t max_header_bytes = int64_t{16} << 10;  // start line + headers
  int64_t max_body_bytes = int64_t{8} << 20;
  int64_t header_timeout_ms = 10'000;  // first header byte to the end of the headers
  int64_t body_timeout_ms = 60'000;    // end of the headers to the end of the body
  int64_t idle_timeout_ms = 30'000;    // keep-alive wait for the next request
  int64_t write_timeout_ms = 30'000;   // writing one response
  // TLS (HTTPS): PEM files of the certificate chain and the private key, both or neither.
  // With them every connection starts with a TLS 1.2/1.3 handshake (OpenSSL through
  // Boost.Asio ssl), which must finish within header_timeout_ms; a plain-HTTP client's
  // connection is closed without an answer.
  std::string tls_cert_file, tls_key_file;
};

class HttpServer {
 public:
  // Resolves and binds host:port, listens, and starts the I/O threads. Errors:
  // InvalidArgument for a bad option, an unresolvable host or a port that cannot be bound
  // (the message names host:port and the system's reason, e.g. "Address already in use").
  static StatusOr<std::unique_ptr<HttpServer>> Start(HttpOptions options, HttpHandler handler);
  ~HttpServer();  // Stop(0 ms)
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;            // the bound port
  int64_t connections() const;  // connections open now
  int64_t in_flight() const;    // requests handed to the handler and not yet responded
  // Closes the listening socket; open connections keep being served. Idempotent.
  void StopAccepting();
  // StopAccepting, then waits up to `drain` for in-flight requests to be responded (and
  // their responses written), then closes every connection and joins the I/O threads.
  // Idempotent. Responders called afterwards do nothing.
  void Stop(std::chrono::milliseconds drain);

  struct Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// {"error": message} as a JSON text.
std::string JsonError(std::string_view message);
// A response with that body and `status`.
HttpResponse JsonErrorResponse(int status, std::string_view message);

// Whether an Authorization header value is "Bearer <token>" (RFC 6750) for `token`,
// compared in time independent of where the strings differ (no timing oracle).
bool BearerTokenMatches(std::string_view authorization, const std::string& token);

}  // namespace kiln::serve
