// WebSocketClient against tests/fixtures/broadcaster.py, a server built on the
// Python websockets package: real loopback sockets, real TLS with certificates
// made by the openssl CLI, real processes that are killed and restarted.
#define BOOST_TEST_MODULE websocket_client
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "base/logging.h"
#include "test_support.h"
#include "stream/websocket_client.h"

using namespace deltatap;
using namespace deltatap::testing;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

long long millis_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// Debug level, text lines on stderr: what a user running it by hand would see.
struct LoggingSetup {
  LoggingSetup() { init_logging(LogOptions{.level = LogLevel::debug, .format = LogFormat::text}); }
  ~LoggingSetup() { flush_logging(); }
};
BOOST_TEST_GLOBAL_FIXTURE(LoggingSetup);

// Sends this process's stderr (where the log lines go) to a file for a while.
class StderrCapture {
 public:
  explicit StderrCapture(const fs::path& file) : file_(file) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  // Restores stderr and returns what was written meanwhile.
  std::string finish() {
    restore();
    return read_file(file_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  fs::path file_;
  int saved_ = -1;
};

// The Python broadcaster; its first stdout line is the port it listens on.
class Broadcaster {
 public:
  explicit Broadcaster(std::vector<std::string> flags) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     (source_dir() / "tests/fixtures/broadcaster.py").string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<Process>(ProcessOptions{.argv = argv});
    bool listening = wait_until([&] { return out().find('\n') != std::string::npos; }, 20s);
    BOOST_TEST_REQUIRE(listening, "broadcaster did not start: " << process_->stderr_text());
    port_ = std::stoi(out().substr(0, out().find('\n')));
  }

  int port() const { return port_; }
  std::string url(const std::string& path = "/ws") const {
    return "ws://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string out() const { return process_->stdout_text(); }
  bool saw(const std::string& needle) const { return out().find(needle) != std::string::npos; }
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout = 10s) const {
    return wait_until([&] { return saw(needle); }, timeout);
  }
  Process& process() { return *process_; }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// What the client reported, stamped with when.
struct Seen {
  std::vector<std::string> texts;
  std::vector<std::string> binaries;
  std::vector<std::string> urls;
  std::vector<SteadyClock::time_point> connect_times;
  std::vector<Disconnect> drops;
  std::vector<SteadyClock::time_point> drop_times;
  std::vector<std::uint64_t> oversized;
};

// One client on its own io_context thread; calls go through post(), as the
// client wants them on that thread.
class ClientRun {
 public:
  explicit ClientRun(StreamOptions options) {
    StreamEvents events;
    events.on_connected = [this](const std::string& url) {
      std::lock_guard lock(mutex_);
      seen_.urls.push_back(url);
      seen_.connect_times.push_back(SteadyClock::now());
    };
    events.on_text = [this](std::string_view text, TimePoint) {
      std::lock_guard lock(mutex_);
      seen_.texts.emplace_back(text);
    };
    events.on_binary = [this](std::string_view data, TimePoint) {
      std::lock_guard lock(mutex_);
      seen_.binaries.emplace_back(data);
    };
    events.on_disconnected = [this](const Disconnect& why) {
      std::lock_guard lock(mutex_);
      seen_.drops.push_back(why);
      seen_.drop_times.push_back(SteadyClock::now());
    };
    events.on_oversized = [this](std::uint64_t size) {
      std::lock_guard lock(mutex_);
      seen_.oversized.push_back(size);
    };
    client_ = std::make_unique<WebSocketClient>(io_, std::move(options), std::move(events));
    client_->start();
    thread_ = std::thread([this] {
      io_.run();
      run_returned_ = true;
    });
  }

  ~ClientRun() {
    stop();
    work_.reset();
    // Once stopped nothing may stay pending: run() returns on its own.
    bool drained = wait_until([&] { return run_returned_.load(); }, 10s);
    BOOST_CHECK_MESSAGE(drained, "work still pending on the io_context after stop()");
    if (!drained) io_.stop();
    thread_.join();
    client_.reset();
  }

  // stop() and wait for its done callback.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    auto done = std::make_shared<std::atomic<bool>>(false);
    boost::asio::post(io_, [this, done] { client_->stop([done] { *done = true; }); });
    BOOST_CHECK_MESSAGE(wait_until([&] { return done->load(); }, 15s), "stop() never finished");
  }

  void reconfigure(const StreamOptions& options) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    boost::asio::post(io_, [this, options, done] {
      client_->reconfigure(options);
      *done = true;
    });
    BOOST_REQUIRE(wait_until([&] { return done->load(); }));
  }

