#include "cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <variant>

#include "api/delta_json.h"
#include "api/http_api.h"
#include "api/metrics.h"
#include "storage/snapshot.h"
#include "storage/store.h"
#include "base/timestamp.h"

namespace deltatap {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr std::string_view kDefaultUrl = "http://127.0.0.1:9477";

// ---------------------------------------------------------------------------
// Usage

constexpr const char* kUsage_ =
    "usage: deltatap [--db PATH | --url URL] [--token T | --token-file F] [--utc | --local]\n"
    "                [--color auto|always|never] COMMAND [OPTIONS]\n"
    "\n"
    "Questions about the session-delta history deltatapd keeps.\n"
    "\n"
    "Where the answers come from:\n"
    "  --db PATH          a snapshot file (e.g. /var/lib/deltatap/data/sessions.sqlite),\n"
    "                     opened read-only; the daemon need not run\n"
    "  --url URL          the running daemon's HTTP API (default " "http://127.0.0.1:9477)\n"
    "  --token T          bearer token when the API has [http] token set\n"
    "  --token-file F     read the token from a file instead\n"
    "\n"
    "Output:\n"
    "  --utc, --local     times in tables in UTC or local time (default local);\n"
    "                     json, ndjson and csv always carry the stored UTC form\n"
    "  --color WHEN       auto (default: only on a terminal, not with NO_COLOR), always, never\n"
    "\n"
    "Commands:\n"
    "  stats              what is stored, file and memory sizes, snapshot state\n"
    "  query              deltas, newest first, filtered by session, type and time\n"
    "  sessions           one line per session: counts by type, first/last seen, status\n"
    "  timeline ID        a session's history with the fields each delta changed\n"
    "  export             the whole history as json, ndjson or csv\n"
    "  cleanup            delete deltas stored before a time\n"
    "  snapshot           make the daemon write its snapshot now (live only)\n"
    "  check              integrity and schema version (file), readiness (live)\n"
    "\n"
    "'deltatap COMMAND --help' describes a command's options.\n"
    "Exit codes: 0 done, 1 the operation failed, 2 usage error.\n";

struct OptionSpec {
  std::string_view name;
  bool takes_value;
};

struct CommandSpec {
  std::string_view name;
  std::vector<OptionSpec> options;
  int positionals;  // exactly this many
  const char* help;
};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> table = {
      {"stats", {{"--format", true}}, 0,
       "usage: deltatap stats [--format table|json]\n"
       "\n"
       "What is stored: delta and session counts, oldest and newest delta, database size in\n"
       "memory and on disk, schema version; live, also the stream connection and the last\n"
       "snapshot. --format json prints GET /api/stats as it is.\n"},
      {"query",
       {{"--session", true}, {"--type", true}, {"--since", true}, {"--until", true},
        {"--limit", true}, {"--before", true}, {"--format", true}},
       0,
       "usage: deltatap query [--session ID] [--type created|updated|deleted]\n"
       "                      [--since TIME] [--until TIME] [--limit N] [--before CURSOR]\n"
       "                      [--format table|json|ndjson|csv]\n"
       "\n"
       "Deltas, newest first (ties by id). Filters combine: --since includes, --until\n"
       "excludes; TIME is ISO 8601 (2025-11-10T12:00:00Z, or with an offset). --limit is\n"
       "1 to 1000 (default 100). When more deltas match, the table ends with the cursor\n"
       "to pass as --before for the next page (json: the \"next\" field).\n"
       "The table's CHANGED column lists the fields an update changed.\n"},
      {"sessions", {{"--format", true}}, 0,
       "usage: deltatap sessions [--format table|json|ndjson|csv]\n"
       "\n"
       "One row per session: deltas by type, first and last seen (delta timestamps), the\n"
       "type of the newest delta and, in the table, the planStatus of its state.\n"},
      {"timeline", {{"--format", true}}, 1,
       "usage: deltatap timeline SESSION_ID [--format text|json]\n"
       "\n"
       "The session's history, oldest first, with the fields each delta changed between\n"
       "before and after, nested paths included:\n"
       "    planStatus: pending → in_progress\n"
       "    metadata.attempt: 3 → 4\n"
       "    + summary: Fix the flaky test        (added)\n"
       "    - approval: pending                  (removed)\n"
       "A created delta lists the fields it set. Numbers print exactly as stored.\n"
       "Put -- before an id that starts with '-'.\n"},
      {"export", {{"--format", true}, {"--out", true}}, 0,
       "usage: deltatap export [--format json|ndjson|csv] [--out FILE]\n"
       "\n"
       "The whole history, newest first (the query order), streamed: json is an array of\n"
       "deltas (default), ndjson one delta per line, csv RFC 4180 with a header line\n"
       "(id,type,sessionId,timestamp,createdAt,before,after; states as JSON text).\n"
       "--out writes FILE atomically (a temporary file renamed at the end), so an\n"
       "interrupted export never leaves a truncated FILE.\n"},
      {"cleanup", {{"--older-than", true}}, 0,
       "usage: deltatap cleanup --older-than 30d|12h|ISO-8601\n"
       "\n"
       "Deletes the deltas stored (created_at) before the given age or time and prints\n"
       "how many went. Units: s, m, h, d, w.\n"
       "Live, the daemon deletes them and its next snapshot carries the change.\n"
       "With --db, the file itself is rewritten atomically (temporary file, fsync,\n"
       "rename). Do that only on a file no daemon is writing: a running deltatapd keeps\n"
       "its own copy in memory and its next snapshot would bring the rows back.\n"},
      {"snapshot", {}, 0,
       "usage: deltatap snapshot\n"
       "\n"
       "Asks the running daemon to write its snapshot file now (like SIGUSR1) and prints\n"
       "the file, its size and how long it took. Needs the live daemon (not --db).\n"},
      {"check", {}, 0,
       "usage: deltatap check\n"
       "\n"
       "With --db: SQLite's integrity check and the schema version of the file (exit 1\n"
       "when the file is damaged or from a newer deltatap). Live: the daemon's readiness\n"
       "(GET /readyz) with its reasons, and the schema version it runs.\n"},
  };
  return table;
}

