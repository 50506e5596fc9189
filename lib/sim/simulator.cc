#include "sim/simulator.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <random>
#include <string_view>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "base/delta.h"
#include "base/json_text.h"
#include "base/logging.h"
#include "base/timestamp.h"

namespace deltatap {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view kServerName = "deltatap-sim";
// The kernel takes at most this much not yet sent per socket, so a write
// completes only while the connection moves and a stalled client's backlog
// piles up in the app queue, whatever the kernel's buffer limits are.
constexpr int kNotSentLowWater = 128 * 1024;

// ---------------------------------------------------------------- options

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_decimal(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  return value;
}

struct ListenAddress {
  asio::ip::address address;
  unsigned short port = 0;
};

Result<ListenAddress> parse_listen(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return Error{"expected ADDR:PORT"};
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto port = parse_u64(text.substr(colon + 1));
  if (!port || *port > 65535) return Error{"the port must be a number from 0 to 65535"};
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(host), ec);
  if (ec) return Error{"\"" + std::string(host) + "\" is not an IP address"};
  return ListenAddress{address, static_cast<unsigned short>(*port)};
}

// RFC 7230 token characters: what a subprotocol name may hold.
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7f || std::strchr("()<>@,;:\\\"/[]?={}", c) != nullptr) return false;
  }
  return true;
}

std::string quoted(std::string_view value) { return "\"" + std::string(value) + "\""; }

// ---------------------------------------------------------------- JSON text

