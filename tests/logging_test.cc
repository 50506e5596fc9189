// Logging as a reader of stderr or of the journal sees it. Each case forks: the
// child points stderr at a file (and sets JOURNAL_STREAM, INVOCATION_ID as asked),
// installs the sink and logs; the parent parses what came out.
#define BOOST_TEST_MODULE logging
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/logging.h"
#include "skip.h"
#include "test_support.h"
#include "base/timestamp.h"

namespace {

using namespace deltatap;
using namespace deltatap::testing;

// How the child's environment should look when it starts logging.
struct ChildSetup {
  enum class Stream { unset, matches_stderr, other_file };
  Stream journal_stream = Stream::unset;
  bool invocation_id = false;
};

struct ChildResult {
  int exit_code = -1;
  std::string err;                 // what the child wrote to stderr
  std::vector<std::string> lines;  // the same, split into lines
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

ChildResult run_child(const ChildSetup& setup, const std::function<void()>& body) {
  TempDir dir;
  fs::path err_path = dir / "stderr";
  fs::path other_path = dir / "other";
  write_file(other_path, "");
  // Whatever is buffered would otherwise be written twice, once by each process.
  std::cout.flush();
  std::fflush(stdout);
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 0;
    try {
      int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) _exit(120);
      ::close(fd);
      ::unsetenv("JOURNAL_STREAM");
      ::unsetenv("INVOCATION_ID");
      if (setup.journal_stream != ChildSetup::Stream::unset) {
        struct stat st {};
        if (setup.journal_stream == ChildSetup::Stream::matches_stderr) {
          ::fstat(STDERR_FILENO, &st);
        } else {
          ::stat(other_path.c_str(), &st);
        }
        std::string value = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
        ::setenv("JOURNAL_STREAM", value.c_str(), 1);
      }
      if (setup.invocation_id) ::setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
      body();
      flush_logging();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child failed: %s\n", e.what());
      code = 121;
    }
    std::fflush(stderr);
    _exit(code);
  }
  int status = 0;
  bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 30s);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  BOOST_REQUIRE_MESSAGE(exited, "logging child did not finish");
  ChildResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.err = read_file(err_path);
  result.lines = split_lines(result.err);
  return result;
}

LogOptions options(std::optional<LogFormat> format, LogLevel level = LogLevel::debug) {
  LogOptions o;
  o.format = format;
  o.level = level;
  return o;
}

// One event at each level, with fields that need quoting.
void log_one_of_each() {
  log_debug("Delta stored", {{"SESSION_ID", "sess_1"}, {"DELTA_TYPE", "updated"}});
  log_info("Connected", {{"URL", "ws://127.0.0.1:3001/ws"}});
  log_warning("Frame rejected", {{"REASON", "not json: \"x\" = y"}});
  log_error("Snapshot failed", {{"ERROR", "No space left on device"}});
}

int count_containing(const std::vector<std::string>& lines, const std::string& needle) {
  int n = 0;
  for (const auto& line : lines) n += line.find(needle) != std::string::npos;
  return n;
}

// Fields of a native journal datagram (sd_journal_sendv's wire format); a field
// sent twice (say, CODE_FILE from libsystemd and from us) is an error.
std::map<std::string, std::string> parse_journal_datagram(const std::string& data) {
  std::map<std::string, std::string> fields;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t end = data.find('\n', pos);
    if (end == std::string::npos) break;
    std::string head = data.substr(pos, end - pos);
    auto eq = head.find('=');
    if (eq != std::string::npos) {
      if (!fields.emplace(head.substr(0, eq), head.substr(eq + 1)).second) {
        throw std::runtime_error("field sent twice: " + head.substr(0, eq));
      }
      pos = end + 1;
    } else {
      // NAME\n, 64-bit little-endian length, value, \n: for values with newlines.
      std::uint64_t length = 0;
      for (int i = 7; i >= 0; --i) {
        length = (length << 8) | static_cast<unsigned char>(data[end + 1 + i]);
      }
      if (!fields.emplace(head, data.substr(end + 9, length)).second) {
        throw std::runtime_error("field sent twice: " + head);
      }
      pos = end + 9 + length + 1;
    }
  }
  return fields;
}

const char* const kJournalSocket = "/run/systemd/journal/socket";

bool write_all(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return written;
}