const CommandSpec* find_command(std::string_view name) {
  for (const auto& spec : commands()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

struct Invocation {
  std::optional<std::string> db, url, token, token_file;
  bool utc = false;
  std::string color = "auto";
  bool help = false, version = false;
  std::string command;
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> options;

  std::optional<std::string> option(std::string_view name) const {
    auto found = options.find(name);
    if (found == options.end()) return std::nullopt;
    return found->second;
  }
};

struct UsageError {
  std::string message;
};

std::variant<Invocation, UsageError> parse_args(const std::vector<std::string>& args) {
  Invocation inv;
  std::set<std::string> seen_globals;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (inv.command.empty()) {
        inv.command = arg;
      } else {
        inv.positionals.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      inv.help = true;
      continue;
    }
    if (arg == "--version") {
      inv.version = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.starts_with("--")) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take_value = [&]() -> std::optional<std::string> {
      if (value) return value;
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    static const std::set<std::string, std::less<>> kGlobalWithValue = {
        "--db", "--url", "--token", "--token-file", "--color"};
    static const std::set<std::string, std::less<>> kGlobalFlags = {"--utc", "--local",
                                                                    "--no-color"};
    if (kGlobalFlags.count(name)) {
      if (value) return UsageError{name + " takes no value"};
      if (name == "--no-color") inv.color = "never";
      else inv.utc = name == "--utc";
      continue;
    }
    if (kGlobalWithValue.count(name)) {
      auto v = take_value();
      if (!v) return UsageError{name + " needs a value"};
      if (!seen_globals.insert(name).second) return UsageError{name + " is given more than once"};
      if (name == "--db") inv.db = *v;
      else if (name == "--url") inv.url = *v;
      else if (name == "--token") inv.token = *v;
      else if (name == "--token-file") inv.token_file = *v;
      else inv.color = *v;
      continue;
    }
    const CommandSpec* spec = find_command(inv.command);
    if (!spec) {
      return UsageError{inv.command.empty() ? "unknown option " + name + " (before any command)"
                                            : "unknown command \"" + inv.command + "\""};
    }
    auto option = std::find_if(spec->options.begin(), spec->options.end(),
                               [&](const OptionSpec& o) { return o.name == name; });
    if (option == spec->options.end()) {
      return UsageError{"unknown option " + name + " for " + inv.command};
    }
    auto v = take_value();
    if (!v) return UsageError{name + " needs a value"};
    if (!inv.options.emplace(name, *v).second) {
      return UsageError{name + " is given more than once"};
    }
  }
  if (inv.color != "auto" && inv.color != "always" && inv.color != "never") {
    return UsageError{"--color must be auto, always or never, not \"" + inv.color + "\""};
  }
  if (inv.db && inv.url) return UsageError{"--db and --url exclude each other"};
  if (inv.token && inv.token_file) return UsageError{"--token and --token-file exclude each other"};
  return inv;
}

// ---------------------------------------------------------------------------
// Percent-encoding for the targets the CLI builds.

std::string encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string with_params(std::string path,
                        const std::vector<std::pair<std::string, std::string>>& params) {
  char separator = '?';
  for (const auto& [name, value] : params) {
    path += separator;
    path += name;
    path += '=';
    path += encode(value);
    separator = '&';
  }
  return path;
}

// ---------------------------------------------------------------------------
// Where answers come from: the file through the API's own handler, or the daemon.

struct Answer {
  int status = 0;
  std::string body;  // empty when streamed into a sink
};

using Sink = std::function<Status(std::string_view)>;

class Source {
 public:
  virtual ~Source() = default;
  // With a sink, a 2xx body goes to it piece by piece; otherwise into Answer::body.
  virtual Result<Answer> fetch(std::string_view method, const std::string& target,
                               const Sink* sink = nullptr) = 0;
};

class FileBackend : public ApiBackend {
 public:
  FileBackend(std::unique_ptr<Store> store, std::string path)
      : store_(std::move(store)), path_(std::move(path)) {}
  Store& store() override { return *store_; }
  StatsExtra stats_extra() override {
    StatsExtra extra;
    extra.enabled = true;
    extra.db_path = path_;
    extra.file_size = file_size(path_);
    return extra;
  }
  std::vector<std::string> not_ready_reasons() override { return {}; }
  void snapshot_now(std::function<void(Status, std::uint64_t, double)> done) override {
    done(Error{"no daemon: snapshot needs the live API (--url)"}, 0, 0);
  }
  Metrics& metrics() override { return metrics_; }

 private:
  std::unique_ptr<Store> store_;
  std::string path_;
  Metrics metrics_;
};

class FileSource : public Source {
 public:
  explicit FileSource(std::unique_ptr<FileBackend> backend)
      : backend_(std::move(backend)), handler_(*backend_, ApiHandler::Options{}) {}

  FileBackend& backend() { return *backend_; }

  Result<Answer> fetch(std::string_view method, const std::string& target,
                       const Sink* sink) override {
    std::optional<ApiReply> reply;
    handler_.handle({std::string(method), target, ""},
                    [&](ApiReply r) { reply = std::move(r); });
    if (!reply) return Error{"internal error: the handler did not answer"};
    Answer answer;
    answer.status = reply->status;
    answer.body = std::move(reply->body);
    if (!reply->next_chunk) {
      if (sink && answer.status / 100 == 2) {
        if (auto s = (*sink)(answer.body); !s.ok()) return Error{s.error()};
        answer.body.clear();
      }
      return answer;
    }
    while (true) {
      auto piece = reply->next_chunk();
      if (!piece.ok()) return Error{piece.error()};
      if (!*piece) break;
      if (sink) {
        if (auto s = (*sink)(**piece); !s.ok()) return Error{s.error()};
      } else {
        answer.body += **piece;
      }
    }
    return answer;
  }

 private:
  std::unique_ptr<FileBackend> backend_;
  ApiHandler handler_;
};

// A small synchronous HTTP/1.1 client. Each step runs as an asynchronous
// operation on a private io_context so the stream's deadlines apply.
class LiveSource : public Source {
 public:
  static Result<std::unique_ptr<LiveSource>> create(const std::string& url, std::string token) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) return Error{"--url " + url + " is not a URL"};
    if (parsed->scheme() != "http") {
      return Error{"--url must be http://HOST:PORT (the API speaks plain HTTP on loopback)"};
    }
    auto source = std::unique_ptr<LiveSource>(new LiveSource);
    source->url_ = url;
    source->host_ = parsed->encoded_host();
    if (source->host_.size() >= 2 && source->host_.front() == '[') {
      source->host_ = source->host_.substr(1, source->host_.size() - 2);
    }
    source->port_ = parsed->has_port() ? std::string(parsed->port()) : "80";
    source->host_header_ = parsed->encoded_host_and_port();
    source->prefix_ = parsed->encoded_path();
    while (!source->prefix_.empty() && source->prefix_.back() == '/') source->prefix_.pop_back();
    source->token_ = std::move(token);
    if (source->host_.empty()) return Error{"--url " + url + " has no host"};
    return source;
  }

  Result<Answer> fetch(std::string_view method, const std::string& target,
                       const Sink* sink) override {
    net::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    auto run = [&io]() {
      io.restart();
      io.run();
    };
    beast::error_code ec;
    tcp::resolver::results_type endpoints;
    resolver.async_resolve(host_, port_, [&](beast::error_code e, tcp::resolver::results_type r) {
      ec = e;
      endpoints = std::move(r);
    });
    run();
    if (ec) return unreachable(ec);
    stream.expires_after(std::chrono::seconds(10));
    stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) return unreachable(ec);

    http::request<http::empty_body> request{http::string_to_verb(method), prefix_ + target, 11};
    request.set(http::field::host, host_header_);
    request.set(http::field::user_agent, "deltatap/" DELTATAP_VERSION);
    if (!token_.empty()) request.set(http::field::authorization, "Bearer " + token_);
    request.keep_alive(false);
    stream.expires_after(std::chrono::seconds(30));
    http::async_write(stream, request, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) return unreachable(ec);

    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    // A snapshot of a large database may take a while; so may the first page.
    stream.expires_after(std::chrono::seconds(120));
    http::async_read_header(stream, buffer, parser,
                            [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) return Error{"reading the answer from " + url_ + ": " + ec.message()};
    Answer answer;
    answer.status = parser.get().result_int();
    bool to_sink = sink && answer.status / 100 == 2;
    std::vector<char> piece(64 * 1024);
    while (!parser.is_done()) {
      parser.get().body().data = piece.data();
      parser.get().body().size = piece.size();
      stream.expires_after(std::chrono::seconds(60));
      http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
      run();
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return Error{"reading the answer from " + url_ + ": " + ec.message()};
      std::string_view got(piece.data(), piece.size() - parser.get().body().size);
      if (to_sink) {
        if (auto s = (*sink)(got); !s.ok()) return Error{s.error()};
      } else {
        answer.body += got;
      }
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return answer;
  }

 private:
  LiveSource() = default;

  Error unreachable(const beast::error_code& ec) const {
    return Error{"cannot reach deltatapd at " + url_ + ": " + ec.message() +
                 " (is it running? for a snapshot file use --db PATH)"};
  }

  std::string url_, host_, port_, host_header_, prefix_, token_;
};

// ---------------------------------------------------------------------------
// Output helpers

struct Style {
  bool colour = false;
  bool utc = false;
  std::string paint(std::string_view text, std::string_view code) const {
    if (!colour || text.empty()) return std::string(text);
    return "\x1b[" + std::string(code) + "m" + std::string(text) + "\x1b[0m";
  }
  std::string_view type_colour(std::string_view type) const {
    if (type == "created") return "32";
    if (type == "deleted") return "31";
    return "33";
  }
};

// A stored (normalised UTC) time as the user asked to see it.
std::string show_time(const std::string& stored, const Style& style) {
  if (style.utc || stored.empty()) return stored;
  auto time = parse_timestamp(stored);
  if (!time.ok()) return stored;
  auto millis = time->time_since_epoch().count();
  std::time_t seconds = static_cast<std::time_t>(millis / 1000 - (millis % 1000 < 0 ? 1 : 0));
  int fraction = static_cast<int>(((millis % 1000) + 1000) % 1000);
  std::tm local{};
  if (!localtime_r(&seconds, &local)) return stored;
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &local);
  long offset = local.tm_gmtoff / 60;
  char sign = offset < 0 ? '-' : '+';
  offset = offset < 0 ? -offset : offset;
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d%c%02ld:%02ld", date, fraction, sign, offset / 60,
                offset % 60);
  return out;
}

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

