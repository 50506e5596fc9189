#include "cli/human_text.h"

#include <cstdio>
#include <ctime>

#include "base/timestamp.h"

namespace deltatap::cli {

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

}  // namespace deltatap::cli
