// Shell completion as a user gets it. packaging/completions/deltatap.bash is
// sourced into a real bash (bash-completion's own helpers are not needed; where
// /usr/share/bash-completion/bash_completion is installed, the cases run again
// with it sourced first), and the function that `complete -p` names is called the
// way readline calls it: COMP_LINE, COMP_POINT, COMP_WORDS split as readline
// splits them (white space, and runs of '=' and ':' as words of their own),
// COMP_CWORD; COMPREPLY is printed one per line. Session ids come from the real
// deltatap on a snapshot file written by the library, and from a real deltatapd
// serving that file over HTTP with a token; a server that never answers must not
// make completion wait past its timeout. The commands, options and --format
// values offered are compared with the programs' own --help texts, so that the
// completion cannot drift from them unnoticed. The zsh completion (_deltatap) is
// checked with `zsh -n` where zsh is installed, and for the same names.
#define BOOST_TEST_MODULE completion
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "base/logging.h"
#include "base/timestamp.h"
#include "skip.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

struct QuietLogs {
  QuietLogs() { init_logging({LogLevel::warning, LogFormat::text}); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);

using Words = std::set<std::string>;

fs::path bash_script() { return source_dir() / "packaging/completions/deltatap.bash"; }
fs::path zsh_script() { return source_dir() / "packaging/completions/_deltatap"; }
const char* const kBashCompletion = "/usr/share/bash-completion/bash_completion";

std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// COMP_WORDS as readline makes them from a line whose cursor is at its end:
// words end at white space outside quotes, and a run of COMP_WORDBREAKS
// characters other than white space ('=' and ':' here) is a word of its own
// (`--format=js` is "--format" "=" "js"). The last word is the one being
// completed, "" after white space.
std::vector<std::string> readline_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  char quote = 0;
  auto is_break = [](char c) { return c == '=' || c == ':'; };
  auto all_breaks = [&] {
    return !word.empty() && word.find_first_not_of("=:") == std::string::npos;
  };
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      word += c;
      if (c == quote) quote = 0;
      continue;
    }
    if (c == ' ' || c == '\t') {
      if (!word.empty()) words.push_back(word);
      word.clear();
      continue;
    }
    if (is_break(c) != all_breaks() && !word.empty()) {
      words.push_back(word);
      word.clear();
    }
    word += c;
    if (c == '\'' || c == '"') quote = c;
    if (c == '\\' && i + 1 < line.size()) word += line[++i];
  }
  words.push_back(word);
  return words;
}

struct Completion {
  std::vector<std::string> replies;
  std::chrono::milliseconds took{0};
};

// Completes `line` (cursor at its end) in a fresh bash with the completion
// sourced, the built programs first on PATH.
Completion complete(const std::string& line, std::map<std::string, std::string> env = {},
                    bool with_bash_completion = false) {
  auto words = readline_words(line);
  std::string script;
  if (with_bash_completion) script += "source " + shell_quoted(kBashCompletion) + " || exit 4\n";
  script += "source " + shell_quoted(bash_script().string()) + " || exit 5\n";
  // bash looks a completion up by the command's name when typed as a path.
  script += "command=" + shell_quoted(words.front()) + "\n";
  script += "spec=$(complete -p \"${command##*/}\") || exit 3\n";
  script += "fn=${spec#*-F }; fn=${fn%% *}\n";
  script += "COMP_LINE=" + shell_quoted(line) + "\n";
  script += "COMP_POINT=" + std::to_string(line.size()) + "\n";
  script += "COMP_WORDS=(";
  for (const auto& w : words) script += shell_quoted(w) + " ";
  script += ")\nCOMP_CWORD=" + std::to_string(words.size() - 1) + "\n";
  script += "COMP_TYPE=9 COMP_KEY=9\n";
  std::string previous = words.size() > 1 ? words[words.size() - 2] : "";
  // readline calls FUNCTION COMMAND WORD PREVIOUS_WORD
  script += "\"$fn\" " + shell_quoted(words.front()) + " " + shell_quoted(words.back()) + " " +
            shell_quoted(previous) + " || exit 6\n";
  script += "for reply in \"${COMPREPLY[@]}\"; do printf '%s\\n' \"$reply\"; done\n";

  const char* path = std::getenv("PATH");
  env.emplace("PATH", bin_dir().string() + ":" + (path ? path : "/usr/bin:/bin"));
  env.emplace("LC_ALL", "C.UTF-8");
  // Generous for slow (sanitizer) builds: only the silent-server case wants it short.
  env.emplace("DELTATAP_COMPLETION_TIMEOUT", "10");
  auto started = std::chrono::steady_clock::now();
  auto result = run_command({"/bin/bash", "--norc", "--noprofile", "-c", script}, env);
  Completion completion;
  completion.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  BOOST_TEST_REQUIRE(result.exit_code == 0, line << ": exit " << result.exit_code << ": "
                                                  << result.err);
  BOOST_TEST(result.err.empty(), line << ": stderr: " << result.err);
  std::istringstream in(result.out);
  for (std::string reply; std::getline(in, reply);) completion.replies.push_back(reply);
  return completion;
}

