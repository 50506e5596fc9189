// check_delta (declared in parser.h): a delta that did not come from a frame
// (a replayed journal record) held to the rules a frame is held to, by writing
// it as a format-A frame and running it through parse_frame itself.
#include <rapidjson/reader.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/json_text.h"
#include "ingest/exact_numbers.h"
#include "ingest/parser.h"
#include "ingest/rejection_text.h"

namespace deltatap {

namespace {

// Whether `text` is one JSON value and nothing more (whitespace aside). For a
// state that check_delta found not in the parser's compact form: spliced into a
// frame, a text such as {"a":1},"b":{} would pass as a state and one more member.
bool is_one_json_value(std::string_view text) {
  return read_with_exact_numbers(
      text, [](const char*) { return rapidjson::BaseReaderHandler<>(); }, [](auto&) {});
}

// The offset of the first byte of `text` that does not start a UTF-8 character.
std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto length = utf8_sequence_length(text, i);
    if (length == 0) return i;
    i += length;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Rejection> check_delta(const Delta& delta) {
  // The delta as a format-A frame, so that parse_frame applies each of its
  // rules itself rather than a copy of them here.
  std::string frame = "{\"type\":";
  append_json_string(frame, to_string(delta.type));
  frame += ",\"sessionId\":";
  append_json_string(frame, delta.session_id);
  frame += ",\"timestamp\":";
  append_json_string(frame, delta.timestamp);
  const std::pair<const char*, const std::optional<std::string>*> states[] = {
      {"before", &delta.before}, {"after", &delta.after}};
  for (const auto& [name, state] : states) {
    if (!*state) continue;
    frame += ",\"";
    frame += name;
    frame += "\":";
    frame += **state;
  }
  frame += '}';

  // The escaper writes bytes that are not UTF-8 as U+FFFD, which would pass.
  const std::pair<const char*, std::string_view> strings[] = {{"sessionId", delta.session_id},
                                                              {"timestamp", delta.timestamp}};
  for (const auto& [name, text] : strings) {
    if (auto at = first_invalid_utf8(text)) {
      return make_rejection("invalid_utf8",
                            std::string(name) + " is not valid UTF-8 at byte " + std::to_string(*at),
                            frame);
    }
  }

  auto parsed = parse_frame(frame, TimePoint{});
  if (!parsed.rejections.empty()) return std::move(parsed.rejections.front());
  if (parsed.deltas.size() != 1) {
    return make_rejection("invalid_json", "delta does not read back as one delta", frame);
  }
  const Delta& read = parsed.deltas.front();
  if (read.session_id != delta.session_id) {
    return make_rejection("invalid_session_id", "sessionId does not read back as written", frame);
  }
  if (read.timestamp != delta.timestamp) {
    return make_rejection("invalid_timestamp",
                          "timestamp " + quote_short(delta.timestamp) +
                              " is not in the normalised form the store orders by (" +
                              read.timestamp + ")",
                          frame);
  }
  const std::optional<std::string>* read_states[] = {&read.before, &read.after};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& [name, state] = states[i];
    if (!*state) continue;
    // null reads as absent, yet it was given: states are objects.
    if (!*read_states[i]) {
      return make_rejection("invalid_state", std::string(name) + " is null, not an object", frame);
    }
    if (**read_states[i] != **state && !is_one_json_value(**state)) {
      return make_rejection("invalid_state",
                            std::string(name) + " is not one JSON object: more text follows it",
                            frame);
    }
  }
  return std::nullopt;
}

}  // namespace deltatap
