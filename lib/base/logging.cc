#include "base/logging.h"

// We send our own CODE_FILE/CODE_LINE/CODE_FUNC (the caller's, not this file's).
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/log/attributes/constant.hpp>
#include <boost/log/attributes/value_extraction.hpp>
#include <boost/log/core.hpp>
#include <boost/log/sinks/basic_sink_backend.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/smart_ptr/make_shared_object.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/json_text.h"
#include "base/timestamp.h"

namespace deltatap {

namespace logging = boost::log;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using SteadyClock = std::chrono::steady_clock;

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return 7;
    case LogLevel::info: return 6;
    case LogLevel::warning: return 4;
    case LogLevel::error: return 3;
  }
  return 6;
}

// "SESSION_ID" -> "sessionId", the domain document's JSON field style.
std::string camel_case(std::string_view key) {
  std::string out;
  bool upper_next = false;
  for (char c : key) {
    if (c == '_') {
      upper_next = true;
    } else {
      char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out += upper_next ? static_cast<char>(std::toupper(static_cast<unsigned char>(lower))) : lower;
      upper_next = false;
    }
  }
  return out;
}

// stderr is the journal's stream when JOURNAL_STREAM names its device and inode.
bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

// sd_journal_sendv() reports success when journald's socket is missing (it drops
// the entry quietly), so whether the journal can take entries is checked here.
bool journal_socket_exists() {
  struct stat st {};
  return ::stat("/run/systemd/journal/socket", &st) == 0 && S_ISSOCK(st.st_mode);
}

struct Event {
  LogLevel level = LogLevel::info;
  std::string message;
  Fields fields;
  std::source_location where;
};