// Cuts to at most `width` code points, marking the cut.
std::string clip(std::string_view text, std::size_t width) {
  if (display_width(text) <= width) return std::string(text);
  std::string out;
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (count + 1 == width) break;
      ++count;
    }
    out += text[i];
  }
  return out + "…";
}

struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
  // Colour code for a cell, or "" (applied after padding so widths stay right).
  std::function<std::string_view(std::size_t row, std::size_t column)> colour;

  void print(std::ostream& out, const Style& style) const {
    std::vector<std::size_t> widths(headers.size());
    for (std::size_t c = 0; c < headers.size(); ++c) widths[c] = display_width(headers[c]);
    for (const auto& row : rows) {
      for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
        widths[c] = std::max(widths[c], display_width(row[c]));
      }
    }
    auto line = [&](const std::vector<std::string>& cells, std::optional<std::size_t> row) {
      std::string text;
      for (std::size_t c = 0; c < cells.size(); ++c) {
        bool last = c + 1 == cells.size();
        std::string cell = cells[c];
        if (!last) cell += std::string(widths[c] - display_width(cells[c]), ' ');
        std::string_view code = !row ? std::string_view("1") : colour ? colour(*row, c) : "";
        text += code.empty() ? cell : style.paint(cell, code);
        if (!last) text += "  ";
      }
      out << text << '\n';
    };
    line(headers, std::nullopt);
    for (std::size_t r = 0; r < rows.size(); ++r) line(rows[r], r);
  }
};

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char out[64];
  if (unit == 0) std::snprintf(out, sizeof out, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(out, sizeof out, "%.1f %s", value, kUnits[unit]);
  return out;
}

// ---------------------------------------------------------------------------
// JSON states as trees, for field-level changes. Numbers keep their text.