Words offered(const std::string& line, const std::map<std::string, std::string>& env = {},
              bool with_bash_completion = false) {
  auto replies = complete(line, env, with_bash_completion).replies;
  return Words(replies.begin(), replies.end());
}

std::string show(const Words& words) {
  std::string out = "{";
  for (const auto& w : words) out += " " + w;
  return out + " }";
}

#define CHECK_OFFERED(line, ...)                                                         \
  do {                                                                                   \
    Words expected_words{__VA_ARGS__};                                                   \
    Words got_words = offered(line);                                                     \
    BOOST_TEST(got_words == expected_words,                                              \
               (line) << ": offered " << show(got_words) << ", expected " << show(expected_words)); \
  } while (0)

bool contains_all(const Words& big, const Words& small) {
  for (const auto& w : small) {
    if (!big.count(w)) return false;
  }
  return true;
}

// Session ids as the backend's would be, a few odd ones: one with a space (offered
// quoted for the shell), one with a quote and one with a control character (not
// offered: they arrive JSON-escaped), and one that starts with '-'.
const std::vector<std::string> kSessions = {"sess_alpha", "sess_beta", "other_1", "odd id",
                                            "quo\"te",    "tab\tid",   "-dash"};

fs::path write_sample_db(const fs::path& path) {
  auto opened = Store::open_empty();
  BOOST_REQUIRE(opened.ok());
  auto store = std::move(opened.value());
  std::vector<StoredDelta> rows;
  auto now = format_timestamp(now_millis());
  for (const auto& session : kSessions) {
    StoredDelta row;
    row.delta.session_id = session;
    row.delta.type = DeltaType::created;
    row.delta.after = R"({"planStatus":"pending"})";
    row.delta.timestamp = now;
    row.created_at = now;
    rows.push_back(std::move(row));
  }
  BOOST_REQUIRE(store->save_with_created_at(rows).ok());
  auto image = store->serialize();
  BOOST_REQUIRE(image.ok());
  fs::create_directories(path.parent_path());
  BOOST_REQUIRE(write_snapshot_file(path.string(), image->view()).ok());
  return path;
}

// The ids of kSessions the completion offers, as they go on the command line.
const Words kOfferedIds = {"sess_alpha", "sess_beta", "other_1", "odd\\ id", "-dash"};

CommandResult run_program(const std::string& program, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {(bin_dir() / program).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

Words matches(const std::string& text, const std::string& pattern, std::size_t group = 0) {
  Words out;
  std::regex re(pattern, std::regex::multiline);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    out.insert((*it)[group].str());
  }
  return out;
}

Words split(const std::string& text, char separator) {
  Words out;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, separator);) {
    if (!part.empty()) out.insert(part);
  }
  return out;
}

const std::vector<std::string> kCommands = {"stats",  "query",   "sessions", "timeline",
                                            "export", "cleanup", "snapshot", "check", "migrate",
                                            "analytics"};
