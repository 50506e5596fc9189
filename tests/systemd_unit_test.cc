// systemd/deltatap.service and its sysusers snippet, checked with systemd's own
// tools: the sandbox's exposure score, `systemd-analyze verify`, the user the
// unit runs as, the settings the rest of deltatap relies on (notify, watchdog,
// state directory as working directory, the token credential), and that the
// daemon and its snapshot child make only the system calls the unit's
// SystemCallFilter= lines allow.
#define BOOST_TEST_MODULE systemd_unit
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "service/config.h"
#include "skip.h"
#include "test_support.h"

namespace {

// The last `bytes` of `text`.
std::string tail_of(const std::string& text, std::size_t bytes) {
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

using namespace deltatap::testing;

fs::path unit_path() { return source_dir() / "systemd" / "deltatap.service"; }
fs::path sysusers_path() { return source_dir() / "systemd" / "deltatap.sysusers"; }

// Every `Key=value` of the unit (sections flattened), in order of appearance.
std::multimap<std::string, std::string> unit_settings() {
  std::multimap<std::string, std::string> settings;
  std::istringstream in(read_file(unit_path()));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    settings.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return settings;
}

std::string setting(const std::multimap<std::string, std::string>& settings,
                    const std::string& key) {
  auto it = settings.find(key);
  return it == settings.end() ? std::string("(unset)") : it->second;
}

// systemd-analyze without a pager or colours, whatever the caller's environment.
CommandResult analyze(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/systemd-analyze");
  return run_command(args, {{"SYSTEMD_PAGER", ""}, {"SYSTEMD_COLORS", "0"}});
}

}  // namespace

BOOST_AUTO_TEST_CASE(sandbox_exposure_is_at_most_2_0) {
  auto result = analyze({"security", "--offline=true", "--no-pager", unit_path().string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  std::smatch match;
  std::regex overall(R"(Overall exposure level for deltatap\.service: (\d+\.\d))");
  BOOST_TEST_REQUIRE(std::regex_search(result.out, match, overall), result.out);
  double exposure = std::stod(match[1].str());
  BOOST_TEST_MESSAGE("exposure " << exposure);
  BOOST_TEST(exposure <= 2.0, result.out);
  // The tool's own threshold agrees (it counts in tenths).
  auto gated = analyze({"security", "--offline=true", "--threshold=20", "--no-pager",
                        unit_path().string()});
  BOOST_TEST(gated.exit_code == 0, gated.out);
}

BOOST_AUTO_TEST_CASE(verify_has_no_complaint) {
  // verify insists that ExecStart's binary exists. The unit names the installed
  // /usr/bin/deltatapd; a copy that differs only in that path lets the check run
  // on a build machine: the built deltatapd when there is one, else /bin/true.
  TempDir dir;
  fs::path executable = bin_dir() / "deltatapd";
  if (!fs::exists(executable)) executable = "/bin/true";
  std::string text = read_file(unit_path());
  const std::string installed = "ExecStart=/usr/bin/deltatapd ";
  auto at = text.find(installed);
  BOOST_TEST_REQUIRE(at != std::string::npos);
  text.replace(at, installed.size(), "ExecStart=" + executable.string() + " ");
  fs::path copy = dir / "deltatap.service";
  write_file(copy, text);

  // --man=no: the unit's Documentation= names man pages that are installed by
  // the package, not on a build machine.
  auto result = analyze({"verify", "--man=no", copy.string()});
  BOOST_TEST(result.exit_code == 0, result.err);
  BOOST_TEST(result.out.empty(), result.out);
  BOOST_TEST(result.err.empty(), result.err);
}

BOOST_AUTO_TEST_CASE(unit_settings_that_deltatap_relies_on) {
  auto s = unit_settings();
  BOOST_TEST(setting(s, "Type") == "notify");
  BOOST_TEST(setting(s, "NotifyAccess") == "main");
  BOOST_TEST(setting(s, "WatchdogSec") != "(unset)");
  BOOST_TEST(setting(s, "Restart") == "on-failure");
  // A configuration error (exit 2) would fail the same way on every restart.
  BOOST_TEST(setting(s, "RestartPreventExitStatus") == "2");
  BOOST_TEST(setting(s, "ExecStart") ==
             "/usr/bin/deltatapd --config /etc/deltatap/deltatap.conf");
  BOOST_TEST(setting(s, "ExecReload") == "/bin/kill -HUP $MAINPID");
  // The store's relative default path lands in /var/lib/deltatap/data/.
  BOOST_TEST(setting(s, "StateDirectory") == "deltatap");
  BOOST_TEST(setting(s, "StateDirectoryMode") == "0700");
  BOOST_TEST(setting(s, "WorkingDirectory") == "/var/lib/deltatap");
  BOOST_TEST(setting(s, "ConfigurationDirectory") == "deltatap");
  BOOST_TEST(setting(s, "LoadCredential") == "token:/etc/deltatap/token");
  // systemd 252 has no "optional" LoadCredential=; a SetCredential= of the same
  // name is its documented fallback when the file is missing.
  BOOST_TEST(setting(s, "SetCredential").rfind("token:", 0) == 0u);
  BOOST_TEST(setting(s, "User") == "deltatap");
  BOOST_TEST(setting(s, "ProtectSystem") == "strict");
  BOOST_TEST(setting(s, "UMask") == "0077");
}

BOOST_AUTO_TEST_CASE(sysusers_creates_the_user_the_unit_runs_as) {
  TempDir root;
  fs::create_directories(root / "etc");
  auto result = run_command({"/usr/bin/systemd-sysusers", "--root=" + root.path().string(),
                             sysusers_path().string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  std::string passwd = read_file(root / "etc/passwd");
  std::string group = read_file(root / "etc/group");
  std::smatch match;
  std::regex user_line(R"((^|\n)deltatap:x:(\d+):(\d+):[^:\n]*:/var/lib/deltatap:([^\n]*))");
  BOOST_TEST_REQUIRE(std::regex_search(passwd, match, user_line), passwd);
  int uid = std::stoi(match[2].str());
  BOOST_TEST(uid > 0);
  BOOST_TEST(uid < 1000);  // a system user
  BOOST_TEST(match[4].str().find("nologin") != std::string::npos, match[4].str());
  BOOST_TEST(group.find("deltatap:x:" + match[3].str() + ":") != std::string::npos, group);
  BOOST_TEST(setting(unit_settings(), "User") == "deltatap");
  BOOST_TEST(setting(unit_settings(), "Group") == "deltatap");

  // Running it again (a package upgrade) changes nothing.
  auto again = run_command({"/usr/bin/systemd-sysusers", "--root=" + root.path().string(),
                            sysusers_path().string()});
  BOOST_TEST(again.exit_code == 0, again.err);
  BOOST_TEST(read_file(root / "etc/passwd") == passwd);
}

// What ExecStart runs, with what systemd gives the service: the shipped
// configuration, and $CREDENTIALS_DIRECTORY holding the token or, when
// /etc/deltatap/token is missing, the SetCredential= default (a lone newline).
namespace {

deltatap::Result<deltatap::Config> load_with_credential(const TempDir& credentials,
                                                        const std::string& credential) {
  write_file(credentials / "token", credential);
  ::chmod((credentials / "token").c_str(), 0400);
  std::string conf = (source_dir() / "conf" / "deltatap.conf").string();
  const char* argv[] = {"deltatapd", "--config", conf.c_str()};
  auto command_line = deltatap::parse_command_line(3, argv);
  BOOST_TEST_REQUIRE(command_line.ok(), command_line.error());
  deltatap::Environment env = {{"CREDENTIALS_DIRECTORY", credentials.path().string()}};
  return deltatap::load_config(*command_line, env);
}

}  // namespace

BOOST_AUTO_TEST_CASE(shipped_configuration_takes_the_token_credential) {
  TempDir credentials;
  auto config = load_with_credential(credentials, "s3cr3t-token\n");
  BOOST_TEST_REQUIRE(config.ok(), config.error());
  BOOST_TEST(config->stream.token == "s3cr3t-token");
  BOOST_TEST(deltatap::describe_config(*config).find("s3cr3t-token") == std::string::npos);
  // Storage is on in the shipped file, relative to the unit's working directory.
  BOOST_TEST(config->storage.enabled);
  BOOST_TEST(config->storage.path == "data/sessions.sqlite");
}

BOOST_AUTO_TEST_CASE(shipped_configuration_starts_without_a_token_file) {
  TempDir credentials;
  auto config = load_with_credential(credentials, "\n");
  BOOST_TEST_REQUIRE(config.ok(), config.error());
  BOOST_TEST(config->stream.token.empty());
}

// --- The system calls the daemon makes, against the unit's filter ------------
//
// There is no systemd as PID 1 here to run the daemon under the unit's real
// seccomp filter, so the test does what the filter would: it computes the set
// the unit allows from the unit's own SystemCallFilter= lines and systemd's own
// list of groups (`systemd-analyze syscall-filter`), runs the real daemon under
// strace -f (its snapshot child included), and checks every call it made. A
// call outside the set would be refused (EPERM) under systemd, and a refusal
// deltatap does not check fails silently, as setpriority did (issue 13, item 8).

namespace {

// systemd's groups, "@system-service" -> {"@aio", ..., "brk", ...}: the output
// of `systemd-analyze syscall-filter`, a name at the start of a line, then its
// members indented, "#" comments, and a blank line.
std::map<std::string, std::vector<std::string>> syscall_groups() {
  auto result = analyze({"syscall-filter", "--no-pager"});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::string>* current = nullptr;
  std::istringstream in(result.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      current = nullptr;
    } else if (line[0] == '@') {
      current = &groups[line.substr(0, line.find_first_of(" \t"))];
    } else if (current && line[0] == ' ') {
      auto name = line.substr(line.find_first_not_of(' '));
      if (name[0] != '#') current->push_back(name);
    }
  }
  BOOST_TEST_REQUIRE(groups.count("@system-service") == 1u, result.out);
  return groups;
}

// What one SystemCallFilter= entry names: a call, or a group expanded.
void expand(const std::map<std::string, std::vector<std::string>>& groups,
            const std::string& entry, std::set<std::string>& names) {
  // A deny-list entry may carry the error it returns: "~@mount:EPERM".
  std::string name = entry.substr(0, entry.find(':'));
  if (name[0] != '@') {
    names.insert(name);
    return;
  }
  auto group = groups.find(name);
  BOOST_TEST_REQUIRE((group != groups.end()), "systemd knows no group " << name);
  for (const auto& member : group->second) expand(groups, member, names);
}

// The filter that SystemCallFilter= lines make, merged as systemd.exec(5) says
// and systemd's config parser does: the first line sets the mode (allow-list,
// or deny-list when it starts with "~"), and an allow list starts with @default
// (the calls "implicitly allow-listed"); each later line adds its calls to the
// list, or, when its "~" is the opposite of the mode, removes them; an empty
// assignment resets everything.
class SyscallFilter {
 public:
  SyscallFilter(const std::map<std::string, std::vector<std::string>>& groups,
                const std::vector<std::string>& lines) {
    for (const auto& line : lines) {
      if (line.empty()) {
        mode_.reset();
        names_.clear();
        continue;
      }
      bool inverted = line[0] == '~';
      if (!mode_) {
        mode_ = inverted ? Mode::deny : Mode::allow;
        if (*mode_ == Mode::allow) expand(groups, "@default", names_);
      }
      std::set<std::string> listed;
      std::istringstream entries(line.substr(inverted ? 1 : 0));
      for (std::string entry; entries >> entry;) expand(groups, entry, listed);
      bool add = inverted == (*mode_ == Mode::deny);
      for (const auto& name : listed) {
        if (add) {
          names_.insert(name);
        } else {
          names_.erase(name);
        }
      }
    }
  }

  bool allows(const std::string& call) const {
    if (!mode_) return true;
    return names_.count(call) == (*mode_ == Mode::allow ? 1u : 0u);
  }

 private:
  enum class Mode { allow, deny };
  std::optional<Mode> mode_;
  std::set<std::string> names_;
};

// Every value of `key` in the unit, in order.
std::vector<std::string> unit_values(const std::string& key) {
  std::vector<std::string> values;
  auto settings = unit_settings();
  auto [first, last] = settings.equal_range(key);  // in order of appearance
  for (auto it = first; it != last; ++it) values.push_back(it->second);
  return values;
}

}  // namespace

// The model above, on lines whose outcome systemd.exec(5) states.
BOOST_AUTO_TEST_CASE(the_filter_is_merged_as_systemd_merges_it) {
  auto groups = syscall_groups();
  SyscallFilter service(groups, {"@system-service", "~@privileged @resources"});
  BOOST_TEST(service.allows("read"));
  BOOST_TEST(service.allows("clock_gettime"));  // @default, always allowed
  BOOST_TEST(!service.allows("setpriority"));   // in @resources
  BOOST_TEST(!service.allows("reboot"));        // never in @system-service
  SyscallFilter added_back(groups, {"@system-service", "~@privileged @resources", "setpriority"});
  BOOST_TEST(added_back.allows("setpriority"));
  BOOST_TEST(!added_back.allows("setrlimit"));
  SyscallFilter deny(groups, {"~@mount", "mount"});
  BOOST_TEST(deny.allows("read"));
  BOOST_TEST(deny.allows("mount"));  // taken off the deny list again
  BOOST_TEST(!deny.allows("umount2"));
  SyscallFilter reset(groups, {"~@mount", "", "read"});
  BOOST_TEST(reset.allows("read"));
  BOOST_TEST(!reset.allows("write"));  // an allow list now, of read and @default
  BOOST_TEST(reset.allows("exit_group"));
}

namespace {

// The service manager's end of NOTIFY_SOCKET, read continuously so that the
// daemon's READY=1, STATUS= and WATCHDOG=1 datagrams never fill it.
class NotifySink {
 public:
  explicit NotifySink(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    BOOST_TEST_REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    BOOST_TEST_REQUIRE(path.string().size() < sizeof address.sun_path);
    std::strcpy(address.sun_path, path.c_str());
    BOOST_TEST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    timeval tick{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    reader_ = std::thread([this] {
      char buffer[4096];
      while (!done_) {
        if (::recv(fd_, buffer, sizeof buffer, 0) > 0) ++received_;
      }
    });
  }
  ~NotifySink() {
    done_ = true;
    reader_.join();
    ::close(fd_);
  }
  const fs::path& path() const { return path_; }
  int received() const { return received_; }

 private:
  fs::path path_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::atomic<int> received_{0};
  std::thread reader_;
};

const char* const kStrace = "/usr/bin/strace";

// strace must be there (scripts/setup installs it) and allowed to trace (a
// container without CAP_SYS_PTRACE, or with a seccomp profile refusing
// ptrace, is not); the sanitizer runtime makes calls of its own, and the
// sanitizer build has no snapshot child (storage/snapshot.cc).
boost::test_tools::assertion_result strace_can_trace_the_daemon(
    [[maybe_unused]] boost::unit_test::test_unit_id id) {
#if defined(__SANITIZE_ADDRESS__)
  return excluded_by_build(id, "AddressSanitizer build: the runtime's own system calls are not "
                               "the daemon's, and there is no snapshot child");
#endif
  boost::test_tools::assertion_result result(false);
  if (::access(kStrace, X_OK) != 0) {
    result.message() << kStrace << " is missing: install strace (scripts/setup does)";
    return result;
  }
  auto probe = run_command({kStrace, "-qq", "-o", "/dev/null", "/bin/true"});
  if (probe.exit_code != 0) {
    result.message() << "strace cannot trace here: " << probe.err;
    return result;
  }
  return true;
}

// Each system call in an `strace -f -qq` log, with the first line that made
// it: "PID name(args) = result", "PID name(args <unfinished ...>" and
// "PID <... name resumed>...". Signal lines ("--- SIGUSR1 ...") are not calls.
std::map<std::string, std::string> calls_in(const std::string& log) {
  static const std::regex call(R"(^\d+\s+(?:<\.\.\. )?([A-Za-z0-9_]+)[( ])");
  std::map<std::string, std::string> calls;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    std::smatch match;
    if (std::regex_search(line, match, call)) calls.emplace(match[1].str(), line);
  }
  return calls;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_daemon_and_its_snapshot_child_make_only_allowed_system_calls,
                     *boost::unit_test::precondition(strace_can_trace_the_daemon)) {
  auto lines = unit_values("SystemCallFilter");
  BOOST_TEST_REQUIRE(!lines.empty());
  SyscallFilter filter(syscall_groups(), lines);

  TempDir dir;
  Sim sim(dir, "sim", {"--count", "200", "--rate", "2000"});
  NotifySink notify(dir / "notify");
  int http_port = free_port();
  // As systemd starts it (Type=notify, WatchdogSec=30s), minus the journal.
  auto env = daemon_env(sim.url(), "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  env["NOTIFY_SOCKET"] = notify.path().string();
  env["WATCHDOG_USEC"] = "30000000";
  // The unit's own Environment= lines (glibc's tunables change which calls
  // the allocator makes: madvise for huge pages).
  for (const auto& line : unit_values("Environment")) {
    auto equals = line.find('=');
    BOOST_TEST_REQUIRE(equals != std::string::npos, line);
    env[line.substr(0, equals)] = line.substr(equals + 1);
  }
  fs::path trace = dir / "strace.log";
  Process traced({{kStrace, "-f", "-qq", "-e", "trace=all", "-o", trace.string(),
                   (bin_dir() / "deltatapd").string()},
                  env,
                  dir.path()});
  std::set<pid_t> children;
  BOOST_TEST_REQUIRE(wait_until([&] { return !(children = children_of(traced.pid())).empty(); }),
                     traced.stderr_text());
  pid_t daemon = *children.begin();

  // The stream: every delta the simulator sends is stored.
  BOOST_TEST_REQUIRE(sim.wait_sent(std::chrono::seconds(30)), sim.process().stderr_text());
  auto stored = [&] { return metric_sample(http_port, "deltatap_store_deltas").value_or(-1); };
  BOOST_TEST_REQUIRE(wait_until([&] { return stored() == *sim.sent(); }, std::chrono::seconds(30)),
                     traced.stderr_text());
  BOOST_TEST(notify.received() > 0);

  // A snapshot, written by the forked child.
  auto snapshots = [&] {
    return metric_sample(http_port, "deltatap_snapshot_duration_seconds_count").value_or(-1);
  };
  auto failures = [&] {
    return metric_sample(http_port, "deltatap_snapshot_failures_total").value_or(-1);
  };
  double before = snapshots();
  BOOST_TEST_REQUIRE(before >= 0);
  // Once (in a clean clone's run beside the PostgreSQL test) the daemon was
  // gone here: say how it ended, so that the next time tells why.
  int signalled = ::kill(daemon, SIGUSR1);
  int kill_error = errno;  // before anything below can change it
  if (signalled != 0) {
    std::string strace_children;
    for (pid_t child : children_of(traced.pid())) strace_children += " " + std::to_string(child);
    BOOST_TEST_REQUIRE(signalled == 0,
                       "the daemon (pid " << daemon << ") cannot be signalled: "
                                          << std::strerror(kill_error) << "; strace's children now:"
                                          << strace_children << "; strace running: "
                                          << (::kill(traced.pid(), 0) == 0) << "; its stderr:\n"
                                          << traced.stderr_text() << "\nthe trace's end:\n"
                                          << tail_of(read_file(trace), 3000));
  }
  BOOST_TEST_REQUIRE(
      wait_until([&] { return snapshots() > before || failures() > 0; }, std::chrono::seconds(30)));
  BOOST_TEST(failures() == 0.0, traced.stderr_text());

  // The HTTP API, each kind of answer.
  for (std::string target : {"/healthz", "/readyz", "/api/stats", "/api/sessions",
                             "/api/deltas?limit=10", "/api/export?format=csv",
                             "/api/export?format=ndjson"}) {
    BOOST_TEST(http_request(http_port, "GET", target).status == 200, target);
  }

  // systemctl stop: SIGTERM, the final snapshot in-process, exit 0 (strace
  // exits with the status of the process it started).
  BOOST_TEST_REQUIRE(::kill(daemon, SIGTERM) == 0);
  auto exit_code = traced.wait(std::chrono::seconds(30));
  BOOST_TEST_REQUIRE(exit_code.has_value(), "deltatapd did not stop");
  BOOST_TEST(*exit_code == 0, traced.stderr_text());

  auto calls = calls_in(read_file(trace));
  BOOST_TEST_MESSAGE(calls.size() << " distinct system calls");
  // Only the snapshot child lowers its priority: it ran, and was traced.
  BOOST_TEST(calls.count("setpriority") == 1u, "no snapshot child in the trace");
  std::string offenders;
  for (const auto& [name, first_line] : calls) {
    if (!filter.allows(name)) offenders += "\n  " + first_line;
  }
  BOOST_TEST(offenders.empty(), "system calls the unit's SystemCallFilter= refuses:" << offenders);
}