  Seen seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::size_t texts() { return seen().texts.size(); }
  std::size_t drops() { return seen().drops.size(); }
  std::size_t connects() { return seen().connect_times.size(); }
  WebSocketClient& client() { return *client_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<WebSocketClient> client_;
  std::thread thread_;
  std::atomic<bool> run_returned_ = false;
  bool stopped_ = false;
  std::mutex mutex_;
  Seen seen_;
};

StreamOptions fast_options(const std::string& url) {
  StreamOptions options;
  options.url = url;
  options.connect_timeout = 3s;
  options.idle_timeout = 10s;
  options.backoff_initial = 20ms;
  options.backoff_max = 200ms;
  return options;
}

}  // namespace

BOOST_AUTO_TEST_CASE(urls_are_taken_apart) {
  auto plain = parse_stream_url("ws://127.0.0.1:3001/ws");
  BOOST_TEST_REQUIRE(plain.ok(), plain.error());
  BOOST_TEST(!plain->tls);
  BOOST_TEST(plain->host == "127.0.0.1");
  BOOST_TEST(plain->port == "3001");
  BOOST_TEST(plain->host_header == "127.0.0.1:3001");
  BOOST_TEST(plain->target == "/ws");

  auto secure = parse_stream_url("WSS://Control.Example.com/stream?team=a&key=s3cret");
  BOOST_TEST_REQUIRE(secure.ok(), secure.error());
  BOOST_TEST(secure->tls);
  BOOST_TEST(secure->host == "control.example.com");
  BOOST_TEST(secure->port == "443");
  BOOST_TEST(secure->host_header == "control.example.com");
  BOOST_TEST(secure->target == "/stream?team=a&key=s3cret");
  BOOST_TEST(secure->display == "wss://control.example.com/stream?...");

  auto v6 = parse_stream_url("ws://[::1]:9000");
  BOOST_TEST_REQUIRE(v6.ok(), v6.error());
  BOOST_TEST(v6->host == "::1");
  BOOST_TEST(v6->host_header == "[::1]:9000");
  BOOST_TEST(v6->target == "/");

  auto default_port = parse_stream_url("ws://backend:80/ws");
  BOOST_TEST_REQUIRE(default_port.ok());
  BOOST_TEST(default_port->host_header == "backend");
  BOOST_TEST(default_port->port == "80");

  for (const char* bad : {"http://host/ws", "ws://", "ws://host:0/", "ws://host:70000/",
                          "ws://user:pw@host/", "ws://host/ws#part", "not a url", ""}) {
    auto parsed = parse_stream_url(bad);
    BOOST_TEST(!parsed.ok(), bad << " was accepted");
  }
}

