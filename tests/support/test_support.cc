#include "test_support.h"

#include "storage/state_codec.h"

#include "api/delta_json.h"
#include "base/timestamp.h"
#include "storage/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace deltatap::testing {

// Test executables are built beside the programs they test.
fs::path bin_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }
fs::path source_dir() { return DELTATAP_SOURCE_DIR; }

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "deltatap-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

// A deadline turns a hang into a failure; the tests size theirs for the normal
// and the ASan build. ThreadSanitizer runs the same code several times slower
// still (the TSan timeouts in cmake/tests.cmake are 4 times the normal ones).
#if defined(__SANITIZE_THREAD__)
constexpr int kDeadlineFactor = 4;
#else
constexpr int kDeadlineFactor = 1;
#endif

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout * kDeadlineFactor;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

namespace {

// The ports the kernel hands out on its own (bind to port 0, the local end of
// an outgoing connection).
std::pair<int, int> ephemeral_ports() {
  int low = 32768, high = 60999;
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  in >> low >> high;
  return {low, high};
}

// Whether a listener could bind 127.0.0.1:port now. With SO_REUSEADDR, as the
// daemons and the simulator bind (asio's default): a connection of an earlier
// test still in TIME_WAIT stops neither them nor us.
bool bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return bound;
}

}  // namespace

int free_port() {
  static std::mutex mutex;
  static std::set<int> handed_out;
  std::lock_guard lock(mutex);
  // One directory per user under /tmp (not $TMPDIR, which may differ between
  // the test processes of one run): a lock file per port, flock()ed for as long
  // as the process lives (the kernel drops the lock when it exits, however it
  // exits; O_CLOEXEC keeps the daemons it starts from holding it).
  static const std::string lock_dir = [] {
    std::string dir = "/tmp/deltatap-test-ports-" + std::to_string(::geteuid());
    ::mkdir(dir.c_str(), 0700);
    return dir;
  }();
  // Below the ephemeral range (or above it, if it starts too low), so that
  // nothing but an explicit bind can take the port; the whole unprivileged
  // range only on a machine whose ephemeral range leaves no room.
  auto [low, high] = ephemeral_ports();
  int first = 1024, last = 65535;
  if (low - 1024 >= 1024) {
    first = std::max(1024, low - 16384);
    last = low - 1;
  } else if (65535 - high >= 1024) {
    first = high + 1;
  }
  const int span = last - first + 1;
  // A random start keeps concurrent test processes from all trying the same
  // ports first.
  const int start = static_cast<int>(std::random_device{}() % static_cast<unsigned>(span));
  for (int i = 0; i < span; ++i) {
    int port = first + (start + i) % span;
    if (handed_out.count(port)) continue;
    std::string path = lock_dir + "/" + std::to_string(port);
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      int error = errno;
      throw std::runtime_error("free_port: cannot open " + path + ": " + std::strerror(error));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && bindable(port)) {
      handed_out.insert(port);
      return port;  // `fd` stays open: the lock is held until exit
    }
    ::close(fd);
  }
  throw std::runtime_error("free_port: no free port in " + std::to_string(first) + "-" +
                           std::to_string(last));
}

Process::Process(ProcessOptions options) {
  if (options.argv.empty()) throw std::invalid_argument("Process: empty argv");
  fs::path dir;
  own_dir_.emplace();
  dir = own_dir_->path();
  out_path_ = dir / "stdout";
  err_path_ = dir / "stderr";

  // Build argv and envp before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    auto name = entry.substr(0, entry.find('='));
    if (options.env.count(name)) continue;
    env_strings.push_back(entry);
  }
  for (const auto& [name, value] : options.env) {
    if (value == "\x01unset") continue;
    env_strings.push_back(name + "=" + value);
  }
  std::vector<char*> argv, envp;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::string wd = options.working_dir.string();
  // Only the soft limit: the hard one stays as it is, so that the test (any
  // user) can lift the soft one again while the child runs.
  rlimit file_size{};
  ::getrlimit(RLIMIT_FSIZE, &file_size);
  if (options.file_size_limit > 0) {
    file_size.rlim_cur = std::min(static_cast<rlim_t>(options.file_size_limit), file_size.rlim_max);
  }

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (options.file_size_limit > 0) {
      // An ignored signal stays ignored across execve: the write fails (EFBIG)
      // instead of killing the writer, as a full disk would have it fail.
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      ::sigaction(SIGXFSZ, &ignore, nullptr);
      if (::setrlimit(RLIMIT_FSIZE, &file_size) != 0) _exit(127);
    }
    if (!wd.empty() && ::chdir(wd.c_str()) != 0) _exit(127);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  ::close(null_fd);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(5s);
  }
}

