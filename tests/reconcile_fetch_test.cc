// Reconciliation's two halves (issue 14): the fetch (stream/reconcile_fetch.h)
// against a small HTTP server written here, on real loopback sockets, and the
// reading of its answer (ingest/reconcile_answer.h); plus the URL rules the
// configuration shares with the fetch (stream/stream_options.h).
#define BOOST_TEST_MODULE reconcile_fetch
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ingest/parser.h"
#include "ingest/reconcile_answer.h"
#include "stream/reconcile_fetch.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;
namespace net = boost::asio;

namespace {

// What the server does with a connection once it has read the request's head.
struct Answer {
  std::string bytes;  // written whole, then the connection is closed
  bool hang = false;  // write nothing and keep the connection open until the server stops
};

// An HTTP server on 127.0.0.1, on a thread of its own, one connection at a
// time: reads a request head, records it, answers as `answer` says. With
// `greeting`, it writes that at once instead, without reading anything.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::function<Answer(const std::string& head)> answer, std::string greeting = {})
      : answer_(std::move(answer)), greeting_(std::move(greeting)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_TEST_REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_TEST_REQUIRE(::listen(listen_fd_, 8) == 0);
    socklen_t length = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    BOOST_TEST_REQUIRE(::pipe2(stop_pipe_, O_CLOEXEC) == 0);
    thread_ = std::thread([this] { run(); });
  }

  ~LoopbackServer() {
    char byte = 0;
    (void)!::write(stop_pipe_[1], &byte, 1);
    thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(listen_fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  int port() const { return port_; }
  std::string url(const std::string& target = "/api/sessions") const {
    return "http://127.0.0.1:" + std::to_string(port_) + target;
  }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mutex_);
    return heads_;
  }

 private:
  // Waits for `fd` to be readable; false when the server is stopping.
  bool wait_readable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0) {}
    return !(fds[1].revents & POLLIN);
  }

  static void send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      // MSG_NOSIGNAL: a client that gave up (too large, timed out) is no crash.
      ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  void run() {
    while (wait_readable(listen_fd_)) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      if (!greeting_.empty()) {
        send_all(fd, greeting_);
        ::shutdown(fd, SHUT_WR);
        // Read whatever the client sends until it gives up, so that closing
        // with unread bytes does not reset the connection under the greeting.
        char sink[4096];
        while (wait_readable(fd) && ::recv(fd, sink, sizeof sink, 0) > 0) {}
        ::close(fd);
        continue;
      }
      std::string head;
      char chunk[4096];
      while (head.find("\r\n\r\n") == std::string::npos && wait_readable(fd)) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        head.append(chunk, static_cast<std::size_t>(n));
      }
      Answer answer = answer_(head);
      {
        std::lock_guard lock(mutex_);
        heads_.push_back(head);
      }
      if (answer.hang) {
        held_.push_back(fd);
        continue;
      }
      send_all(fd, answer.bytes);
      ::shutdown(fd, SHUT_WR);
      ::close(fd);
    }
  }

  std::function<Answer(const std::string&)> answer_;
  std::string greeting_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  std::vector<int> held_;  // hung connections, closed when the server stops
  mutable std::mutex mutex_;
  std::vector<std::string> heads_;
};

std::string response(int status, const std::string& reason, const std::string& body,
                     const std::string& headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + headers + "\r\n" + body;
}