// ISO 8601 in the shapes the backend has been seen to use: fraction_digits 0,
// 3 or 6 (the last three made up, below the clock's resolution), and "Z" or a
// numeric offset that names the same instant.
std::string render_time(std::int64_t utc_ms, int offset_minutes, int fraction_digits,
                        int sub_millis) {
  using namespace std::chrono;
  sys_time<milliseconds> local{milliseconds{utc_ms + std::int64_t{offset_minutes} * 60'000}};
  auto day = floor<days>(local);
  year_month_day date{day};
  std::int64_t in_day = (local - day).count();
  std::string out;
  out.reserve(32);
  // Fixed-width decimal fields; a frame holds a dozen times, snprintf was a
  // tenth of the simulator's time.
  auto digits = [&out](std::int64_t value, int width) {
    char text[20];
    for (int i = width - 1; i >= 0; --i, value /= 10) text[i] = static_cast<char>('0' + value % 10);
    out.append(text, static_cast<std::size_t>(width));
  };
  digits(static_cast<int>(date.year()), 4);
  out += '-';
  digits(static_cast<unsigned>(date.month()), 2);
  out += '-';
  digits(static_cast<unsigned>(date.day()), 2);
  out += 'T';
  digits(in_day / 3'600'000, 2);
  out += ':';
  digits(in_day / 60'000 % 60, 2);
  out += ':';
  digits(in_day / 1000 % 60, 2);
  if (fraction_digits == 3 || fraction_digits == 6) {
    out += '.';
    digits(in_day % 1000, 3);
    if (fraction_digits == 6) digits(sub_millis, 3);
  }
  if (offset_minutes == 0) {
    out += 'Z';
  } else {
    int magnitude = std::abs(offset_minutes);
    out += offset_minutes < 0 ? '-' : '+';
    digits(magnitude / 60, 2);
    out += ':';
    digits(magnitude % 60, 2);
  }
  return out;
}

std::string iso_millis(std::int64_t utc_ms) { return render_time(utc_ms, 0, 3, 0); }

// ---------------------------------------------------------------- the sessions

constexpr std::string_view kRepos[] = {
    "acme/widgets",      "acme/payments-api",  "jules-labs/control-room",
    "oss/zstd-bindings", "ops/terraform-live", "mobile/ios-app",
};
constexpr std::string_view kBranches[] = {
    "main", "fix/upload-retry", "feature/dark-mode", "chore/deps-bump", "jules/修复-缓存",
    "release/2.4",
};
// Unicode of every width, escapes a writer must get right, a line break.
constexpr std::string_view kSummaries[] = {
    "Réparer le bug 🐛 — 修复",
    "Fix flaky upload retries in the S3 client",
    "Добавить проверку токена при переподключении",
    "テストのタイムアウトを修正する ✅",
    "Quote \"paths\" like C:\\Temp\\build\tand tabs",
    "Naïve café, déjà vu — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 everywhere",
    "Bump dependencies\nand regenerate the lock file",
    "Migrate CI to the new runners 🚀",
};
constexpr std::string_view kPeople[] = {
    "alice", "bob", "jules-bot", "søren", "李雷", "renée", "ömer", "priya",
};
constexpr std::string_view kLabels[] = {
    "ci", "backend", "frontend", "security", "needs-review", "flaky",
};

template <typename T, std::size_t N>
constexpr int size_of(const T (&)[N]) {
  return static_cast<int>(N);
}

enum class Plan { pending, in_progress, succeeded, failed };
enum class Approval { pending, approved, rejected };

std::string_view plan_name(Plan plan) {
  switch (plan) {
    case Plan::pending: return "pending";
    case Plan::in_progress: return "in_progress";
    case Plan::succeeded: return "succeeded";
    case Plan::failed: return "failed";
  }
  return "pending";
}

std::string_view approval_name(Approval approval) {
  switch (approval) {
    case Approval::pending: return "pending";
    case Approval::approved: return "approved";
    case Approval::rejected: return "rejected";
  }
  return "pending";
}

struct Session {
  std::string id;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  int repo = 0;
  int branch = 0;
  int summary = 0;
  Plan plan = Plan::pending;
  Approval approval = Approval::pending;
  bool approval_object = false;  // {"state":...} as in the domain documents
  int approver = 0;
  std::int64_t decided_ms = 0;
  std::vector<int> participants;
  std::vector<int> labels;
  int attempt = 1;
  int revision = 1;
  int steps_done = 0;
  int steps_total = 0;
  bool draft = false;
  std::uint64_t trace_id = 0;  // above 2^53: a double would change it
  std::string json;            // the current state, as sent
};

std::string render_session(const Session& s) {
  std::string out;
  out.reserve(640);
  out += "{\"id\":";
  append_json_string(out, s.id);
  out += ",\"createdAt\":";
  append_json_string(out, iso_millis(s.created_ms));
  out += ",\"updatedAt\":";
  append_json_string(out, iso_millis(s.updated_ms));
  out += ",\"repo\":";
  append_json_string(out, kRepos[s.repo]);
  out += ",\"branch\":";
  append_json_string(out, kBranches[s.branch]);
  out += ",\"planStatus\":";
  append_json_string(out, plan_name(s.plan));
  out += ",\"approval\":";
  if (s.approval_object) {
    out += "{\"state\":";
    append_json_string(out, approval_name(s.approval));
    if (s.approval != Approval::pending) {
      out += ",\"by\":";
      append_json_string(out, kPeople[s.approver]);
      out += ",\"at\":";
      append_json_string(out, iso_millis(s.decided_ms));
    }
    out += '}';
  } else {
    append_json_string(out, approval_name(s.approval));
  }
  out += ",\"summary\":";
  append_json_string(out, kSummaries[s.summary]);
  out += ",\"participants\":[";
  for (std::size_t i = 0; i < s.participants.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, kPeople[s.participants[i]]);
  }
  out += "],\"metadata\":{\"attempt\":";
  out += std::to_string(s.attempt);
  out += ",\"revision\":";
  out += std::to_string(s.revision);
  out += ",\"traceId\":";
  out += std::to_string(s.trace_id);
  out += ",\"progress\":{\"done\":";
  out += std::to_string(s.steps_done);
  out += ",\"total\":";
  out += std::to_string(s.steps_total);
  out += "},\"labels\":[";
  for (std::size_t i = 0; i < s.labels.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, kLabels[s.labels[i]]);
  }
  out += "],\"draft\":";
  out += s.draft ? "true" : "false";
  out += ",\"model\":{\"name\":\"jules\",\"temperature\":0.2},\"reviewer\":";
  if (s.approval != Approval::pending) {
    append_json_string(out, kPeople[s.approver]);
  } else {
    out += "null";
  }
  out += "}}";
  return out;
}

struct Change {
  DeltaType type = DeltaType::created;
  std::string session_id;
  std::optional<std::string> before;
  std::optional<std::string> after;
};

// The upstream the backend polls: a pool of session slots and a simulated
// clock. Everything it produces comes from one generator seeded once, and it
// draws nothing that depends on timing or connections, so a seed (and start
// time) names one history.
class World {
 public:
  // With a start time the clock is simulated (a seeded step per delta);
  // without one it follows the wall clock, so timestamps are real send times.
  World(std::uint64_t seed, std::optional<std::int64_t> start_ms, int slots)
      : seed_(seed),
        random_(seed),
        wall_clock_(!start_ms),
        clock_ms_(start_ms.value_or(wall_ms())),
        slots_(static_cast<std::size_t>(slots)) {}

  int below(int n) { return static_cast<int>(random_() % static_cast<std::uint64_t>(n)); }
  bool percent(int p) { return below(100) < p; }

  Change next() {
    int step = 20 + below(1480);  // drawn either way: the rest stays the same
    clock_ms_ = wall_clock_ ? std::max(clock_ms_, wall_ms()) : clock_ms_ + step;
    auto& slot = slots_[static_cast<std::size_t>(below(static_cast<int>(slots_.size())))];
    if (!slot) {
      slot = create();
      return {DeltaType::created, slot->id, std::nullopt, slot->json};
    }
    bool finished = slot->plan == Plan::succeeded || slot->plan == Plan::failed;
    if (percent(finished ? 35 : 3)) {
      Change change{DeltaType::deleted, slot->id, std::move(slot->json), std::nullopt};
      slot.reset();
      return change;
    }
    std::string before = slot->json;
    evolve(*slot);
    slot->updated_ms = clock_ms_;
    ++slot->revision;
    slot->json = render_session(*slot);
    return {DeltaType::updated, slot->id, std::move(before), slot->json};
  }

  // A timestamp for the delta just made, in one of the shapes seen on the wire.
  std::string wire_time() {
    int shape = below(100);
    if (shape < 40) return render_time(clock_ms_, 0, 3, 0);
    if (shape < 60) return render_time(clock_ms_, 0, 0, 0);
    if (shape < 75) return render_time(clock_ms_, 0, 6, below(1000));
    if (shape < 90) return render_time(clock_ms_, 120, below(2) * 3, 0);
    return render_time(clock_ms_, -300, 0, 0);
  }

  template <typename F>
  void for_each_live(F&& visit) const {
    for (const auto& slot : slots_) {
      if (slot) visit(*slot);
    }
  }

 private:
  std::optional<Session> create() {
    Session s;
    s.id = next_id();
    s.created_ms = s.updated_ms = clock_ms_;
    s.repo = below(size_of(kRepos));
    s.branch = below(size_of(kBranches));
    s.summary = below(size_of(kSummaries));
    s.approval_object = percent(50);
    int people = 1 + below(3);
    while (static_cast<int>(s.participants.size()) < people) add_participant(s);
    if (percent(50)) s.labels.push_back(below(size_of(kLabels)));
    s.draft = percent(25);
    s.trace_id = 9007199254740993ull + 2 * static_cast<std::uint64_t>(below(1'000'000'000));
    s.json = render_session(s);
    return s;
  }

  // Distinct for every session of a run: a bijection of the creation counter.
  std::string next_id() {
    std::uint64_t x = seed_ ^ (++created_ * 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    char text[32];
    std::snprintf(text, sizeof text, "sess_%016llx", static_cast<unsigned long long>(x));
    return text;
  }

  void add_participant(Session& s) {
    if (s.participants.size() >= static_cast<std::size_t>(size_of(kPeople))) return;
    int who = below(size_of(kPeople));
    while (std::find(s.participants.begin(), s.participants.end(), who) != s.participants.end()) {
      who = (who + 1) % size_of(kPeople);
    }
    s.participants.push_back(who);
  }

  // Something a person or the agent would change that is not the plan.
  void touch(Session& s) {
    switch (below(4)) {
      case 0: s.summary = below(size_of(kSummaries)); break;
      case 1: add_participant(s); break;
      case 2: s.labels.push_back(below(size_of(kLabels))); break;
      default: s.draft = !s.draft; break;
    }
    if (s.labels.size() > 4) s.labels.erase(s.labels.begin());
  }

  void decide(Session& s, Approval verdict) {
    s.approval = verdict;
    s.approver = below(size_of(kPeople));
    s.decided_ms = clock_ms_;
  }

  void start(Session& s) {
    s.plan = Plan::in_progress;
    s.steps_done = 0;
    s.steps_total = 3 + below(6);
  }

  void evolve(Session& s) {
    switch (s.plan) {
      case Plan::pending:
        if (s.approval == Approval::pending) {
          if (percent(70)) {
            decide(s, percent(85) ? Approval::approved : Approval::rejected);
            if (s.approval == Approval::rejected) s.plan = Plan::failed;
          } else {
            touch(s);
          }
        } else {
          start(s);
        }
        break;
      case Plan::in_progress:
        if (percent(20)) {
          touch(s);
        } else if (++s.steps_done >= s.steps_total) {
          s.plan = percent(80) ? Plan::succeeded : Plan::failed;
        }
        break;
      case Plan::failed:
        // A retry: rejected plans go back for approval, failed runs start over.
        ++s.attempt;
        if (s.approval == Approval::rejected) {
          s.approval = Approval::pending;
          s.plan = Plan::pending;
        } else {
          start(s);
        }
        break;
      case Plan::succeeded:
        touch(s);
        break;
    }
  }

  static std::int64_t wall_ms() { return now_millis().time_since_epoch().count(); }

  std::uint64_t seed_;
  std::mt19937_64 random_;
  bool wall_clock_;
  std::int64_t clock_ms_;
  std::uint64_t created_ = 0;
  std::vector<std::optional<Session>> slots_;
};

// ---------------------------------------------------------------- frames

struct OutDelta {
  DeltaType type = DeltaType::created;
  std::string session_id;
  std::optional<std::string> before;
  std::optional<std::string> after;
  std::optional<std::string> timestamp;
};

// One text frame, shared by every connection it is broadcast to. It is
// settled (counted, recorded, or given back to the budget) once every one of
// them has finished with it.
struct Frame {
  std::string text;
  std::vector<OutDelta> deltas;
  int pending_writes = 0;
  bool delivered = false;
};

void append_raw_or_null(std::string& out, const std::optional<std::string>& json) {
  out += json ? *json : std::string("null");
}

std::string render_format_a(const OutDelta& d) {
  std::string out = "{\"type\":";
  append_json_string(out, to_string(d.type));
  out += ",\"sessionId\":";
  append_json_string(out, d.session_id);
  if (d.before) out += ",\"before\":" + *d.before;
  if (d.after) out += ",\"after\":" + *d.after;
  if (d.timestamp) {
    out += ",\"timestamp\":";
    append_json_string(out, *d.timestamp);
  }
  out += '}';
  return out;
}

std::string render_format_b(const std::vector<OutDelta>& deltas) {
  std::string out = "{\"type\":\"session_update\",\"delta\":[";
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    const auto& d = deltas[i];
    if (i > 0) out += ',';
    out += "{\"id\":";
    append_json_string(out, d.session_id);
    out += ",\"change\":";
    append_json_string(out, to_string(d.type));
    if (d.before) out += ",\"previous\":" + *d.before;
    if (d.after) out += ",\"current\":" + *d.after;
    if (d.timestamp) {
      out += ",\"timestamp\":";
      append_json_string(out, *d.timestamp);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string render_record(const OutDelta& d) {
  std::string out = "{\"type\":";
  append_json_string(out, to_string(d.type));
  out += ",\"sessionId\":";
  append_json_string(out, d.session_id);
  out += ",\"before\":";
  append_raw_or_null(out, d.before);
  out += ",\"after\":";
  append_raw_or_null(out, d.after);
  out += ",\"timestamp\":";
  if (d.timestamp) {
    append_json_string(out, *d.timestamp);
  } else {
    out += "null";
  }
  out += "}\n";
  return out;
}

// ---------------------------------------------------------------- the server

class Server;

// Bytes owed to one client: still in the app, and in the kernel's send queue
// (sent but not acknowledged, or not sent yet).
struct Backlog {
  std::uint64_t app = 0;
  std::uint64_t kernel = 0;
  std::uint64_t kernel_unsent = 0;  // part of `kernel`
  std::uint64_t total() const { return app + kernel; }
};

// One WebSocket client: its queue of frames, its pings, its close.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(Server& server, tcp::socket socket, std::string remote, std::string protocol);

  void start(http::request<http::string_body> request);
  // Queues a frame; the server settles it through on_write_done().
  void send(std::shared_ptr<Frame> frame);
  // A close handshake; the socket is closed for good after `kill_after`.
  void close(websocket::close_reason reason, std::chrono::milliseconds kill_after);
  // Drops the connection without a close frame, as the backend terminates.
  void terminate(std::string_view why);

  bool idle() const { return !writing_ && queue_.empty(); }
  bool is_open() const { return open_ && !closing_; }
  // The unsent part costs one more system call: only when `with_unsent`.
  Backlog backlog(bool with_unsent = false);
  const std::string& remote() const { return remote_; }

 private:
  void on_accept(beast::error_code ec);
  void read();
  void on_read(beast::error_code ec);
  void write_next();
  void on_write(beast::error_code ec);
  void arm_ping();
  void on_ping_timer(beast::error_code ec);
  void drop_queue();
  void force_close();
  void finish();

  Server& server_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  asio::steady_timer ping_timer_;
  asio::steady_timer kill_timer_;
  std::string remote_;
  std::string protocol_;
  std::deque<std::shared_ptr<Frame>> queue_;
  std::uint64_t queued_bytes_ = 0;
  std::shared_ptr<Frame> writing_;
  std::uint64_t pings_ = 0;
  bool ping_outstanding_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool we_closed_ = false;
  bool finished_ = false;
};

// The HTTP request before the upgrade: authentication happens here.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Server& server, tcp::socket socket);
  void start();
  void abort();

 private:
  void on_read(beast::error_code ec);
  void reject(http::status status, std::string_view why);

  Server& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::string remote_;
};

class Server {
 public:
  Server(SimulatorOptions options, std::FILE* summary_out, std::optional<std::int64_t> start_ms)
      : options_(std::move(options)),
        summary_out_(summary_out),
        acceptor_(io_),
        accept_retry_(io_),
        signals_(io_, SIGINT, SIGTERM),
        pace_timer_(io_),
        world_(options_.seed, start_ms, options_.sessions) {}

  ~Server() {
    if (record_ != nullptr) std::fclose(record_);
  }

  Status open(const ListenAddress& where) {
    if (!options_.record.empty()) {
      record_ = std::fopen(options_.record.c_str(), "a");
      if (record_ == nullptr) {
        return Error{"cannot open the record file " + options_.record + ": " +
                     std::strerror(errno)};
      }
    }
    tcp::endpoint endpoint(where.address, where.port);
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error{"cannot listen on " + options_.listen + ": " + ec.message()};
    }
    auto bound = acceptor_.local_endpoint();
    std::string host = bound.address().to_string();
    if (bound.address().is_v6()) host = "[" + host + "]";
    listening_ = host + ":" + std::to_string(bound.port());
    log_info("listening on " + listening_,
             {{"PATH", options_.path},
              {"FORMAT", std::string(format_name())},
              {"AUTH", options_.token.empty() ? "none" : "bearer subprotocol"}});
    return ok_status();
  }

  int port() const { return acceptor_.is_open() ? acceptor_.local_endpoint().port() : 0; }

  int run() {
    signals_.async_wait([this](beast::error_code ec, int signo) {
      if (ec) return;
      log_info("signal received; stopping", {{"SIGNAL", std::to_string(signo)}});
      stop();
    });
    accept();
    io_.run();
    if (!summary_printed_) print_summary();
    log_info("stopped", {{"SENT", std::to_string(sent_)}});
    return 0;
  }

  void post_stop() {
    asio::post(io_, [this] { stop(); });
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
    signals_.cancel();
    pace_timer_.cancel();
    for (auto& weak : handshakes_) {
      if (auto pending = weak.lock()) pending->abort();
    }
    handshakes_.clear();
    auto sessions = sessions_;
    for (auto& session : sessions) {
      session->close(websocket::close_reason(websocket::close_code::normal, "server shutting down"),
                     2s);
    }
  }

  const SimulatorOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }

  void on_handshake_start(const std::shared_ptr<WsSession>& session) {
    sessions_.push_back(session);
  }

  void on_open(const std::shared_ptr<WsSession>& session, std::string_view protocol) {
    ++connections_;
    open_.push_back(session);
    log_info("client connected", {{"REMOTE", session->remote()},
                                  {"PROTOCOL", std::string(protocol)},
                                  {"CONNECTIONS", std::to_string(connections_)},
                                  {"OPEN", std::to_string(open_.size())}});
    send_first_poll(session);
    maybe_generate();
  }

  // No more broadcasts to it.
  void on_closing(const WsSession& session) {
    std::erase_if(open_, [&](const auto& s) { return s.get() == &session; });
  }

  void on_finished(const WsSession& session) {
    on_closing(session);
    std::erase_if(sessions_, [&](const auto& s) { return s.get() == &session; });
  }

  void on_write_done(const std::shared_ptr<Frame>& frame, bool ok) {
    if (ok) frame->delivered = true;
    if (--frame->pending_writes == 0) settle(*frame);
    maybe_generate();
  }

 private:
  enum class Kind { a, b };
  struct Plan {
    Kind kind = Kind::b;
    int size = 1;
  };

  std::string_view format_name() const {
    switch (options_.format) {
      case SimFormat::delta: return "delta";
      case SimFormat::session_update: return "session_update";
      case SimFormat::mixed: return "mixed";
    }
    return "";
  }

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (stopping_) return;
      if (ec) {
        // Out of descriptors and the like: try again shortly, don't spin.
        log_warning("accept failed", {{"ERROR", ec.message()}});
        accept_retry_.expires_after(100ms);
        accept_retry_.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && !stopping_) accept();
        });
        return;
      }
      auto session = std::make_shared<HttpSession>(*this, std::move(socket));
      std::erase_if(handshakes_, [](const auto& weak) { return weak.expired(); });
      handshakes_.push_back(session);
      session->start();
      accept();
    });
  }

  std::uint64_t budget() const {
    if (options_.count == 0) return UINT64_MAX;
    std::uint64_t used = sent_ + reserved_;
    return used >= options_.count ? 0 : options_.count - used;
  }

  // The backend's first poll for a new client reports every live session as
  // created. Format A has no batches to carry that, so it joins mid-stream.
  void send_first_poll(const std::shared_ptr<WsSession>& session) {
    if (options_.format == SimFormat::delta) return;
    std::uint64_t room = budget();
    auto frame = std::make_shared<Frame>();
    world_.for_each_live([&](const Session& s) {
      if (frame->deltas.size() >= room) return;
      frame->deltas.push_back({DeltaType::created, s.id, std::nullopt, s.json, std::nullopt});
    });
    if (frame->deltas.empty()) return;
    frame->text = render_format_b(frame->deltas);
    reserved_ += frame->deltas.size();
    frame->pending_writes = 1;
    session->send(frame);
    log_debug("first poll: live sessions reported as created",
              {{"REMOTE", session->remote()}, {"DELTAS", std::to_string(frame->deltas.size())}});
    check_backpressure();
  }

  Plan plan_frame() {
    Kind kind = Kind::b;
    if (options_.format == SimFormat::delta) kind = Kind::a;
    if (options_.format == SimFormat::mixed) kind = world_.percent(50) ? Kind::a : Kind::b;
    return {kind, kind == Kind::a ? 1 : 1 + world_.below(options_.batch)};
  }

  // Polls upstream once if the clients and the pace allow. With --rate 0 the
  // next frame waits until some client has written the previous one and its
  // kernel queue has drained below a quarter of the backpressure limit: "as
  // fast as the socket takes them" must not mean "faster than the client
  // reads", or every consumer would be cut off. With a rate the frame goes
  // out on time, and a client still busy queues it: that is the backlog the
  // backend cuts off at, and the cut is what bounds the queue.
  void maybe_generate() {
    if (stopping_ || pace_scheduled_ || open_.empty()) return;
    std::uint64_t room = budget();
    if (room == 0) return;
    if (options_.rate <= 0) {
      bool any_idle = false;
      bool any_ready = false;
      for (const auto& s : open_) {
        if (!s->idle()) continue;
        any_idle = true;
        if (s->backlog().kernel <= options_.backpressure_bytes / 4) {
          any_ready = true;
          break;
        }
      }
      if (!any_idle) return;  // a write completion calls again
      if (!any_ready) {
        // The kernel says nothing when its queue drains: look again shortly.
        schedule_pace(SteadyClock::now() + 1ms);
        return;
      }
    }
    if (!planned_) planned_ = plan_frame();
    auto n = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(planned_->size), room));
    if (options_.rate > 0) {
      auto now = SteadyClock::now();
      if (now < next_emit_) {
        schedule_pace(next_emit_);
        return;
      }
      // A little late keeps the schedule; after an idle spell, no burst.
      auto base = now - next_emit_ < 100ms ? next_emit_ : now;
      next_emit_ = base + std::chrono::duration_cast<SteadyClock::duration>(
                              std::chrono::duration<double>(n / options_.rate));
    }
    Kind kind = planned_->kind;
    planned_.reset();  // before emit(): a nested call may plan the next one
    emit(kind, n);
    if (options_.rate > 0) maybe_generate();
  }

  void schedule_pace(SteadyClock::time_point when) {
    pace_scheduled_ = true;
    pace_timer_.expires_at(when);
    pace_timer_.async_wait([this](beast::error_code ec) {
      pace_scheduled_ = false;
      if (!ec) maybe_generate();
    });
  }

  void emit(Kind kind, int n) {
    auto frame = std::make_shared<Frame>();
    frame->deltas.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      Change change = world_.next();
      OutDelta d{change.type, std::move(change.session_id), std::move(change.before),
                 std::move(change.after), std::nullopt};
      // Format A always says when; in batches the receiver mostly has to.
      if (kind == Kind::a || world_.percent(10)) d.timestamp = world_.wire_time();
      frame->deltas.push_back(std::move(d));
    }
    frame->text = kind == Kind::a ? render_format_a(frame->deltas.front())
                                  : render_format_b(frame->deltas);
    reserved_ += frame->deltas.size();
    // Counted before sending: send() never completes inline, but a frame
    // must not look settled while it is still being handed out.
    frame->pending_writes = static_cast<int>(open_.size());
    auto targets = open_;
    for (auto& session : targets) session->send(frame);
    check_backpressure();
  }

  void check_backpressure() {
    auto sessions = open_;
    for (auto& session : sessions) {
      if (session->backlog().total() <= options_.backpressure_bytes) continue;
      Backlog backlog = session->backlog(true);
      log_warning("client too slow; closing it with 4002 backpressure",
                  {{"REMOTE", session->remote()},
                   {"BUFFERED_BYTES", std::to_string(backlog.total())},
                   {"APP_BYTES", std::to_string(backlog.app)},
                   {"KERNEL_BYTES", std::to_string(backlog.kernel)},
                   {"KERNEL_UNSENT_BYTES", std::to_string(backlog.kernel_unsent)},
                   {"LIMIT_BYTES", std::to_string(options_.backpressure_bytes)}});
      session->close(websocket::close_reason(static_cast<websocket::close_code>(4002), "backpressure"), options_.close_timeout + 1s);
    }
  }

  void settle(Frame& frame) {
    reserved_ -= frame.deltas.size();
    if (!frame.delivered) {
      log_debug("frame reached no client; its deltas are not counted",
                {{"DELTAS", std::to_string(frame.deltas.size())}});
      return;
    }
    sent_ += frame.deltas.size();
    ++frames_;
    std::string lines;
    for (const auto& d : frame.deltas) {
      ++by_type_[static_cast<int>(d.type)];
      if (record_ != nullptr) lines += render_record(d);
    }
    if (record_ != nullptr) {
      std::fwrite(lines.data(), 1, lines.size(), record_);
      std::fflush(record_);
    }
    if (options_.count > 0 && sent_ == options_.count && !summary_printed_) {
      print_summary();
      log_info("all deltas sent; connections stay open until stopped",
               {{"SENT", std::to_string(sent_)}, {"FRAMES", std::to_string(frames_)}});
    }
  }

  void print_summary() {
    summary_printed_ = true;
    std::fprintf(summary_out_,
                 "{\"sent\":%llu,\"by_type\":{\"created\":%llu,\"updated\":%llu,\"deleted\":%llu},"
                 "\"frames\":%llu,\"connections\":%llu}\n",
                 static_cast<unsigned long long>(sent_),
                 static_cast<unsigned long long>(by_type_[0]),
                 static_cast<unsigned long long>(by_type_[1]),
                 static_cast<unsigned long long>(by_type_[2]),
                 static_cast<unsigned long long>(frames_),
                 static_cast<unsigned long long>(connections_));
    std::fflush(summary_out_);
  }

  SimulatorOptions options_;
  std::FILE* summary_out_;
  std::FILE* record_ = nullptr;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  asio::signal_set signals_;
  asio::steady_timer pace_timer_;
  World world_;
  std::string listening_;

  std::vector<std::weak_ptr<HttpSession>> handshakes_;
  std::vector<std::shared_ptr<WsSession>> sessions_;  // upgrading or upgraded, alive
  std::vector<std::shared_ptr<WsSession>> open_;      // receiving broadcasts, oldest first

  std::optional<Plan> planned_;
  bool pace_scheduled_ = false;
  SteadyClock::time_point next_emit_{};
  bool stopping_ = false;
  bool summary_printed_ = false;
  std::uint64_t sent_ = 0;
  std::uint64_t reserved_ = 0;  // in frames not yet settled
  std::uint64_t by_type_[3] = {0, 0, 0};
  std::uint64_t frames_ = 0;
  std::uint64_t connections_ = 0;
};

