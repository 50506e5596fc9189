// Logging: structured events through Boost.Log. Every event has a level, a message
// and named fields (SESSION_ID, DELTA_TYPE, ...); the sink renders them as native
// journal entries (with PRIORITY and CODE_FILE/CODE_LINE/CODE_FUNC), text lines
// (with a "<N>" priority prefix when stderr is the journal's stream) or JSON lines
// (level, time, msg, then the fields in camelCase) (LogFormat).
//
// Warnings and errors are rate-limited: past a burst of lines with the same level
// and message within a window, further ones are dropped and counted, and a later
// line says how many were suppressed (when the window is over and something else
// is logged, or at flush_logging()). Fields are not compared: a flood of bad
// frames with different details is still one flood.
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

struct LogField {
  std::string_view key;    // upper-case journal style, e.g. "SESSION_ID"
  std::string value;
};

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
