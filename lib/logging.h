// Logging: structured events through Boost.Log. Every event has a level, a message
// and named fields (SESSION_ID, DELTA_TYPE, ...); the sink renders them as native
// journal entries, text lines or JSON lines (config.h LogFormat).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "config.h"

namespace deltatap {

struct LogField {
  std::string_view key;    // upper-case journal style, e.g. "SESSION_ID"
  std::string value;
};

// Installs the one sink; call once at start (and again on reload to change level).
void init_logging(const LogOptions& options);

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

inline void log_debug(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::debug, m, f); }
inline void log_info(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::info, m, f); }
inline void log_warning(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::warning, m, f); }
inline void log_error(std::string_view m, std::initializer_list<LogField> f = {}) { log(LogLevel::error, m, f); }

}  // namespace deltatap