// The body in chunks of at most `size` bytes, without a Content-Length.
std::string chunked_response(const std::string& body, std::size_t size) {
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (std::size_t at = 0; at < body.size(); at += size) {
    std::string piece = body.substr(at, size);
    char length[32];
    std::snprintf(length, sizeof length, "%zx\r\n", piece.size());
    out += length + piece + "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::function<Answer(const std::string&)> always(std::string bytes) {
  return [bytes](const std::string&) { return Answer{bytes}; };
}

ReconcileFetchOptions options_for(const std::string& url) {
  ReconcileFetchOptions options;
  options.url = url;
  options.timeout = std::chrono::seconds(20);  // generous: only the hung tests wait for it
  return options;
}

// Runs one fetch to its end on an io_context of its own; `done` must run once.
ReconcileFetchOutcome fetch(const ReconcileFetchOptions& options) {
  net::io_context io;
  int calls = 0;
  ReconcileFetchOutcome outcome;
  start_reconcile_fetch(io, options, [&](ReconcileFetchOutcome result) {
    ++calls;
    outcome = std::move(result);
  });
  BOOST_TEST(calls == 0);  // never inside start_reconcile_fetch
  io.run();
  BOOST_TEST(calls == 1);
  return outcome;
}

std::string kind_of(const ReconcileFetchOutcome& outcome) {
  return outcome.failure ? std::string(to_string(outcome.failure->kind)) : "ok";
}

std::string detail_of(const ReconcileFetchOutcome& outcome) {
  return outcome.failure ? outcome.failure->detail : std::string();
}

ReconcileAnswer parsed(std::string_view body) {
  auto answer = parse_reconcile_answer(body);
  BOOST_TEST_REQUIRE(answer.ok(), answer.error());
  return std::move(answer.value());
}

std::vector<std::string> ids_of(const ReconcileAnswer& answer) {
  std::vector<std::string> ids;
  for (const auto& session : answer.sessions) ids.push_back(session.session_id);
  return ids;
}

std::vector<std::string> reasons_of(const ReconcileAnswer& answer) {
  std::vector<std::string> reasons;
  for (const auto& rejection : answer.rejections) reasons.push_back(rejection.reason);
  return reasons;
}

const std::string kTwoSessions =
    R"({"sessions":[{"id":"s1","planStatus":"pending"},{"id":"s2","n":9007199254740993}]})";

}  // namespace

// ---- the fetch ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_200_answer_of_each_shape_is_fetched_and_read) {
  const std::vector<std::pair<std::string, std::string>> answers = {
      {"jules list", response(200, "OK", kTwoSessions)},
      {"bare array", response(200, "OK", R"([{"id":"s1","planStatus":"pending"},{"id":"s2","n":9007199254740993}])")},
      {"chunked", chunked_response(kTwoSessions, 7)},
      {"with a next page", response(200, "OK", R"({"sessions":[{"id":"s1","planStatus":"pending"},{"id":"s2","n":9007199254740993}],"nextPageToken":"p2"})")},
  };
  for (const auto& [name, bytes] : answers) {
    LoopbackServer server(always(bytes));
    auto outcome = fetch(options_for(server.url()));
    BOOST_TEST_REQUIRE(outcome.ok(), name << ": " << detail_of(outcome));
    auto answer = parsed(outcome.body);
    BOOST_TEST(ids_of(answer) == (std::vector<std::string>{"s1", "s2"}), name);
    BOOST_TEST(answer.sessions[1].state == R"({"id":"s2","n":9007199254740993})", name);
    BOOST_TEST(answer.rejections.empty(), name);
    BOOST_TEST(answer.complete() == (name != "with a next page"), name);
  }
}