// ---------------------------------------------------------------- HttpSession

std::string remote_of(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

HttpSession::HttpSession(Server& server, tcp::socket socket)
    : server_(server), stream_(std::move(socket)), remote_(remote_of(stream_.socket())) {}

void HttpSession::start() {
  stream_.expires_after(10s);
  http::async_read(stream_, buffer_, request_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->on_read(ec);
                   });
}

void HttpSession::abort() {
  boost::system::error_code ec;
  stream_.socket().close(ec);
}

// Every offered subprotocol, from however many header lines.
std::vector<std::string> offered_protocols(const http::request<http::string_body>& request) {
  std::vector<std::string> offered;
  auto range = request.equal_range(http::field::sec_websocket_protocol);
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (!list.empty()) {
      auto comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) offered.emplace_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return offered;
}

// Compares without an early exit, so timing says nothing about the token.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void HttpSession::on_read(beast::error_code ec) {
  if (ec) {
    if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
      log_debug("bad or incomplete HTTP request", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
    }
    abort();
    return;
  }
  std::string path(request_.target());
  if (!websocket::is_upgrade(request_)) {
    reject(http::status::upgrade_required, "not a WebSocket upgrade request");
    return;
  }
  const auto& options = server_.options();
  auto offered = offered_protocols(request_);
  std::string chosen;
  if (!options.token.empty()) {
    if (offered.empty()) {
      reject(http::status::upgrade_required, "no subprotocol offered; a bearer token is required");
      return;
    }
    std::string wanted = "bearer." + options.token;
    auto match = std::find_if(offered.begin(), offered.end(),
                              [&](const std::string& p) { return same_secret(p, wanted); });
    if (match == offered.end()) {
      reject(http::status::unauthorized, "wrong or missing bearer token");
      return;
    }
    chosen = *match;
  } else if (!offered.empty()) {
    auto bearer = std::find_if(offered.begin(), offered.end(),
                               [](const std::string& p) { return p.starts_with("bearer."); });
    chosen = bearer != offered.end() ? *bearer : offered.front();
  }
  if (path != options.path) {
    log_info("upgrade on another path than --path; accepted, as the backend does",
             {{"REMOTE", remote_}, {"PATH", path}, {"EXPECTED_PATH", options.path}});
  } else {
    log_debug("upgrade request", {{"REMOTE", remote_}, {"PATH", path}});
  }
  stream_.expires_never();
  auto session =
      std::make_shared<WsSession>(server_, stream_.release_socket(), remote_, std::move(chosen));
  server_.on_handshake_start(session);
  session->start(std::move(request_));
}

