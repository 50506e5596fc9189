#include "json_oracle.h"

// Boost.JSON compiled here, header-only, once for whichever program links this
// file (the fuzz target, the corpus test): no library to link, nothing of it
// in lib/.
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/src.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace deltatap::testing {

namespace {

namespace json = boost::json;

// Boost.JSON refuses an exponent past INT_MAX ("1e9999999999"), which RFC 8259
// allows and lib/ingest keeps digit for digit. Which number it is cannot change
// whether the frame is an empty batch, nor whether it is valid JSON: every
// exponent digit outside strings becomes 0, a digit for a digit.
std::string with_small_exponents(std::string_view text) {
  std::string out(text);
  bool in_string = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    bool exponent = (c == 'e' || c == 'E') && i > 0 && out[i - 1] >= '0' && out[i - 1] <= '9';
    if (!exponent) continue;
    std::size_t j = i + 1;
    if (j < out.size() && (out[j] == '+' || out[j] == '-')) ++j;
    for (; j < out.size() && out[j] >= '0' && out[j] <= '9'; ++j) out[j] = '0';
    i = j - 1;
  }
  return out;
}

// Follows the events of one document and keeps what the question needs: the
// outermost value's kind, its "type" and "delta" members, and whether any
// object had a key twice. Boost.JSON itself checks the syntax, the encoding
// and the depth.
class BatchShape {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  bool empty_batch() const {
    return outer_is_object_ && !duplicate_key_ && type_ && *type_ == "session_update" &&
           delta_ == Delta::empty_array;
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code&) {
    value(Kind::object);
    levels_.push_back({true, {}});
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    levels_.pop_back();
    return true;
  }
  bool on_array_begin(json::error_code&) {
    value(Kind::array);
    levels_.push_back({false, {}});
    return true;
  }
  bool on_array_end(std::size_t elements, json::error_code&) {
    levels_.pop_back();
    // An array that closes directly inside the outermost object is the value
    // of the member whose key came last.
    if (in_outer_object() && member_ == "delta") {
      delta_ = elements == 0 ? Delta::empty_array : Delta::other;
    }
    return true;
  }

  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    if (!levels_.back().keys.insert(key_).second) duplicate_key_ = true;
    if (in_outer_object()) member_ = key_;
    key_.clear();
    return true;
  }

  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (!in_string_) value(Kind::string);
    in_string_ = true;
    text_.append(part.data(), part.size());
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (!in_string_) value(Kind::string);
    text_.append(part.data(), part.size());
    if (in_outer_object() && member_ == "type") type_ = text_;
    in_string_ = false;
    text_.clear();
    return true;
  }

  bool on_number_part(json::string_view, json::error_code&) {
    if (!in_number_) value(Kind::other);
    in_number_ = true;
    return true;
  }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return number_done(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return number_done(); }
  bool on_double(double, json::string_view, json::error_code&) { return number_done(); }
  bool on_bool(bool, json::error_code&) {
    value(Kind::other);
    return true;
  }
  bool on_null(json::error_code&) {
    value(Kind::other);
    return true;
  }
  // Comments are refused by the options; the parser still wants the events.
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  enum class Kind { object, array, string, other };
  enum class Delta { absent, empty_array, other };
  struct Level {
    bool object;
    std::set<std::string> keys;
  };

  bool in_outer_object() const { return levels_.size() == 1 && levels_.front().object; }

  bool number_done() {
    if (!in_number_) value(Kind::other);
    in_number_ = false;
    return true;
  }

  // A value begins: the document's own, or a member of the outermost object.
  void value(Kind kind) {
    if (levels_.empty()) {
      outer_is_object_ = kind == Kind::object;
      return;
    }
    if (!in_outer_object()) return;
    // "type" set only by a string (on_string), "delta" only by an array's end.
    if (member_ == "type") type_.reset();
    if (member_ == "delta") delta_ = Delta::other;
  }

  std::vector<Level> levels_;
  std::string key_, text_, member_;
  bool in_string_ = false, in_number_ = false;
  bool outer_is_object_ = false, duplicate_key_ = false;
  std::optional<std::string> type_;
  Delta delta_ = Delta::absent;
};

}  // namespace

bool is_empty_batch(std::string_view text, std::size_t max_depth) {
  json::parse_options options;  // standard JSON only: no comments, no trailing commas, UTF-8
  options.max_depth = max_depth;
  json::basic_parser<BatchShape> parser(options);
  const std::string input = with_small_exponents(text);
  json::error_code error;
  std::size_t used = parser.write_some(false, input.data(), input.size(), error);
  return !error && used == input.size() && parser.handler().empty_batch();
}

}  // namespace deltatap::testing