const Words kGlobals = {"--db",  "--url",      "--token",   "--token-file", "--color",
                        "--utc", "--local",    "--no-color", "--help",      "--version"};

std::string text_before(const std::string& text, const std::string& marker) {
  return text.substr(0, text.find(marker));
}

// A TCP listener on loopback that never accepts: connections complete in the
// kernel's backlog and then nothing ever answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

BOOST_AUTO_TEST_CASE(commands_from_a_prefix) {
  CHECK_OFFERED("deltatap s", "stats", "sessions", "snapshot");
  CHECK_OFFERED("deltatap ", "stats", "query", "sessions", "timeline", "export", "cleanup",
                "snapshot", "check", "migrate", "analytics");
  CHECK_OFFERED("deltatap analytics ", "durations", "approvals", "heatmap");
  CHECK_OFFERED("deltatap analytics heatmap --format ", "table", "json", "csv");
  CHECK_OFFERED("deltatap --db x.sqlite ch", "check");
  CHECK_OFFERED("deltatap --url=http://127.0.0.1:9477 --utc t", "timeline");
  CHECK_OFFERED("deltatap zz");
  // Registered for the three programs, by name (a path typed works as well).
  CHECK_OFFERED((bin_dir() / "deltatap").string() + " e", "export");
}

BOOST_AUTO_TEST_CASE(options_of_each_command) {
  auto query = offered("deltatap query --");
  BOOST_TEST(contains_all(query, {"--session", "--type", "--since", "--until", "--limit",
                                  "--before", "--format"}),
             show(query));
  BOOST_TEST(contains_all(query, kGlobals), show(query));
  for (const std::string other : {"--out", "--csv-raw", "--older-than"}) {
    BOOST_TEST(!query.count(other), other << " offered for query");
  }
  CHECK_OFFERED("deltatap query --s", "--session", "--since");
  // An option that takes a value is accepted once: not offered again. Flags repeat.
  auto again = offered("deltatap query --session sess_alpha --type created --");
  BOOST_TEST(!again.count("--session"));
  BOOST_TEST(!again.count("--type"));
  BOOST_TEST(again.count("--since"));
  auto with_db = offered("deltatap --db x.sqlite --utc export --");
  BOOST_TEST(!with_db.count("--db"));
  BOOST_TEST(with_db.count("--utc"));
  BOOST_TEST(contains_all(with_db, {"--format", "--out", "--csv-raw"}), show(with_db));
  // Before the command, only the global options.
  BOOST_TEST(offered("deltatap --") == kGlobals, show(offered("deltatap --")));
  CHECK_OFFERED("deltatap cleanup --o", "--older-than");
  CHECK_OFFERED("deltatap snapshot --t", "--token", "--token-file");
  // After --, words are arguments, not options.
  CHECK_OFFERED("deltatap stats -- --f");
}

BOOST_AUTO_TEST_CASE(format_values_per_command) {
  CHECK_OFFERED("deltatap stats --format ", "table", "json");
  CHECK_OFFERED("deltatap query --format ", "table", "json", "ndjson", "csv");
  CHECK_OFFERED("deltatap sessions --format ", "table", "json", "ndjson", "csv");
  CHECK_OFFERED("deltatap timeline sess_alpha --format ", "text", "json");
  CHECK_OFFERED("deltatap export --format ", "json", "ndjson", "csv");
  // --format=VALUE: bash sees "--format" "=" "n"; the replies are for the last piece.
  CHECK_OFFERED("deltatap export --format=", "json", "ndjson", "csv");
  CHECK_OFFERED("deltatap export --format=n", "ndjson");
  CHECK_OFFERED("deltatap --utc query --limit 5 --format c", "csv");
  // The other value lists.
  CHECK_OFFERED("deltatap query --type ", "created", "updated", "deleted");
  CHECK_OFFERED("deltatap query --type=d", "deleted");
  CHECK_OFFERED("deltatap --color ", "auto", "always", "never");
  CHECK_OFFERED("deltatap stats --color=a", "auto", "always");
  // A URL is split at every ':'; what is offered completes the last piece.
  CHECK_OFFERED("deltatap --url http://127.0.0.1:94", "9477");
  CHECK_OFFERED("deltatap --url ", "http://127.0.0.1:9477");
  // Values with nothing to offer.
  CHECK_OFFERED("deltatap query --since ");
  CHECK_OFFERED("deltatap --token ");
}