void HttpSession::reject(http::status status, std::string_view why) {
  log_info("upgrade refused", {{"REMOTE", remote_},
                               {"STATUS", std::to_string(static_cast<int>(status))},
                               {"REASON", std::string(why)}});
  auto response = std::make_shared<http::response<http::string_body>>(status, request_.version());
  response->set(http::field::server, kServerName);
  response->set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::upgrade_required) {
    response->set(http::field::upgrade, "websocket");
    response->set(http::field::sec_websocket_version, "13");
  }
  response->keep_alive(false);
  response->body() = std::string(why) + "\n";
  response->prepare_payload();
  http::async_write(stream_, *response,
                    [self = shared_from_this(), response](beast::error_code, std::size_t) {
                      boost::system::error_code ignored;
                      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      self->abort();
                    });
}

// ---------------------------------------------------------------- WsSession

WsSession::WsSession(Server& server, tcp::socket socket, std::string remote, std::string protocol)
    : server_(server),
      ws_(std::move(socket)),
      ping_timer_(server.io()),
      kill_timer_(server.io()),
      remote_(std::move(remote)),
      protocol_(std::move(protocol)) {}

void WsSession::start(http::request<http::string_body> request) {
  int fd = beast::get_lowest_layer(ws_).socket().native_handle();
  int low_water = kNotSentLowWater;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &low_water, sizeof low_water) != 0) {
    log_debug("TCP_NOTSENT_LOWAT not available", {{"ERROR", std::strerror(errno)}});
  }
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.handshake_timeout = server_.options().close_timeout;
  timeouts.idle_timeout = websocket::stream_base::none();  // our own pings decide
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([protocol = protocol_](
                                                       websocket::response_type& response) {
    response.set(http::field::server, kServerName);
    if (!protocol.empty()) response.set(http::field::sec_websocket_protocol, protocol);
  }));
  ws_.text(true);
  ws_.auto_fragment(false);  // one frame per message, as the backend sends
  ws_.read_message_max(1u << 20);
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) {
      ping_outstanding_ = false;
    } else if (kind == websocket::frame_type::close) {
      log_debug("close frame from client", {{"REMOTE", remote_},
                                            {"CLOSE_CODE", std::to_string(ws_.reason().code)}});
    }
    (void)payload;
  });
  request_ = std::move(request);
  ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
    self->on_accept(ec);
  });
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) {
    log_info("WebSocket handshake failed", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
    finish();
    return;
  }
  if (closing_) {  // stopped while the handshake ran
    finish();
    return;
  }
  open_ = true;
  read();
  arm_ping();
  server_.on_open(shared_from_this(), protocol_);
}