// Gives the calling process (a forked child: single-threaded, as unshare wants
// it) a mount namespace of its own with an empty tmpfs on /run, where
// journald's socket lives. Root needs only the mount namespace; anyone else
// gets a user namespace first (mapping just themselves, so files keep their
// owners), where the kernel allows one. Returns "" or what was refused.
std::string private_run() {
  const auto uid = ::geteuid();
  const auto gid = ::getegid();
  if (uid != 0) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
      return std::string("unshare(CLONE_NEWUSER | CLONE_NEWNS): ") + std::strerror(errno);
    }
    if (!write_all("/proc/self/setgroups", "deny") ||
        !write_all("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1") ||
        !write_all("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1")) {
      return std::string("mapping the user into its namespace: ") + std::strerror(errno);
    }
  } else if (::unshare(CLONE_NEWNS) != 0) {
    return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("making / private: ") + std::strerror(errno);
  }
  if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
    return std::string("mounting a tmpfs on /run: ") + std::strerror(errno);
  }
  return {};
}

// For a precondition: "" when a forked child can have a private /run here,
// else why not.
std::string private_run_refused() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  std::cout.flush();
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    std::string refused = private_run();
    if (!refused.empty() && ::write(fds[1], refused.data(), refused.size()) < 0) ::_exit(2);
    ::_exit(refused.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string refused;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) {
    refused.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return "no private /run here (a mount namespace with a tmpfs on /run): " +
         (refused.empty() ? "child status " + std::to_string(status) : refused);
}

}  // namespace

BOOST_AUTO_TEST_CASE(text_lines_carry_time_level_message_and_fields) {
  auto result = run_child({}, [] {
    init_logging(options(LogFormat::text));
    log_one_of_each();
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 4u, result.err);
  std::regex shape(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warning|error): .+$)");
  for (const auto& line : result.lines) BOOST_TEST(std::regex_match(line, shape), line);
  BOOST_TEST(result.lines[0].find(" debug: Delta stored sessionId=sess_1 deltaType=updated") !=
             std::string::npos, result.lines[0]);
  BOOST_TEST(result.lines[1].find(" info: Connected url=ws://127.0.0.1:3001/ws") !=
             std::string::npos, result.lines[1]);
  BOOST_TEST(result.lines[2].find(R"( warning: Frame rejected reason="not json: \"x\" = y")") !=
             std::string::npos, result.lines[2]);
  BOOST_TEST(result.lines[3].find(" error: Snapshot failed error=\"No space left on device\"") !=
             std::string::npos, result.lines[3]);
}

