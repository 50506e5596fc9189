// Helpers shared by the test suites: temporary directories, child processes,
// waiting on a condition with a deadline, files, free loopback ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
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

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = 10s);

std::string read_file(const fs::path& path);  // "" when missing
void write_file(const fs::path& path, const std::string& text);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// A child process: argv[0] is a path; stdout and stderr go to files in `log_dir`
// (or a private temp dir), readable while it runs. The environment is the
// parent's plus `env` (a value of "\x01unset" removes a variable).
struct ProcessOptions {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  fs::path working_dir;  // empty: the parent's
};

class Process {
 public:
  explicit Process(ProcessOptions options);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signo);
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

}  // namespace deltatap::testing
