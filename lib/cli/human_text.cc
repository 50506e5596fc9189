#include "cli/human_text.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iterator>

#include "base/json_text.h"
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

namespace {

struct Range {
  char32_t first, last;
};

// East Asian Width W and F (Unicode 15), merged into fewer ranges where the
// gaps hold unassigned code points.
constexpr Range kWide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F265}, {0x1F300, 0x1F64F},
    {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

// Combining marks and zero-width characters that terminals draw in no column
// of their own: the common ranges, not every script's marks.
constexpr Range kZeroWidth[] = {
    {0x0300, 0x036F},   {0x0483, 0x0489},   {0x0591, 0x05BD},   {0x05BF, 0x05BF},
    {0x05C1, 0x05C2},   {0x05C4, 0x05C5},   {0x05C7, 0x05C7},   {0x0610, 0x061A},
    {0x064B, 0x065F},   {0x0670, 0x0670},   {0x06D6, 0x06DC},   {0x06DF, 0x06E4},
    {0x06E7, 0x06E8},   {0x06EA, 0x06ED},   {0x1160, 0x11FF},   {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF},   {0x200B, 0x200F},   {0x2060, 0x2064},   {0x20D0, 0x20FF},
    {0x302A, 0x302F},   {0x3099, 0x309A},   {0xFE00, 0xFE0F},   {0xFE20, 0xFE2F},
    {0xFEFF, 0xFEFF},   {0xE0000, 0xE007F}, {0xE0100, 0xE01EF},
};

template <std::size_t N>
bool in_ranges(const Range (&ranges)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                             [](char32_t value, const Range& r) { return value < r.first; });
  return it != std::begin(ranges) && c <= std::prev(it)->last;
}

// Characters that reorder the text around them (Unicode's bidirectional
// formatting characters): shown escaped, as a control would be.
bool is_bidi_control(char32_t c) {
  return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

// One character of `text` at `i`: its code point and byte length, or, for a
// byte that does not start a valid UTF-8 sequence, that byte and length 0.
struct Decoded {
  char32_t code;
  std::size_t length;
};

Decoded decode(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  std::size_t length = utf8_sequence_length(text, i);
  if (length == 0) return {byte(i), 0};
  if (length == 1) return {byte(i), 1};
  char32_t code = byte(i) & (0xFF >> (length + 1));
  for (std::size_t k = 1; k < length; ++k) code = (code << 6) | (byte(i + k) & 0x3F);
  return {code, length};
}

std::size_t char_width(char32_t c) {
  if (in_ranges(kZeroWidth, c)) return 0;
  if (in_ranges(kWide, c)) return 2;
  return 1;
}

void append_hex(std::string& out, const char* prefix, unsigned value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += prefix;
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHex[(value >> shift) & 0xF];
}

}  // namespace

std::string escape_controls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    auto [code, length] = decode(text, i);
    if (length == 0 || code < 0x20 || code == 0x7F) {
      append_hex(out, "\\x", static_cast<unsigned>(code), 2);
      i += length == 0 ? 1 : length;
    } else if ((code >= 0x80 && code <= 0x9F) || is_bidi_control(code)) {
      append_hex(out, "\\u", static_cast<unsigned>(code), 4);
      i += length;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size();) {
    auto [code, length] = decode(text, i);
    width += length == 0 ? 1 : char_width(code);
    i += length == 0 ? 1 : length;
  }
  return width;
}

std::string clip(std::string_view text, std::size_t width) {
  if (display_width(text) <= width) return std::string(text);
  // One column is kept for the ellipsis.
  std::string out;
  std::size_t used = 0;
  for (std::size_t i = 0; i < text.size();) {
    auto [code, length] = decode(text, i);
    std::size_t bytes = length == 0 ? 1 : length;
    std::size_t w = length == 0 ? 1 : char_width(code);
    if (used + w > width - 1) break;
    out.append(text.substr(i, bytes));
    used += w;
    i += bytes;
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