struct JsonNode {
  enum class Kind { null, boolean, number, string, object, array };
  Kind kind = Kind::null;
  std::string text;  // number digits, string value, "true"/"false"
  std::vector<std::pair<std::string, JsonNode>> members;
  std::vector<JsonNode> items;
};

constexpr std::size_t kMaxTreeDepth = 256;

class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  bool Null() { return add({JsonNode::Kind::null, "null"}); }
  bool Bool(bool b) { return add({JsonNode::Kind::boolean, b ? "true" : "false"}); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return add({JsonNode::Kind::number, std::string(text, length)});
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return add({JsonNode::Kind::string, std::string(text, length)});
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    keys_.emplace_back(text, length);
    return true;
  }
  bool StartObject() { return open(JsonNode::Kind::object); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return open(JsonNode::Kind::array); }
  bool EndArray(rapidjson::SizeType) { return close(); }

  JsonNode take() { return std::move(root_); }

 private:
  bool open(JsonNode::Kind kind) {
    if (stack_.size() >= kMaxTreeDepth) return false;
    stack_.push_back(JsonNode{kind, {}, {}, {}});
    return true;
  }
  bool close() {
    JsonNode done = std::move(stack_.back());
    stack_.pop_back();
    return add(std::move(done));
  }
  bool add(JsonNode node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return true;
    }
    auto& parent = stack_.back();
    if (parent.kind == JsonNode::Kind::object) {
      parent.members.emplace_back(std::move(keys_.back()), std::move(node));
      keys_.pop_back();
    } else {
      parent.items.push_back(std::move(node));
    }
    return true;
  }

  std::vector<JsonNode> stack_;
  std::vector<std::string> keys_;
  JsonNode root_;
};

std::optional<JsonNode> parse_tree(std::string_view text) {
  rapidjson::MemoryStream bytes(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
  TreeBuilder builder;
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseValidateEncodingFlag;
  if (reader.Parse<kFlags>(in, builder).IsError()) return std::nullopt;
  return builder.take();
}

const JsonNode* member(const JsonNode& object, std::string_view key) {
  for (const auto& [name, value] : object.members) {
    if (name == key) return &value;
  }
  return nullptr;
}

bool same(const JsonNode& a, const JsonNode& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case JsonNode::Kind::object: {
      if (a.members.size() != b.members.size()) return false;
      for (const auto& [key, value] : a.members) {
        auto other = member(b, key);
        if (!other || !same(value, *other)) return false;
      }
      return true;
    }
    case JsonNode::Kind::array:
      if (a.items.size() != b.items.size()) return false;
      for (std::size_t i = 0; i < a.items.size(); ++i) {
        if (!same(a.items[i], b.items[i])) return false;
      }
      return true;
    default:
      return a.text == b.text;
  }
}

void append_compact(std::string& out, const JsonNode& node) {
  switch (node.kind) {
    case JsonNode::Kind::string: append_json_string(out, node.text); break;
    case JsonNode::Kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : node.members) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        append_compact(out, value);
      }
      out += '}';
      break;
    }
    case JsonNode::Kind::array: {
      out += '[';
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        if (i) out += ',';
        append_compact(out, node.items[i]);
      }
      out += ']';
      break;
    }
    default: out += node.text;
  }
}

// A value for people: a string bare when that cannot be mistaken for anything
// else, JSON otherwise.
std::string show_value(const JsonNode& node) {
  if (node.kind == JsonNode::Kind::string) {
    const std::string& s = node.text;
    bool plain = !s.empty() && s.front() != ' ' && s.back() != ' ' && s != "true" &&
                 s != "false" && s != "null" && s.find(" → ") == std::string::npos &&
                 std::none_of(s.begin(), s.end(), [](char c) {
                   return static_cast<unsigned char>(c) < 0x20 || c == '"';
                 });
    if (plain) {
      double ignored;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), ignored);
      if (ec == std::errc() && end == s.data() + s.size()) plain = false;
    }
    if (plain) return s;
  }
  std::string out;
  append_compact(out, node);
  return out;
}

std::string path_join(const std::string& path, const std::string& key) {
  bool simple = !key.empty() && !(key[0] >= '0' && key[0] <= '9') &&
                std::all_of(key.begin(), key.end(), [](char c) {
                  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '$';
                });
  if (simple) return path.empty() ? key : path + "." + key;
  std::string quoted;
  append_json_string(quoted, key);
  return path + "[" + quoted + "]";
}

struct Change {
  enum class Op { changed, added, removed };
  Op op;
  std::string path;
  const JsonNode* before = nullptr;
  const JsonNode* after = nullptr;
};

// Objects are compared key by key (nested paths); anything else, arrays
// included, as a whole value.
void diff(const std::string& path, const JsonNode& a, const JsonNode& b,
          std::vector<Change>& changes) {
  if (a.kind == JsonNode::Kind::object && b.kind == JsonNode::Kind::object) {
    for (const auto& [key, value] : a.members) {
      auto other = member(b, key);
      if (!other) changes.push_back({Change::Op::removed, path_join(path, key), &value, nullptr});
      else diff(path_join(path, key), value, *other, changes);
    }
    for (const auto& [key, value] : b.members) {
      if (!member(a, key)) {
        changes.push_back({Change::Op::added, path_join(path, key), nullptr, &value});
      }
    }
    return;
  }
  if (!same(a, b)) changes.push_back({Change::Op::changed, path.empty() ? "(state)" : path, &a, &b});
}

// Every leaf of a state as added (a created delta).
void leaves(const std::string& path, const JsonNode& node, std::vector<Change>& changes) {
  if (node.kind == JsonNode::Kind::object && !node.members.empty()) {
    for (const auto& [key, value] : node.members) leaves(path_join(path, key), value, changes);
    return;
  }
  changes.push_back({Change::Op::added, path.empty() ? "(state)" : path, nullptr, &node});
}

struct DeltaChanges {
  std::optional<JsonNode> before, after;
  std::vector<Change> changes;
  bool unreadable = false;
};