void WsSession::read() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->on_read(ec);
  });
}

void WsSession::on_read(beast::error_code ec) {
  if (!ec) {
    // The backend ignores what clients say; so does the simulator.
    log_debug("client message ignored", {{"REMOTE", remote_},
                                         {"BYTES", std::to_string(buffer_.size())}});
    buffer_.consume(buffer_.size());
    read();
    return;
  }
  if (ec == websocket::error::closed) {
    if (!we_closed_) {
      log_info("client closed the connection",
               {{"REMOTE", remote_},
                {"CLOSE_CODE", std::to_string(ws_.reason().code)},
                {"REASON", std::string(ws_.reason().reason.data(), ws_.reason().reason.size())}});
    } else {
      log_info("connection closed", {{"REMOTE", remote_}});
    }
  } else if (!closing_) {
    log_info("connection lost", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
  } else {
    log_debug("connection ended", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
  }
  finish();
}

void WsSession::send(std::shared_ptr<Frame> frame) {
  queued_bytes_ += frame->text.size();
  queue_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void WsSession::write_next() {
  if (queue_.empty() || closing_) return;
  writing_ = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= writing_->text.size();
  ws_.async_write(asio::buffer(writing_->text),
                  [self = shared_from_this()](beast::error_code ec, std::size_t) {
                    self->on_write(ec);
                  });
}

void WsSession::on_write(beast::error_code ec) {
  auto frame = std::move(writing_);
  writing_.reset();
  if (ec && !closing_) {
    log_debug("write failed", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
  }
  if (!ec) write_next();
  server_.on_write_done(frame, !ec);
}

Backlog WsSession::backlog(bool with_unsent) {
  Backlog backlog;
  backlog.app = queued_bytes_ + (writing_ ? writing_->text.size() : 0);
  int unacknowledged = 0;
  int unsent = 0;
  int fd = beast::get_lowest_layer(ws_).socket().native_handle();
  if (fd >= 0 && ::ioctl(fd, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged > 0) {
    backlog.kernel = static_cast<std::uint64_t>(unacknowledged);
  }
  if (with_unsent && fd >= 0 && ::ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0) {
    backlog.kernel_unsent = static_cast<std::uint64_t>(unsent);
  }
  return backlog;
}

void WsSession::arm_ping() {
  auto interval = server_.options().ping_interval;
  if (interval.count() <= 0 || closing_) return;
  ping_timer_.expires_after(interval);
  ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    self->on_ping_timer(ec);
  });
}

void WsSession::on_ping_timer(beast::error_code ec) {
  if (ec || closing_ || finished_) return;
  if (ping_outstanding_) {
    log_warning("client did not answer the previous ping; terminating it",
                {{"REMOTE", remote_}});
    terminate("ping timeout");
    return;
  }
  ping_outstanding_ = true;
  std::string payload = "deltatap-sim " + std::to_string(++pings_);
  ws_.async_ping(websocket::ping_data(payload.c_str()),
                 [self = shared_from_this()](beast::error_code ping_ec) {
                   if (ping_ec && !self->closing_) {
                     log_debug("ping failed", {{"REMOTE", self->remote_},
                                               {"ERROR", ping_ec.message()}});
                   }
                 });
  arm_ping();
}

void WsSession::close(websocket::close_reason reason, std::chrono::milliseconds kill_after) {
  if (closing_ || finished_) return;
  closing_ = true;
  we_closed_ = true;
  server_.on_closing(*this);
  ping_timer_.cancel();
  if (!open_) {  // still in the handshake
    force_close();
    return;
  }
  drop_queue();
  kill_timer_.expires_after(kill_after);
  kill_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->finished_) return;
    log_info("closing handshake not finished in time; dropping the connection",
             {{"REMOTE", self->remote_}});
    self->force_close();
  });
  ws_.async_close(reason, [self = shared_from_this()](beast::error_code ec) {
    if (ec) log_debug("close failed", {{"REMOTE", self->remote_}, {"ERROR", ec.message()}});
  });
}