BOOST_AUTO_TEST_CASE(frames_arrive_in_order_with_token_headers_and_agent) {
  Broadcaster server({"--token", "s3cret-token", "--count", "300", "--binary", "2",
                      "--log-header", "X-Tap"});
  TempDir dir;
  StderrCapture capture(dir / "log");
  std::string logs;
  {
    StreamOptions options = fast_options(server.url("/ws?room=s3cret-query"));
    options.token = "s3cret-token";
    options.headers = {"X-Tap: hunter2-value", "Sec-WebSocket-Key: overridden"};
    ClientRun run(options);
    BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 300 && run.seen().binaries.size() == 2; }));
    BOOST_TEST(run.client().connected());

    Seen seen = run.seen();
    for (std::size_t i = 0; i < seen.texts.size(); ++i) {
      std::string id = "\"sessionId\": \"sess_" + std::to_string(i) + "\"";
      BOOST_TEST_REQUIRE(seen.texts[i].find(id) != std::string::npos, "frame " << i << " out of order");
    }
    BOOST_TEST(seen.binaries[0] == std::string(16, '\0'));
    BOOST_TEST(seen.binaries[1] == std::string(16, '\1'));
    BOOST_TEST(seen.drops.empty());
    BOOST_TEST(seen.urls == std::vector<std::string>{
                                "ws://127.0.0.1:" + std::to_string(server.port()) + "/ws?..."});
  }
  logs = capture.finish();

  BOOST_TEST(server.saw("subprotocol=bearer.s3cret-token"));
  BOOST_TEST(server.saw("path=/ws?room=s3cret-query"));
  BOOST_TEST(server.saw(std::string("user_agent=deltatap/") + DELTATAP_VERSION));
  BOOST_TEST(server.saw("header X-Tap=hunter2-value"));
  BOOST_TEST(server.saw("closed n=0 code=1000"));

  BOOST_TEST(logs.find("Connected to the stream") != std::string::npos, logs);
  for (const char* secret : {"s3cret-token", "hunter2-value", "s3cret-query"}) {
    BOOST_TEST(logs.find(secret) == std::string::npos, secret << " leaked into the log: " << logs);
  }
}

BOOST_AUTO_TEST_CASE(wrong_token_is_refused_with_401_and_retried_at_max_backoff) {
  Broadcaster server({"--token", "right-token", "--count", "1"});
  TempDir dir;
  StderrCapture capture(dir / "log");
  Seen seen;
  {
    StreamOptions options = fast_options(server.url());
    options.token = "wrong-token-77";
    options.backoff_initial = 10ms;
    options.backoff_max = 500ms;
    ClientRun run(options);
    BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 4; }, 15s));
    seen = run.seen();
    BOOST_TEST(!run.client().connected());
    BOOST_TEST(run.client().reconnects() >= 3u);
  }
  std::string logs = capture.finish();

  for (const auto& drop : seen.drops) {
    BOOST_TEST(drop.http_status == 401);
    BOOST_TEST(drop.error.find("401") != std::string::npos, drop.error);
  }
  // Every retry waits the maximum backoff (refused_backoff), not backoff_initial.
  for (std::size_t i = 1; i < 4; ++i) {
    auto gap = millis_between(seen.drop_times[i - 1], seen.drop_times[i]);
    BOOST_TEST(gap >= 500, "retry " << i << " after " << gap << " ms");
  }
  BOOST_TEST(seen.connect_times.empty());
  BOOST_TEST(count_of(server.out(), "rejected n=") >= 4u);
  // One error for the state change, not one per attempt; never the token.
  BOOST_TEST(count_of(logs, "authentication failed") == 1u, logs);
  BOOST_TEST(logs.find("wrong-token-77") == std::string::npos, logs);
}

BOOST_AUTO_TEST_CASE(no_token_at_all_gets_426) {
  Broadcaster server({"--token", "right-token"});
  ClientRun run(fast_options(server.url()));
  BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 1; }));
  BOOST_TEST(run.seen().drops[0].http_status == 426);
  BOOST_TEST(server.saw("protocols=0"));
}

