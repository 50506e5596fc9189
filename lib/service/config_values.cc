// The value parsers of the key table (service/config_values.h).
#include "service/config_values.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <optional>

#include "base/address.h"
#include "base/duration.h"
#include "base/files.h"
#include "base/json_text.h"
#include "base/redact.h"
#include "base/secrets.h"
#include "sinks/pg_connection.h"

namespace deltatap {

// One definition, so that the INI reader and the value parsers agree on what
// white space around a value is.
std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}



std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Values are quoted as JSON strings (base/json_text.h): control bytes are
// escaped, so a message stays on one line whatever the input was.
Error invalid(const Origin& origin, std::string_view value, std::string_view what,
              std::string_view expected) {
  return Error{origin.where + origin.name + ": " + json_quoted(value) + " is not " + std::string(what) +
               " (expected " + std::string(expected) + ")"};
}

// For secrets: the value itself never goes into a message.
Error invalid_secret(const Origin& origin, std::string_view problem) {
  return Error{origin.where + origin.name + ": the value (hidden) " + std::string(problem)};
}

// ---- value parsers ---------------------------------------------------------

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A non-negative decimal integer that fits in 63 bits.
std::optional<std::int64_t> parse_integer(std::string_view s) {
  if (!all_digits(s) || s.size() > 18) return std::nullopt;
  std::int64_t n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  return n;
}

// base/duration.h's syntax; its message gets the key in front.
Result<Millis> read_duration(std::string_view value, const Origin& origin) {
  auto parsed = parse_duration(value);
  if (!parsed) return Error{origin.where + origin.name + ": " + parsed.error()};
  return parsed;
}

Result<std::uint64_t> parse_size(std::string_view value, const Origin& origin) {
  auto fail = [&] { return invalid(origin, value, "a size", kSizeExpected); };
  std::string_view s = trim(value);
  std::size_t digits_end = 0;
  while (digits_end < s.size() && std::isdigit(static_cast<unsigned char>(s[digits_end]))) {
    ++digits_end;
  }
  auto number = parse_integer(s.substr(0, digits_end));
  if (!number) return fail();
  std::string unit = lower(trim(s.substr(digits_end)));
  std::uint64_t multiplier = 0;
  if (unit.empty() || unit == "b") multiplier = 1;
  else if (unit == "k" || unit == "kib") multiplier = 1ull << 10;
  else if (unit == "m" || unit == "mib") multiplier = 1ull << 20;
  else if (unit == "g" || unit == "gib") multiplier = 1ull << 30;
  else return fail();
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(*number), multiplier, &bytes)) return fail();
  if (bytes == 0) return invalid(origin, value, "a positive size", kSizeExpected);
  return bytes;
}

Result<bool> parse_bool(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "on" || v == "true" || v == "yes" || v == "1") return true;
  if (v == "off" || v == "false" || v == "no" || v == "0") return false;
  return invalid(origin, value, "a boolean", kBoolExpected);
}

Result<LogLevel> parse_level(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "debug") return LogLevel::debug;
  if (v == "info") return LogLevel::info;
  if (v == "warning") return LogLevel::warning;
  if (v == "error") return LogLevel::error;
  return invalid(origin, value, "a log level", kLevelExpected);
}

Result<std::optional<LogFormat>> parse_format(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "journal") return std::optional<LogFormat>(LogFormat::journal);
  if (v == "text") return std::optional<LogFormat>(LogFormat::text);
  if (v == "json") return std::optional<LogFormat>(LogFormat::json);
  if (v == "auto") return std::optional<LogFormat>();
  return invalid(origin, value, "a log format", kFormatExpected);
}

Result<Compression> parse_compression(std::string_view value, const Origin& origin) {
  std::string v = lower(trim(value));
  if (v == "off") return Compression::off;
  if (v == "zstd") return Compression::zstd;
  return invalid(origin, value, "a compression", kCompressionExpected);
}

// The client's own rules (stream/stream_options.h), so that what passes here
// is exactly what the client will connect to. The value is quoted with its
// user info and query values hidden (base/redact.h). When it has user info,
// which the client refuses, the parser's own detail is not used: it can quote
// a piece of the password (one holding a '/' reads as a port).
Status check_url(std::string_view value, const Origin& origin) {
  auto parsed = parse_stream_url(value);
  if (!parsed.ok()) {
    std::string detail = has_url_user_info(value)
                             ? "user info (name:password@) is not allowed in the URL: put the "
                               "credential in [stream] token or token_file"
                             : parsed.error();
    return invalid(origin, redact_url(value), "a WebSocket URL",
                   std::string(kUrlExpected) + "; " + detail);
  }
  return ok_status();
}

// The fetch's own rules (stream/stream_options.h), as check_url applies the
// client's; empty means derived from [stream] url, which check_url has vetted.
Status check_reconcile_url(std::string_view value, const Origin& origin) {
  if (value.empty()) return ok_status();
  auto parsed = parse_reconcile_url(value);
  if (!parsed.ok()) {
    std::string detail = has_url_user_info(value)
                             ? "user info (name:password@) is not allowed in the URL: the fetch "
                               "sends [stream] token as a bearer token"
                             : parsed.error();
    return invalid(origin, redact_url(value), "an HTTP URL",
                   std::string(kReconcileUrlExpected) + "; " + detail);
  }
  return ok_status();
}