// Filled in place: the changes point into the trees it owns.
void compute_changes(const StoredDelta& row, DeltaChanges& out) {
  if (row.delta.before) {
    out.before = parse_tree(*row.delta.before);
    if (!out.before) out.unreadable = true;
  }
  if (row.delta.after) {
    out.after = parse_tree(*row.delta.after);
    if (!out.after) out.unreadable = true;
  }
  if (out.unreadable) return;
  if (out.before && out.after) diff("", *out.before, *out.after, out.changes);
  else if (out.after && row.delta.type == DeltaType::created) leaves("", *out.after, out.changes);
}

// ---------------------------------------------------------------------------
// Commands

struct Context {
  const CliIo& io;
  const Invocation& inv;
  Style style;
  Source* source = nullptr;
  FileSource* file = nullptr;  // set offline
  std::string where;           // the file or URL, for messages
};

int fail(const Context& ctx, std::string_view message) {
  ctx.io.err << "deltatap: " << message << '\n';
  return kFailed;
}

int usage(const CliIo& io, std::string_view message) {
  io.err << "deltatap: " << message << "\n(see deltatap --help)\n";
  return kUsage;
}

// An error answer from the API: 400 means the user's input was wrong (usage).
int api_error(const Context& ctx, const Answer& answer) {
  std::string error = "HTTP " + std::to_string(answer.status);
  std::string detail;
  if (auto members = raw_object_members(answer.body); members.ok()) {
    for (const auto& m : *members) {
      if (m.key == "error") error = decode_json_string(m.value).value_or(error);
      if (m.key == "detail") detail = decode_json_string(m.value).value_or("");
    }
  }
  ctx.io.err << "deltatap: " << error << (detail.empty() ? "" : ": ") << detail << '\n';
  return answer.status == 400 ? kUsage : kFailed;
}

// Fetches and checks for a 2xx; nullopt after the error was reported (`code` set).
std::optional<Answer> get_ok(const Context& ctx, std::string_view method, const std::string& target,
                             int& code, const Sink* sink = nullptr) {
  auto answer = ctx.source->fetch(method, target, sink);
  if (!answer.ok()) {
    code = fail(ctx, answer.error());
    return std::nullopt;
  }
  if (answer->status / 100 != 2) {
    code = api_error(ctx, *answer);
    return std::nullopt;
  }
  return std::move(answer.value());
}

std::optional<std::string> check_format(const Context& ctx, std::initializer_list<std::string_view> allowed,
                                        std::string_view fallback, int& code) {
  std::string format = ctx.inv.option("--format").value_or(std::string(fallback));
  if (std::find(allowed.begin(), allowed.end(), format) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    code = usage(ctx.io, "--format for " + ctx.inv.command + " must be one of " + list +
                             ", not \"" + format + "\"");
    return std::nullopt;
  }
  return format;
}

int cmd_stats(Context& ctx) {
  int code = kOk;
  auto format = check_format(ctx, {"table", "json"}, "table", code);
  if (!format) return code;
  auto answer = get_ok(ctx, "GET", "/api/stats", code);
  if (!answer) return code;
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kOk;
  }
  auto members = raw_object_members(answer->body);
  if (!members.ok()) return fail(ctx, "unreadable stats: " + members.error());
  static const std::vector<std::pair<std::string_view, std::string_view>> kLabels = {
      {"enabled", "Storage enabled"}, {"dbPath", "Database file"}, {"fileSize", "File size"},
      {"deltaCount", "Deltas"}, {"sessionCount", "Sessions"}, {"oldest", "Oldest delta"},
      {"newest", "Newest delta"}, {"memoryBytes", "Memory"}, {"schemaVersion", "Schema version"},
      {"rejectedCount", "Rejected messages"}, {"rejectedEvicted", "Rejected, evicted"},
      {"streamEvents", "Stream events"}, {"connected", "Stream connected"},
      {"streamUrl", "Stream URL"}, {"lastSnapshotAt", "Last snapshot"},
      {"lastSnapshotError", "Last snapshot error"}, {"journalBytes", "Journal"},
      {"startedAt", "Started"}};
  Table table;
  table.headers = {"WHAT", "VALUE"};
  for (const auto& [key, label] : kLabels) {
    auto found = std::find_if(members->begin(), members->end(),
                              [&](const RawMember& m) { return m.key == key; });
    if (found == members->end() || found->value == "null") continue;
    std::string value;
    if (!found->value.empty() && found->value.front() == '"') {
      value = decode_json_string(found->value).value_or(std::string(found->value));
      if (key == "oldest" || key == "newest" || key == "lastSnapshotAt" || key == "startedAt") {
        value = show_time(value, ctx.style);
      }
    } else {
      value = std::string(found->value);
      if (key == "fileSize" || key == "memoryBytes" || key == "journalBytes") {
        std::uint64_t bytes = 0;
        std::from_chars(value.data(), value.data() + value.size(), bytes);
        value = human_bytes(bytes) + " (" + value + " bytes)";
      }
      if (value == "true") value = "yes";
      if (value == "false") value = "no";
    }
    table.rows.push_back({std::string(label), value});
  }
  table.colour = [&](std::size_t row, std::size_t column) -> std::string_view {
    if (column == 1 && table.rows[row][0] == "Last snapshot error") return "31";
    return "";
  };
  table.print(ctx.io.out, ctx.style);
  return kOk;
}

std::string changed_fields(const StoredDelta& row) {
  if (row.delta.type != DeltaType::updated) return "";
  DeltaChanges changes;
  compute_changes(row, changes);
  if (changes.unreadable) return "(state is not JSON)";
  std::string out;
  for (const auto& change : changes.changes) {
    if (!out.empty()) out += ", ";
    out += change.op == Change::Op::added     ? "+"
           : change.op == Change::Op::removed ? "-"
                                              : "";
    out += change.path;
  }
  return clip(out.empty() ? "(no field changed)" : out, 60);
}

void print_deltas(const Context& ctx, const std::vector<StoredDelta>& deltas,
                  std::string_view format) {
  std::string out;
  if (format == "ndjson") {
    for (const auto& row : deltas) {
      append_delta_json(out, row);
      out += '\n';
    }
  } else if (format == "csv") {
    out += kDeltaCsvHeader;
    for (const auto& row : deltas) append_delta_csv(out, row);
  } else {
    Table table;
    table.headers = {"ID", "TIME", "TYPE", "SESSION", "CHANGED"};
    for (const auto& row : deltas) {
      table.rows.push_back({std::to_string(row.id), show_time(row.delta.timestamp, ctx.style),
                            std::string(to_string(row.delta.type)), row.delta.session_id,
                            changed_fields(row)});
    }
    table.colour = [&](std::size_t r, std::size_t c) -> std::string_view {
      return c == 2 ? ctx.style.type_colour(table.rows[r][2]) : "";
    };
    table.print(ctx.io.out, ctx.style);
    return;
  }
  ctx.io.out << out;
}