void WsSession::terminate(std::string_view why) {
  if (finished_) return;
  log_info("terminating connection", {{"REMOTE", remote_}, {"REASON", std::string(why)}});
  closing_ = true;
  server_.on_closing(*this);
  ping_timer_.cancel();
  drop_queue();
  force_close();
}

// Queued frames will never reach this client; they are settled as missed.
void WsSession::drop_queue() {
  auto dropped = std::move(queue_);
  queue_.clear();
  queued_bytes_ = 0;
  for (auto& frame : dropped) server_.on_write_done(frame, false);
}

void WsSession::force_close() {
  boost::system::error_code ec;
  beast::get_lowest_layer(ws_).socket().close(ec);
}

void WsSession::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  ping_timer_.cancel();
  kill_timer_.cancel();
  server_.on_closing(*this);
  drop_queue();
  force_close();
  server_.on_finished(*this);
}

}  // namespace

// ---------------------------------------------------------------- public API

const char kSimulatorUsage[] =
    R"(Usage: deltatap-sim [OPTIONS]
A simulated Jules Control Room backend: a WebSocket server that broadcasts
realistic session deltas to every connected client, for demos, tests and
benchmarks. Logs go to stderr; stdout carries one JSON summary line,
{"sent":N,"by_type":{...},"frames":F,"connections":C}, printed when --count
deltas have been sent (or at exit when that never happened).

  --listen ADDR:PORT      where to listen (default 127.0.0.1:3001); port 0 picks a
                          free port, logged as "listening on ADDR:PORT"
  --path PATH             the path clients are expected to use (default /ws); any
                          path is accepted, as the backend does, and logged
  --token T               require the subprotocol "bearer.T": a wrong or missing
                          token gets 401, no subprotocol at all 426 (default: none)
  --format F              delta (format A, one delta per frame), session_update
                          (format B batches; the default) or mixed
  --count N               deltas to send in all, across every connection and
                          reconnection; 0 = no limit (default)
  --rate N[/s]            deltas per second; 0 = as fast as the clients take them
                          (default)
  --sessions K            live sessions in the pool (default 10)
  --batch N               most deltas in one session_update frame (default 20)
  --seed S                seed of the session histories (default 1)
  --start-time ISO        run a simulated clock from this time (each delta a
                          seeded 0.02-1.5 s later); the same seed and start time
                          give byte-identical deltas. Default: the wall clock
                          (same sessions and changes, real times)
  --ping-interval SECS    ping every SECS seconds and drop a client that left the
                          previous ping unanswered (default 30; 0 = no pings)
  --backpressure-bytes N  close a client with 4002 "backpressure" when more than N
                          bytes are buffered for it (default 1048576)
  --record FILE           append every delta sent, one JSON line each:
                          {"type","sessionId","before","after","timestamp"}
  --log-level L           debug, info, warning or error (default info)
  --help                  print this text

Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime error, 2 on bad options.
)";

