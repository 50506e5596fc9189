// Configuration: defaults, INI file < environment < flags for every overridable key,
// every refusal naming its key and value, token sources, --check-config text, and the
// shipped conf/deltatap.conf.
#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <initializer_list>
#include <sstream>

#include "service/config.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

Result<CommandLine> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "deltatapd");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

Result<Config> load(std::vector<std::string> args, const Environment& env = {}) {
  auto cmdline = parse(std::move(args));
  if (!cmdline) return Error{cmdline.error()};
  return load_config(*cmdline, env);
}

// A config file in its own directory, written with `text`.
struct ConfFile {
  TempDir dir;
  fs::path path;
  explicit ConfFile(const std::string& text) : path(dir / "deltatap.conf") { write_file(path, text); }
  std::vector<std::string> args(std::vector<std::string> more = {}) const {
    more.insert(more.begin(), {"--config", path.string()});
    return more;
  }
};

// Asserts that loading failed with a message containing every needle.
template <typename T>
void expect_refused(const Result<T>& result, std::initializer_list<std::string> needles) {
  BOOST_TEST_REQUIRE(!result.ok(), "expected a refusal mentioning " << *needles.begin());
  for (const auto& needle : needles) {
    BOOST_TEST(result.error().find(needle) != std::string::npos,
               "message lacks \"" << needle << "\": " << result.error());
  }
}

// The error text for a test message; Boost.Test builds its message even on success.
template <typename T>
std::string why(const Result<T>& result) {
  return result.ok() ? std::string() : result.error();
}