int cmd_query(Context& ctx) {
  int code = kOk;
  auto format = check_format(ctx, {"table", "json", "ndjson", "csv"}, "table", code);
  if (!format) return code;
  std::vector<std::pair<std::string, std::string>> params;
  for (auto [option, param] : {std::pair{"--session", "sessionId"}, std::pair{"--type", "type"},
                               std::pair{"--since", "since"}, std::pair{"--until", "until"},
                               std::pair{"--limit", "limit"}, std::pair{"--before", "before"}}) {
    if (auto value = ctx.inv.option(option)) params.emplace_back(param, *value);
  }
  auto answer = get_ok(ctx, "GET", with_params("/api/deltas", params), code);
  if (!answer) return code;
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kOk;
  }
  auto page = parse_delta_page_json(answer->body);
  if (!page.ok()) return fail(ctx, "unreadable answer: " + page.error());
  print_deltas(ctx, page->deltas, *format);
  if (*format == "table") {
    if (page->deltas.empty()) ctx.io.err << "(no deltas match)\n";
    if (page->next) ctx.io.err << "(more: --before " << *page->next << ")\n";
  }
  return kOk;
}

std::string plan_status(const std::optional<std::string>& state) {
  if (!state) return "";
  auto tree = parse_tree(*state);
  if (!tree || tree->kind != JsonNode::Kind::object) return "";
  auto status = member(*tree, "planStatus");
  return status ? show_value(*status) : "";
}

int cmd_sessions(Context& ctx) {
  int code = kOk;
  auto format = check_format(ctx, {"table", "json", "ndjson", "csv"}, "table", code);
  if (!format) return code;
  auto answer = get_ok(ctx, "GET", "/api/sessions", code);
  if (!answer) return code;
  if (*format == "json") {
    ctx.io.out << answer->body << '\n';
    return kOk;
  }
  auto rows = parse_sessions_json(answer->body);
  if (!rows.ok()) return fail(ctx, "unreadable answer: " + rows.error());
  std::string out;
  if (*format == "ndjson") {
    for (const auto& row : *rows) {
      append_session_json(out, row);
      out += '\n';
    }
  } else if (*format == "csv") {
    out += kSessionCsvHeader;
    for (const auto& row : *rows) append_session_csv(out, row);
  } else {
    Table table;
    table.headers = {"SESSION", "CREATED", "UPDATED", "DELETED", "FIRST SEEN", "LAST SEEN",
                     "LAST", "STATUS"};
    for (const auto& row : *rows) {
      table.rows.push_back({row.session_id, std::to_string(row.created),
                            std::to_string(row.updated), std::to_string(row.deleted),
                            show_time(row.first_seen, ctx.style),
                            show_time(row.last_seen, ctx.style), row.last_type,
                            plan_status(row.last_state)});
    }
    table.colour = [&](std::size_t r, std::size_t c) -> std::string_view {
      return c == 6 ? ctx.style.type_colour(table.rows[r][6]) : "";
    };
    table.print(ctx.io.out, ctx.style);
    if (rows->empty()) ctx.io.err << "(no sessions stored)\n";
    return kOk;
  }
  ctx.io.out << out;
  return kOk;
}

int cmd_timeline(Context& ctx) {
  int code = kOk;
  auto format = check_format(ctx, {"text", "json"}, "text", code);
  if (!format) return code;
  const std::string& session = ctx.inv.positionals.at(0);
  // The whole history, page by page (newest first), then oldest first.
  std::vector<StoredDelta> history;
  std::optional<std::string> cursor;
  do {
    std::vector<std::pair<std::string, std::string>> params = {
        {"limit", std::to_string(kMaxQueryLimit)}};
    if (cursor) params.emplace_back("before", *cursor);
    auto answer = get_ok(ctx, "GET", with_params("/api/deltas/" + encode(session), params), code);
    if (!answer) return code;
    auto page = parse_delta_page_json(answer->body);
    if (!page.ok()) return fail(ctx, "unreadable answer: " + page.error());
    for (auto& row : page->deltas) history.push_back(std::move(row));
    cursor = page->next;
  } while (cursor);
  std::reverse(history.begin(), history.end());
  if (history.empty()) return fail(ctx, "no deltas stored for session \"" + session + "\"");

  std::string out;
  if (*format == "json") {
    out = "{\"sessionId\":";
    append_json_string(out, session);
    out += ",\"deltas\":[";
    for (std::size_t i = 0; i < history.size(); ++i) {
      const auto& row = history[i];
      DeltaChanges changes;
      compute_changes(row, changes);
      if (i) out += ',';
      out += "{\"id\":" + std::to_string(row.id) + ",\"type\":";
      append_json_string(out, to_string(row.delta.type));
      out += ",\"timestamp\":";
      append_json_string(out, row.delta.timestamp);
      out += ",\"createdAt\":";
      append_json_string(out, row.created_at);
      out += ",\"changes\":[";
      for (std::size_t k = 0; k < changes.changes.size(); ++k) {
        const auto& change = changes.changes[k];
        if (k) out += ',';
        out += "{\"op\":";
        append_json_string(out, change.op == Change::Op::changed ? "changed"
                                : change.op == Change::Op::added ? "added"
                                                                 : "removed");
        out += ",\"path\":";
        append_json_string(out, change.path);
        if (change.before) {
          out += ",\"before\":";
          append_compact(out, *change.before);
        }
        if (change.after) {
          out += ",\"after\":";
          append_compact(out, *change.after);
        }
        out += '}';
      }
      out += "]}";
    }
    out += "]}\n";
    ctx.io.out << out;
    return kOk;
  }

  const Style& style = ctx.style;
  out += style.paint("Session " + session, "1") + ": " + std::to_string(history.size()) +
         (history.size() == 1 ? " delta" : " deltas") + ", " +
         show_time(history.front().delta.timestamp, style) + " to " +
         show_time(history.back().delta.timestamp, style) + "\n";
  for (const auto& row : history) {
    std::string type(to_string(row.delta.type));
    out += show_time(row.delta.timestamp, style) + "  " +
           style.paint(type, style.type_colour(type)) +
           std::string(8 - type.size(), ' ') + style.paint("#" + std::to_string(row.id), "2") +
           "\n";
    DeltaChanges changes;
    compute_changes(row, changes);
    if (changes.unreadable) {
      out += "    (a state is not valid JSON)\n";
      continue;
    }
    if (row.delta.type == DeltaType::deleted) {
      out += "    (session deleted)\n";
      continue;
    }
    if (changes.changes.empty()) out += "    (no field changed)\n";
    for (const auto& change : changes.changes) {
      switch (change.op) {
        case Change::Op::changed:
          out += "    " + change.path + ": " + clip(show_value(*change.before), 100) + " → " +
                 clip(show_value(*change.after), 100) + "\n";
          break;
        case Change::Op::added:
          out += "    " + style.paint("+ " + change.path, "32") + ": " +
                 clip(show_value(*change.after), 160) + "\n";
          break;
        case Change::Op::removed:
          out += "    " + style.paint("- " + change.path, "31") + ": " +
                 clip(show_value(*change.before), 160) + "\n";
          break;
      }
    }
  }
  ctx.io.out << out;
  return kOk;
}

