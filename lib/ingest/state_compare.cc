#include "ingest/state_compare.h"

#include <rapidjson/reader.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/json_text.h"
#include "ingest/exact_numbers.h"

namespace deltatap {

namespace {

// Writes the value a SAX stream describes in one canonical form: members of
// each object sorted by their key's characters, strings re-escaped by the one
// JSON writer, numbers as their digits. Two texts are the same value exactly
// when their canonical forms are equal.
class Canonical : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Canonical> {
 public:
  // `original` and `buffer` have the same length; numbers are read from the
  // original (the buffer may hold neutralised stand-ins, see exact_numbers.h).
  Canonical(std::string_view original, const char* buffer) : original_(original), buffer_(buffer) {
    stack_.emplace_back();
  }

  bool Null() { return scalar("null"); }
  bool Bool(bool b) { return scalar(b ? "true" : "false"); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    auto offset = static_cast<std::size_t>(str - buffer_);
    return scalar(std::string(original_.substr(offset, length)));
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    std::string text;
    append_json_string(text, std::string_view(str, length));
    return scalar(std::move(text));
  }
  bool StartObject() { return open(true); }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    stack_.back().key.emplace();
    append_json_string(*stack_.back().key, std::string_view(str, length));
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return close('{', '}', true); }
  bool StartArray() { return open(false); }
  bool EndArray(rapidjson::SizeType) { return close('[', ']', false); }

  std::string result() const { return stack_.front().parts.empty() ? "" : stack_.front().parts[0]; }

 private:
  struct Level {
    bool object = false;
    std::optional<std::string> key;  // the member whose value comes next
    std::vector<std::string> parts;  // "key:value" for objects, values for arrays
  };

  bool scalar(std::string text) {
    auto& level = stack_.back();
    if (level.key) {
      text = *level.key + ":" + text;
      level.key.reset();
    }
    level.parts.push_back(std::move(text));
    return true;
  }
  bool open(bool object) {
    stack_.emplace_back();
    stack_.back().object = object;
    return true;
  }
  bool close(char first, char last, bool sort) {
    Level level = std::move(stack_.back());
    stack_.pop_back();
    // Keys are unique in a stored state (the parser refuses duplicates), so
    // sorting the "key:value" parts orders by key.
    if (sort) std::sort(level.parts.begin(), level.parts.end());
    std::string text(1, first);
    for (std::size_t i = 0; i < level.parts.size(); ++i) {
      if (i) text += ',';
      text += level.parts[i];
    }
    text += last;
    return scalar(std::move(text));
  }

  std::string_view original_;
  const char* buffer_;
  std::vector<Level> stack_;
};

std::optional<std::string> canonical(std::string_view text) {
  std::optional<std::string> result;
  read_with_exact_numbers(
      text, [&](const char* buffer) { return Canonical(text, buffer); },
      [&](Canonical& handler) { result = handler.result(); });
  return result;
}

}  // namespace

bool same_state(std::string_view a, std::string_view b) {
  if (a == b) return true;
  auto left = canonical(a);
  if (!left) return false;
  auto right = canonical(b);
  return right && *left == *right;
}

}  // namespace deltatap