Result<SimulatorOptions> parse_simulator_args(const std::vector<std::string>& args) {
  SimulatorOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      options.help = true;
      continue;
    }
    auto value_of = [&]() -> Result<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) return Error{flag + " needs a value"};
      return args[++i];
    };
    auto bad = [&](const std::string& value, std::string_view allowed) {
      return Error{flag + ": " + quoted(value) + " is not valid; expected " + std::string(allowed)};
    };
    if (!flag.starts_with("--")) return Error{"unexpected argument " + quoted(flag)};
    static constexpr std::string_view kKnown[] = {
        "--listen", "--path",           "--token",           "--format",   "--count",
        "--rate",   "--sessions",       "--batch",           "--seed",     "--start-time",
        "--ping-interval", "--backpressure-bytes", "--record", "--log-level",
    };
    if (std::find(std::begin(kKnown), std::end(kKnown), flag) == std::end(kKnown)) {
      return Error{"unknown option " + flag};
    }
    auto value_result = value_of();
    if (!value_result.ok()) return Error{value_result.error()};
    std::string value = std::move(value_result.value());

    if (flag == "--listen") {
      auto where = parse_listen(value);
      if (!where.ok()) return bad(value, "ADDR:PORT (" + where.error() + ")");
      options.listen = value;
    } else if (flag == "--path") {
      if (!value.starts_with("/")) return bad(value, "a path starting with /");
      options.path = value;
    } else if (flag == "--token") {
      if (!value.empty() && !is_token("bearer." + value)) {
        return bad(value, "a token without spaces, commas or other separators");
      }
      options.token = value;
    } else if (flag == "--format") {
      if (value == "delta") {
        options.format = SimFormat::delta;
      } else if (value == "session_update") {
        options.format = SimFormat::session_update;
      } else if (value == "mixed") {
        options.format = SimFormat::mixed;
      } else {
        return bad(value, "delta, session_update or mixed");
      }
    } else if (flag == "--count") {
      auto n = parse_u64(value);
      if (!n) return bad(value, "a whole number, 0 for no limit");
      options.count = *n;
    } else if (flag == "--rate") {
      std::string_view number = value;
      if (number.ends_with("/s")) number.remove_suffix(2);
      auto n = parse_decimal(number);
      if (!n) return bad(value, "deltas per second, a number >= 0 (0 = no limit)");
      options.rate = *n;
    } else if (flag == "--sessions") {
      auto n = parse_u64(value);
      if (!n || *n < 1 || *n > 100'000) return bad(value, "a number from 1 to 100000");
      options.sessions = static_cast<int>(*n);
    } else if (flag == "--batch") {
      auto n = parse_u64(value);
      if (!n || *n < 1 || *n > 100'000) return bad(value, "a number from 1 to 100000");
      options.batch = static_cast<int>(*n);
    } else if (flag == "--seed") {
      auto n = parse_u64(value);
      if (!n) return bad(value, "a whole number");
      options.seed = *n;
    } else if (flag == "--start-time") {
      auto parsed = parse_timestamp(value);
      if (!parsed.ok()) return bad(value, "an ISO 8601 date-time (" + parsed.error() + ")");
      options.start_time = value;
    } else if (flag == "--ping-interval") {
      auto seconds = parse_decimal(value);
      if (!seconds || *seconds > 86'400) return bad(value, "seconds from 0 to 86400 (0 = no pings)");
      options.ping_interval = std::chrono::milliseconds(std::llround(*seconds * 1000));
      if (*seconds > 0 && options.ping_interval.count() == 0) options.ping_interval = 1ms;
    } else if (flag == "--backpressure-bytes") {
      auto n = parse_u64(value);
      if (!n || *n < 1024) return bad(value, "a number of bytes, at least 1024");
      options.backpressure_bytes = *n;
    } else if (flag == "--record") {
      if (value.empty()) return bad(value, "a file name");
      options.record = value;
    } else if (flag == "--log-level") {
      if (value == "debug") {
        options.log_level = LogLevel::debug;
      } else if (value == "info") {
        options.log_level = LogLevel::info;
      } else if (value == "warning") {
        options.log_level = LogLevel::warning;
      } else if (value == "error") {
        options.log_level = LogLevel::error;
      } else {
        return bad(value, "debug, info, warning or error");
      }
    }
  }
  return options;
}

struct Simulator::Impl {
  std::unique_ptr<Server> server;
};

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Simulator::~Simulator() = default;

Result<std::unique_ptr<Simulator>> Simulator::create(SimulatorOptions options,
                                                     std::FILE* summary_out) {
  auto where = parse_listen(options.listen);
  if (!where.ok()) return Error{"--listen " + quoted(options.listen) + ": " + where.error()};
  std::optional<std::int64_t> start_ms;
  if (options.start_time) {
    auto start = parse_timestamp(*options.start_time);
    if (!start.ok()) return Error{"--start-time: " + start.error()};
    start_ms = start->time_since_epoch().count();
  }
  auto impl = std::make_unique<Impl>();
  impl->server = std::make_unique<Server>(std::move(options), summary_out, start_ms);
  auto opened = impl->server->open(*where);
  if (!opened.ok()) return Error{opened.error()};
  return std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
}

int Simulator::port() const { return impl_->server->port(); }

int Simulator::run() { return impl_->server->run(); }

void Simulator::stop() { impl_->server->post_stop(); }

}  // namespace deltatap