int cmd_export(Context& ctx) {
  int code = kOk;
  auto format = check_format(ctx, {"json", "ndjson", "csv"}, "json", code);
  if (!format) return code;
  std::string target = with_params("/api/export", {{"format", *format}});
  auto out_path = ctx.inv.option("--out");
  if (!out_path) {
    Sink sink = [&](std::string_view piece) -> Status {
      ctx.io.out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      if (!ctx.io.out) return Error{"writing to standard output failed"};
      return ok_status();
    };
    if (!get_ok(ctx, "GET", target, code, &sink)) return code;
    return kOk;
  }
  // A temporary file beside the target, renamed over it only when complete.
  std::filesystem::path final_path(*out_path);
  std::string temp = (final_path.parent_path().empty() ? std::filesystem::path(".")
                                                       : final_path.parent_path()) /
                     ("." + final_path.filename().string() + ".partial-XXXXXX");
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return fail(ctx, "cannot create a file beside " + *out_path + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  std::uint64_t written = 0;
  Sink sink = [&](std::string_view piece) -> Status {
    while (!piece.empty()) {
      auto n = ::write(fd, piece.data(), piece.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error{"writing " + temp + ": " + std::strerror(errno)};
      }
      piece.remove_prefix(static_cast<std::size_t>(n));
      written += static_cast<std::uint64_t>(n);
    }
    return ok_status();
  };
  auto answer = get_ok(ctx, "GET", target, code, &sink);
  bool ok = answer.has_value() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), out_path->c_str()) != 0) {
    std::string reason = ok ? std::string(std::strerror(errno)) : "";
    ::unlink(temp.c_str());
    if (!answer) return code;
    return fail(ctx, "cannot write " + *out_path + ": " + reason);
  }
  ctx.io.err << "deltatap: wrote " << *out_path << " (" << human_bytes(written) << ")\n";
  return kOk;
}

int cmd_cleanup(Context& ctx) {
  auto older_than = ctx.inv.option("--older-than");
  if (!older_than) return usage(ctx.io, "cleanup needs --older-than 30d|ISO-8601");
  int code = kOk;
  auto answer =
      get_ok(ctx, "POST", with_params("/api/cleanup", {{"olderThan", *older_than}}), code);
  if (!answer) return code;
  auto members = raw_object_members(answer->body);
  if (!members.ok()) return fail(ctx, "unreadable answer: " + members.error());
  std::string deleted = "?", cutoff;
  for (const auto& m : *members) {
    if (m.key == "deleted") deleted = std::string(m.value);
    if (m.key == "olderThan") cutoff = decode_json_string(m.value).value_or("");
  }
  if (ctx.file && deleted != "0") {
    auto image = ctx.file->backend().store().serialize();
    if (!image.ok()) return fail(ctx, "serializing the database: " + image.error());
    if (auto s = write_snapshot_file(ctx.where, image->view()); !s.ok()) {
      return fail(ctx, "rewriting " + ctx.where + ": " + s.error());
    }
  }
  ctx.io.out << "deleted " << deleted << (deleted == "1" ? " delta" : " deltas")
             << " stored before " << show_time(cutoff, ctx.style)
             << (ctx.file && deleted != "0" ? " (" + ctx.where + " rewritten)" : "") << '\n';
  return kOk;
}

int cmd_snapshot(Context& ctx) {
  if (ctx.file) {
    return usage(ctx.io, "snapshot asks the running daemon; it cannot work on a file (--db)");
  }
  int code = kOk;
  auto answer = get_ok(ctx, "POST", "/api/snapshot", code);
  if (!answer) return code;
  auto members = raw_object_members(answer->body);
  if (!members.ok()) return fail(ctx, "unreadable answer: " + members.error());
  std::string path, bytes = "0", seconds = "0";
  for (const auto& m : *members) {
    if (m.key == "path") path = decode_json_string(m.value).value_or("");
    if (m.key == "bytes") bytes = std::string(m.value);
    if (m.key == "seconds") seconds = std::string(m.value);
  }
  std::uint64_t size = 0;
  std::from_chars(bytes.data(), bytes.data() + bytes.size(), size);
  ctx.io.out << "snapshot written: " << path << ", " << human_bytes(size) << " in " << seconds
             << " s\n";
  return kOk;
}

// The schema version a file declares (PRAGMA user_version: bytes 60-63 of the
// header), read without letting SQLite migrate anything.
std::optional<std::uint32_t> file_schema_version(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[100];
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return std::nullopt;
  return (std::uint32_t{header[60]} << 24) | (std::uint32_t{header[61]} << 16) |
         (std::uint32_t{header[62]} << 8) | std::uint32_t{header[63]};
}

