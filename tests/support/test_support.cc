#include "test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace deltatap::testing {

fs::path bin_dir() { return DELTATAP_BIN_DIR; }
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

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
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

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
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

}  // namespace deltatap::testing