BOOST_AUTO_TEST_CASE(the_request_carries_the_bearer_token_host_and_extra_headers) {
  LoopbackServer server(always(response(200, "OK", "[]")));
  auto options = options_for(server.url("/api/sessions?view=full"));
  options.token = "s3cret-token";
  options.headers = {"X-Client: deltatap-test", "not a header line"};
  auto outcome = fetch(options);
  BOOST_TEST_REQUIRE(outcome.ok(), detail_of(outcome));
  auto heads = server.heads();
  BOOST_TEST_REQUIRE(heads.size() == 1u);
  const std::string& head = heads[0];
  BOOST_TEST(head.rfind("GET /api/sessions?view=full HTTP/1.1\r\n", 0) == 0, head);
  BOOST_TEST(head.find("\r\nAuthorization: Bearer s3cret-token\r\n") != std::string::npos, head);
  BOOST_TEST(head.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n") != std::string::npos, head);
  BOOST_TEST(head.find("\r\nX-Client: deltatap-test\r\n") != std::string::npos, head);
  BOOST_TEST(head.find("not a header line") == std::string::npos, head);

  // Without a token, no Authorization header at all.
  LoopbackServer anonymous(always(response(200, "OK", "[]")));
  BOOST_TEST_REQUIRE(fetch(options_for(anonymous.url())).ok());
  BOOST_TEST(anonymous.heads().at(0).find("Authorization") == std::string::npos, anonymous.heads().at(0));
}

BOOST_AUTO_TEST_CASE(a_refusal_is_an_http_status_failure_that_names_no_secret) {
  for (auto [status, reason] : std::vector<std::pair<int, std::string>>{{401, "Unauthorized"},
                                                                       {404, "Not Found"},
                                                                       {503, "Service Unavailable"}}) {
    LoopbackServer server(always(response(status, reason, R"({"error":"no"})")));
    auto options = options_for(server.url("/api/sessions?key=q-secret"));
    options.token = "t-secret";
    auto outcome = fetch(options);
    BOOST_TEST_REQUIRE(!outcome.ok());
    BOOST_TEST(kind_of(outcome) == "http_status");
    BOOST_TEST(outcome.failure->http_status == status);
    BOOST_TEST(detail_of(outcome).find(std::to_string(status) + " " + reason) != std::string::npos,
               detail_of(outcome));
    BOOST_TEST(detail_of(outcome).find("q-secret") == std::string::npos, detail_of(outcome));
    BOOST_TEST(detail_of(outcome).find("t-secret") == std::string::npos, detail_of(outcome));
    BOOST_TEST(outcome.body.empty());
  }
  // The status is what counts even when the error page declares a huge body.
  LoopbackServer big(always("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 999999999\r\n\r\nx"));
  auto options = options_for(big.url());
  options.max_body_bytes = 1024;
  auto outcome = fetch(options);
  BOOST_TEST(kind_of(outcome) == "http_status", detail_of(outcome));
  // Redirects are not followed.
  LoopbackServer moved(always(response(302, "Found", "", "Location: http://127.0.0.1:1/\r\n")));
  auto redirected = fetch(options_for(moved.url()));
  BOOST_TEST(kind_of(redirected) == "http_status");
  BOOST_TEST(redirected.failure->http_status == 302);
  BOOST_TEST(detail_of(redirected).find("redirects are not followed") != std::string::npos, detail_of(redirected));
}

BOOST_AUTO_TEST_CASE(a_body_of_another_shape_is_fetched_and_then_refused_by_the_reader) {
  LoopbackServer server(always(response(200, "OK", R"({"items":[{"id":"s1"}]})")));
  auto outcome = fetch(options_for(server.url()));
  BOOST_TEST_REQUIRE(outcome.ok(), detail_of(outcome));
  auto answer = parse_reconcile_answer(outcome.body);
  BOOST_TEST_REQUIRE(!answer.ok());
  BOOST_TEST(answer.error().find("without \"sessions\"") != std::string::npos, answer.error());
  BOOST_TEST(answer.error().find("{\"sessions\":[...]} or an array") != std::string::npos, answer.error());

  LoopbackServer html(always(response(200, "OK", "<html>sign in</html>")));
  auto page = fetch(options_for(html.url()));
  BOOST_TEST_REQUIRE(page.ok(), detail_of(page));
  auto refused = parse_reconcile_answer(page.body);
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.error().find("not valid JSON") != std::string::npos, refused.error());
}

BOOST_AUTO_TEST_CASE(an_endpoint_that_never_answers_times_out) {
  LoopbackServer server([](const std::string&) { return Answer{{}, true}; });
  auto options = options_for(server.url());
  options.timeout = std::chrono::milliseconds(300);
  auto outcome = fetch(options);
  BOOST_TEST(kind_of(outcome) == "timed_out", detail_of(outcome));
  BOOST_TEST(detail_of(outcome).find("300 ms") != std::string::npos, detail_of(outcome));
  BOOST_TEST(server.heads().size() == 1u);  // it was asked, and kept silent
}