int cmd_check(Context& ctx) {
  if (ctx.file) {
    auto& store = ctx.file->backend().store();
    auto integrity = store.check();
    auto version = file_schema_version(ctx.where);
    auto counts = store.counts();
    bool ok = integrity.ok() && *integrity == "ok";
    ctx.io.out << "file:           " << ctx.where << '\n';
    ctx.io.out << "integrity:      "
               << (integrity.ok() ? *integrity : "check failed: " + integrity.error()) << '\n';
    ctx.io.out << "schema version: " << (version ? std::to_string(*version) : "unknown");
    if (version && *version == static_cast<std::uint32_t>(kSchemaVersion)) {
      ctx.io.out << " (current)\n";
    } else if (version && *version == 0) {
      ctx.io.out << " (the domain document's schema; deltatapd migrates it on load)\n";
    } else {
      ctx.io.out << '\n';
    }
    ctx.io.out << "deltas:         " << counts.deltas << '\n';
    if (!ok) return fail(ctx, ctx.where + " is damaged");
    return kOk;
  }
  auto ready = ctx.source->fetch("GET", "/readyz");
  if (!ready.ok()) return fail(ctx, ready.error());
  if (ready->status != 200 && ready->status != 503) return api_error(ctx, *ready);
  ctx.io.out << "daemon:         " << ctx.where << '\n';
  ctx.io.out << "ready:          " << (ready->status == 200 ? "yes" : "no") << '\n';
  if (auto members = raw_object_members(ready->body); members.ok()) {
    for (const auto& m : *members) {
      if (m.key != "reasons") continue;
      // Reasons are strings; show each on its own line.
      std::string_view list = m.value;
      std::size_t i = 0;
      while ((i = list.find('"', i)) != std::string_view::npos) {
        std::size_t end = i + 1;
        while (end < list.size() && list[end] != '"') end += list[end] == '\\' ? 2 : 1;
        auto reason = decode_json_string(list.substr(i, end - i + 1));
        if (reason.ok()) ctx.io.out << "  reason:       " << *reason << '\n';
        i = end + 1;
      }
    }
  }
  int code = kOk;
  auto stats = get_ok(ctx, "GET", "/api/stats", code);
  if (!stats) return code;
  if (auto members = raw_object_members(stats->body); members.ok()) {
    for (const auto& m : *members) {
      if (m.key == "schemaVersion") ctx.io.out << "schema version: " << m.value << '\n';
    }
  }
  return ready->status == 200 ? kOk : kFailed;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, const CliIo& io) {
  auto parsed = parse_args(args);
  if (auto* error = std::get_if<UsageError>(&parsed)) return usage(io, error->message);
  const Invocation& inv = std::get<Invocation>(parsed);
  if (inv.version) {
    io.out << "deltatap " << DELTATAP_VERSION << '\n';
    return kOk;
  }
  if (inv.command.empty() || inv.command == "help") {
    if (inv.command == "help" && !inv.positionals.empty()) {
      const CommandSpec* spec = find_command(inv.positionals[0]);
      if (!spec) return usage(io, "unknown command \"" + inv.positionals[0] + "\"");
      io.out << spec->help;
      return kOk;
    }
    if (inv.help || inv.command == "help") {
      io.out << kUsage_;
      return kOk;
    }
    io.err << kUsage_;
    return kUsage;
  }
  const CommandSpec* spec = find_command(inv.command);
  if (!spec) return usage(io, "unknown command \"" + inv.command + "\"");
  if (inv.help) {
    io.out << spec->help;
    return kOk;
  }
  if (static_cast<int>(inv.positionals.size()) != spec->positionals) {
    return usage(io, spec->positionals == 0
                         ? inv.command + " takes no arguments, got \"" + inv.positionals[0] + "\""
                         : inv.command + " needs exactly one SESSION_ID");
  }

  Context ctx{io, inv};
  ctx.style.utc = inv.utc;
  ctx.style.colour =
      inv.color == "always" || (inv.color == "auto" && io.out_is_terminal && !io.no_color);

  std::unique_ptr<Source> source;
  if (inv.db) {
    if (inv.command == "snapshot") {
      return usage(io, "snapshot asks the running daemon; it cannot work on a file (--db)");
    }
    ctx.where = *inv.db;
    struct stat info {};
    if (::stat(inv.db->c_str(), &info) != 0) {
      ctx.io.err << "deltatap: cannot open " << *inv.db << ": " << std::strerror(errno) << '\n';
      return kFailed;
    }
    // cleanup changes the database, so it works on a private in-memory copy
    // that is then written back atomically; everything else reads the file.
    Result<std::unique_ptr<Store>> store = Error{""};
    if (inv.command == "cleanup") {
      auto bytes = read_snapshot_file(*inv.db);
      if (!bytes.ok()) return fail(ctx, bytes.error());
      if (!*bytes) return fail(ctx, *inv.db + " does not exist");
      store = Store::load(**bytes);
    } else {
      store = Store::open_readonly(*inv.db);
    }
    if (!store.ok()) return fail(ctx, *inv.db + ": " + store.error());
    auto file = std::make_unique<FileSource>(
        std::make_unique<FileBackend>(std::move(store.value()), *inv.db));
    ctx.file = file.get();
    source = std::move(file);
  } else {
    std::string token = inv.token.value_or("");
    if (inv.token_file) {
      std::ifstream in(*inv.token_file);
      if (!in) return fail(ctx, "cannot read --token-file " + *inv.token_file);
      std::getline(in, token);
      while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    }
    ctx.where = inv.url.value_or(std::string(kDefaultUrl));
    auto live = LiveSource::create(ctx.where, token);
    if (!live.ok()) return usage(io, live.error());
    source = std::move(live.value());
  }
  ctx.source = source.get();

  if (inv.command == "stats") return cmd_stats(ctx);
  if (inv.command == "query") return cmd_query(ctx);
  if (inv.command == "sessions") return cmd_sessions(ctx);
  if (inv.command == "timeline") return cmd_timeline(ctx);
  if (inv.command == "export") return cmd_export(ctx);
  if (inv.command == "cleanup") return cmd_cleanup(ctx);
  if (inv.command == "snapshot") return cmd_snapshot(ctx);
  return cmd_check(ctx);
}

}  // namespace deltatap