void Process::signal(int signo) {
  if (!exit_code_) ::kill(pid_, signo);
}

bool Process::set_file_size_limit(long long bytes) {
  rlimit limit{};
  if (exit_code_ || ::prlimit(pid_, RLIMIT_FSIZE, nullptr, &limit) != 0) return false;
  limit.rlim_cur = bytes > 0 ? std::min(static_cast<rlim_t>(bytes), limit.rlim_max) : limit.rlim_max;
  return ::prlimit(pid_, RLIMIT_FSIZE, &limit, nullptr) == 0;
}

bool Process::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  wait_until([&] { return !running(); }, timeout);
  return exit_code_;
}

std::string Process::stdout_text() const { return read_file(out_path_); }
std::string Process::stderr_text() const { return read_file(err_path_); }
bool Process::stderr_contains(const std::string& needle) const {
  return stderr_text().find(needle) != std::string::npos;
}

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env,
                          const fs::path& working_dir) {
  Process p({argv, env, working_dir});
  CommandResult result;
  auto code = p.wait(120s);
  result.exit_code = code.value_or(-1);
  result.out = p.stdout_text();
  result.err = p.stderr_text();
  return result;
}

std::vector<std::vector<std::string>> query_db(const fs::path& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  std::vector<std::vector<std::string>> rows;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = handle ? sqlite3_errmsg(handle) : "out of memory";
    sqlite3_close(handle);
    throw std::runtime_error("query_db: cannot open " + db.string() + ": " + message);
  }
  // deltatap_json, so that a test can read a compressed file through the
  // view session_deltas_json ([storage] compression).
  if (!deltatap::StateCodec::register_sql_function(handle).ok()) {
    sqlite3_close(handle);
    throw std::runtime_error("query_db: cannot register deltatap_json");
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    std::string message = sqlite3_errmsg(handle);
    sqlite3_close(handle);
    throw std::runtime_error("query_db: " + message + " in: " + sql);
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      auto text = sqlite3_column_text(stmt, i);
      row.push_back(text ? std::string(reinterpret_cast<const char*>(text),
                                       sqlite3_column_bytes(stmt, i))
                         : "NULL");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(handle);
  return rows;
}

HttpResponse http_request(int port, const std::string& method, const std::string& target,
                          const std::vector<std::string>& headers) {
  HttpResponse response;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return response;
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  request += "\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string raw;
  char buffer[65536];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) raw.append(buffer, n);
  ::close(fd);
  auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.size() < 12) return response;
  response.status = std::atoi(raw.c_str() + 9);
  response.headers = raw.substr(0, end);
  std::string body = raw.substr(end + 4);
  std::string lower = response.headers;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") == std::string::npos) {
    response.body = body;
    return response;
  }
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto line_end = body.find("\r\n", pos);
    if (line_end == std::string::npos) break;
    std::size_t size = std::stoul(body.substr(pos, line_end - pos), nullptr, 16);
    if (size == 0) break;
    response.body += body.substr(line_end + 2, size);
    pos = line_end + 2 + size + 2;
  }
  return response;
}