BOOST_AUTO_TEST_CASE(files_for_db_token_file_and_out) {
  TempDir dir;
  auto db = write_sample_db(dir / "data/sessions.sqlite");
  write_file(dir / "data/sessions.journal", "");
  write_file(dir / "token", "t\n");
  auto prefix = (dir / "data/sess").string();
  // Every file, the digest a snapshot leaves beside the database included.
  auto digest = db.string() + ".digest";
  CHECK_OFFERED("deltatap --db " + prefix, db.string(), (dir / "data/sessions.journal").string(), digest);
  CHECK_OFFERED("deltatap --db=" + prefix, db.string(), (dir / "data/sessions.journal").string(), digest);
  CHECK_OFFERED("deltatap stats --db " + (dir / "data/sessions.s").string(), db.string(), digest);
  CHECK_OFFERED("deltatap --token-file " + (dir / "to").string(), (dir / "token").string());
  CHECK_OFFERED("deltatap export --out " + (dir / "da").string(), (dir / "data").string());
}

BOOST_AUTO_TEST_CASE(session_ids_from_a_snapshot_file) {
  TempDir dir;
  auto db = write_sample_db(dir / "data/sessions.sqlite").string();
  // The CLI itself lists them (the completion asks it, with --format ndjson).
  auto listed = run_program("deltatap", {"--db", db, "sessions", "--format", "ndjson"});
  BOOST_TEST_REQUIRE(listed.exit_code == 0, listed.err);
  BOOST_TEST(split(listed.out, '\n').size() == kSessions.size());

  CHECK_OFFERED("deltatap --db " + db + " timeline sess_", "sess_alpha", "sess_beta");
  BOOST_TEST(offered("deltatap --db " + db + " timeline ") == kOfferedIds,
             show(offered("deltatap --db " + db + " timeline ")));
  // --db after the command, and as --db=FILE.
  CHECK_OFFERED("deltatap timeline --db " + db + " o", "other_1", "odd\\ id");
  CHECK_OFFERED("deltatap --db=" + db + " timeline --format text sess_b", "sess_beta");
  // --session's value, in both forms.
  CHECK_OFFERED("deltatap --db " + db + " query --session sess_a", "sess_alpha");
  CHECK_OFFERED("deltatap --db " + db + " query --type created --session=ot", "other_1");
  // An id that starts with '-' after --; inside an opened quote, unquoted.
  CHECK_OFFERED("deltatap --db " + db + " timeline -- -", "-dash");
  CHECK_OFFERED("deltatap --db " + db + " timeline 'odd", "'odd id");
  // timeline takes one id: none after it.
  CHECK_OFFERED("deltatap --db " + db + " timeline sess_alpha s");
  // Other commands take no argument.
  CHECK_OFFERED("deltatap --db " + db + " stats s");
  // A file that is not there: nothing, and no error on the terminal.
  CHECK_OFFERED("deltatap --db " + (dir / "missing.sqlite").string() + " timeline s");
}

BOOST_AUTO_TEST_CASE(completion_never_waits_for_a_silent_daemon) {
  SilentListener silent;
  std::string url = "http://127.0.0.1:" + std::to_string(silent.port());
  auto completion =
      complete("deltatap --url " + url + " timeline s", {{"DELTATAP_COMPLETION_TIMEOUT", "1"}});
  BOOST_TEST(completion.replies.empty());
  BOOST_TEST(completion.took < std::chrono::milliseconds(4000),
             "took " << completion.took.count() << " ms");
  // Nothing listening at all: refused at once.
  auto refused = complete("deltatap --url http://127.0.0.1:" + std::to_string(free_port()) +
                          " query --session ");
  BOOST_TEST(refused.replies.empty());
  BOOST_TEST(refused.took < std::chrono::milliseconds(3000));
}