BOOST_AUTO_TEST_CASE(a_body_over_max_body_bytes_is_too_large) {
  std::string body = "[" + std::string(4000, ' ') + "]";
  for (auto [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"declared length", response(200, "OK", body)}, {"chunked", chunked_response(body, 512)}}) {
    LoopbackServer server(always(bytes));
    auto options = options_for(server.url());
    options.max_body_bytes = 1024;
    auto outcome = fetch(options);
    BOOST_TEST(kind_of(outcome) == "too_large", name << ": " << detail_of(outcome));
    BOOST_TEST(detail_of(outcome).find("1024") != std::string::npos, detail_of(outcome));
  }
  // Exactly at the limit is fine.
  LoopbackServer server(always(response(200, "OK", body)));
  auto options = options_for(server.url());
  options.max_body_bytes = body.size();
  BOOST_TEST(fetch(options).ok());
}

BOOST_AUTO_TEST_CASE(no_server_tls_mismatch_and_bad_urls_are_failures_too) {
  auto nobody = fetch(options_for("http://127.0.0.1:" + std::to_string(free_port()) + "/api/sessions"));
  BOOST_TEST(kind_of(nobody) == "unreachable", detail_of(nobody));
  BOOST_TEST(detail_of(nobody).find("connect") != std::string::npos, detail_of(nobody));

  // https:// to a server that answers in plain HTTP: the handshake fails.
  LoopbackServer plain(always({}), response(400, "Bad Request", ""));
  auto tls = fetch(options_for("https://127.0.0.1:" + std::to_string(plain.port()) + "/api/sessions"));
  BOOST_TEST(kind_of(tls) == "tls", detail_of(tls));

  auto ca = options_for("https://127.0.0.1:1/api/sessions");
  ca.ca_file = "/no/such/ca.pem";
  auto no_ca = fetch(ca);
  BOOST_TEST(kind_of(no_ca) == "tls", detail_of(no_ca));
  BOOST_TEST(detail_of(no_ca).find("ca_file") != std::string::npos, detail_of(no_ca));

  auto bad = fetch(options_for("ftp://127.0.0.1/api/sessions"));
  BOOST_TEST(kind_of(bad) == "unreachable", detail_of(bad));
  BOOST_TEST(detail_of(bad).find("scheme") != std::string::npos, detail_of(bad));
}

BOOST_AUTO_TEST_CASE(cancel_ends_the_request_and_done_never_runs) {
  LoopbackServer server([](const std::string&) { return Answer{{}, true}; });
  net::io_context io;
  int calls = 0;
  auto held = std::make_shared<int>(1);
  std::weak_ptr<int> watch = held;
  auto options = options_for(server.url());
  options.timeout = std::chrono::minutes(10);
  auto request = start_reconcile_fetch(io, options, [&calls, held = std::move(held)](ReconcileFetchOutcome) { ++calls; });

  // Cancelled once the server holds the request, from the io_context's thread.
  net::steady_timer poll(io);
  int polls = 0;
  std::function<void()> wait_for_request = [&] {
    if (!server.heads().empty()) {
      request->cancel();
      BOOST_TEST(watch.expired());  // `done` was released at once
      return;
    }
    if (++polls > 2000) return;  // the server never saw it: the checks below fail
    poll.expires_after(std::chrono::milliseconds(10));
    poll.async_wait([&](boost::system::error_code ec) {
      if (!ec) wait_for_request();
    });
  };
  wait_for_request();
  io.run_for(std::chrono::seconds(60));
  BOOST_TEST(server.heads().size() == 1u);
  BOOST_TEST(io.stopped());  // nothing of the request was left pending
  BOOST_TEST(calls == 0);

  // Cancelled before it ran at all, and a refused one (bad URL) likewise.
  for (const std::string& url : {server.url(), std::string("ftp://127.0.0.1/x")}) {
    net::io_context again;
    int late = 0;
    auto early = start_reconcile_fetch(again, options_for(url), [&](ReconcileFetchOutcome) { ++late; });
    early->cancel();
    again.run_for(std::chrono::seconds(60));
    BOOST_TEST(again.stopped(), url);
    BOOST_TEST(late == 0, url);
  }
}

