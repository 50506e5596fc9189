// base/: the helpers every room shares (durations, listen addresses, files,
// secrets, quoting), each checked against real files in a temporary directory
// and against the exact texts its callers show.
#define BOOST_TEST_MODULE base
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/duration.h"
#include "base/files.h"
#include "base/json_text.h"
#include "base/secrets.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;
using std::chrono::milliseconds;

namespace {

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

void write_with_mode(const fs::path& path, const std::string& text, mode_t mode) {
  write_file(path, text);
  BOOST_REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// Sets the process umask for one test and puts the old one back.
class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }

 private:
  mode_t old_;
};

}  // namespace

// ---- json_quoted ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(json_quoted_keeps_a_message_on_one_line_and_valid) {
  BOOST_TEST(json_quoted("10x") == "\"10x\"");
  BOOST_TEST(json_quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
  BOOST_TEST(json_quoted("line\nbreak\x1b") == "\"line\\nbreak\\u001b\"");
  BOOST_TEST(json_quoted("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
  BOOST_TEST(json_quoted("bad \xFF byte") == "\"bad \\ufffd byte\"");
}

// ---- durations -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(durations_in_every_unit) {
  struct Case {
    const char* text;
    std::int64_t ms;
  };
  const std::vector<Case> table = {
      {"500ms", 500},        {"10s", 10'000},         {"0.5s", 500},
      {"1.25s", 1250},       {"5m", 300'000},         {"1h", 3'600'000},
      {"1d", 86'400'000},    {"2w", 1'209'600'000},   {"0.5w", 302'400'000},
      {"15", 15'000},        {"1.5", 1500},           {" 10 s ", 10'000},
      {"10S", 10'000},       {"250MS", 250},          {"1W", 604'800'000},
      {"3650d", 315'360'000'000},
  };
  for (const auto& c : table) {
    BOOST_TEST_CONTEXT(c.text) {
      auto parsed = parse_duration(c.text);
      BOOST_TEST_REQUIRE(parsed.ok(), parsed.error());
      BOOST_TEST(parsed->count() == c.ms);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_durations_are_refused_with_the_units_listed) {
  auto unknown = parse_duration("10x");
  BOOST_TEST_REQUIRE(!unknown.ok());
  BOOST_TEST(unknown.error() ==
             "\"10x\" is not a duration (expected a positive number with a unit ms, s, m, h or d, "
             "or w for weeks, e.g. 500ms, 10s, 0.5s, 5m, 30d; a bare number means seconds)");
  BOOST_TEST(contains(unknown.error(), std::string(kDurationUnits)));

  for (auto text : {"", "soon", "-5s", "s", "1.s", ".5s", "1..5s", "1.2.3s", "10 x", "5 m s",
                    "1e3s", "0x10s", "1234567890123456s"}) {
    BOOST_TEST_CONTEXT(text) {
      auto parsed = parse_duration(text);
      BOOST_TEST_REQUIRE(!parsed.ok());
      BOOST_TEST(contains(parsed.error(), json_quoted(text) + " is not a duration"), parsed.error());
    }
  }
  auto zero = parse_duration("0s");
  BOOST_TEST_REQUIRE(!zero.ok());
  BOOST_TEST(contains(zero.error(), "\"0s\" is not a positive duration"), zero.error());
  auto fine = parse_duration("0.0001s");
  BOOST_TEST_REQUIRE(!fine.ok());
  BOOST_TEST(contains(fine.error(), "\"0.0001s\" is not a whole number of milliseconds"),
             fine.error());
  BOOST_TEST(contains(fine.error(), "no finer than 1ms"), fine.error());
  // A line break in the value stays escaped in the message.
  auto multiline = parse_duration("1\n2");
  BOOST_TEST_REQUIRE(!multiline.ok());
  BOOST_TEST(multiline.error().find('\n') == std::string::npos, multiline.error());
}

BOOST_AUTO_TEST_CASE(duration_limits_and_required_units) {
  auto long_ago = parse_duration("3651d");
  BOOST_TEST_REQUIRE(!long_ago.ok());
  BOOST_TEST(long_ago.error() == "\"3651d\" is not a duration (expected at most 3650d)");
  auto overflow = parse_duration("999999999999999w");
  BOOST_TEST_REQUIRE(!overflow.ok());
  BOOST_TEST(contains(overflow.error(), "at most 3650d"), overflow.error());

  DurationRules century{.max = std::chrono::days(36600), .require_unit = true};
  BOOST_TEST(parse_duration("3651d", century).value_or(milliseconds{0}).count() ==
             3651LL * 86'400'000);
  BOOST_TEST(parse_duration("2w", century).ok());
  BOOST_TEST(!parse_duration("36601d", century).ok());
  auto bare = parse_duration("30", century);
  BOOST_TEST_REQUIRE(!bare.ok());
  BOOST_TEST(contains(bare.error(), "\"30\" is not a duration with a unit"), bare.error());
  BOOST_TEST(contains(bare.error(), std::string(kDurationUnits)), bare.error());
}

BOOST_AUTO_TEST_CASE(formatted_durations_read_back) {
  BOOST_TEST(format_duration(milliseconds{500}) == "500ms");
  BOOST_TEST(format_duration(milliseconds{1500}) == "1500ms");
  BOOST_TEST(format_duration(milliseconds{90'000}) == "90s");
  BOOST_TEST(format_duration(milliseconds{60'000}) == "1m");
  BOOST_TEST(format_duration(milliseconds{3'600'000}) == "1h");
  BOOST_TEST(format_duration(milliseconds{14 * 86'400'000LL}) == "14d");
  BOOST_TEST(format_duration(milliseconds{0}) == "0ms");
  for (std::int64_t ms : {1LL, 999LL, 1000LL, 61'000LL, 5'400'000LL, 86'400'000LL, 604'800'000LL}) {
    auto back = parse_duration(format_duration(milliseconds{ms}));
    BOOST_TEST_REQUIRE(back.ok(), back.error());
    BOOST_TEST(back->count() == ms);
  }
}

// ---- listen addresses ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(listen_addresses_v4_and_v6) {
  auto v4 = parse_listen_address("127.0.0.1:9477");
  BOOST_TEST_REQUIRE(v4.ok(), v4.error());
  BOOST_TEST(v4->host == "127.0.0.1");
  BOOST_TEST(v4->port == 9477);
  BOOST_TEST(!v4->ipv6);

  auto v6 = parse_listen_address("[::1]:0");
  BOOST_TEST_REQUIRE(v6.ok(), v6.error());
  BOOST_TEST(v6->host == "::1");
  BOOST_TEST(v6->port == 0);  // the caller decides whether "any free port" will do
  BOOST_TEST(v6->ipv6);

  auto any = parse_listen_address("0.0.0.0:65535");
  BOOST_TEST_REQUIRE(any.ok(), any.error());
  BOOST_TEST(any->port == 65535);
  BOOST_TEST(parse_listen_address("[2001:db8::17]:080").value_or({}).port == 80);
}

BOOST_AUTO_TEST_CASE(bad_listen_addresses_say_what_is_expected) {
  auto name = parse_listen_address("localhost");
  BOOST_TEST_REQUIRE(!name.ok());
  BOOST_TEST(name.error() == "\"localhost\" is not a listen address (expected IP:PORT or "
                             "[IPv6]:PORT, e.g. 127.0.0.1:9477 or [::1]:9477)");
  for (auto text : {"localhost:80", ":80", "1.2.3:80", "[127.0.0.1]:80", "[fe80::1%eth0]:80",
                    "256.1.1.1:80", "[::1:80", ""}) {
    BOOST_TEST_CONTEXT(text) {
      auto parsed = parse_listen_address(text);
      BOOST_TEST_REQUIRE(!parsed.ok());
      BOOST_TEST(contains(parsed.error(), json_quoted(text) + " is not a listen address"),
                 parsed.error());
    }
  }
  auto unbracketed = parse_listen_address("::1:9477");
  BOOST_TEST_REQUIRE(!unbracketed.ok());
  BOOST_TEST(contains(unbracketed.error(), "[IPv6]:PORT"), unbracketed.error());
  BOOST_TEST(contains(unbracketed.error(), "brackets"), unbracketed.error());
  for (auto text : {"127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999999", "127.0.0.1:-1",
                    "127.0.0.1:8o", "[::1]: 80"}) {
    BOOST_TEST_CONTEXT(text) {
      auto parsed = parse_listen_address(text);
      BOOST_TEST_REQUIRE(!parsed.ok());
      BOOST_TEST(parsed.error() == json_quoted(text) + " is not a listen address with a valid "
                                                       "port (expected a port number up to 65535)");
    }
  }
}

// ---- errno text ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(errno_text_names_the_step_and_the_file) {
  BOOST_TEST(errno_text(ENOENT) == "No such file or directory");
  BOOST_TEST(errno_text("cannot open", "/x/y", EACCES) == "cannot open /x/y: Permission denied");
  errno = ENOTDIR;
  std::string from_errno = errno_text("cannot read", "f");  // errno as it is at the call
  BOOST_TEST(from_errno == "cannot read f: Not a directory");
}

// ---- private directories -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(private_directories_are_made_0700_and_existing_ones_left_alone) {
  Umask mask(022);
  TempDir dir;
  auto deep = dir / "a/b/c";
  BOOST_REQUIRE(make_private_directories(deep.string()).ok());
  BOOST_TEST(fs::is_directory(deep));
  BOOST_TEST(mode_of(dir / "a") == 0700u);
  BOOST_TEST(mode_of(dir / "a/b") == 0700u);
  BOOST_TEST(mode_of(deep) == 0700u);

  fs::create_directory(dir / "shared");
  BOOST_REQUIRE(::chmod((dir / "shared").c_str(), 0755) == 0);
  BOOST_REQUIRE(make_private_directories((dir / "shared/own").string()).ok());
  BOOST_TEST(mode_of(dir / "shared") == 0755u);  // not ours to tighten
  BOOST_TEST(mode_of(dir / "shared/own") == 0700u);
  BOOST_TEST(make_private_directories((dir / "shared/own").string()).ok());  // again: no error

  BOOST_REQUIRE(ensure_parent_directory((dir / "data/sessions.sqlite").string()).ok());
  BOOST_TEST(mode_of(dir / "data") == 0700u);
  BOOST_TEST(!fs::exists(dir / "data/sessions.sqlite"));
}

BOOST_AUTO_TEST_CASE(a_file_in_the_way_of_a_directory_is_an_error) {
  TempDir dir;
  write_file(dir / "blocker", "x");
  auto status = make_private_directories((dir / "blocker/inside").string());
  BOOST_TEST_REQUIRE(!status.ok());
  BOOST_TEST(status.error() ==
             "cannot create directory " + (dir / "blocker").string() + ": Not a directory");
}

// ---- atomic writes -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(atomic_write_replaces_the_file_whole_with_its_mode) {
  Umask mask(077);  // the mode asked for is the mode given, whatever the umask
  TempDir dir;
  auto path = dir / "export.json";
  BOOST_REQUIRE(write_file_atomically(path.string(), "first").ok());
  BOOST_TEST(read_file(path) == "first");
  BOOST_TEST(mode_of(path) == 0600u);

  BOOST_REQUIRE(write_file_atomically(path.string(), std::string(100'000, 'x'), 0644).ok());
  BOOST_TEST(read_file(path) == std::string(100'000, 'x'));
  BOOST_TEST(mode_of(path) == 0644u);
  BOOST_TEST(names_in(dir.path()) == std::vector<std::string>{"export.json"});

  BOOST_REQUIRE(write_file_atomically(path.string(), "").ok());
  BOOST_TEST(fs::file_size(path) == 0u);
  BOOST_TEST(mode_of(path) == 0600u);
}

BOOST_AUTO_TEST_CASE(atomic_write_fill_gets_the_temporary_by_path_and_descriptor) {
  TempDir dir;
  auto path = dir / "db.sqlite";
  std::string seen_temp;
  auto status = write_file_atomically(path.string(), [&](const std::string& temp, int fd) -> Status {
    seen_temp = temp;
    // The temporary sits beside the target, named after it.
    BOOST_TEST(temp.rfind(path.string() + ".tmp-", 0) == 0u, temp);
    BOOST_TEST(fs::exists(temp));
    BOOST_TEST(!fs::exists(path));
    if (::write(fd, "by fd, ", 7) != 7) return Error{"write failed"};
    std::FILE* by_name = std::fopen(temp.c_str(), "a");
    if (!by_name) return Error{"fopen failed"};
    std::fputs("by name", by_name);
    std::fclose(by_name);
    return ok_status();
  });
  BOOST_REQUIRE_MESSAGE(status.ok(), status.error());
  BOOST_TEST(read_file(path) == "by fd, by name");
  BOOST_TEST(!fs::exists(seen_temp));
}

BOOST_AUTO_TEST_CASE(failed_atomic_write_keeps_the_old_file_and_no_temporary) {
  TempDir dir;
  auto path = dir / "keep.txt";
  BOOST_REQUIRE(write_file_atomically(path.string(), "old").ok());
  auto status = write_file_atomically(path.string(), [](const std::string& temp, int fd) -> Status {
    if (::write(fd, "half", 4) != 4) return Error{"write failed"};
    return Error{"disk on fire while writing " + temp};
  });
  BOOST_TEST_REQUIRE(!status.ok());
  BOOST_TEST(status.error().rfind("disk on fire while writing " + path.string() + ".tmp-", 0) == 0u,
             status.error());  // fill's own error, as it was
  BOOST_TEST(read_file(path) == "old");
  BOOST_TEST(names_in(dir.path()) == std::vector<std::string>{"keep.txt"});

  auto missing = write_file_atomically((dir / "no/such/dir/file").string(), "x");
  BOOST_TEST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error() == "cannot create " + (dir / "no/such/dir/file").string() +
                                    ".tmp-XXXXXX: No such file or directory");
}

BOOST_AUTO_TEST_CASE(stale_temporaries_of_one_file_are_removed_and_nothing_else) {
  TempDir dir;
  auto path = dir / "sessions.sqlite";
  write_file(path, "current");
  write_file(dir / "sessions.sqlite.tmp-a1b2c3", "torn");
  write_file(dir / "sessions.sqlite.tmp-zzzzzz.pid", "123");
  write_file(dir / "other.sqlite.tmp-a1b2c3", "not ours");
  write_file(dir / "sessions.sqlite.journal", "kept");
  remove_stale_temporaries(path.string());
  BOOST_TEST(names_in(dir.path()) == (std::vector<std::string>{
                                         "other.sqlite.tmp-a1b2c3", "sessions.sqlite",
                                         "sessions.sqlite.journal"}));
  BOOST_TEST(read_file(path) == "current");
  remove_stale_temporaries((dir / "absent/x").string());  // no directory: nothing to do, no error
}

BOOST_AUTO_TEST_CASE(file_size_is_zero_when_missing) {
  TempDir dir;
  write_file(dir / "five", "12345");
  BOOST_TEST(file_size((dir / "five").string()) == 5u);
  BOOST_TEST(file_size((dir / "none").string()) == 0u);
}

// ---- secrets -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(secret_file_loses_one_trailing_newline) {
  TempDir dir;
  struct Case {
    const char* contents;
    const char* secret;
  };
  const std::vector<Case> table = {
      {"tok\n", "tok"}, {"tok\r\n", "tok"}, {"tok", "tok"},   {"tok\n\n", "tok\n"},
      {"tok\r", "tok\r"}, {"\n", ""},        {"", ""},         {"two\nlines\n", "two\nlines"},
  };
  int i = 0;
  for (const auto& c : table) {
    BOOST_TEST_CONTEXT(i) {
      auto path = dir / ("secret" + std::to_string(i++));
      write_with_mode(path, c.contents, i % 2 ? 0600 : 0400);
      auto secret = read_secret_file(path.string());
      BOOST_TEST_REQUIRE(secret.ok(), secret.error());
      BOOST_TEST(*secret == c.secret);
    }
  }
}

BOOST_AUTO_TEST_CASE(secret_file_readable_by_others_is_refused_unless_allowed) {
  TempDir dir;
  for (mode_t mode : {0644, 0640, 0604, 0444}) {
    BOOST_TEST_CONTEXT(std::oct << mode) {
      auto path = dir / "open";
      write_with_mode(path, "leaky-secret\n", mode);
      auto refused = read_secret_file(path.string());
      BOOST_TEST_REQUIRE(!refused.ok());
      char octal[8];
      std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
      BOOST_TEST(refused.error() == "refusing " + json_quoted(path.string()) +
                                        ": it is readable by group or others (mode " + octal +
                                        "; expected mode 0600 or 0400: chmod 600 " +
                                        path.string() + ")");
      BOOST_TEST(!contains(refused.error(), "leaky"));
      // Where its directory keeps others out (systemd's credentials), the caller may allow it.
      BOOST_TEST(read_secret_file(path.string(), false).value_or("") == "leaky-secret");
      fs::remove(path);
    }
  }
  write_with_mode(dir / "group-writable", "s", 0620);  // writable, not readable: accepted
  BOOST_TEST(read_secret_file((dir / "group-writable").string()).value_or("") == "s");
}

BOOST_AUTO_TEST_CASE(secret_file_errors_name_the_file_never_the_secret) {
  TempDir dir;
  auto missing = read_secret_file((dir / "none").string());
  BOOST_TEST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error() ==
             "cannot read " + json_quoted((dir / "none").string()) + ": No such file or directory");

  fs::create_directory(dir / "directory");
  auto directory = read_secret_file((dir / "directory").string(), false);
  BOOST_TEST_REQUIRE(!directory.ok());
  BOOST_TEST(contains(directory.error(), "not a regular file"), directory.error());

  auto big = dir / "big";
  write_with_mode(big, std::string(kMaxSecretFileBytes, 'k'), 0600);
  BOOST_TEST(read_secret_file(big.string()).value_or("").size() == kMaxSecretFileBytes);
  write_with_mode(big, std::string(kMaxSecretFileBytes + 1, 'k'), 0600);
  auto too_big = read_secret_file(big.string());
  BOOST_TEST_REQUIRE(!too_big.ok());
  BOOST_TEST(too_big.error() == "cannot read " + json_quoted(big.string()) +
                                    ": larger than 64 KiB (expected a file holding just the secret)");
  BOOST_TEST(!contains(too_big.error(), "kkkk"));
}
