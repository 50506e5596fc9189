#include "sinks/pg_binary_copy.h"

#include <boost/endian/conversion.hpp>

namespace deltatap {

namespace {

// "PGCOPY\n\377\r\n\0", then the flags word (no OIDs) and the length of the
// header extension (none).
constexpr std::string_view kHeader("PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);

// PostgreSQL counts time in microseconds from 2000-01-01 00:00:00 UTC.
constexpr std::int64_t kPostgresEpochMillis = 946'684'800'000;

template <typename Integer>
void append_big_endian(std::string& out, Integer value) {
  Integer big = boost::endian::native_to_big(value);
  out.append(reinterpret_cast<const char*>(&big), sizeof big);
}

}  // namespace

void PgBinaryCopy::start() {
  out_.clear();
  out_.append(kHeader);
}

void PgBinaryCopy::row(std::int16_t fields) { append_big_endian(out_, fields); }

void PgBinaryCopy::length(std::int32_t value) { append_big_endian(out_, value); }

void PgBinaryCopy::null() { length(-1); }

void PgBinaryCopy::append_text(std::string_view value) {
  // Plain runs are appended whole: a NUL is rare and costs three bytes.
  constexpr std::string_view kReplacement("\xEF\xBF\xBD", 3);
  std::size_t at = 0;
  while (at < value.size()) {
    auto nul = value.find('\0', at);
    if (nul == std::string_view::npos) nul = value.size();
    out_.append(value.data() + at, nul - at);
    if (nul == value.size()) break;
    out_.append(kReplacement);
    at = nul + 1;
  }
}

void PgBinaryCopy::counted(std::string_view prefix, std::string_view value) {
  // The length goes first but depends on the NULs replaced: a placeholder,
  // filled in once the value is written.
  auto at = out_.size();
  length(0);
  out_.append(prefix);
  append_text(value);
  auto written = out_.size() - at - sizeof(std::int32_t);
  std::int32_t big = boost::endian::native_to_big(static_cast<std::int32_t>(written));
  out_.replace(at, sizeof big, reinterpret_cast<const char*>(&big), sizeof big);
}

void PgBinaryCopy::text(std::string_view value) { counted({}, value); }

void PgBinaryCopy::bigint(std::int64_t value) {
  length(sizeof value);
  append_big_endian(out_, value);
}

void PgBinaryCopy::boolean(bool value) {
  length(1);
  out_ += value ? '\1' : '\0';
}

void PgBinaryCopy::timestamptz(TimePoint value) {
  std::int64_t micros = (value.time_since_epoch().count() - kPostgresEpochMillis) * 1000;
  bigint(micros);
}

// jsonb's binary format: version 1, then the JSON text.
void PgBinaryCopy::jsonb(std::string_view json) { counted(std::string_view("\1", 1), json); }

void PgBinaryCopy::finish() { append_big_endian(out_, std::int16_t{-1}); }

void PgBinaryCopy::shrink_past(std::size_t limit) {
  if (out_.capacity() > limit) std::string().swap(out_);
}

}  // namespace deltatap