// ---- the URL rules -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_reconcile_url_is_derived_from_the_stream_url) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ws://127.0.0.1:3001/ws", "http://127.0.0.1:3001/api/sessions"},
      {"wss://backend.example/ws?token=abc", "https://backend.example/api/sessions"},
      {"ws://[::1]:8080/any/path", "http://[::1]:8080/api/sessions"},
      {"wss://[::1]/ws", "https://[::1]/api/sessions"},
      {"wss://h.example:443/ws", "https://h.example/api/sessions"},
      {"ws://h.example:80/ws", "http://h.example/api/sessions"},
      {"ws://h.example:443/ws", "http://h.example:443/api/sessions"},
      {"WSS://H.Example:8443", "https://h.example:8443/api/sessions"},
  };
  for (const auto& [stream, expected] : cases) {
    auto derived = reconcile_url_for(stream);
    BOOST_TEST_REQUIRE(derived.ok(), stream << ": " << derived.error());
    BOOST_TEST(*derived == expected, stream);
    BOOST_TEST(parse_reconcile_url(*derived).ok(), *derived);
  }
  BOOST_TEST(!reconcile_url_for("http://h/ws").ok());

  StreamOptions stream;
  stream.url = "wss://b.example:9443/ws";
  stream.token = "tok";
  stream.headers = {"X-A: 1"};
  stream.insecure_skip_verify = true;
  auto options = reconcile_fetch_options(stream);
  BOOST_TEST_REQUIRE(options.ok(), options.error());
  BOOST_TEST(options->url == "https://b.example:9443/api/sessions");
  BOOST_TEST(options->token == "tok");
  BOOST_TEST(options->headers == stream.headers);
  BOOST_TEST(options->insecure_skip_verify);
  stream.reconcile_url = "http://elsewhere:1/list";
  BOOST_TEST(reconcile_fetch_options(stream)->url == "http://elsewhere:1/list");
}

BOOST_AUTO_TEST_CASE(an_explicit_reconcile_url_follows_the_stream_url_rules) {
  auto plain = parse_reconcile_url("http://Backend.Example/api/sessions?view=x");
  BOOST_TEST_REQUIRE(plain.ok(), plain.error());
  BOOST_TEST(!plain->tls);
  BOOST_TEST(plain->host == "backend.example");
  BOOST_TEST(plain->port == "80");
  BOOST_TEST(plain->target == "/api/sessions?view=x");
  BOOST_TEST(plain->display == "http://backend.example/api/sessions?...");
  auto tls = parse_reconcile_url("https://[::1]:9443/s");
  BOOST_TEST_REQUIRE(tls.ok(), tls.error());
  BOOST_TEST(tls->tls);
  BOOST_TEST(tls->host == "::1");
  BOOST_TEST(tls->host_header == "[::1]:9443");

  for (auto [url, needle] : std::vector<std::pair<std::string, std::string>>{
           {"ws://h/api/sessions", "http or https"},
           {"http://user:p-secret@h/api", "user info"},
           {"http://h/api#part", "fragment"},
           {"http:///api", "host"},
           {"http://h:0/api", "port"},
           {"not a url", "URL"}}) {
    auto refused = parse_reconcile_url(url);
    BOOST_TEST_REQUIRE(!refused.ok(), url);
    BOOST_TEST(refused.error().find(needle) != std::string::npos, url << ": " << refused.error());
    BOOST_TEST(refused.error().find("p-secret") == std::string::npos, refused.error());
  }
}