BOOST_AUTO_TEST_CASE(priority_prefix_when_journal_stream_is_stderr) {
  auto result = run_child({ChildSetup::Stream::matches_stderr, false}, [] {
    init_logging(options(LogFormat::text));
    log_one_of_each();
    log_info("Two\nlines");
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 5u, result.err);
  // The journal adds its own time stamps: the line is "<N>" and the event.
  BOOST_TEST(result.lines[0] == "<7>Delta stored sessionId=sess_1 deltaType=updated");
  BOOST_TEST(result.lines[1] == "<6>Connected url=ws://127.0.0.1:3001/ws");
  BOOST_TEST(result.lines[2].rfind("<4>Frame rejected ", 0) == 0, result.lines[2]);
  BOOST_TEST(result.lines[3].rfind("<3>Snapshot failed ", 0) == 0, result.lines[3]);
  // A newline in a message must not make a second, unprefixed line.
  BOOST_TEST(result.lines[4] == "<6>Two lines");
}

BOOST_AUTO_TEST_CASE(no_prefix_when_journal_stream_names_another_file) {
  auto result = run_child({ChildSetup::Stream::other_file, false}, [] {
    init_logging(options(LogFormat::text));
    log_info("Connected");
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 1u, result.err);
  BOOST_TEST(result.lines[0].front() != '<');
  BOOST_TEST(result.lines[0].find(" info: Connected") != std::string::npos, result.lines[0]);
}

BOOST_AUTO_TEST_CASE(json_lines_parse_with_level_time_msg_and_fields) {
  auto result = run_child({}, [] {
    init_logging(options(LogFormat::json));
    log_one_of_each();
    log_info("Quoted \"name\"\tand\nnewline, caf\xc3\xa9", {{"SESSION_ID", "sess_\xe2\x9c\x93"}});
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 5u, result.err);
  const char* levels[] = {"debug", "info", "warning", "error", "info"};
  for (std::size_t i = 0; i < result.lines.size(); ++i) {
    rapidjson::Document doc;
    doc.Parse(result.lines[i].c_str());
    BOOST_TEST_REQUIRE(!doc.HasParseError(), result.lines[i]);
    BOOST_TEST_REQUIRE(doc.IsObject());
    BOOST_TEST_REQUIRE(doc.HasMember("level"));
    BOOST_TEST_REQUIRE(doc.HasMember("time"));
    BOOST_TEST_REQUIRE(doc.HasMember("msg"));
    BOOST_TEST(std::string(doc["level"].GetString()) == levels[i]);
    BOOST_TEST(parse_timestamp(doc["time"].GetString()).ok(), doc["time"].GetString());
  }
  rapidjson::Document first;
  first.Parse(result.lines[0].c_str());
  BOOST_TEST(std::string(first["msg"].GetString()) == "Delta stored");
  BOOST_TEST(std::string(first["sessionId"].GetString()) == "sess_1");
  BOOST_TEST(std::string(first["deltaType"].GetString()) == "updated");
  rapidjson::Document last;
  last.Parse(result.lines[4].c_str());
  BOOST_TEST(std::string(last["msg"].GetString()) == "Quoted \"name\"\tand\nnewline, caf\xc3\xa9");
  BOOST_TEST(std::string(last["sessionId"].GetString()) == "sess_\xe2\x9c\x93");
}

BOOST_AUTO_TEST_CASE(level_filter_drops_lower_levels) {
  auto result = run_child({}, [] {
    init_logging(options(LogFormat::text, LogLevel::warning));
    log_one_of_each();
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 2u, result.err);
  BOOST_TEST(count_containing(result.lines, "Frame rejected") == 1);
  BOOST_TEST(count_containing(result.lines, "Snapshot failed") == 1);
}

BOOST_AUTO_TEST_CASE(default_format_is_text_outside_systemd) {
  auto result = run_child({}, [] {
    init_logging(options(std::nullopt));
    log_info("Connected");
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 1u, result.err);
  BOOST_TEST(result.lines[0].find(" info: Connected") != std::string::npos, result.lines[0]);
}

BOOST_AUTO_TEST_CASE(journal_format_falls_back_to_prefixed_text_without_journal_socket,
                     *needs([] {
                       return fs::exists(kJournalSocket) ? private_run_refused() : std::string();
                     })) {
  // Under systemd (JOURNAL_STREAM set) the default is journal; with journald
  // unreachable every line must still reach stderr, with its priority. Where
  // journald runs, the child hides its socket behind a private, empty /run.
  auto result = run_child({ChildSetup::Stream::matches_stderr, true}, [] {
    if (fs::exists(kJournalSocket)) {
      if (auto refused = private_run(); !refused.empty()) throw std::runtime_error(refused);
    }
    init_logging(options(std::nullopt));
    log_info("Connected", {{"SESSION_ID", "sess_1"}});
    log_error("Snapshot failed");
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 2u, result.err);
  BOOST_TEST(result.lines[0] == "<6>Connected sessionId=sess_1");
  BOOST_TEST(result.lines[1] == "<3>Snapshot failed");
}

BOOST_AUTO_TEST_CASE(journal_format_sends_native_fields, *needs(private_run_refused)) {
  // journald's socket path is fixed, so the child gets a private /run (its own
  // mount namespace) and binds the socket there itself.
  TempDir dir;
  fs::path received = dir / "datagrams";
  auto result = run_child({ChildSetup::Stream::unset, true}, [&] {
    if (auto refused = private_run(); !refused.empty()) throw std::runtime_error(refused);
    fs::create_directories("/run/systemd/journal");
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, kJournalSocket);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(std::string("cannot bind ") + kJournalSocket + ": " +
                               std::strerror(errno));
    }
    init_logging(options(std::nullopt));  // INVOCATION_ID set: journal by default
    log_info("Delta stored", {{"SESSION_ID", "sess_x"}, {"DELTA_TYPE", "created"},
                              message_id(message_ids::kStreamConnected)});
    log_warning("Frame rejected\nsecond line", {{"REASON", "not json"}});
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string all;
    for (int i = 0; i < 2; ++i) {
      char buf[8192];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) throw std::runtime_error("no journal datagram");
      std::string datagram(buf, static_cast<std::size_t>(n));
      all += std::to_string(datagram.size()) + "\n" + datagram;
    }
    write_file(received, all);
  });
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  BOOST_TEST(result.err.empty(), result.err);  // nothing fell back to stderr
  std::string all = read_file(received);
  std::vector<std::map<std::string, std::string>> entries;
  for (std::size_t pos = 0; pos < all.size();) {
    std::size_t nl = all.find('\n', pos);
    std::size_t size = std::stoul(all.substr(pos, nl - pos));
    entries.push_back(parse_journal_datagram(all.substr(nl + 1, size)));
    pos = nl + 1 + size;
  }
  BOOST_TEST_REQUIRE(entries.size() == 2u);
  BOOST_TEST(entries[0]["MESSAGE"] == "Delta stored");
  BOOST_TEST(entries[0]["PRIORITY"] == "6");
  BOOST_TEST(entries[0]["SESSION_ID"] == "sess_x");
  BOOST_TEST(entries[0]["DELTA_TYPE"] == "created");
  BOOST_TEST(entries[0]["SYSLOG_IDENTIFIER"] == "deltatapd");
  // journalctl MESSAGE_ID=... finds the event: a native field, 32 hex digits.
  BOOST_TEST(entries[0]["MESSAGE_ID"] == std::string(message_ids::kStreamConnected));
  BOOST_TEST(entries[1].count("MESSAGE_ID") == 0u);
  BOOST_TEST(entries[0]["CODE_FILE"].find("logging_test.cc") != std::string::npos,
             entries[0]["CODE_FILE"]);
  BOOST_TEST(std::atoi(entries[0]["CODE_LINE"].c_str()) > 0);
  BOOST_TEST(!entries[0]["CODE_FUNC"].empty());
  BOOST_TEST(entries[1]["MESSAGE"] == "Frame rejected\nsecond line");
  BOOST_TEST(entries[1]["PRIORITY"] == "4");
  BOOST_TEST(entries[1]["REASON"] == "not json");
}

BOOST_AUTO_TEST_CASE(repeated_errors_are_suppressed_and_counted) {
  auto result = run_child({}, [] {
    init_logging(options(LogFormat::text), LogRateLimit{std::chrono::seconds(30), 3});
    for (int attempt = 1; attempt <= 20; ++attempt) {
      log_error("Backend unreachable", {{"ATTEMPT", std::to_string(attempt)}});
      log_info("Reconnecting");  // info is never limited
    }
    log_warning("Frame rejected");  // another message has its own budget
    // flush_logging() at the child's end reports the 17 dropped lines.
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST(count_containing(result.lines, "error: Backend unreachable attempt=") == 3, result.err);
  BOOST_TEST(count_containing(result.lines, "attempt=3") == 1);
  BOOST_TEST(count_containing(result.lines, "attempt=4") == 0);
  BOOST_TEST(count_containing(result.lines, "info: Reconnecting") == 20);
  BOOST_TEST(count_containing(result.lines, "warning: Frame rejected") == 1);
  BOOST_TEST_REQUIRE(!result.lines.empty());
  BOOST_TEST(result.lines.back().find(
                 "error: Suppressed repeats of \"Backend unreachable\": 17 suppressedCount=17") !=
                 std::string::npos,
             result.lines.back());
}

BOOST_AUTO_TEST_CASE(suppressed_count_is_reported_when_the_window_ends) {
  auto result = run_child({}, [] {
    auto window = std::chrono::milliseconds(300);
    init_logging(options(LogFormat::json), LogRateLimit{window, 2});
    for (int i = 0; i < 6; ++i) log_error("Backend unreachable");
    // The window has to pass on the clock: that is the behaviour under test.
    std::this_thread::sleep_for(window + std::chrono::milliseconds(50));
    log_info("Still running");
    for (int i = 0; i < 3; ++i) log_error("Backend unreachable");
    std::this_thread::sleep_for(window + std::chrono::milliseconds(50));
    log_error("Backend unreachable");
  });
  BOOST_TEST(result.exit_code == 0);
  std::vector<std::string> messages;
  for (const auto& line : result.lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    BOOST_TEST_REQUIRE(!doc.HasParseError(), line);
    std::string msg = doc["msg"].GetString();
    if (doc.HasMember("suppressedCount")) msg += " #" + std::string(doc["suppressedCount"].GetString());
    messages.push_back(msg);
  }
  std::vector<std::string> expected = {
      "Backend unreachable",
      "Backend unreachable",
      "Suppressed repeats of \"Backend unreachable\": 4 #4",  // before the next line, not lost
      "Still running",
      "Backend unreachable",
      "Backend unreachable",
      "Suppressed repeats of \"Backend unreachable\": 1 #1",
      "Backend unreachable",
  };
  BOOST_TEST(messages == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reinstalling_the_sink_reports_what_was_suppressed) {
  auto result = run_child({}, [] {
    init_logging(options(LogFormat::text), LogRateLimit{std::chrono::seconds(30), 1});
    for (int i = 0; i < 4; ++i) log_warning("Frame rejected");
    init_logging(options(LogFormat::text, LogLevel::info), LogRateLimit{std::chrono::seconds(30), 1});
    log_warning("Frame rejected");
  });
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST_REQUIRE(result.lines.size() == 3u, result.err);
  BOOST_TEST(result.lines[0].find("warning: Frame rejected") != std::string::npos);
  BOOST_TEST(result.lines[1].find("warning: Suppressed repeats of \"Frame rejected\": 3") !=
             std::string::npos, result.lines[1]);
  BOOST_TEST(result.lines[2].find("warning: Frame rejected") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(message_ids_are_fields_and_one_per_event) {
  // Each id is systemd's form (32 lower-case hex digits) and no two events share one.
  const std::vector<std::string_view> ids = {
      message_ids::kStreamConnected, message_ids::kStreamDisconnected,
      message_ids::kStreamAttemptFailed, message_ids::kSnapshotFailed, message_ids::kGap,
      message_ids::kReconciled};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    BOOST_TEST(std::regex_match(std::string(ids[i]), std::regex("^[0-9a-f]{32}$")), ids[i]);
    for (std::size_t k = 0; k < i; ++k) BOOST_TEST(ids[i] != ids[k]);
  }

  auto text = run_child({}, [] {
    init_logging(options(LogFormat::text));
    log_info("Connected to the stream", {message_id(message_ids::kStreamConnected)});
    // A field with a control character is quoted, so it cannot act on a terminal.
    log_info("Closed", {{"CLOSE_REASON", "bye\x1b[2J"}});
  });
  BOOST_TEST(text.exit_code == 0);
  BOOST_TEST_REQUIRE(text.lines.size() == 2u, text.err);
  BOOST_TEST(text.lines[0].find("info: Connected to the stream messageId=" +
                                std::string(message_ids::kStreamConnected)) != std::string::npos,
             text.lines[0]);
  BOOST_TEST(text.lines[1].find("closeReason=\"bye\\u001b[2J\"") != std::string::npos, text.lines[1]);

  // The reason is in the message, so messages differ line by line; the rate
  // limit counts them as one kind by their MESSAGE_ID.
  auto json = run_child({}, [] {
    init_logging(options(LogFormat::json), LogRateLimit{std::chrono::seconds(30), 2});
    for (int attempt = 1; attempt <= 5; ++attempt) {
      log_warning("Stream connection attempt failed: connect: Connection refused; retrying in " +
                      std::to_string(attempt * 100) + " ms",
                  {message_id(message_ids::kStreamAttemptFailed), {"ATTEMPT", std::to_string(attempt)}});
    }
  });
  BOOST_TEST(json.exit_code == 0);
  std::vector<std::string> attempts;
  std::string summary;
  for (const auto& line : json.lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    BOOST_TEST_REQUIRE(!doc.HasParseError(), line);
    if (doc.HasMember("messageId")) {
      BOOST_TEST(doc["messageId"].GetString() == std::string(message_ids::kStreamAttemptFailed));
      attempts.push_back(doc["attempt"].GetString());
    } else if (doc.HasMember("suppressedCount")) {
      summary = doc["suppressedCount"].GetString();
    }
  }
  BOOST_TEST(attempts == (std::vector<std::string>{"1", "2"}), boost::test_tools::per_element());
  BOOST_TEST(summary == "3", json.err);
}
