// Logging: structured events through Boost.Log. Every event has a level, a message
// and named fields (SESSION_ID, DELTA_TYPE, ...); the sink renders them as native
// journal entries (with PRIORITY and CODE_FILE/CODE_LINE/CODE_FUNC), text lines
// (with a "<N>" priority prefix when stderr is the journal's stream) or JSON lines
// (level, time, msg, then the fields in camelCase) (LogFormat).
//
// The message is a readable sentence that carries the reason ("Stream connection
// attempt failed: connect: Connection refused; retrying in 500 ms"); the fields
// repeat the details for machines. Well-known events also carry a MESSAGE_ID
// (below), so that they can be found whatever their message says.
//
// Warnings and errors are rate-limited: past a burst of lines with the same level
// and message (or, for an event with a MESSAGE_ID, the same level and id: its
// message varies with the reason) within a window, further ones are dropped and
// counted, and a later line says how many were suppressed (when the window is
// over and something else is logged, or at flush_logging()). Other fields are not
// compared: a flood of bad frames with different details is still one flood.
#pragma once

#include <chrono>
#include <optional>
#include <initializer_list>
#include <source_location>
#include <string>
#include <string_view>


namespace deltatap {

enum class LogLevel { debug, info, warning, error };
enum class LogFormat { journal, text, json };

struct LogOptions {
  LogLevel level = LogLevel::info;
  // journal when started by systemd (JOURNAL_STREAM or INVOCATION_ID set), else text.
  std::optional<LogFormat> format;
};

std::string_view to_string(LogLevel level);
std::string_view to_string(LogFormat format);

// MESSAGE_ID values: systemd's identifier of a kind of event, a random 128-bit
// id written as 32 lower-case hex digits (what `systemd-id128 new` prints), so
// that `journalctl MESSAGE_ID=...` lists every occurrence of one event. One fixed
// id per event, defined here and nowhere else; an id never changes once
// released. Each is logged once per occurrence, through message_id() below.
namespace message_ids {
// The stream's WebSocket is open ("Connected to the stream").
inline constexpr std::string_view kStreamConnected = "53c7f3316f6d4f5c8990064267cacb16";
// An open stream connection ended, for a reason other than our stopping.
inline constexpr std::string_view kStreamDisconnected = "80f98881e1534455abe96ea267d29e8d";
// An attempt to connect failed before the WebSocket was open (refused,
// timed out, TLS, handshake, authentication); a retry is scheduled.
inline constexpr std::string_view kStreamAttemptFailed = "1f8d396c908e4758b8b91bc10bd2381b";
// A snapshot could not be written; the previous file is kept.
inline constexpr std::string_view kSnapshotFailed = "a5dbff200b4546aa94792aa4042805e5";
// A gap in a session's history was detected (deltas missed while away).
inline constexpr std::string_view kGap = "fb6576b32ba349a7a7e481e65bba09c0";
// Reconciliation with the backend's session list changed the history.
inline constexpr std::string_view kReconciled = "b717f1e47de44111a33340455e8d2684";
}  // namespace message_ids

struct LogField {
  std::string_view key;    // upper-case journal style, e.g. "SESSION_ID"
  std::string value;
};

// The MESSAGE_ID field of a well-known event (message_ids above): the journal
// gets it as MESSAGE_ID=, text and JSON lines as messageId.
inline LogField message_id(std::string_view id) { return {"MESSAGE_ID", std::string(id)}; }

struct LogRateLimit {
  std::chrono::milliseconds window{10'000};
  int burst = 5;           // lines of one kind let through per window; 0: no limit
};

// Installs the one sink; call once at start (and again on reload to change level).
// Replacing the sink first reports what the old one still had suppressed.
void init_logging(const LogOptions& options, const LogRateLimit& rate_limit = {});

// Writes the pending "N suppressed" lines now (call before exiting).
void flush_logging();

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {},
         std::source_location where = std::source_location::current());

inline void log_debug(std::string_view m, std::initializer_list<LogField> f = {},
                      std::source_location w = std::source_location::current()) {
  log(LogLevel::debug, m, f, w);
}
inline void log_info(std::string_view m, std::initializer_list<LogField> f = {},
                     std::source_location w = std::source_location::current()) {
  log(LogLevel::info, m, f, w);
}
inline void log_warning(std::string_view m, std::initializer_list<LogField> f = {},
                        std::source_location w = std::source_location::current()) {
  log(LogLevel::warning, m, f, w);
}
inline void log_error(std::string_view m, std::initializer_list<LogField> f = {},
                      std::source_location w = std::source_location::current()) {
  log(LogLevel::error, m, f, w);
}

}  // namespace deltatap