// base/address.h's "IP:PORT" or "[IPv6]:PORT" with a fixed port, or empty (disabled).
Status check_listen(std::string_view value, const Origin& origin) {
  if (value.empty()) return ok_status();
  auto address = parse_listen_address(value);
  if (!address) {
    return Error{origin.where + origin.name + ": " + address.error() +
                 "; an empty value disables the API"};
  }
  if (address->port == 0) {
    return invalid(origin, value, "a listen address with a valid port", "a port from 1 to 65535");
  }
  return ok_status();
}

Status check_header(std::string_view value, const Origin& origin) {
  auto header = parse_stream_header(value);
  if (!header.ok()) {
    // Only the name part is shown: the value may be a credential.
    std::string_view shown = value.substr(0, value.find(':'));
    return Error{origin.where + origin.name + ": " + json_quoted(shown) + ": " + header.error() +
                 " (expected \"Name: value\", e.g. \"X-Client: deltatap\", and not a header the "
                 "WebSocket handshake sets; put the token in [stream] token or token_file)"};
  }
  return ok_status();
}

// A path names a file only if it has something besides white space: " " (a
// stray DB_PATH=" ") would otherwise create a file named by a space.
// `empty_means` says what an empty value does ("" when it is refused too).
Status check_path(std::string_view value, const Origin& origin, std::string_view empty_means) {
  bool blank = trim(value).empty();
  if (!blank || (value.empty() && !empty_means.empty())) return ok_status();
  std::string expected(kPathExpected);
  if (!empty_means.empty()) expected = "a path that is not only white space, or empty " + std::string(empty_means);
  return invalid(origin, value, "a file name", expected);
}

// A file the daemon reads later (at connect): checked now, once, so that a
// directory or a FIFO is refused at start rather than at every connect. Opened
// without blocking (a FIFO would wait for a writer) and without becoming our
// terminal. `expected` is what the key allows, for the message.
Status check_readable_file(std::string_view value, const Origin& origin, std::string_view expected) {
  if (value.empty()) return ok_status();
  auto refuse = [&](const std::string& why) {
    return Error{origin.where + origin.name + ": cannot read " + json_quoted(value) + ": " + why +
                 " (expected " + std::string(expected) + ")"};
  };
  std::string path(value);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return refuse(errno_text(errno));
  struct stat st {};
  int stat_errno = ::fstat(fd, &st) == 0 ? 0 : errno;
  ::close(fd);
  if (stat_errno != 0) return refuse(errno_text(stat_errno));
  if (S_ISDIR(st.st_mode)) return refuse("it is a directory");
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  return ok_status();
}

// libpq's own parser decides (sinks/pg_connection.h). Its message may quote
// a piece of the string, which could be a password: quoted pieces are cut.
Status check_postgres_url(std::string_view value, const Origin& origin) {
  if (value.empty()) return ok_status();
  auto parsed = display_conninfo(value);
  if (parsed.ok()) return ok_status();
  // A quoted piece stays when it is punctuation or a keyword libpq knows
  // (it parses as "piece=x"); anything else may be a value.
  std::string detail, piece;
  bool quoted = false;
  for (char c : parsed.error()) {
    if (c != '"') {
      (quoted ? piece : detail) += c;
      continue;
    }
    if (quoted) {
      bool keyword = !piece.empty() && piece.find_first_of(" ='\\") == std::string::npos &&
                     display_conninfo(piece + "=x").ok();
      detail += "\"" + (piece.size() == 1 || keyword ? piece : std::string("(hidden)")) + "\"";
      piece.clear();
    }
    quoted = !quoted;
  }
  return Error{origin.where + origin.name + ": the value (hidden) is not usable: " + detail +
               " (expected " + std::string(kPostgresUrlExpected) + ")"};
}

Status check_source(std::string_view value, const Origin& origin) {
  bool usable = value.size() <= 200;
  for (unsigned char c : value) usable = usable && c >= 0x20 && c != 0x7f;
  if (!usable) return invalid(origin, value, "a source name", kSourceExpected);
  return ok_status();
}


// Bearer tokens travel in a header (the subprotocol list or Authorization), so
// whitespace, control bytes and commas would corrupt the request.
Status check_token(std::string_view value, const Origin& origin) {
  if (value.empty()) return invalid_secret(origin, "is empty (expected a non-empty token)");
  for (unsigned char c : value) {
    if (c <= 0x20 || c == 0x7f || c == ',') {
      return invalid_secret(origin,
                            "contains whitespace, a control character or a comma "
                            "(expected a token such as a hex or base64url string)");
    }
  }
  return ok_status();
}

// The inverse of parse_size, so that --check-config's text reads back as the
// same value.
std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

}  // namespace deltatap