Sim::Sim(const TempDir& dir, const std::string& name, std::vector<std::string> args, int port)
    : record_(dir / (name + ".ndjson")) {
  std::vector<std::string> argv = {(bin_dir() / "deltatap-sim").string(), "--listen",
                                   "127.0.0.1:" + std::to_string(port), "--record",
                                   record_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  process_.emplace(ProcessOptions{argv, {}, dir.path()});
  // Plain string search, not std::regex: GCC 12 warns falsely inside <regex> at -O2
  // with the sanitizers, and warnings are errors.
  bool started = wait_until([&] {
    static const std::string listening = "listening on 127.0.0.1:";
    auto log = process_->stderr_text();
    auto at = log.find(listening);
    if (at == std::string::npos) return false;
    port_ = std::atoi(log.c_str() + at + listening.size());
    return port_ > 0;
  });
  if (!started) throw std::runtime_error("deltatap-sim did not start: " + process_->stderr_text());
}

std::optional<long> Sim::sent() const {
  static const std::string sent_key = "\"sent\":";
  auto out = process_->stdout_text();
  auto at = out.find(sent_key);
  if (at == std::string::npos) return std::nullopt;
  return std::atol(out.c_str() + at + sent_key.size());
}

bool Sim::wait_sent(std::chrono::milliseconds timeout) {
  return wait_until([&] { return sent().has_value(); }, timeout);
}

std::vector<std::string> Sim::records() const {
  std::vector<std::string> lines;
  std::istringstream in(read_file(record_));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::map<std::string, std::string> daemon_env(const std::string& url, const std::string& token) {
  return {{"PERSIST", "1"},
          {"DELTATAP_URL", url},
          {"DELTATAP_TOKEN", token.empty() ? "\x01unset" : token},
          {"DELTATAP_HTTP", ""},
          {"DELTATAP_LOG_FORMAT", "text"},
          {"SNAPSHOT_INTERVAL", "600000"},
          // Reconciliation infers deltas the simulator never sent, by design;
          // tests that compare what was stored with what was sent leave it
          // off, and tests of reconciliation turn it on (its answer waits 10 s
          // for the stream in production; a second is plenty on loopback).
          {"DELTATAP_RECONCILE", "off"},
          {"DELTATAP_TEST_RECONCILE_GRACE_MS", "1000"},
          {"NOTIFY_SOCKET", "\x01unset"},
          {"JOURNAL_STREAM", "\x01unset"},
          {"INVOCATION_ID", "\x01unset"}};
}

std::vector<std::string> deltatapd_argv(std::vector<std::string> args) {
  args.insert(args.begin(), (bin_dir() / "deltatapd").string());
  return args;
}

namespace {
std::string member(const std::vector<RawMember>& members, const std::string& key) {
  for (auto& m : members) {
    if (m.key == key) return std::string(m.value);
  }
  return "null";
}
}  // namespace

std::multiset<std::string> recorded_keys(const std::vector<std::string>& lines) {
  std::multiset<std::string> keys;
  for (const auto& line : lines) {
    auto members = raw_object_members(line);
    if (!members.ok()) throw std::runtime_error(members.error() + " in " + line);
    auto type = decode_json_string(member(*members, "type")).value();
    auto session = decode_json_string(member(*members, "sessionId")).value();
    auto ts = member(*members, "timestamp");
    std::string normalised = "*";
    if (ts != "null") {
      auto n = normalise_timestamp(decode_json_string(ts).value());
      if (!n.ok()) throw std::runtime_error("simulator sent an invalid timestamp " + ts);
      normalised = *n;
    }
    keys.insert(type + "|" + session + "|" + member(*members, "before") + "|" +
                member(*members, "after") + "|" + normalised);
  }
  return keys;
}

std::multiset<std::string> stored_keys(const fs::path& db, const std::multiset<std::string>& recorded) {
  std::multiset<std::string> keys;
  // The JSON as stored, through the view where the file has it (schema 3:
  // a compressed state decoded, a before state kept as a reference resolved).
  bool has_view = query_db(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                               "'session_deltas_json'")[0][0] == "1";
  auto rows = query_db(db, std::string("SELECT delta_type, session_id, COALESCE(before_state, 'null'), "
                                       "COALESCE(after_state, 'null'), timestamp FROM ") +
                               (has_view ? "session_deltas_json" : "session_deltas") +
                               " WHERE origin = 'stream' ORDER BY id");
  for (auto& r : rows) {
    std::string base = r[0] + "|" + r[1] + "|" + r[2] + "|" + r[3] + "|";
    // A delta sent without a timestamp was stamped with its receive time.
    keys.insert(recorded.count(base + r[4]) ? base + r[4] : base + "*");
  }
  return keys;
}

std::string count_of(const fs::path& db, const std::string& where) {
  return query_db(db, "SELECT COUNT(*) FROM session_deltas WHERE " + where)[0][0];
}

bool wait_for_rows(Process& daemon, const fs::path& db, long expected,
                   std::chrono::milliseconds timeout) {
  auto last_signal = std::chrono::steady_clock::time_point{};
  return wait_until(
      [&] {
        // A snapshot takes a moment to land: ask again only every quarter second.
        if (std::chrono::steady_clock::now() - last_signal > 250ms) {
          daemon.signal(SIGUSR1);
          last_signal = std::chrono::steady_clock::now();
        }
        return fs::exists(db) && count_of(db) == std::to_string(expected);
      },
      timeout);
}

std::vector<std::string> log_field_values(const std::string& log, const std::string& message,
                                          const std::string& field) {
  std::vector<std::string> values;
  std::istringstream in(log);
  const std::string key = " " + field + "=";
  for (std::string line; std::getline(in, line);) {
    if (line.find(message) == std::string::npos) continue;
    auto at = line.find(key);
    if (at == std::string::npos) continue;
    at += key.size();
    std::size_t end = at;
    if (end < line.size() && line[end] == '"') {
      // A quoted value ends at the next quote that no backslash escapes.
      for (++end; end < line.size() && line[end] != '"'; ++end) {
        if (line[end] == '\\') ++end;
      }
      if (end < line.size()) ++end;
    } else {
      end = line.find(' ', at);
      if (end == std::string::npos) end = line.size();
    }
    values.push_back(line.substr(at, end - at));
  }
  return values;
}

std::optional<long long> json_integer(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nullopt;
  const char* start = json.c_str() + at + key.size() + 3;
  char* end = nullptr;
  long long value = std::strtoll(start, &end, 10);
  if (end == start) return std::nullopt;
  return value;
}

void write_realistic_store(const fs::path& path, int count) {
  auto store = Store::open_empty();
  if (!store.ok()) throw std::runtime_error("open_empty: " + store.error());
  const std::string padding(420, 'x');
  const std::string at = "2026-11-20T10:00:00.000Z";
  std::vector<Delta> batch;
  auto flush = [&] {
    if (auto s = (*store)->save_batch(batch, at); !s.ok()) {
      throw std::runtime_error("save_batch: " + s.error());
    }
    batch.clear();
  };
  for (int i = 0; i < count; ++i) {
    Delta d;
    d.session_id = "sess_old_" + std::to_string(i % 2000);
    d.type = i < 2000 ? DeltaType::created : DeltaType::updated;
    d.after = "{\"id\":\"" + d.session_id + "\",\"step\":" + std::to_string(i) +
              ",\"summary\":\"" + padding + "\"}";
    if (d.type == DeltaType::updated) d.before = d.after;
    d.timestamp = at;
    batch.push_back(std::move(d));
    if (batch.size() == 5000) flush();
  }
  if (!batch.empty()) flush();
  fs::create_directories(path.parent_path());
  fs::permissions(path.parent_path(), fs::perms::owner_all);
  if (auto s = (*store)->write_copy(path.string()); !s.ok()) {
    throw std::runtime_error("write_copy: " + s.error());
  }
}

int read_printed_port(const Process& server, std::chrono::milliseconds timeout) {
  int port = 0;
  wait_until(
      [&] {
        auto out = server.stdout_text();
        auto nl = out.find('\n');
        if (nl == std::string::npos) return false;
        port = std::atoi(out.substr(0, nl).c_str());
        return true;
      },
      timeout);
  return port;
}

std::optional<double> metric_sample(int http_port, const std::string& name) {
  auto reply = http_request(http_port, "GET", "/metrics");
  if (reply.status != 200) return std::nullopt;
  auto at = reply.body.find("\n" + name + " ");
  if (at == std::string::npos) return std::nullopt;
  return std::atof(reply.body.c_str() + at + name.size() + 2);
}

std::set<pid_t> children_of(pid_t pid) {
  std::set<pid_t> children;
  std::error_code ignored;
  for (auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ignored)) {
    std::istringstream in(read_file(task.path() / "children"));
    for (pid_t child; in >> child;) children.insert(child);
  }
  return children;
}

}  // namespace deltatap::testing