// The backoff's arithmetic, without a clock: the n-th consecutive failure
// draws its delay from [initial, min(max, initial * 2^(n-1))], a refused token
// waits the maximum, a connection up for twice the maximum starts the count
// again, and settings that make no sense are not taken literally.
BOOST_AUTO_TEST_CASE(backoff_doubles_from_initial_up_to_max) {
  StreamOptions options;
  options.backoff_initial = 50ms;
  options.backoff_max = 400ms;
  const long long ceilings[] = {50, 100, 200, 400, 400, 400};
  for (int n = 1; n <= 6; ++n) {
    auto range = backoff_range(options, n);
    BOOST_TEST(range.low.count() == 50, "failure " << n);
    BOOST_TEST(range.high.count() == ceilings[n - 1], "failure " << n);
  }
  BOOST_TEST(backoff_range(options, 1'000'000).high.count() == 400);  // no overflow
  BOOST_TEST(refused_backoff(options).count() == 400);
  BOOST_TEST(!backoff_restarts(options, 799ms));
  BOOST_TEST(backoff_restarts(options, 800ms));

  // The defaults: 500 ms, doubling to the 30 s maximum at the 7th failure.
  StreamOptions defaults;
  BOOST_TEST(backoff_range(defaults, 1).high.count() == 500);
  BOOST_TEST(backoff_range(defaults, 6).high.count() == 16'000);
  BOOST_TEST(backoff_range(defaults, 7).high.count() == 30'000);
  BOOST_TEST(backoff_range(defaults, 7).low.count() == 500);

  // No delay at all would be a hot loop: at least 1 ms. A maximum below the
  // initial delay: the initial delay every time.
  options.backoff_initial = 0ms;
  options.backoff_max = 0ms;
  BOOST_TEST(backoff_range(options, 3).low.count() == 1);
  BOOST_TEST(backoff_range(options, 3).high.count() == 1);
  BOOST_TEST(refused_backoff(options).count() == 1);
  options.backoff_initial = 500ms;
  options.backoff_max = 100ms;
  BOOST_TEST(backoff_range(options, 1).high.count() == 500);
  BOOST_TEST(backoff_range(options, 4).high.count() == 500);
  BOOST_TEST(refused_backoff(options).count() == 500);
}

BOOST_AUTO_TEST_CASE(server_restart_reconnects_with_bounded_backoff) {
  auto first = std::make_unique<Broadcaster>(std::vector<std::string>{"--count", "1"});
  int port = first->port();
  StreamOptions options = fast_options(first->url());
  options.backoff_initial = 50ms;
  options.backoff_max = 400ms;
  TempDir dir;
  StderrCapture capture(dir / "log");
  ClientRun run(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 1; }));

  first->process().signal(SIGTERM);  // closes with 1001 and exits
  BOOST_TEST_REQUIRE(first->process().wait(10s).has_value());
  // The drop and then at least eight refused attempts.
  BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 9; }, 20s));
  Seen seen = run.seen();
  BOOST_TEST(seen.drops[0].close_code == 1001);
  BOOST_TEST(!run.client().connected());

  // Failure k (the drop is 1) waits at least backoff_initial (timers never
  // fire early; how long at most is backoff_range's, tested above).
  for (std::size_t k = 1; k < 9; ++k) {
    auto gap = millis_between(seen.drop_times[k - 1], seen.drop_times[k]);
    BOOST_TEST(gap >= 50, "gap " << k << ": " << gap << " ms");
    BOOST_TEST(seen.drops[k].error.find("connect") != std::string::npos, seen.drops[k].error);
  }
  // And the client draws from that range with the right count: every failed
  // attempt it logged (the log may hold back repeats) names its number and
  // its delay.
  std::string logs = capture.finish();
  auto attempts = log_field_values(logs, "Stream connection attempt failed", "attempt");
  auto delays = log_field_values(logs, "Stream connection attempt failed", "retryInMs");
  BOOST_TEST_REQUIRE(!attempts.empty(), logs);
  BOOST_TEST_REQUIRE(attempts.size() == delays.size(), logs);
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    auto range = backoff_range(options, std::stoi(attempts[i]));
    long long delay = std::stoll(delays[i]);
    BOOST_TEST((delay >= range.low.count() && delay <= range.high.count()),
               "attempt " << attempts[i] << " waits " << delay << " ms, outside [" << range.low.count()
                          << ", " << range.high.count() << "]");
  }

  first.reset();
  Broadcaster second({"--port", std::to_string(port), "--count", "1"});
  BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 2; }, 10s));
  BOOST_TEST(run.connects() == 2u);
  BOOST_TEST(run.client().connected());
  BOOST_TEST(run.client().reconnects() >= 9u);
}

