// human_text: how values look in the output meant for people (tables, the
// timeline, messages), never in json, ndjson or csv, which carry the stored form.
//
// Widths are counted in code points, which is what a terminal shows for the
// text deltatap prints (no wide or combining characters are expected). All
// functions are pure apart from show_time's reading of the local time zone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace deltatap::cli {

struct Style {
  bool colour = false;  // ANSI colours (decided once, from --color and the terminal)
  bool utc = false;     // times as stored rather than in local time

  // `text` wrapped in the SGR sequence `code` ("1" bold, "31" red, ...) when
  // colour is on; `text` as it is otherwise, or when it is empty.
  std::string paint(std::string_view text, std::string_view code) const {
    if (!colour || text.empty()) return std::string(text);
    return "\x1b[" + std::string(code) + "m" + std::string(text) + "\x1b[0m";
  }
  // The colour code of a delta type: created green, deleted red, anything else
  // yellow.
  std::string_view type_colour(std::string_view type) const {
    if (type == "created") return "32";
    if (type == "deleted") return "31";
    return "33";
  }
};

// A stored (normalised UTC) time as the user asked to see it: unchanged with
// --utc, else in local time with milliseconds and the offset
// ("2025-11-10T13:00:00.000+01:00"). `stored` comes back unchanged when it is
// empty or not a time.
std::string show_time(const std::string& stored, const Style& style);

// The number of code points in `text` (bytes that do not continue a UTF-8
// sequence).
std::size_t display_width(std::string_view text);

// `text` cut to at most `width` code points, the last of them "…" when it was
// cut. `width` must be at least 1.
std::string clip(std::string_view text, std::size_t width);

// "512 B", "1.5 KiB", ... up to TiB, one decimal past bytes.
std::string human_bytes(std::uint64_t bytes);

}  // namespace deltatap::cli
