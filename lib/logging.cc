#include "logging.h"

#include <systemd/sd-journal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/log/attributes/constant.hpp>
#include <boost/log/core.hpp>
#include <boost/log/sinks/basic_sink_backend.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/attributes/value_extraction.hpp>
#include <boost/smart_ptr/make_shared_object.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "timestamp.h"

namespace deltatap {

namespace logging = boost::log;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return 7;
    case LogLevel::info: return 6;
    case LogLevel::warning: return 4;
    case LogLevel::error: return 3;
  }
  return 6;
}

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
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

// One backend renders every event in the configured format.
class EventBackend
    : public logging::sinks::basic_sink_backend<logging::sinks::synchronized_feeding> {
 public:
  EventBackend(LogFormat format, bool priority_prefix)
      : format_(format), priority_prefix_(priority_prefix) {}

  void consume(const logging::record_view& record) {
    auto level = logging::extract_or_default<LogLevel>("Level", record, LogLevel::info);
    auto fields = logging::extract_or_default<Fields>("Fields", record, Fields{});
    auto message = logging::extract_or_default<std::string>("Message", record, std::string{});
    switch (format_) {
      case LogFormat::journal: write_journal(level, message, fields); break;
      case LogFormat::json: write_json(level, message, fields); break;
      case LogFormat::text: write_text(level, message, fields); break;
    }
  }

 private:
  void write_text(LogLevel level, const std::string& message, const Fields& fields) {
    std::string line;
    if (priority_prefix_) {
      line += '<';
      line += std::to_string(syslog_priority(level));
      line += '>';
    } else {
      line += format_timestamp(now_millis());
      line += ' ';
      line += to_string(level);
      line += ": ";
    }
    line += message;
    for (const auto& [key, value] : fields) {
      line += ' ';
      line += camel_case(key);
      line += '=';
      bool quote = value.empty() || value.find_first_of(" \"=") != std::string::npos;
      if (quote) append_json_string(line, value); else line += value;
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  void write_json(LogLevel level, const std::string& message, const Fields& fields) {
    std::string line = "{\"level\":";
    append_json_string(line, to_string(level));
    line += ",\"time\":";
    append_json_string(line, format_timestamp(now_millis()));
    line += ",\"msg\":";
    append_json_string(line, message);
    for (const auto& [key, value] : fields) {
      line += ',';
      append_json_string(line, camel_case(key));
      line += ':';
      append_json_string(line, value);
    }
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  void write_journal(LogLevel level, const std::string& message, const Fields& fields) {
    std::vector<std::string> entries;
    entries.push_back("MESSAGE=" + message);
    entries.push_back("PRIORITY=" + std::to_string(syslog_priority(level)));
    entries.push_back("SYSLOG_IDENTIFIER=deltatapd");
    for (const auto& [key, value] : fields) entries.push_back(key + "=" + value);
    std::vector<iovec> iov;
    for (auto& e : entries) iov.push_back({e.data(), e.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
      write_text(level, message, fields);  // no journal socket: don't lose the line
    }
  }

  LogFormat format_;
  bool priority_prefix_;
};

LogFormat default_format() {
  return (std::getenv("INVOCATION_ID") || std::getenv("JOURNAL_STREAM")) ? LogFormat::journal
                                                                          : LogFormat::text;
}

}  // namespace

void init_logging(const LogOptions& options) {
  auto core = logging::core::get();
  core->remove_all_sinks();
  auto backend = boost::make_shared<EventBackend>(options.format.value_or(default_format()),
                                                  stderr_is_journal());
  auto sink = boost::make_shared<logging::sinks::synchronous_sink<EventBackend>>(backend);
  LogLevel minimum = options.level;
  sink->set_filter([minimum](const logging::attribute_value_set& values) {
    auto level = logging::extract_or_default<LogLevel>("Level", values, LogLevel::info);
    return static_cast<int>(level) >= static_cast<int>(minimum);
  });
  core->add_sink(sink);
}

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
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
  core->push_record(std::move(record));
}

}  // namespace deltatap
