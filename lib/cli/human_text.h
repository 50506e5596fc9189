// human_text: how values look in the output meant for people (tables, the
// timeline, messages), never in json, ndjson or csv, which carry the stored form.
//
// Text that came from the stream (session ids, state keys and values, what the
// daemon reports) is put through escape_controls() before it reaches a
// terminal, so that a session id cannot set the window title or clear the
// screen. Widths are terminal columns (display_width). All functions are pure
// apart from show_time's reading of the local time zone.
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

// The colours of what design.md's "Fidelity" asks to stand out, in the query
// table and the timeline: a delta deltatap inferred (magenta), a gap in what
// was observed (bold red), a timestamp running backwards (cyan).
inline constexpr std::string_view kInferredColour = "35";
inline constexpr std::string_view kGapColour = "1;31";
inline constexpr std::string_view kBackwardsColour = "36";

// A stored (normalised UTC) time as the user asked to see it: unchanged with
// --utc, else in local time with milliseconds and the offset
// ("2025-11-10T13:00:00.000+01:00"). `stored` comes back unchanged when it is
// empty or not a time.
std::string show_time(const std::string& stored, const Style& style);

// `text` safe to print on a terminal. Every character a terminal would act on
// rather than show is replaced by an escape that shows it:
//   - C0 controls U+0000-U+001F (ESC, BEL, tab and newline among them) and DEL
//     U+007F as "\xHH": ESC is shown as \x1b;
//   - C1 controls U+0080-U+009F (U+009B is a one-character CSI for some
//     terminals) as "\u00HH";
//   - the bidirectional formatting characters (U+061C, U+200E, U+200F,
//     U+202A-U+202E, U+2066-U+2069), which reorder what a line shows, as "\uHHHH";
//   - a byte that is not part of valid UTF-8 as "\xHH" (HH the byte), so the
//     result is always valid UTF-8.
// Everything else, accents, CJK, emoji, is kept as it is. The escapes are
// printable ASCII, so escaping twice changes nothing. A backslash itself is
// not escaped: "\x1b" on screen may also be those four characters as sent;
// the json, ndjson and csv formats carry the exact text.
std::string escape_controls(std::string_view text);

// The number of terminal columns `text` takes: East Asian wide and fullwidth
// characters (CJK, Hangul syllables, fullwidth forms, most emoji) count 2,
// combining marks and zero-width characters 0 (the common ranges: Latin,
// Greek, Cyrillic, Hebrew and Arabic marks, variation selectors), anything
// else 1, a byte that is not valid UTF-8 1. For text as it is printed, i.e.
// after escape_controls(); a control character counts 1.
std::size_t display_width(std::string_view text);

// `text` cut to at most `width` columns (display_width), the last of them "…"
// when it was cut; never inside a UTF-8 sequence, and a combining mark stays
// with the character it follows. `width` must be at least 1.
std::string clip(std::string_view text, std::size_t width);

// "512 B", "1.5 KiB", ... up to TiB, one decimal past bytes.
std::string human_bytes(std::uint64_t bytes);

}  // namespace deltatap::cli