// The same question asked of a running deltatapd over HTTP: the --url, --token
// and --token-file on the line go to `deltatap sessions`.
BOOST_AUTO_TEST_CASE(session_ids_from_a_live_daemon) {
  BOOST_TEST_REQUIRE(fs::exists(bin_dir() / "deltatapd"), "deltatapd is not built in " << bin_dir());
  TempDir dir;
  write_sample_db(dir / "data/sessions.sqlite");
  const std::string token = "0123456789abcdef-completion";
  write_file(dir / "deltatap.conf", "[http]\ntoken = " + token + "\n");
  write_file(dir / "token", token + "\n");
  ::chmod((dir / "token").c_str(), 0600);
  int port = free_port();
  // No stream to tap: the daemon retries it and answers over HTTP meanwhile.
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(free_port()) + "/ws", "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(port);
  Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});
  BOOST_REQUIRE_MESSAGE(wait_until([&] {
                          return http_request(port, "GET", "/healthz",
                                              {"Authorization: Bearer " + token})
                                     .status == 200;
                        }),
                        "deltatapd: " << daemon.stderr_text());

  std::string url = "http://127.0.0.1:" + std::to_string(port);
  CHECK_OFFERED("deltatap --url " + url + " --token " + token + " timeline sess_", "sess_alpha",
                "sess_beta");
  CHECK_OFFERED("deltatap --url=" + url + " --token-file " + (dir / "token").string() +
                    " query --session o",
                "other_1", "odd\\ id");
  // Without the token the daemon answers 401: nothing to offer, nothing printed.
  CHECK_OFFERED("deltatap --url " + url + " timeline sess_");
  daemon.signal(SIGTERM);
  auto code = daemon.wait(20s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 0, daemon.stderr_text());
}

BOOST_AUTO_TEST_CASE(deltatapd_and_deltatap_sim) {
  CHECK_OFFERED("deltatapd --log-level ", "debug", "info", "warning", "error");
  CHECK_OFFERED("deltatapd --log-format=j", "journal", "json");
  CHECK_OFFERED("deltatapd --c", "--config", "--check-config");
  CHECK_OFFERED("deltatapd --persist --no", "--no-persist");
  CHECK_OFFERED("deltatapd --token ");
  TempDir dir;
  write_file(dir / "deltatap.conf", "");
  CHECK_OFFERED("deltatapd --config " + (dir / "delta").string(), (dir / "deltatap.conf").string());
  CHECK_OFFERED("deltatapd --config=" + (dir / "delta").string(), (dir / "deltatap.conf").string());
  CHECK_OFFERED("deltatapd --config " + (dir / "deltatap.conf").string() + " --log-l",
                "--log-level");
  CHECK_OFFERED("deltatap-sim --format ", "delta", "session_update", "mixed");
  CHECK_OFFERED("deltatap-sim --count 10 --format=m", "mixed");
  CHECK_OFFERED("deltatap-sim --r", "--record", "--rate", "--restart-every");
  CHECK_OFFERED("deltatap-sim --listen 127.0.0.1:", "3001", "0");
}