BOOST_AUTO_TEST_CASE(silent_server_is_dropped_after_idle_timeout) {
  Broadcaster server({"--silent"});
  StreamOptions options = fast_options(server.url());
  options.idle_timeout = 600ms;
  ClientRun run(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 1; }));
  Seen seen = run.seen();
  BOOST_TEST_REQUIRE(seen.connect_times.size() >= 1u);
  auto lasted = millis_between(seen.connect_times[0], seen.drop_times[0]);
  BOOST_TEST(lasted >= 550, "dropped after " << lasted << " ms");
  BOOST_TEST(seen.drops[0].error.find("idle_timeout") != std::string::npos, seen.drops[0].error);
  // And it tries again.
  BOOST_TEST(wait_until([&] { return run.connects() >= 2; }));
}

BOOST_AUTO_TEST_CASE(quiet_server_that_answers_pings_is_kept) {
  // No frames and no pings from the server, but it answers ours: idle is not dead.
  Broadcaster server({});
  StreamOptions options = fast_options(server.url());
  options.idle_timeout = 300ms;
  ClientRun run(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.connects() == 1; }));
  bool dropped = wait_until([&] { return run.drops() > 0; }, 1500ms);
  BOOST_TEST(!dropped, "dropped: " << (dropped ? run.seen().drops[0].error : ""));
  BOOST_TEST(run.client().connected());
}

BOOST_AUTO_TEST_CASE(server_pings_are_answered) {
  // The broadcaster closes a client whose pong does not come within 200 ms.
  Broadcaster server({"--ping-interval", "0.2"});
  ClientRun run(fast_options(server.url()));
  BOOST_TEST_REQUIRE(server.wait_for("pong n=0 seq=6"));
  BOOST_TEST(!server.saw("no-pong"));
  BOOST_TEST(run.drops() == 0u);
  BOOST_TEST(run.client().connected());
}

BOOST_AUTO_TEST_CASE(ipv6_literal_url) {
  Broadcaster server({"--host", "::1", "--count", "2"});
  ClientRun run(fast_options("ws://[::1]:" + std::to_string(server.port()) + "/ws"));
  BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 2; }));
  BOOST_TEST(run.seen().urls[0] == "ws://[::1]:" + std::to_string(server.port()) + "/ws");
}

BOOST_AUTO_TEST_CASE(server_close_code_and_reason_are_reported) {
  Broadcaster server({"--count", "5", "--close-after", "2", "4002"});
  ClientRun run(fast_options(server.url()));
  BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 1 && run.texts() >= 4; }));
  Seen seen = run.seen();
  BOOST_TEST(seen.drops[0].close_code == 4002);
  BOOST_TEST(seen.drops[0].reason == "closing after 2");
  BOOST_TEST(seen.drops[0].http_status == 0);
}

BOOST_AUTO_TEST_CASE(oversized_frame_is_refused_and_the_connection_re_established) {
  Broadcaster server({"--oversize", "5000", "--count", "3"});
  StreamOptions options = fast_options(server.url());
  options.max_message_bytes = 1024;
  ClientRun run(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.connects() >= 2 && run.texts() == 3; }));
  Seen seen = run.seen();
  BOOST_TEST(seen.oversized == std::vector<std::uint64_t>{1025});
  BOOST_TEST_REQUIRE(!seen.drops.empty());
  BOOST_TEST(seen.drops[0].close_code == 1009);
  BOOST_TEST(seen.drops[0].error.find("max_message_bytes") != std::string::npos, seen.drops[0].error);
  // We sent close 1009. Whether the server reads it depends on timing: Beast's
  // teardown after failing a connection reads at most one chunk of what is still
  // arriving (the rest of the refused payload) before closing the socket, and
  // closing with unread data resets the connection, which can discard our close
  // frame at the server before it is read (then it reports 1006).
  BOOST_TEST(server.wait_for("closed n=0 code=10"), server.out());
  for (const auto& text : seen.texts) BOOST_TEST(text.size() < 1024u);
}

