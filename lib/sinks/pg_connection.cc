#include "sinks/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

namespace deltatap {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSlice = std::chrono::milliseconds(100);

// libpq's messages end in a newline and may carry a second line (DETAIL):
// one line for the log.
std::string one_line(std::string_view message) {
  std::string out;
  for (char c : message) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  // Runs of spaces from the replaced line breaks collapse to one.
  out.erase(std::unique(out.begin(), out.end(), [](char a, char b) { return a == ' ' && b == ' '; }),
            out.end());
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? std::string("unknown libpq error") : out;
}

struct ConninfoOptions {
  PQconninfoOption* options = nullptr;
  ~ConninfoOptions() {
    if (options) PQconninfoFree(options);
  }
};

Result<PQconninfoOption*> parse(std::string_view url, ConninfoOptions& holder) {
  char* error = nullptr;
  holder.options = PQconninfoParse(std::string(url).c_str(), &error);
  if (!holder.options) {
    std::string text = error ? one_line(error) : "out of memory";
    if (error) PQfreemem(error);
    return Error{"invalid PostgreSQL connection string: " + text};
  }
  return holder.options;
}

}  // namespace

Result<std::string> display_conninfo(std::string_view url) {
  ConninfoOptions holder;
  auto options = parse(url, holder);
  if (!options.ok()) return Error{options.error()};
  std::string out;
  for (auto* o = *options; o->keyword; ++o) {
    std::string_view key = o->keyword;
    if (!o->val || !*o->val) continue;
    if (key != "host" && key != "hostaddr" && key != "port" && key != "dbname" && key != "user") {
      continue;
    }
    if (!out.empty()) out += ' ';
    out += std::string(key) + "=" + o->val;
  }
  return out.empty() ? std::string("(libpq defaults)") : out;
}

std::string redact_conninfo(std::string_view url) {
  ConninfoOptions holder;
  auto options = parse(url, holder);
  if (!options.ok()) return "(hidden: not a usable connection string)";
  std::string out;
  for (auto* o = *options; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string_view key = o->keyword;
    std::string value = key == "password" ? "(hidden)" : o->val;
    if (!out.empty()) out += ' ';
    out += std::string(key) + "=";
    bool plain = !value.empty() && value.find_first_of(" '\\\t\n") == std::string::npos;
    if (plain) {
      out += value;
      continue;
    }
    out += '\'';
    for (char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
  }
  return out;
}

PgResult::PgResult(pg_result* result) : result_(result) {}
void PgResult::Clear::operator()(pg_result* r) const { PQclear(r); }
int PgResult::rows() const { return result_ ? PQntuples(result_.get()) : 0; }
std::string PgResult::text(int row, int column) const {
  if (!result_ || PQgetisnull(result_.get(), row, column)) return {};
  return PQgetvalue(result_.get(), row, column);
}

std::int64_t PgResult::affected() const {
  if (!result_) return 0;
  const char* text = PQcmdTuples(result_.get());
  return text && *text ? std::stoll(text) : 0;
}

Result<std::unique_ptr<PgConnection>> PgConnection::connect(const PgConnectOptions& options,
                                                            const std::atomic<bool>& stop) {
  ConninfoOptions holder;
  auto parsed = parse(options.url, holder);
  if (!parsed.ok()) return Error{parsed.error()};
  // Everything the URL set, then ours over it (the password only when given).
  std::vector<std::string> keys, values;
  auto set = [&](std::string key, std::string value) {
    auto found = std::find(keys.begin(), keys.end(), key);
    if (found != keys.end()) {
      values[found - keys.begin()] = std::move(value);
    } else {
      keys.push_back(std::move(key));
      values.push_back(std::move(value));
    }
  };
  for (auto* o = *parsed; o->keyword; ++o) {
    if (o->val && *o->val) set(o->keyword, o->val);
  }
  if (!options.password.empty()) set("password", options.password);
  set("client_encoding", "UTF8");
  set("application_name", options.application_name);
  std::vector<const char*> key_ptrs, value_ptrs;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    key_ptrs.push_back(keys[i].c_str());
    value_ptrs.push_back(values[i].c_str());
  }
  key_ptrs.push_back(nullptr);
  value_ptrs.push_back(nullptr);
  pg_conn* conn = PQconnectStartParams(key_ptrs.data(), value_ptrs.data(), 0);
  if (!conn) return Error{"out of memory starting a PostgreSQL connection"};
  std::unique_ptr<PgConnection> connection(new PgConnection(conn, stop));
  if (PQstatus(conn) == CONNECTION_BAD) return Error{one_line(PQerrorMessage(conn))};
  // libpq applies the URL's connect_timeout only to its blocking calls; here
  // it is ours to apply (else options.connect_timeout).
  auto timeout = std::chrono::milliseconds(options.connect_timeout);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] != "connect_timeout") continue;
    int seconds = std::atoi(values[i].c_str());
    if (seconds > 0) timeout = std::chrono::seconds(std::max(seconds, 2));
  }
  auto deadline = Clock::now() + timeout;
  // PQconnectPoll's protocol: start as if it asked for writing.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) return Error{one_line(PQerrorMessage(conn))};
    if (auto s = connection->wait(state == PGRES_POLLING_WRITING, deadline); !s.ok()) {
      return Error{s.error() == "stopped" ? s.error() : "connecting: " + s.error()};
    }
    state = PQconnectPoll(conn);
  }
  if (PQsetnonblocking(conn, 1) != 0) return Error{one_line(PQerrorMessage(conn))};
  // NOTICEs ("relation … already exists, skipping") would go to stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return connection;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Error PgConnection::fail(std::string message) {
  broken_ = true;
  return Error{std::move(message)};
}