// What is offered is what the programs' --help texts say they take.
BOOST_AUTO_TEST_CASE(completion_follows_the_help_texts) {
  auto usage = run_program("deltatap", {"--help"});
  BOOST_TEST_REQUIRE(usage.exit_code == 0, usage.err);
  auto listed = matches(usage.out.substr(usage.out.find("Commands:")), R"(^  ([a-z]+) )", 1);
  BOOST_TEST(listed == Words(kCommands.begin(), kCommands.end()), show(listed));
  BOOST_TEST(offered("deltatap ") == listed);
  auto globals = matches(text_before(usage.out, "Commands:"), R"(--[a-z][a-z-]*)");
  BOOST_TEST(contains_all(kGlobals, globals), show(globals));
  BOOST_TEST(contains_all(offered("deltatap --"), globals));

  for (const auto& command : kCommands) {
    auto help = run_program("deltatap", {command, "--help"});
    BOOST_TEST_REQUIRE(help.exit_code == 0, command << ": " << help.err);
    auto synopsis = text_before(help.out, "\n\n");
    auto options = matches(synopsis, R"(--[a-z][a-z-]*)");
    Words command_options;
    for (const auto& o : offered("deltatap " + command + " --")) {
      if (!kGlobals.count(o)) command_options.insert(o);
    }
    BOOST_TEST(command_options == options,
               command << ": offered " << show(command_options) << ", --help " << show(options));
    auto formats = matches(synopsis, R"(--format ([a-z|]+))", 1);
    Words help_formats = formats.empty() ? Words{} : split(*formats.begin(), '|');
    BOOST_TEST(offered("deltatap " + command + " --format ") == help_formats, command);
  }

  for (const std::string program : {"deltatapd", "deltatap-sim"}) {
    auto help = run_program(program, {"--help"});
    BOOST_TEST_REQUIRE(help.exit_code == 0, program << ": " << help.err);
    auto options = matches(help.out, R"(^  (-h, )?(--[a-z][a-z-]*))", 2);
    BOOST_TEST(offered(program + " --") == options,
               program << ": offered " << show(offered(program + " --")) << ", --help "
                       << show(options));
  }
}

BOOST_AUTO_TEST_CASE(with_bash_completion_loaded_first, *needs([] {
                       return fs::exists(kBashCompletion)
                                  ? std::string()
                                  : std::string(kBashCompletion) +
                                        " is not installed (Debian package bash-completion)";
                     })) {
  TempDir dir;
  auto db = write_sample_db(dir / "data/sessions.sqlite").string();
  BOOST_TEST(offered("deltatap s", {}, true) == (Words{"stats", "sessions", "snapshot"}));
  BOOST_TEST(offered("deltatap export --format=n", {}, true) == Words{"ndjson"});
  BOOST_TEST(offered("deltatap --db " + db + " timeline sess_", {}, true) ==
             (Words{"sess_alpha", "sess_beta"}));
}

// zsh is not needed to build or test deltatap: where it is installed, the zsh
// completion must at least parse. Either way it must name what the bash one
// offers (both follow the same --help texts).
BOOST_AUTO_TEST_CASE(zsh_completion) {
  auto text = read_file(zsh_script());
  BOOST_TEST_REQUIRE(!text.empty());
  BOOST_TEST(text.rfind("#compdef deltatap deltatapd deltatap-sim\n", 0) == 0);
  for (const auto& command : kCommands) {
    BOOST_TEST(text.find("'" + command + ":") != std::string::npos, command);
    auto formats = offered("deltatap " + command + " --format ");
    if (formats.empty()) continue;
    // The zsh list is in the CLI's order; the set is what must match.
    auto lists = matches(
        text, "\\(" + command + "\\)[^;]*?--format=\\[[^\\]]*\\]:format:\\(([a-z ]+)\\)", 1);
    BOOST_TEST_REQUIRE(lists.size() == 1u, command << ": no --format list in _deltatap");
    BOOST_TEST(split(*lists.begin(), ' ') == formats, command);
  }
  for (const std::string line : {"deltatap query --", "deltatap export --", "deltatap cleanup --",
                                 "deltatapd --", "deltatap-sim --"}) {
    for (const auto& option : offered(line)) {
      // '--db=[...]', '--utc[...]' or {-h,--help}'[...]'
      bool named = false;
      for (const std::string after : {"=[", "[", "}'["}) {
        named = named || text.find(option + after) != std::string::npos;
      }
      BOOST_TEST(named, option << " (" << line << ") missing from _deltatap");
    }
  }
  auto zsh = run_command({"/bin/sh", "-c", "command -v zsh"});
  if (zsh.exit_code != 0) {
    skip("zsh is not installed (Debian package zsh): _deltatap checked for its names only, "
         "not parsed");
    return;
  }
  auto path = zsh.out.substr(0, zsh.out.find('\n'));
  auto parsed = run_command({path, "-n", zsh_script().string()});
  BOOST_TEST(parsed.exit_code == 0, "zsh -n _deltatap: " << parsed.err);
}