BOOST_AUTO_TEST_CASE(text_frame_that_is_not_utf8_fails_the_connection_and_it_comes_back) {
  // RFC 6455 8.1: invalid UTF-8 in a text message fails the connection.
  Broadcaster server({"--bad-utf8", "--count", "2"});
  ClientRun run(fast_options(server.url()));
  BOOST_TEST_REQUIRE(wait_until([&] { return run.connects() >= 2 && run.texts() == 2; }));
  Seen seen = run.seen();
  BOOST_TEST_REQUIRE(!seen.drops.empty());
  BOOST_TEST(seen.drops[0].close_code == 1007);
  BOOST_TEST(seen.drops[0].error.find("protocol") != std::string::npos, seen.drops[0].error);
  for (const auto& text : seen.texts) BOOST_TEST(text.find("bad") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(stop_sends_a_normal_close) {
  Broadcaster server({"--count", "1"});
  ClientRun run(fast_options(server.url()));
  BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 1; }));
  run.stop();
  BOOST_TEST(server.wait_for("closed n=0 code=1000"));
  BOOST_TEST(!run.client().connected());
  Seen seen = run.seen();
  BOOST_TEST_REQUIRE(seen.drops.size() == 1u);
  BOOST_TEST(seen.drops[0].close_code == 1000);
  BOOST_TEST(seen.drops[0].error.empty(), seen.drops[0].error);
}

BOOST_AUTO_TEST_CASE(stop_while_the_server_is_down_cancels_the_retries) {
  int port = free_port();
  ClientRun run(fast_options("ws://127.0.0.1:" + std::to_string(port) + "/ws"));
  BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 2; }));
  run.stop();
  auto drops = run.drops();
  // The destructor checks that nothing (no retry timer) is left pending.
  BOOST_TEST(!wait_until([&] { return run.drops() > drops; }, 500ms));
}

BOOST_AUTO_TEST_CASE(connect_timeout_bounds_an_upgrade_that_never_answers) {
  // A listener that never accepts: the kernel completes TCP, nobody answers HTTP.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_TEST_REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  {
    StreamOptions options = fast_options("ws://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
    options.connect_timeout = 400ms;
    auto started = SteadyClock::now();
    ClientRun run(options);
    BOOST_TEST_REQUIRE(wait_until([&] { return run.drops() >= 1; }));
    Seen seen = run.seen();
    auto took = millis_between(started, seen.drop_times[0]);
    BOOST_TEST(took >= 390, took);
    BOOST_TEST(seen.drops[0].error.find("timed out") != std::string::npos, seen.drops[0].error);
  }
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(reconfigure_moves_to_the_new_server) {
  Broadcaster a({"--count", "1"});
  Broadcaster b({"--count", "1"});
  StreamOptions options = fast_options(a.url());
  ClientRun run(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 1; }));

  run.reconfigure(options);  // the same options: nothing happens
  BOOST_TEST(run.drops() == 0u);
  BOOST_TEST(run.client().reconnects() == 0u);

  options.url = b.url();
  run.reconfigure(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 2; }));
  BOOST_TEST(a.wait_for("closed n=0 code=1000"));
  BOOST_TEST(b.saw("connected n=0"));
  Seen seen = run.seen();
  BOOST_TEST_REQUIRE(seen.drops.size() == 1u);
  BOOST_TEST(seen.drops[0].reason == "reconfiguring");
  BOOST_TEST_REQUIRE(seen.urls.size() == 2u);
  BOOST_TEST(seen.urls[1] == b.url());
}