// One backend renders every event in the configured format. Feeding is
// serialised by the frontend, so the rate limiter's state needs no lock of its own.
class EventBackend
    : public logging::sinks::basic_sink_backend<logging::sinks::combine_requirements<
          logging::sinks::synchronized_feeding, logging::sinks::flushing>::type> {
 public:
  EventBackend(LogFormat format, bool priority_prefix, LogRateLimit rate_limit)
      : format_(format), priority_prefix_(priority_prefix), rate_limit_(rate_limit) {
    // Without journald, stderr is all there is: never lose the lines.
    if (format_ == LogFormat::journal && !journal_socket_exists()) format_ = LogFormat::text;
  }

  void consume(const logging::record_view& record) {
    Event event;
    event.level = logging::extract_or_default<LogLevel>("Level", record, LogLevel::info);
    event.fields = logging::extract_or_default<Fields>("Fields", record, Fields{});
    event.message = logging::extract_or_default<std::string>("Message", record, std::string{});
    event.where = logging::extract_or_default<std::source_location>("Where", record,
                                                                    std::source_location{});
    auto now = SteadyClock::now();
    report_expired(now);
    if (admit(event, now)) write(event);
  }

  void flush() {
    for (auto& [key, entry] : limits_) report(entry);
    limits_.clear();
  }

 private:
  // What the limiter remembers about one (level, message) within its window.
  static constexpr std::size_t kMaxLimits = 4096;

  struct Limit {
    SteadyClock::time_point window_start;
    int passed = 0;
    long suppressed = 0;
    Event last;  // the most recent suppressed event, for the summary line
  };

  bool limited(LogLevel level) const {
    return rate_limit_.burst > 0 && (level == LogLevel::warning || level == LogLevel::error);
  }

  // An event's kind: its MESSAGE_ID when it has one (its message carries the
  // reason and so differs from one line to the next), else its message.
  static std::string kind_of(const Event& event) {
    for (const auto& [key, value] : event.fields) {
      if (key == "MESSAGE_ID") return "id:" + value;
    }
    return "message:" + event.message;
  }

  bool admit(const Event& event, SteadyClock::time_point now) {
    if (!limited(event.level)) return true;
    std::string key(to_string(event.level));
    key += '\x1f';
    key += kind_of(event);
    // Messages with variable text would each get an entry: keep the map bounded.
    if (limits_.size() >= kMaxLimits && !limits_.count(key)) flush();
    auto [it, inserted] = limits_.try_emplace(std::move(key));
    Limit& limit = it->second;
    if (inserted || now - limit.window_start >= rate_limit_.window) {
      report(limit);
      limit.window_start = now;
      limit.passed = 0;
    }
    if (limit.passed < rate_limit_.burst) {
      ++limit.passed;
      return true;
    }
    ++limit.suppressed;
    limit.last = event;
    return false;
  }

  // Windows that ended report their count on the next event, whatever it is,
  // so a flood that stops is still accounted for; quiet entries are forgotten.
  void report_expired(SteadyClock::time_point now) {
    if (limits_.empty() || now < next_sweep_) return;
    next_sweep_ = now + rate_limit_.window;
    for (auto it = limits_.begin(); it != limits_.end();) {
      if (now - it->second.window_start >= rate_limit_.window) {
        report(it->second);
        it = limits_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void report(Limit& limit) {
    if (limit.suppressed == 0) return;
    Event summary;
    summary.level = limit.last.level;
    summary.message = "Suppressed repeats of \"" + limit.last.message +
                      "\": " + std::to_string(limit.suppressed);
    summary.fields.emplace_back("SUPPRESSED_COUNT", std::to_string(limit.suppressed));
    summary.fields.emplace_back("SUPPRESSED_MESSAGE", limit.last.message);
    summary.where = limit.last.where;
    limit.suppressed = 0;
    write(summary);
  }

  void write(const Event& event) {
    switch (format_) {
      case LogFormat::journal: write_journal(event); break;
      case LogFormat::json: write_json(event); break;
      case LogFormat::text: write_text(event); break;
    }
  }

  void write_text(const Event& event) {
    std::string line;
    if (priority_prefix_) {
      // The journal stamps the time itself and reads the priority from "<N>".
      line += '<';
      line += std::to_string(syslog_priority(event.level));
      line += '>';
    } else {
      line += format_timestamp(now_millis());
      line += ' ';
      line += to_string(event.level);
      line += ": ";
    }
    line += event.message;
    for (const auto& [key, value] : event.fields) {
      line += ' ';
      line += camel_case(key);
      line += '=';
      // Quoted (JSON-escaped) when it would not read back as one word, or holds
      // a control character a terminal would act on.
      bool quote = value.empty() || value.find_first_of(" \"=\n\r\t\\") != std::string::npos ||
                   std::any_of(value.begin(), value.end(), [](char c) {
                     auto u = static_cast<unsigned char>(c);
                     return u < 0x20 || u == 0x7f;
                   });
      if (quote) append_json_string(line, value); else line += value;
    }
    // One event, one line: a newline inside the message must not start a fake event.
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  void write_json(const Event& event) {
    std::string line = "{\"level\":";
    append_json_string(line, to_string(event.level));
    line += ",\"time\":";
    append_json_string(line, format_timestamp(now_millis()));
    line += ",\"msg\":";
    append_json_string(line, event.message);
    for (const auto& [key, value] : event.fields) {
      line += ',';
      append_json_string(line, camel_case(key));
      line += ':';
      append_json_string(line, value);
    }
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  void write_journal(const Event& event) {
    std::vector<std::string> entries;
    entries.push_back("MESSAGE=" + event.message);
    entries.push_back("PRIORITY=" + std::to_string(syslog_priority(event.level)));
    entries.push_back("SYSLOG_IDENTIFIER=deltatapd");
    if (event.where.line() != 0) {
      entries.push_back(std::string("CODE_FILE=") + event.where.file_name());
      entries.push_back("CODE_LINE=" + std::to_string(event.where.line()));
      entries.push_back(std::string("CODE_FUNC=") + event.where.function_name());
    }
    for (const auto& [key, value] : event.fields) entries.push_back(key + "=" + value);
    std::vector<iovec> iov;
    iov.reserve(entries.size());
    for (auto& e : entries) iov.push_back({e.data(), e.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
      write_text(event);  // no journal socket: don't lose the line
    }
  }

  LogFormat format_;
  bool priority_prefix_;
  LogRateLimit rate_limit_;
  std::unordered_map<std::string, Limit> limits_;
  SteadyClock::time_point next_sweep_{};
};

LogFormat default_format() {
  return (std::getenv("INVOCATION_ID") || std::getenv("JOURNAL_STREAM")) ? LogFormat::journal
                                                                          : LogFormat::text;
}

}  // namespace

void init_logging(const LogOptions& options, const LogRateLimit& rate_limit) {
  auto core = logging::core::get();
  core->flush();
  core->remove_all_sinks();
  auto backend = boost::make_shared<EventBackend>(options.format.value_or(default_format()),
                                                  stderr_is_journal(), rate_limit);
  auto sink = boost::make_shared<logging::sinks::synchronous_sink<EventBackend>>(backend);
  LogLevel minimum = options.level;
  sink->set_filter([minimum](const logging::attribute_value_set& values) {
    auto level = logging::extract_or_default<LogLevel>("Level", values, LogLevel::info);
    return static_cast<int>(level) >= static_cast<int>(minimum);
  });
  core->add_sink(sink);
}

void flush_logging() { logging::core::get()->flush(); }

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields,
         std::source_location where) {
  auto core = logging::core::get();
  logging::attribute_set attributes;
  attributes.insert("Level", logging::attributes::constant<LogLevel>(level));
  // The filter runs on Level alone, so a debug line costs nothing more when off.
  logging::record record = core->open_record(attributes);
  if (!record) return;
  Fields copied;
  copied.reserve(fields.size());
  for (const auto& field : fields) copied.emplace_back(std::string(field.key), field.value);
  record.attribute_values().insert(
      "Message", logging::attributes::make_attribute_value(std::string(message)));
  record.attribute_values().insert("Fields",
                                   logging::attributes::make_attribute_value(std::move(copied)));
  record.attribute_values().insert("Where", logging::attributes::make_attribute_value(where));
  core->push_record(std::move(record));
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "info";
}

std::string_view to_string(LogFormat format) {
  switch (format) {
    case LogFormat::journal: return "journal";
    case LogFormat::text: return "text";
    case LogFormat::json: return "json";
  }
  return "text";
}

}  // namespace deltatap
