// Helpers shared by the test suites: temporary directories, child processes,
// waiting on a condition with a deadline, files, free loopback ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace deltatap::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Directory of the built executables (deltatapd, deltatap, deltatap-sim).
fs::path bin_dir();
// The source tree (for fixtures, conf/, systemd/).
fs::path source_dir();

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Polls `condition` every 10 ms until it holds or `timeout` passes (4 times
// `timeout` in the ThreadSanitizer build, which runs everything slower).
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = 10s);

std::string read_file(const fs::path& path);  // "" when missing
void write_file(const fs::path& path, const std::string& text);

// A TCP port on 127.0.0.1 that nobody else will take while this process
// lives, for a daemon or a simulator to listen on (they take the port on their
// command line) or for a URL that must stay dead. It is outside the kernel's
// ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), so no bind to port
// 0 and no outgoing connection is ever given it; it was free when chosen; and
// a lock file held until this process exits keeps every other test process
// (ctest -j) off it. The same port is never handed out twice by one process.
int free_port();

// A child process: argv[0] is a path; stdout and stderr go to files in `log_dir`
// (or a private temp dir), readable while it runs. The environment is the
// parent's plus `env` (a value of "\x01unset" removes a variable).
struct ProcessOptions {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  fs::path working_dir;  // empty: the parent's
  // A disk that fills, without root: RLIMIT_FSIZE (soft; the hard limit stays
  // unlimited) with SIGXFSZ ignored, so that a write past it fails with EFBIG
  // as one on a full disk fails with ENOSPC. The limit is per file and is
  // inherited by the child's own children. 0: no limit. Lifted while it runs
  // with Process::set_file_size_limit.
  long long file_size_limit = 0;
};

class Process {
 public:
  explicit Process(ProcessOptions options);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signo);
  // prlimit(RLIMIT_FSIZE) on the running process: `bytes`, or 0 for none.
  // Returns false when the kernel refused.
  bool set_file_size_limit(long long bytes);
  bool running();
  // Waits for exit; returns the exit code (128+signal when killed), or
  // nullopt if it had not exited within `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout = 20s);
  std::string stdout_text() const;
  std::string stderr_text() const;
  bool stderr_contains(const std::string& needle) const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  fs::path out_path_, err_path_;
  std::optional<TempDir> own_dir_;
};

// Runs a command to completion (timeout 120 s) and returns exit code and output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          const fs::path& working_dir = {});

// Rows of a SQLite query on a database file (opened read-only), each column as text
// ("NULL" for null).
std::vector<std::vector<std::string>> query_db(const fs::path& db, const std::string& sql);

// One HTTP/1.1 request to 127.0.0.1:port over a plain socket ("Connection:
// close"); status 0 when nothing answered. Chunked bodies are decoded.
struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};
HttpResponse http_request(int port, const std::string& method, const std::string& target,
                          const std::vector<std::string>& headers = {});


// --- deltatapd and deltatap-sim as processes -------------------------------------

// A running deltatap-sim recording what it sends; its port is read from its log.
class Sim {
 public:
  Sim(const TempDir& dir, const std::string& name, std::vector<std::string> args, int port = 0);
  int port() const { return port_; }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }
  Process& process() { return *process_; }
  // The summary line's "sent", once printed.
  std::optional<long> sent() const;
  bool wait_sent(std::chrono::milliseconds timeout = 60s);
  std::vector<std::string> records() const;  // one JSON line per delta sent

 private:
  fs::path record_;
  std::optional<Process> process_;
  int port_ = 0;
};

// deltatapd's environment for a test: storage on, no HTTP, text logs, no systemd.
std::map<std::string, std::string> daemon_env(const std::string& url, const std::string& token);
std::vector<std::string> deltatapd_argv(std::vector<std::string> args = {});

// Deltas as "type|session|before|after|timestamp" (states as exact JSON text,
// "*" for a timestamp the frame did not carry), comparable as multisets.
std::multiset<std::string> recorded_keys(const std::vector<std::string>& record_lines);
// Only rows of origin `stream`: what deltatap inferred (resync, reconcile) was never sent.
std::multiset<std::string> stored_keys(const fs::path& db, const std::multiset<std::string>& recorded);
std::string count_of(const fs::path& db, const std::string& where = "1");
// Asks for snapshots (SIGUSR1) until the file holds `expected` deltas.
bool wait_for_rows(Process& daemon, const fs::path& db, long expected,
                   std::chrono::milliseconds timeout = 60s);

// The values of `field` (camelCase, as the text log writes it: `field=value`) on
// the lines of `log` that hold `message`, in order. A quoted value is returned
// with its quotes.
std::vector<std::string> log_field_values(const std::string& log, const std::string& message,
                                          const std::string& field);

// The integer after `"key":` in a JSON text, the first time it appears (no
// parser: for the flat answers of /api/stats, /api/cleanup, /api/snapshot).
std::optional<long long> json_integer(const std::string& json, const std::string& key);

// A database file of `count` deltas with states of a realistic size (~500
// bytes; 2,000 sessions named "sess_old_N", stored 2026-11-20), written through
// the library into `path`, whose directory is made 0700: what a daemon that ran
// for a while has. Throws std::runtime_error when the library fails.
void write_realistic_store(const fs::path& path, int count);

// The port a fixture server (tests/fixtures/*.py) prints as its first line of
// stdout; 0 when none came within `timeout`.
int read_printed_port(const Process& server, std::chrono::milliseconds timeout = 10s);

// A sample of a daemon's /metrics page (an unlabelled one, e.g.
// "deltatap_websocket_reconnects_total"); nullopt when it did not answer.
std::optional<double> metric_sample(int http_port, const std::string& name);

// The processes `pid`'s threads have forked and not yet reaped (/proc/PID/task/*/children).
std::set<pid_t> children_of(pid_t pid);

}  // namespace deltatap::testing