namespace {

struct Certificates {
  fs::path ca;
  fs::path cert;
  fs::path key;
};

// A private CA and a server certificate for DNS:localhost only, made with the
// openssl CLI the way an operator would.
Certificates make_certificates(const TempDir& dir) {
  auto openssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    CommandResult result = run_command(args, {}, dir.path());
    BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  };
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=deltatap test CA",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
           "keyUsage=critical,keyCertSign,cRLSign"});
  openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           "server.key", "-out", "server.csr", "-subj", "/CN=localhost"});
  write_file(dir / "server.ext",
             "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
             "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
  openssl({"x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
           "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext"});
  return {dir / "ca.pem", dir / "server.pem", dir / "server.key"};
}

// Runs one client until it connects or fails once; returns that outcome.
Seen first_outcome(const StreamOptions& options) {
  ClientRun run(options);
  BOOST_TEST_REQUIRE(wait_until([&] { return run.connects() + run.drops() > 0; }));
  return run.seen();
}

}  // namespace

BOOST_AUTO_TEST_CASE(tls_verifies_the_server) {
  TempDir dir;
  Certificates certs = make_certificates(dir);
  Broadcaster server({"--tls", certs.cert.string(), certs.key.string(), "--count", "2"});
  std::string port = std::to_string(server.port());

  {
    StreamOptions options = fast_options("wss://localhost:" + port + "/ws");
    options.ca_file = certs.ca.string();
    ClientRun run(options);
    BOOST_TEST_REQUIRE(wait_until([&] { return run.texts() == 2; }));
    BOOST_TEST(run.seen().drops.empty());
    BOOST_TEST(run.seen().urls[0] == "wss://localhost:" + port + "/ws");
  }
  BOOST_TEST(server.saw("sni name=localhost"));

  {  // Without the CA the server is a stranger.
    Seen seen = first_outcome(fast_options("wss://localhost:" + port + "/ws"));
    BOOST_TEST_REQUIRE(seen.drops.size() >= 1u);
    BOOST_TEST(seen.connect_times.empty());
    BOOST_TEST(seen.drops[0].error.find("tls handshake") != std::string::npos, seen.drops[0].error);
    BOOST_TEST(seen.drops[0].error.find("certificate verify failed") != std::string::npos,
               seen.drops[0].error);
  }
  {  // With the CA, but the certificate does not name 127.0.0.1.
    StreamOptions options = fast_options("wss://127.0.0.1:" + port + "/ws");
    options.ca_file = certs.ca.string();
    Seen seen = first_outcome(options);
    BOOST_TEST_REQUIRE(seen.drops.size() >= 1u);
    BOOST_TEST(seen.connect_times.empty());
    BOOST_TEST(seen.drops[0].error.find("mismatch") != std::string::npos, seen.drops[0].error);
  }
  {  // A CA file that does not exist is reported, not ignored.
    StreamOptions options = fast_options("wss://localhost:" + port + "/ws");
    options.ca_file = (dir / "missing.pem").string();
    Seen seen = first_outcome(options);
    BOOST_TEST_REQUIRE(seen.drops.size() >= 1u);
    BOOST_TEST(seen.drops[0].error.find("ca_file") != std::string::npos, seen.drops[0].error);
  }
  {  // insecure_skip_verify connects anyway, and says so at every connect.
    StreamOptions options = fast_options("wss://localhost:" + port + "/ws");
    options.insecure_skip_verify = true;
    StderrCapture capture(dir / "log");
    Seen seen = first_outcome(options);
    std::string logs = capture.finish();
    BOOST_TEST(seen.connect_times.size() == 1u);
    BOOST_TEST(logs.find("insecure_skip_verify") != std::string::npos, logs);
  }
}