void write_private(const fs::path& path, const std::string& text, mode_t mode) {
  write_file(path, text);
  BOOST_REQUIRE(::chmod(path.c_str(), mode) == 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(defaults_without_file_or_environment) {
  auto config = load({});
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(config->config_file == "");
  BOOST_TEST(config->stream.url == "ws://127.0.0.1:3001/ws");
  BOOST_TEST(config->stream.token == "");
  BOOST_TEST(config->stream.headers.empty());
  BOOST_TEST(!config->stream.insecure_skip_verify);
  BOOST_TEST(config->stream.connect_timeout.count() == 10'000);
  BOOST_TEST(config->stream.idle_timeout.count() == 90'000);
  BOOST_TEST(config->stream.backoff_initial.count() == 500);
  BOOST_TEST(config->stream.backoff_max.count() == 30'000);
  BOOST_TEST(config->stream.max_message_bytes == 16u << 20);
  BOOST_TEST(!config->storage.enabled);  // PERSIST is opt-in, as the domain document says
  BOOST_TEST(config->storage.path == "data/sessions.sqlite");
  BOOST_TEST(config->storage.snapshot_interval.count() == 60'000);
  BOOST_TEST(config->storage.journal);
  BOOST_TEST(config->storage.journal_fsync_interval.count() == 100);
  BOOST_TEST(config->retention.days == 30);
  BOOST_TEST(config->http.listen == "127.0.0.1:9477");
  BOOST_TEST(config->http.token == "");
  BOOST_TEST((config->log.level == LogLevel::info));
  BOOST_TEST(!config->log.format.has_value());
}

BOOST_AUTO_TEST_CASE(every_file_key_is_read) {
  TempDir dir;
  write_private(dir / "ca.pem", "not checked here\n", 0644);
  ConfFile conf(
      "\xEF\xBB\xBF# leading byte-order mark and comments are fine\n"
      "; semicolon comment\n"
      "\n"
      "[stream]\r\n"
      "url = wss://backend.example:8443/ws?x=1\n"
      "  token   =   abc.DEF-123  \n"
      "header = X-Client: deltatap\n"
      "header = X-Trace:\n"
      "ca_file = " + (dir / "ca.pem").string() + "\n"
      "insecure_skip_verify = yes\n"
      "connect_timeout = 0.5s\n"
      "idle_timeout = 2m\n"
      "backoff_initial = 250ms\n"
      "backoff_max = 1h\n"
      "max_message_bytes = 1024KiB\n"
      "[ storage ]\n"
      "enabled = TRUE\n"
      "path = \"/var/lib/x y/#weird;name.sqlite\"\n"
      "snapshot_interval = 15\n"
      "journal = off\n"
      "journal_fsync_interval = 1d\n"
      "max_deltas = 5000\n"
      "compression = ZSTD\n"
      "[retention]\n"
      "days = 0\n"
      "[http]\n"
      "listen = [::1]:8080\n"
      "token = http-secret\n"
      "[log]\n"
      "level = warning\n"
      "format = json\n");
  auto config = load(conf.args());
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(config->config_file == conf.path.string());
  BOOST_TEST(config->stream.url == "wss://backend.example:8443/ws?x=1");
  BOOST_TEST(config->stream.token == "abc.DEF-123");
  BOOST_TEST(config->stream.headers == (std::vector<std::string>{"X-Client: deltatap", "X-Trace:"}));
  BOOST_TEST(config->stream.ca_file == (dir / "ca.pem").string());
  BOOST_TEST(config->stream.insecure_skip_verify);
  BOOST_TEST(config->stream.connect_timeout.count() == 500);
  BOOST_TEST(config->stream.idle_timeout.count() == 120'000);
  BOOST_TEST(config->stream.backoff_initial.count() == 250);
  BOOST_TEST(config->stream.backoff_max.count() == 3'600'000);
  BOOST_TEST(config->stream.max_message_bytes == 1u << 20);
  BOOST_TEST(config->storage.enabled);
  BOOST_TEST(config->storage.path == "/var/lib/x y/#weird;name.sqlite");
  BOOST_TEST(config->storage.snapshot_interval.count() == 15'000);  // bare number: seconds
  BOOST_TEST(!config->storage.journal);
  BOOST_TEST(config->storage.journal_fsync_interval.count() == 86'400'000);
  BOOST_TEST(config->storage.max_deltas == 5000u);
  BOOST_TEST((config->storage.compression == Compression::zstd));
  BOOST_TEST(config->retention.days == 0);
  BOOST_TEST(config->http.listen == "[::1]:8080");
  BOOST_TEST(config->http.token == "http-secret");
  BOOST_TEST((config->log.level == LogLevel::warning));
  BOOST_TEST((config->log.format == LogFormat::json));
}

BOOST_AUTO_TEST_CASE(value_syntaxes) {
  struct Case {
    std::string line;
    std::int64_t ms;
  };
  for (const auto& c : std::vector<Case>{{"500ms", 500}, {"10s", 10'000}, {"10", 10'000},
                                         {"5m", 300'000}, {"1h", 3'600'000}, {"1d", 86'400'000},
                                         {"1.25s", 1250}, {"7 s", 7000}}) {
    ConfFile conf("[stream]\nconnect_timeout = " + c.line + "\n");
    auto config = load(conf.args());
    BOOST_TEST_REQUIRE(config.ok(), why(config));
    BOOST_TEST(config->stream.connect_timeout.count() == c.ms, c.line);
  }
  for (auto [text, bytes] : std::vector<std::pair<std::string, std::uint64_t>>{
           {"16MiB", 16u << 20}, {"1024KiB", 1u << 20}, {"4096", 4096}, {"1GiB", 1u << 30}}) {
    ConfFile conf("[stream]\nmax_message_bytes = " + text + "\n");
    auto config = load(conf.args());
    BOOST_TEST_REQUIRE(config.ok(), why(config));
    BOOST_TEST(config->stream.max_message_bytes == bytes, text);
  }
  for (auto [text, on] : std::vector<std::pair<std::string, bool>>{
           {"on", true}, {"off", false}, {"true", true}, {"false", false}, {"yes", true},
           {"no", false}, {"1", true}, {"0", false}}) {
    ConfFile conf("[storage]\njournal = " + text + "\n");
    auto config = load(conf.args());
    BOOST_TEST_REQUIRE(config.ok(), why(config));
    BOOST_TEST(config->storage.journal == on, text);
  }
}

// Each overridable key: the file sets it, the environment beats the file, the flag
// beats both.
BOOST_AUTO_TEST_CASE(flags_beat_environment_beat_file) {
  ConfFile conf(
      "[stream]\nurl = ws://file:1/ws\ntoken = file-token\n"
      "[storage]\nenabled = off\npath = file.sqlite\nsnapshot_interval = 5s\n"
      "[retention]\ndays = 7\n"
      "[http]\nlisten = 127.0.0.1:1111\n"
      "[log]\nlevel = error\nformat = json\n");

  auto file_only = load(conf.args());
  BOOST_TEST_REQUIRE(file_only.ok(), why(file_only));
  BOOST_TEST(file_only->stream.url == "ws://file:1/ws");
  BOOST_TEST(file_only->stream.token == "file-token");
  BOOST_TEST(!file_only->storage.enabled);
  BOOST_TEST(file_only->storage.path == "file.sqlite");
  BOOST_TEST(file_only->storage.snapshot_interval.count() == 5000);
  BOOST_TEST(file_only->retention.days == 7);
  BOOST_TEST(file_only->http.listen == "127.0.0.1:1111");
  BOOST_TEST((file_only->log.level == LogLevel::error));
  BOOST_TEST((file_only->log.format == LogFormat::json));

  Environment env = {{"DELTATAP_URL", "ws://env:2/ws"},
                     {"DELTATAP_TOKEN", "env-token"},
                     {"PERSIST", "1"},
                     {"DB_PATH", "env.sqlite"},
                     {"SNAPSHOT_INTERVAL", "2500"},
                     {"RETENTION_DAYS", "3"},
                     {"DELTATAP_HTTP", "127.0.0.1:2222"},
                     {"DELTATAP_LOG_LEVEL", "debug"},
                     {"DELTATAP_LOG_FORMAT", "text"}};
  auto with_env = load(conf.args(), env);
  BOOST_TEST_REQUIRE(with_env.ok(), why(with_env));
  BOOST_TEST(with_env->stream.url == "ws://env:2/ws");
  BOOST_TEST(with_env->stream.token == "env-token");
  BOOST_TEST(with_env->storage.enabled);
  BOOST_TEST(with_env->storage.path == "env.sqlite");
  BOOST_TEST(with_env->storage.snapshot_interval.count() == 2500);  // env is milliseconds
  BOOST_TEST(with_env->retention.days == 3);
  BOOST_TEST(with_env->http.listen == "127.0.0.1:2222");
  BOOST_TEST((with_env->log.level == LogLevel::debug));
  BOOST_TEST((with_env->log.format == LogFormat::text));

  auto with_flags = load(conf.args({"--url", "wss://flag:3/ws", "--token=flag-token", "--no-persist",
                                    "--db", "flag.sqlite", "--http=", "--log-level", "warning",
                                    "--log-format=journal"}),
                         env);
  BOOST_TEST_REQUIRE(with_flags.ok(), why(with_flags));
  BOOST_TEST(with_flags->stream.url == "wss://flag:3/ws");
  BOOST_TEST(with_flags->stream.token == "flag-token");
  BOOST_TEST(!with_flags->storage.enabled);
  BOOST_TEST(with_flags->storage.path == "flag.sqlite");
  BOOST_TEST(with_flags->http.listen == "");  // --http= disables the API
  BOOST_TEST((with_flags->log.level == LogLevel::warning));
  BOOST_TEST((with_flags->log.format == LogFormat::journal));

  // --persist beats PERSIST=0, and --db alone says nothing about storing.
  auto persist = load({"--persist"}, {{"PERSIST", "0"}});
  BOOST_TEST_REQUIRE(persist.ok(), why(persist));
  BOOST_TEST(persist->storage.enabled);
  auto db_only = load({"--db", "x.sqlite"});
  BOOST_TEST_REQUIRE(db_only.ok(), why(db_only));
  BOOST_TEST(!db_only->storage.enabled);
}

BOOST_AUTO_TEST_CASE(empty_environment_variables_count_as_unset_except_http) {
  ConfFile conf("[storage]\nenabled = on\npath = file.sqlite\n[http]\nlisten = 127.0.0.1:1111\n");
  auto config = load(conf.args(), {{"PERSIST", ""}, {"DB_PATH", ""}, {"DELTATAP_HTTP", ""},
                                   {"SNAPSHOT_INTERVAL", ""}, {"DELTATAP_URL", ""}});
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(config->storage.enabled);
  BOOST_TEST(config->storage.path == "file.sqlite");
  BOOST_TEST(config->http.listen == "");
}

BOOST_AUTO_TEST_CASE(bad_values_are_refused_naming_key_and_value) {
  auto file_value = [](const std::string& section, const std::string& line) {
    ConfFile conf("# first line\n[" + section + "]\n" + line + "\n");
    auto result = load(conf.args());
    if (!result.ok()) {
      BOOST_TEST(result.error().find(conf.path.string() + ":3:") != std::string::npos, result.error());
    }
    return result;
  };
  expect_refused(file_value("stream", "connect_timeout = soon"), {"[stream] connect_timeout", "\"soon\"", "10s"});
  expect_refused(file_value("stream", "idle_timeout = 0s"), {"[stream] idle_timeout", "\"0s\"", "positive"});
  expect_refused(file_value("stream", "backoff_max = -5s"), {"[stream] backoff_max", "\"-5s\""});
  expect_refused(file_value("stream", "backoff_initial = 10x"), {"[stream] backoff_initial", "\"10x\"", "ms, s, m, h or d"});
  expect_refused(file_value("storage", "snapshot_interval = 0"), {"[storage] snapshot_interval", "\"0\""});
  expect_refused(file_value("storage", "journal_fsync_interval = 0.0001s"), {"[storage] journal_fsync_interval", "\"0.0001s\""});
  expect_refused(file_value("stream", "max_message_bytes = 16MB"), {"[stream] max_message_bytes", "\"16MB\"", "MiB"});
  expect_refused(file_value("stream", "insecure_skip_verify = maybe"), {"[stream] insecure_skip_verify", "\"maybe\"", "on, off"});
  expect_refused(file_value("storage", "enabled = 2"), {"[storage] enabled", "\"2\""});
  expect_refused(file_value("storage", "compression = gzip"),
                 {"[storage] compression", "\"gzip\"", "off", "zstd"});
  expect_refused(file_value("log", "level = verbose"), {"[log] level", "\"verbose\"", "debug, info, warning or error"});
  expect_refused(file_value("log", "format = xml"), {"[log] format", "\"xml\"", "journal, text, json"});
  expect_refused(file_value("stream", "url = http://127.0.0.1:3001/ws"), {"[stream] url", "\"http://127.0.0.1:3001/ws\"", "ws:// or wss://"});
  expect_refused(file_value("stream", "url = ws:///ws"), {"[stream] url", "\"ws:///ws\"", "host"});
  expect_refused(file_value("stream", "url = ws://h:99999/ws"), {"[stream] url", "99999"});
  expect_refused(file_value("stream", "header = NoColonHere"), {"[stream] header", "\"NoColonHere\"", "Name: value"});
  expect_refused(file_value("stream", "header = Sec-WebSocket-Protocol: x"), {"[stream] header", "Sec-WebSocket-Protocol"});
  expect_refused(file_value("stream", "ca_file = /no/such/ca.pem"), {"[stream] ca_file", "/no/such/ca.pem", "No such file"});
  expect_refused(file_value("stream", "token = two words"), {"[stream] token", "(hidden)"});
  expect_refused(file_value("retention", "days = -1"), {"[retention] days", "\"-1\"", ">= 0"});
  expect_refused(file_value("http", "listen = localhost"), {"[http] listen", "\"localhost\"", "IP:PORT"});
  expect_refused(file_value("http", "listen = 127.0.0.1:0"), {"[http] listen", "\"127.0.0.1:0\"", "port"});
  expect_refused(file_value("http", "listen = ::1:9477"), {"[http] listen", "\"::1:9477\"", "[IPv6]:PORT"});

  expect_refused(load({}, {{"PERSIST", "yes"}}), {"PERSIST", "\"yes\"", "1", "0"});
  expect_refused(load({}, {{"PERSIST", "true"}}), {"PERSIST", "\"true\""});
  expect_refused(load({}, {{"SNAPSHOT_INTERVAL", "abc"}}),
                 {"SNAPSHOT_INTERVAL: \"abc\" is not a number of milliseconds", "60000"});
  expect_refused(load({}, {{"SNAPSHOT_INTERVAL", "10s"}}), {"SNAPSHOT_INTERVAL", "\"10s\"", "milliseconds"});
  expect_refused(load({}, {{"SNAPSHOT_INTERVAL", "0"}}), {"SNAPSHOT_INTERVAL", "\"0\""});
  expect_refused(load({}, {{"RETENTION_DAYS", "-1"}}), {"RETENTION_DAYS", "\"-1\"", ">= 0"});
  expect_refused(load({}, {{"RETENTION_DAYS", "a week"}}), {"RETENTION_DAYS", "\"a week\""});
  expect_refused(load({}, {{"DELTATAP_URL", "tcp://x:1"}}), {"DELTATAP_URL", "\"tcp://x:1\"", "ws://"});
  expect_refused(load({}, {{"DELTATAP_HTTP", "nowhere"}}), {"DELTATAP_HTTP", "\"nowhere\""});
  expect_refused(load({}, {{"DELTATAP_LOG_LEVEL", "loud"}}), {"DELTATAP_LOG_LEVEL", "\"loud\""});
  expect_refused(load({}, {{"DELTATAP_LOG_FORMAT", "yaml"}}), {"DELTATAP_LOG_FORMAT", "\"yaml\""});

  expect_refused(load({"--url", "https://x/ws"}), {"--url", "\"https://x/ws\"", "ws://"});
  expect_refused(load({"--http=1.2.3.4"}), {"--http", "\"1.2.3.4\""});
  expect_refused(load({"--log-level", "trace"}), {"--log-level", "\"trace\""});
  expect_refused(load({"--log-format=xml"}), {"--log-format", "\"xml\""});
  expect_refused(load({"--db="}), {"--db", "\"\""});
}

BOOST_AUTO_TEST_CASE(secrets_never_appear_in_refusals) {
  auto result = load({"--token", "sup3r secret"});
  expect_refused(result, {"--token", "(hidden)", "whitespace"});
  BOOST_TEST(result.error().find("sup3r") == std::string::npos, result.error());
}

BOOST_AUTO_TEST_CASE(backoff_initial_may_not_exceed_backoff_max) {
  ConfFile conf("[stream]\nbackoff_initial = 40s\nbackoff_max = 30s\n");
  expect_refused(load(conf.args()), {"[stream] backoff_initial", "40s", "[stream] backoff_max", "30s"});
  ConfFile equal("[stream]\nbackoff_initial = 30s\nbackoff_max = 30s\n");
  BOOST_TEST(load(equal.args()).ok());
  // Against the default backoff_max (30s), too.
  ConfFile alone("[stream]\nbackoff_initial = 1m\n");
  expect_refused(load(alone.args()), {"backoff_initial", "1m", "30s"});
}

BOOST_AUTO_TEST_CASE(file_structure_errors_name_file_and_line) {
  {
    ConfFile conf("[stream]\nurl = ws://a:1/ws\nrul = ws://b:1/ws\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":3:", "\"rul\"", "[stream]", "url, token,",
                                       "max_message_bytes"});
  }
  {
    ConfFile conf("\n[streams]\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":2:", "[streams]", "[stream], [storage]"});
  }
  {
    ConfFile conf("[log]\nlevel info\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":2:", "key = value", "level info"});
  }
  {
    ConfFile conf("url = ws://a:1/ws\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":1:", "url", "section"});
  }
  {
    ConfFile conf("[log\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":1:", "[log"});
  }
  {
    ConfFile conf("[retention]\ndays = 1\ndays = 2\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":3:", "[retention] days", "line 2"});
  }
  {
    ConfFile conf("[stream]\ntoken = a\ntoken_file = /x\n");
    expect_refused(load(conf.args()), {conf.path.string() + ":3:", "token", "token_file"});
  }
  {
    // An end-of-line comment is part of the value, and the refusal shows it.
    ConfFile conf("[retention]\ndays = 30 # a month\n");
    expect_refused(load(conf.args()), {":2:", "\"30 # a month\""});
  }
}

BOOST_AUTO_TEST_CASE(config_file_that_cannot_be_read) {
  TempDir dir;
  expect_refused(load({"--config", (dir / "missing.conf").string()}),
                 {(dir / "missing.conf").string(), "No such file or directory"});
  expect_refused(load({"--config", dir.path().string()}), {dir.path().string(), "not a regular file"});
}

BOOST_AUTO_TEST_CASE(command_line_forms_and_refusals) {
  auto cmdline = parse({"--config=/etc/d.conf", "--check-config", "--url", "ws://x:1/ws", "--db=a.sqlite"});
  BOOST_TEST_REQUIRE(cmdline.ok(), why(cmdline));
  BOOST_TEST(cmdline->config_file == "/etc/d.conf");
  BOOST_TEST(cmdline->check_config);
  BOOST_TEST(!cmdline->help);
  BOOST_TEST(cmdline->overrides.at("stream.url") == "ws://x:1/ws");
  BOOST_TEST(cmdline->overrides.at("storage.path") == "a.sqlite");
  BOOST_TEST(cmdline->overrides.count("storage.enabled") == 0u);

  auto help = parse({"-h"});
  BOOST_TEST_REQUIRE(help.ok());
  BOOST_TEST(help->help);
  auto version = parse({"--version"});
  BOOST_TEST_REQUIRE(version.ok());
  BOOST_TEST(version->version);

  expect_refused(parse({"--no-such-flag"}), {"--no-such-flag"});
  expect_refused(parse({"--no-such-flag=1"}), {"--no-such-flag"});
  expect_refused(parse({"--url"}), {"--url", "needs a value"});
  expect_refused(parse({"--check-config=yes"}), {"--check-config", "takes no value"});
  expect_refused(parse({"stray"}), {"\"stray\""});
  expect_refused(parse({"--config="}), {"--config"});

  std::string usage = kDeltatapdUsage;
  for (auto flag : {"--config", "--url", "--token", "--db", "--http", "--log-level", "--log-format",
                    "--check-config", "--version", "--help", "--persist", "--no-persist"}) {
    BOOST_TEST(usage.find(flag) != std::string::npos, flag);
  }
}

BOOST_AUTO_TEST_CASE(token_file_is_read_and_must_be_private) {
  TempDir dir;
  write_private(dir / "token", "file-secret\n", 0600);
  ConfFile conf("[stream]\ntoken_file = " + (dir / "token").string() + "\n");
  auto config = load(conf.args());
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(config->stream.token == "file-secret");  // trailing newline dropped

  write_private(dir / "crlf", "crlf-secret\r\n", 0400);
  ConfFile crlf("[stream]\ntoken_file = " + (dir / "crlf").string() + "\n");
  auto crlf_config = load(crlf.args());
  BOOST_TEST_REQUIRE(crlf_config.ok(), why(crlf_config));
  BOOST_TEST(crlf_config->stream.token == "crlf-secret");

  write_private(dir / "open", "leaky-secret\n", 0644);
  ConfFile open("[stream]\ntoken_file = " + (dir / "open").string() + "\n");
  auto refused = load(open.args());
  expect_refused(refused, {"[stream] token_file", (dir / "open").string(), "group or others", "0644",
                           "chmod 600"});
  BOOST_TEST(refused.error().find("leaky-secret") == std::string::npos);

  expect_refused(load(ConfFile("[stream]\ntoken_file = " + (dir / "none").string() + "\n").args()),
                 {"[stream] token_file", (dir / "none").string(), "No such file"});

  write_private(dir / "empty", "\n", 0600);
  expect_refused(load(ConfFile("[stream]\ntoken_file = " + (dir / "empty").string() + "\n").args()),
                 {"[stream] token_file", "empty"});
}

BOOST_AUTO_TEST_CASE(token_sources_in_order) {
  TempDir dir;
  fs::create_directories(dir / "credentials");
  // systemd protects the credentials directory, so its file's mode is not checked.
  write_private(dir / "credentials/token", "credential-secret\n", 0644);
  write_private(dir / "token", "file-secret\n", 0600);
  write_private(dir / "open", "leaky\n", 0644);
  Environment credentials = {{"CREDENTIALS_DIRECTORY", (dir / "credentials").string()}};

  auto from_credentials = load({}, credentials);
  BOOST_TEST_REQUIRE(from_credentials.ok(), why(from_credentials));
  BOOST_TEST(from_credentials->stream.token == "credential-secret");

  ConfFile with_file("[stream]\ntoken_file = " + (dir / "token").string() + "\n");
  auto file_beats_credentials = load(with_file.args(), credentials);
  BOOST_TEST_REQUIRE(file_beats_credentials.ok(), why(file_beats_credentials));
  BOOST_TEST(file_beats_credentials->stream.token == "file-secret");

  Environment env_token = credentials;
  env_token["DELTATAP_TOKEN"] = "env-secret";
  auto env_beats_file = load(with_file.args(), env_token);
  BOOST_TEST_REQUIRE(env_beats_file.ok(), why(env_beats_file));
  BOOST_TEST(env_beats_file->stream.token == "env-secret");

  // A token from a stronger source means the token file is not even opened.
  ConfFile open_file("[stream]\ntoken_file = " + (dir / "open").string() + "\n");
  auto unused = load(open_file.args({"--token", "flag-secret"}), env_token);
  BOOST_TEST_REQUIRE(unused.ok(), why(unused));
  BOOST_TEST(unused->stream.token == "flag-secret");

  // A credentials directory without a token file is no error.
  fs::remove(dir / "credentials/token");
  auto nothing = load({}, credentials);
  BOOST_TEST_REQUIRE(nothing.ok(), why(nothing));
  BOOST_TEST(nothing->stream.token == "");
}

BOOST_AUTO_TEST_CASE(check_config_text_hides_secrets_and_shows_every_key) {
  ConfFile conf("[stream]\ntoken = stream-secret-1\nheader = Authorization: Basic header-secret-2\n"
                "[http]\ntoken = http-secret-3\n");
  auto config = load(conf.args({"--db", "elsewhere/x.sqlite"}), {{"PERSIST", "1"}});
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  std::string text = describe_config(*config);
  for (auto secret : {"stream-secret-1", "header-secret-2", "http-secret-3"}) {
    BOOST_TEST(text.find(secret) == std::string::npos, secret << " leaked:\n" << text);
  }
  BOOST_TEST(text.find("token = (hidden)") != std::string::npos, text);
  BOOST_TEST(text.find("header = Authorization: (hidden)") != std::string::npos, text);
  BOOST_TEST(text.find("path = elsewhere/x.sqlite") != std::string::npos, text);
  BOOST_TEST(text.find("enabled = on") != std::string::npos, text);
  BOOST_TEST(text.find(conf.path.string()) != std::string::npos, text);
  for (auto key : {"url =", "token_file =", "ca_file =", "insecure_skip_verify =", "connect_timeout = 10s",
                   "reconcile = on", "reconcile_url =",
                   "idle_timeout = 90s", "backoff_initial = 500ms", "backoff_max = 30s",
                   "max_message_bytes = 16MiB", "snapshot_interval = 1m", "journal = on",
                   "journal_fsync_interval = 100ms", "compression = off", "days = 30", "listen = 127.0.0.1:9477",
                   "level = info", "format = auto", "[stream]", "[storage]", "[retention]", "[http]",
                   "[log]"}) {
    BOOST_TEST(text.find(key) != std::string::npos, key << " missing:\n" << text);
  }

  auto defaults = load({});
  BOOST_TEST_REQUIRE(defaults.ok());
  BOOST_TEST(describe_config(*defaults).find("token = (none)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(check_config_text_reads_back_as_the_same_configuration) {
  // Without secrets, --check-config output is itself a valid config file.
  ConfFile conf("[stream]\nurl = wss://b:9/ws\nbackoff_initial = 1.5s\nmax_message_bytes = 3000\n"
                "[storage]\nenabled = on\nsnapshot_interval = 90s\n[retention]\ndays = 0\n"
                "[http]\nlisten =\n[log]\nformat = json\n");
  auto first = load(conf.args());
  BOOST_TEST_REQUIRE(first.ok(), why(first));
  std::string text = describe_config(*first);
  // Secrets print as "(none)"; drop those lines before reading the text back.
  std::string without_secrets;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("token = ", 0) != 0) without_secrets += line + "\n";
  }
  ConfFile again(without_secrets);
  auto second = load(again.args());
  BOOST_TEST_REQUIRE(second.ok(), why(second) << "\n" << without_secrets);
  BOOST_TEST((second->stream == first->stream));
  BOOST_TEST(second->storage.enabled == first->storage.enabled);
  BOOST_TEST(second->storage.snapshot_interval.count() == first->storage.snapshot_interval.count());
  BOOST_TEST(second->retention.days == first->retention.days);
  BOOST_TEST(second->http.listen == first->http.listen);
  BOOST_TEST((second->log.format == first->log.format));
}

BOOST_AUTO_TEST_CASE(shipped_configuration_parses_and_documents_the_defaults) {
  auto shipped = source_dir() / "conf/deltatap.conf";
  auto config = load({"--config", shipped.string()});
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(config->storage.enabled);  // the design: the shipped file turns storage on

  // Apart from that, the file states the built-in defaults.
  Config defaults;
  defaults.storage.enabled = true;
  BOOST_TEST((config->stream == defaults.stream));
  BOOST_TEST(config->storage.path == defaults.storage.path);
  BOOST_TEST(config->storage.snapshot_interval.count() == defaults.storage.snapshot_interval.count());
  BOOST_TEST(config->storage.journal == defaults.storage.journal);
  BOOST_TEST(config->storage.journal_fsync_interval.count() == defaults.storage.journal_fsync_interval.count());
  BOOST_TEST(config->storage.max_deltas == defaults.storage.max_deltas);
  BOOST_TEST((config->storage.compression == defaults.storage.compression));
  BOOST_TEST(config->retention.days == defaults.retention.days);
  BOOST_TEST(config->http.listen == defaults.http.listen);
  BOOST_TEST(config->http.token == defaults.http.token);
  BOOST_TEST((config->log.level == defaults.log.level));
  BOOST_TEST((config->log.format == defaults.log.format));

  // Every key and environment variable of the design is documented in it.
  std::string text = read_file(shipped);
  for (auto word : {"url", "token", "token_file", "header", "ca_file", "insecure_skip_verify",
                    "connect_timeout", "idle_timeout", "backoff_initial", "backoff_max",
                    "max_message_bytes", "reconcile", "reconcile_url", "enabled", "path", "snapshot_interval", "journal",
                    "journal_fsync_interval", "compression", "days", "listen", "level", "format", "DELTATAP_URL",
                    "DELTATAP_TOKEN", "CREDENTIALS_DIRECTORY", "PERSIST", "DB_PATH", "SNAPSHOT_INTERVAL",
                    "RETENTION_DAYS", "DELTATAP_HTTP", "DELTATAP_LOG_LEVEL", "DELTATAP_LOG_FORMAT"}) {
    BOOST_TEST(text.find(word) != std::string::npos, word);
  }
}

BOOST_AUTO_TEST_CASE(urls_are_described_and_refused_with_credentials_hidden) {
  // A query value may be a credential: --check-config hides it, keeping the keys.
  auto config = load({"--url", "wss://h:9/ws?token=q-secret-1&x=1"});
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  std::string text = describe_config(*config);
  BOOST_TEST(text.find("url = wss://h:9/ws?token=(hidden)&x=(hidden)\n") != std::string::npos, text);
  BOOST_TEST(text.find("q-secret-1") == std::string::npos, text);

  // User info is refused; the message quotes the URL with it hidden, from every layer.
  auto env = load({}, {{"DELTATAP_URL", "ws://u:p-secret-2@h/ws?token=q-secret-3"}});
  expect_refused(env, {"DELTATAP_URL", "\"ws://(hidden)@h/ws?token=(hidden)\"", "user info", "token_file"});
  ConfFile conf("[stream]\nurl = wss://u:p-secret-2@h/ws\n");
  auto file = load(conf.args());
  expect_refused(file, {"[stream] url", "\"wss://(hidden)@h/ws\""});
  auto flag = load({"--url=ws://u:p-secret-2/x@h/ws"});  // an unencoded '/' in the password
  expect_refused(flag, {"--url", "\"ws://(hidden)@h/ws\""});
  for (const auto* result : {&env, &file, &flag}) {
    for (auto secret : {"p-secret", "q-secret"}) {
      BOOST_TEST(result->error().find(secret) == std::string::npos, result->error());
    }
  }
  // A stray argument or a config line without "=" quotes its URL redacted too.
  auto stray = load({"ws://u:p-secret-2@h/ws"});
  expect_refused(stray, {"unexpected argument", "(hidden)@h"});
  BOOST_TEST(stray.error().find("p-secret") == std::string::npos, stray.error());
  ConfFile broken("[stream]\nurl ws://u:p-secret-2@h/ws\n");
  auto line = load(broken.args());
  expect_refused(line, {":2:", "(hidden)@h"});
  BOOST_TEST(line.error().find("p-secret") == std::string::npos, line.error());
}

BOOST_AUTO_TEST_CASE(paths_must_name_a_file) {
  // White space alone is no file name (DB_PATH=" " would create a file named " ").
  expect_refused(load({}, {{"DB_PATH", " "}}), {"DB_PATH", "\" \"", "white space"});
  expect_refused(load({"--db", "\t"}), {"--db", "\"\\t\"", "white space"});
  expect_refused(load(ConfFile("[stream]\ntoken_file = \" \"\n").args()),
                 {"[stream] token_file", "white space", "empty for no token file"});
  // ca_file must be a readable regular file: a directory or a FIFO is refused
  // now, not at the first wss:// connect.
  TempDir dir;
  auto ca = [&](const std::string& path) {
    return load(ConfFile("[stream]\nca_file = " + path + "\n").args());
  };
  expect_refused(ca("/"), {"[stream] ca_file", "\"/\"", "directory", "readable regular file"});
  BOOST_REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  expect_refused(ca((dir / "fifo").string()), {"[stream] ca_file", "not a regular file"});
  expect_refused(ca("\" \""), {"[stream] ca_file", "white space"});
  write_file(dir / "ca.pem", "pem\n");
  auto good = ca((dir / "ca.pem").string());
  BOOST_TEST_REQUIRE(good.ok(), why(good));
  BOOST_TEST(good->stream.ca_file == (dir / "ca.pem").string());
}

// Reconciliation (design.md, "Fidelity"): on by default, its URL derived from
// the stream's unless given, both shown by --check-config, bad values refused
// as every key's are.
BOOST_AUTO_TEST_CASE(reconcile_keys_default_show_and_refuse) {
  auto defaults = load({});
  BOOST_TEST_REQUIRE(defaults.ok(), why(defaults));
  BOOST_TEST(defaults->stream.reconcile);
  BOOST_TEST(defaults->stream.reconcile_url == "");
  std::string text = describe_config(*defaults);
  BOOST_TEST(text.find("\nreconcile = on\n") != std::string::npos, text);
  BOOST_TEST(text.find("\nreconcile_url =\n") != std::string::npos, text);
  BOOST_TEST(text.find("# reconcile_url empty: derived from url, http://127.0.0.1:3001/api/sessions\n") !=
                 std::string::npos,
             text);

  ConfFile conf("[stream]\nurl = wss://b.example/ws\nreconcile = off\n"
                "reconcile_url = https://b.example/cr/api/sessions?key=q-secret-1\n");
  auto config = load(conf.args());
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(!config->stream.reconcile);
  BOOST_TEST(config->stream.reconcile_url == "https://b.example/cr/api/sessions?key=q-secret-1");
  std::string shown = describe_config(*config);
  BOOST_TEST(shown.find("\nreconcile = off\n") != std::string::npos, shown);
  BOOST_TEST(shown.find("\nreconcile_url = https://b.example/cr/api/sessions?key=(hidden)\n") !=
                 std::string::npos,
             shown);
  BOOST_TEST(shown.find("q-secret") == std::string::npos, shown);
  BOOST_TEST(shown.find("derived from url") == std::string::npos, shown);

  auto file_value = [](const std::string& line) {
    return load(ConfFile("[stream]\n" + line + "\n").args());
  };
  expect_refused(file_value("reconcile = maybe"),
                 {":2:", "[stream] reconcile", "\"maybe\"", "on, off, true, false, yes, no, 1 or 0"});
  expect_refused(file_value("reconcile_url = ws://b.example/api/sessions"),
                 {":2:", "[stream] reconcile_url", "\"ws://b.example/api/sessions\"", "http:// or https://",
                  "http or https"});
  expect_refused(file_value("reconcile_url = http://b.example/api#top"),
                 {"[stream] reconcile_url", "fragment"});
  expect_refused(file_value("reconcile_url = http://b.example:99999/api"),
                 {"[stream] reconcile_url", "99999"});
  expect_refused(file_value("reconcile_url = /api/sessions"), {"[stream] reconcile_url", "\"/api/sessions\""});
  auto userinfo = file_value("reconcile_url = https://u:p-secret-2@b.example/api?k=q-secret-3");
  expect_refused(userinfo, {"[stream] reconcile_url", "\"https://(hidden)@b.example/api?k=(hidden)\"",
                            "user info"});
  for (auto secret : {"p-secret", "q-secret"}) {
    BOOST_TEST(userinfo.error().find(secret) == std::string::npos, userinfo.error());
  }
  // Empty is the default: derived again.
  auto empty = file_value("reconcile_url =");
  BOOST_TEST_REQUIRE(empty.ok(), why(empty));
  BOOST_TEST(empty->stream.reconcile_url == "");

  // The daemon itself: --check-config shows both, a bad value exits 2 naming it.
  TempDir dir;
  std::map<std::string, std::string> env = {{"DELTATAP_URL", "\x01unset"},
                                            {"DELTATAP_TOKEN", "\x01unset"},
                                            {"CREDENTIALS_DIRECTORY", "\x01unset"}};
  write_file(dir / "good.conf", "[stream]\nurl = ws://[::1]:3001/ws\n");
  auto good = run_command(deltatapd_argv({"--config", (dir / "good.conf").string(), "--check-config"}), env);
  BOOST_TEST(good.exit_code == 0, good.err);
  BOOST_TEST(good.out.find("\nreconcile = on\n") != std::string::npos, good.out);
  BOOST_TEST(good.out.find("derived from url, http://[::1]:3001/api/sessions\n") != std::string::npos, good.out);
  write_file(dir / "bad.conf", "[stream]\nreconcile = maybe\n");
  auto bad = run_command(deltatapd_argv({"--config", (dir / "bad.conf").string(), "--check-config"}), env);
  BOOST_TEST(bad.exit_code == 2, bad.out);
  BOOST_TEST(bad.err.find("[stream] reconcile: \"maybe\" is not a boolean") != std::string::npos, bad.err);
}

BOOST_AUTO_TEST_CASE(archive_keys_parse_and_need_storage) {
  ConfFile on("[storage]\nenabled = on\n[retention]\narchive = on\narchive_days = 365\n");
  auto config = load(on.args());
  BOOST_TEST_REQUIRE(config.ok(), why(config));
  BOOST_TEST(config->retention.archive);
  BOOST_TEST(config->retention.archive_days == 365);
  auto defaults = load({});
  BOOST_TEST_REQUIRE(defaults.ok());
  BOOST_TEST(!defaults->retention.archive);
  BOOST_TEST(defaults->retention.archive_days == 0);
  BOOST_TEST(describe_config(*config).find("archive = on\narchive_days = 365\n") != std::string::npos);

  ConfFile without_storage("[storage]\nenabled = off\n[retention]\narchive = on\n");
  expect_refused(load(without_storage.args()), {"[retention] archive", "[storage] enabled"});
  ConfFile bad("[storage]\nenabled = on\n[retention]\narchive = sometimes\n");
  expect_refused(load(bad.args()), {"archive", "\"sometimes\"", "on or off"});
  ConfFile bad_days("[storage]\nenabled = on\n[retention]\narchive_days = -3\n");
  expect_refused(load(bad_days.args()), {"archive_days", "\"-3\"", ">= 0"});
}