// ---- reading the answer ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(states_keep_exact_digits_unicode_and_order_as_parse_frame_writes_them) {
  const std::string state =
      "{ \"id\" : \"s1\", \"n\": 9007199254740993, \"p\": 1.50, \"e\": 1e400, \"z\": -0,"
      " \"u\": \"h\xC3\xA9llo \xE2\x98\x83 \xF0\x9F\x98\x80\", \"esc\": \"\\u00e9\\n\\\"\","
      " \"nested\": {\"b\": [1, 2.0, {\"c\": null}]}, \"a\": true }";
  auto answer = parsed("{\"sessions\": [" + state + "]}");
  BOOST_TEST_REQUIRE(answer.sessions.size() == 1u);
  BOOST_TEST(answer.sessions[0].session_id == "s1");
  BOOST_TEST(answer.sessions[0].state ==
             "{\"id\":\"s1\",\"n\":9007199254740993,\"p\":1.50,\"e\":1e400,\"z\":-0,"
             "\"u\":\"h\xC3\xA9llo \xE2\x98\x83 \xF0\x9F\x98\x80\",\"esc\":\"\xC3\xA9\\n\\\"\","
             "\"nested\":{\"b\":[1,2.0,{\"c\":null}]},\"a\":true}");
  // The very text parse_frame stores for the same state.
  auto frame = parse_frame("{\"type\":\"created\",\"sessionId\":\"s1\",\"after\":" + state + "}", TimePoint{});
  BOOST_TEST_REQUIRE(frame.deltas.size() == 1u);
  BOOST_TEST(answer.sessions[0].state == *frame.deltas[0].after);

  auto unicode = parsed("[{\"id\":\"s\xC3\xA9ss-\xE2\x98\x83\",\"k\":\"\\ud83d\\ude00\"}]");
  BOOST_TEST_REQUIRE(unicode.sessions.size() == 1u);
  BOOST_TEST(unicode.sessions[0].session_id == "s\xC3\xA9ss-\xE2\x98\x83");
  BOOST_TEST(unicode.sessions[0].state == "{\"id\":\"s\xC3\xA9ss-\xE2\x98\x83\",\"k\":\"\xF0\x9F\x98\x80\"}");
}

BOOST_AUTO_TEST_CASE(a_duplicate_key_rejects_its_element_only) {
  auto answer = parsed(R"([{"id":"a","x":1,"x":2},{"id":"b"},{"id":"c","m":{"k":1,"k":2}}])");
  BOOST_TEST(ids_of(answer) == (std::vector<std::string>{"b"}));
  BOOST_TEST(reasons_of(answer) == (std::vector<std::string>{"duplicate_key", "duplicate_key"}));
  BOOST_TEST(answer.rejections[0].raw == R"({"id":"a","x":1,"x":2})");
  BOOST_TEST(answer.rejections[0].detail.find("sessions element 0") != std::string::npos, answer.rejections[0].detail);
  BOOST_TEST(answer.rejections[0].detail.find("\"x\"") != std::string::npos, answer.rejections[0].detail);
  BOOST_TEST(answer.rejections[1].detail.find("sessions element 2") != std::string::npos, answer.rejections[1].detail);
  // Listed, but unreadable: not to be taken for ended.
  BOOST_TEST(answer.unreadable_ids == (std::vector<std::string>{"a", "c"}));
}