Status PgConnection::wait(bool for_write, Deadline deadline) {
  int fd = PQsocket(conn_);
  if (fd < 0) return Error{"no socket"};
  for (;;) {
    if (stop_.load()) return Error{"stopped"};
    auto now = Clock::now();
    if (now >= deadline) return Error{"timeout expired (no answer from the server)"};
    auto slice = std::min<Clock::duration>(kSlice, deadline - now);
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(slice).count());
    int n = ::poll(&p, 1, ms);
    if (n > 0) return ok_status();
    if (n < 0 && errno != EINTR) return Error{"poll failed"};
  }
}

Status PgConnection::flush(Deadline deadline) {
  for (;;) {
    int rc = PQflush(conn_);
    if (rc == 0) return ok_status();
    if (rc < 0) return fail(one_line(PQerrorMessage(conn_)));
    // 1: more to send. The server may be sending too (a notice, an error):
    // reading it makes room, as libpq's documentation asks.
    if (auto s = wait(true, deadline); !s.ok()) return fail(s.error());
    if (!PQconsumeInput(conn_)) return fail(one_line(PQerrorMessage(conn_)));
  }
}

Result<PgResult> PgConnection::collect(Deadline deadline) {
  PgResult last;
  std::string error;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (auto s = wait(false, deadline); !s.ok()) return fail(s.error());
      if (!PQconsumeInput(conn_)) return fail(one_line(PQerrorMessage(conn_)));
    }
    pg_result* raw = PQgetResult(conn_);
    if (!raw) break;
    PgResult result(raw);
    auto status = PQresultStatus(raw);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      return fail("unexpected COPY state");
    }
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && error.empty()) {
      error = one_line(PQresultErrorMessage(raw));
    }
    last = std::move(result);
  }
  if (PQstatus(conn_) == CONNECTION_BAD) return fail(error.empty() ? one_line(PQerrorMessage(conn_)) : error);
  if (!error.empty()) return Error{error};
  return last;
}

Result<PgResult> PgConnection::exec(const std::string& sql, const std::vector<std::string>& params) {
  if (broken_) return Error{"connection lost"};
  auto deadline = Clock::now() + timeout_;
  int sent;
  if (params.empty()) {
    sent = PQsendQuery(conn_, sql.c_str());
  } else {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    sent = PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  }
  if (!sent) return fail(one_line(PQerrorMessage(conn_)));
  if (auto s = flush(deadline); !s.ok()) return Error{s.error()};
  return collect(deadline);
}

Status PgConnection::copy_in(const std::string& copy_sql, std::string_view data) {
  if (broken_) return Error{"connection lost"};
  auto deadline = Clock::now() + timeout_;
  if (!PQsendQuery(conn_, copy_sql.c_str())) return fail(one_line(PQerrorMessage(conn_)));
  if (auto s = flush(deadline); !s.ok()) return s;
  while (PQisBusy(conn_)) {
    if (auto s = wait(false, deadline); !s.ok()) return fail(s.error());
    if (!PQconsumeInput(conn_)) return fail(one_line(PQerrorMessage(conn_)));
  }
  PgResult start(PQgetResult(conn_));
  if (!start.get() || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    std::string error = start.get() ? one_line(PQresultErrorMessage(start.get())) : "COPY refused";
    (void)collect(deadline);
    return Error{error};
  }
  // In pieces: PQputCopyData queues what it is given, and a piece at a
  // time bounds what libpq copies before it sends.
  constexpr std::size_t kPiece = 256 * 1024;
  while (!data.empty()) {
    auto piece = data.substr(0, kPiece);
    int rc = PQputCopyData(conn_, piece.data(), static_cast<int>(piece.size()));
    if (rc < 0) return fail(one_line(PQerrorMessage(conn_)));
    if (rc == 0) {
      if (auto s = wait(true, deadline); !s.ok()) return fail(s.error());
      continue;
    }
    data.remove_prefix(piece.size());
    if (auto s = flush(deadline); !s.ok()) return s;
  }
  for (;;) {
    int rc = PQputCopyEnd(conn_, nullptr);
    if (rc < 0) return fail(one_line(PQerrorMessage(conn_)));
    if (rc == 1) break;
    if (auto s = wait(true, deadline); !s.ok()) return fail(s.error());
  }
  if (auto s = flush(deadline); !s.ok()) return s;
  auto done = collect(deadline);
  if (!done.ok()) return Error{done.error()};
  return ok_status();
}

namespace {
// What COPY's text format gives a meaning to, and NUL, which PostgreSQL's text cannot hold.
constexpr std::string_view kCopySpecials("\\\t\n\r\0", 5);
}  // namespace

// Plain runs are appended whole: states are long and rarely hold a special.
void append_copy_field(std::string& out, std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    auto special = text.find_first_of(kCopySpecials, at);
    if (special == std::string_view::npos) special = text.size();
    out.append(text.data() + at, special - at);
    if (special == text.size()) break;
    switch (text[special]) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += "\xEF\xBF\xBD"; break;  // NUL
    }
    at = special + 1;
  }
}

}  // namespace deltatap
