// PgConnection: one libpq connection used through libpq's non-blocking API,
// driven by poll() in slices of at most 100 ms, so that the thread using it
// can always be stopped (a `stop` flag set by another thread is seen within
// one slice) and so that a server that accepts and never answers costs a
// timeout, not a hung thread. Plain blocking libpq calls could wait forever
// in such a case, and PQcancel needs the very server that does not answer.
//
// Connection parameters come from PQconninfoParse, never from splicing text:
// the URL (keyword=value string or postgresql:// URI) is parsed once, then
// the password (from a credential file) and deltatap's own settings are
// added as parameters. display_conninfo() is the one form that may be logged
// or shown: host, port, database and user, never the password.
//
// Errors are values: Error{message} with libpq's own message, trimmed to one
// line. A PgConnection is used by one thread at a time; `stop` may be set by
// any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

struct pg_conn;
struct pg_result;

namespace deltatap {

// "host=… port=… dbname=… user=…" of `url` (only those present), for logs
// and messages; an error when libpq cannot parse it (its message names no
// password either: it reports positions and keywords, not values).
Result<std::string> display_conninfo(std::string_view url);

// Every parameter `url` sets, as a keyword=value connection string with the
// password shown as "(hidden)" (--check-config); `url` itself when libpq
// cannot parse it (config refuses such a value before it is shown).
std::string redact_conninfo(std::string_view url);

// Owns a PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* result);
  pg_result* get() const { return result_.get(); }
  int rows() const;
  // Column `column` of row `row`; "" for NULL.
  std::string text(int row, int column) const;
  // Rows an INSERT, UPDATE or DELETE touched (PQcmdTuples); 0 otherwise.
  std::int64_t affected() const;

 private:
  struct Clear { void operator()(pg_result* r) const; };
  std::unique_ptr<pg_result, Clear> result_;
};

struct PgConnectOptions {
  std::string url;
  std::string password;  // empty: whatever the URL or libpq's files say
  std::string application_name = "deltatap";
  // Unless the URL sets connect_timeout (seconds; libpq's minimum of 2 applies).
  std::chrono::milliseconds connect_timeout{10'000};
};

class PgConnection {
 public:
  // Connects, or returns libpq's reason ("connection to server … failed: …",
  // "timeout expired", "stopped" when `stop` was set meanwhile). The
  // connection's client encoding is UTF8.
  static Result<std::unique_ptr<PgConnection>> connect(const PgConnectOptions& options,
                                                       const std::atomic<bool>& stop);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql` (one statement when `params` are given; several otherwise) and
  // returns the last result, or an error when any failed or `deadline` passed.
  // After a timeout or an I/O error the connection is no longer usable:
  // broken() tells.
  Result<PgResult> exec(const std::string& sql, const std::vector<std::string>& params = {});
  // COPY … FROM STDIN with `data` in COPY's text format.
  Status copy_in(const std::string& copy_sql, std::string_view data);
  // How long each exec/copy_in may take before the connection is given up.
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  bool broken() const { return broken_; }

 private:
  PgConnection(pg_conn* conn, const std::atomic<bool>& stop) : conn_(conn), stop_(stop) {}
  using Deadline = std::chrono::steady_clock::time_point;
  // Waits until the socket is readable (or writable); an error on timeout or stop.
  Status wait(bool for_write, Deadline deadline);
  Status flush(Deadline deadline);
  Result<PgResult> collect(Deadline deadline);
  Error fail(std::string message);

  pg_conn* conn_;
  const std::atomic<bool>& stop_;
  std::chrono::milliseconds timeout_{60'000};
  bool broken_ = false;
};

// `text` with COPY text format's special characters escaped (backslash, tab,
// newline, carriage return) and NUL bytes, which PostgreSQL's text cannot
// hold, replaced by U+FFFD.
void append_copy_field(std::string& out, std::string_view text);

}  // namespace deltatap