BOOST_AUTO_TEST_CASE(bad_elements_are_rejected_and_the_others_kept_in_order) {
  auto answer = parsed(R"({"sessions":[1,"s",null,[],{"x":1},{"id":""},{"id":7},)"
                       R"({"id":"ok1","v":1},{"id":"ok1","v":2},{"id":"ok2"}],"other":{"id":"no"}})");
  BOOST_TEST(ids_of(answer) == (std::vector<std::string>{"ok1", "ok2"}));
  BOOST_TEST(answer.sessions[0].state == R"({"id":"ok1","v":1})");  // the first of two is kept
  BOOST_TEST(reasons_of(answer) ==
             (std::vector<std::string>{"not_object", "not_object", "not_object", "not_object",
                                       "missing_session_id", "invalid_session_id", "invalid_session_id",
                                       "invalid_session_id"}));
  std::vector<std::string> raws;
  for (const auto& r : answer.rejections) raws.push_back(r.raw);
  BOOST_TEST(raws == (std::vector<std::string>{"1", "\"s\"", "null", "[]", R"({"x":1})", R"({"id":""})",
                                               R"({"id":7})", R"({"id":"ok1","v":2})"}));
  BOOST_TEST(answer.rejections[7].detail.find("earlier element") != std::string::npos, answer.rejections[7].detail);
  BOOST_TEST(answer.unreadable_ids.empty());

  // A hostile list: the first kMaxItemisedRejections one by one, the rest counted.
  std::string many = "[";
  for (int i = 0; i < 150; ++i) many += "1,";
  many += R"({"id":"kept"}])";
  auto flood = parsed(many);
  BOOST_TEST(ids_of(flood) == (std::vector<std::string>{"kept"}));
  BOOST_TEST_REQUIRE(flood.rejections.size() == kMaxItemisedRejections + 1);
  BOOST_TEST(flood.rejections.back().count == 50u);
  BOOST_TEST(flood.rejections.back().reason == "not_object");
}

BOOST_AUTO_TEST_CASE(both_shapes_and_the_empty_list) {
  BOOST_TEST(ids_of(parsed(R"([{"id":"a"},{"id":"b"}])")) == (std::vector<std::string>{"a", "b"}));
  auto listed = parsed(R"({"nextPageToken":null,"sessions":[{"id":"a"}],"unknown":[1,{"x":[]}]})");
  BOOST_TEST(ids_of(listed) == (std::vector<std::string>{"a"}));
  BOOST_TEST(listed.complete());
  auto paged = parsed(R"({"sessions":[{"id":"a"}],"nextPageToken":"next-1"})");
  BOOST_TEST(paged.next_page_token == "next-1");
  BOOST_TEST(!paged.complete());
  for (std::string_view empty : {"{}", " { } ", "[]", R"({"sessions":[]})"}) {
    auto answer = parsed(empty);
    BOOST_TEST(answer.sessions.empty(), empty);
    BOOST_TEST(answer.rejections.empty(), empty);
    BOOST_TEST(answer.complete(), empty);
  }
}

BOOST_AUTO_TEST_CASE(a_body_of_no_accepted_shape_is_an_error) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"  \n", "empty"},
      {"\"sessions\"", "is a string"},
      {"42", "is a number"},
      {"null", "is null"},
      {"true", "is a boolean"},
      {R"({"items":[]})", "without \"sessions\""},
      {R"({"nextPageToken":"x"})", "without \"sessions\""},
      {R"({"sessions":{"id":"a"}})", "\"sessions\" an object, not an array"},
      {R"({"sessions":null})", "\"sessions\" null"},
      {R"({"sessions":[],"nextPageToken":5})", "\"nextPageToken\" a number"},
      {R"({"sessions":[],"sessions":[{"id":"a"}]})", "appears twice"},
      {R"([{"id":"a"})", "not valid JSON"},
      {R"([{"id":"a"}] [])", "not valid JSON"},
      {"\xEF\xBB\xBF[]", "byte order mark"},
      {std::string("[]\0[]", 5), "NUL"},
      {"[\"\xC3\x28\"]", "UTF-8"},
      {std::string(600, '[') + std::string(600, ']'), "deeper than"},
  };
  for (const auto& [body, needle] : cases) {
    auto answer = parse_reconcile_answer(body);
    BOOST_TEST_REQUIRE(!answer.ok(), body.substr(0, 40));
    BOOST_TEST(answer.error().find(needle) != std::string::npos, body.substr(0, 40) << ": " << answer.error());
  }
}
