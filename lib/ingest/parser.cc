// The parser is one RapidJSON SAX pass over an in-situ copy of the frame. In-situ
// decoding leaves every string and key where it was in the copy, so keys can be
// compared for duplicates and values referenced without allocating, and source offsets
// stay valid for quoting a batch element's raw text. The iterative reader keeps its
// stack on the heap, so nesting cannot overflow ours; the handler stops at kMaxDepth
// because deeper input is never a session and would only cost memory.
//
// Batch elements become deltas as they end, so memory follows the output, not the input.
//
// Beside it: exact_numbers.cc (numbers beyond double range kept digit for
// digit) and delta_check.cc (a replayed journal record held to these rules).
#include "ingest/parser.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_set>

#include "base/json_text.h"
#include "ingest/exact_numbers.h"
#include "ingest/json_tokens.h"
#include "ingest/rejection_text.h"

namespace deltatap {
namespace {

using namespace json_tokens;

// A scalar member: for strings the decoded text (in the work buffer), for numbers and
// booleans the token as written.
// A state member: an object is kept as compact JSON.
struct State {
  Kind kind = Kind::absent;
  std::string json;
};

struct Fields {
  Scalar id;         // sessionId (A) / id (B)
  Scalar type;       // type (A) / change (B)
  Scalar timestamp;
  State before;      // before (A) / previous (B)
  State after;       // after (A) / current (B)
};


struct Names {
  const char* id;
  const char* type;
  const char* before;
  const char* after;
};
constexpr Names kFormatA{"sessionId", "type", "before", "after"};
constexpr Names kFormatB{"id", "change", "previous", "current"};

// Strings in a state are written back through the project's one escaper
// (base/json_text.h). What reaches it here is always valid UTF-8 (the reader
// validates the encoding; FrameHandler refuses lone surrogate escapes), so its
// U+FFFD replacement never applies and a state reads back as received. Numbers
// do not go through it: they are kept as their original token (RawNumber), so
// they keep their exact digits.
std::string scalar_json(const Scalar& scalar) {
  if (scalar.kind == Kind::string) {
    std::string out;
    append_json_string(out, scalar.text);
    return out;
  }
  if (scalar.kind == Kind::null) return "null";
  return std::string(scalar.text);
}

bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The receive time, formatted only when a delta lacks its own timestamp.
struct ReceiveTime {
  TimePoint time;
  std::string text;
  const std::string& get() {
    if (text.empty()) text = format_timestamp(time);
    return text;
  }
};

struct DeltaBuilder {
  const Names& names;
  ReceiveTime& received;

  // Fills `out` from `fields`, or returns false with reason and detail set. `known`
  // is the type when the frame already named it (format A); otherwise the fields'
  // own type (a batch element's "change") is checked here.
  bool build(Fields& fields, std::optional<DeltaType> known, Delta& out, const char*& reason,
             std::string& detail) {
    const Scalar& id = fields.id;
    if (!present(id.kind)) {
      reason = "missing_session_id";
      detail = std::string("delta has no ") + names.id;
      return false;
    }
    if (id.kind != Kind::string) {
      reason = "invalid_session_id";
      detail = std::string(names.id) + " is " + describe(id.kind) + ", not a string";
      return false;
    }
    if (id.text.empty()) {
      reason = "invalid_session_id";
      detail = std::string(names.id) + " is an empty string";
      return false;
    }
    if (id.text.size() > kMaxSessionIdBytes) {
      reason = "invalid_session_id";
      detail = std::string(names.id) + " is " + std::to_string(id.text.size()) +
               " bytes, over the limit of " + std::to_string(kMaxSessionIdBytes);
      return false;
    }
    if (!known) {
      const Scalar& change = fields.type;
      if (change.kind == Kind::string) known = parse_delta_type(change.text);
      if (!known) {
        reason = "invalid_change";
        if (!present(change.kind)) {
          detail = std::string("delta has no ") + names.type;
        } else if (change.kind != Kind::string) {
          detail = std::string(names.type) + " is " + describe(change.kind) + ", not a string";
        } else {
          detail = std::string(names.type) + " " + quote_short(change.text) +
                   " is not created, updated or deleted";
        }
        return false;
      }
    }
    const DeltaType type = *known;
    for (State* state : {&fields.before, &fields.after}) {
      if (present(state->kind) && state->kind != Kind::object) {
        reason = "invalid_state";
        detail = std::string(state == &fields.before ? names.before : names.after) + " is " +
                 describe(state->kind) + ", not an object";
        return false;
      }
    }
    const bool has_before = fields.before.kind == Kind::object;
    const bool has_after = fields.after.kind == Kind::object;
    const char* missing = nullptr;
    if (type != DeltaType::created && !has_before) missing = names.before;
    else if (type != DeltaType::deleted && !has_after) missing = names.after;
    if (missing) {
      reason = "missing_state";
      detail = std::string(to_string(type)) + " delta has no " + missing + " state";
      return false;
    }
    std::string timestamp;
    const Scalar& stamp = fields.timestamp;
    if (!present(stamp.kind)) {
      timestamp = received.get();
    } else if (stamp.kind != Kind::string) {
      reason = "invalid_timestamp";
      detail = std::string("timestamp is ") + describe(stamp.kind) + ", not a string";
      return false;
    } else {
      auto normalised = normalise_timestamp(stamp.text);
      if (!normalised.ok()) {
        reason = "invalid_timestamp";
        detail = normalised.error();
        return false;
      }
      timestamp = std::move(*normalised);
    }
    out.session_id.assign(id.text);
    out.type = type;
    if (has_before) out.before = std::move(fields.before.json);
    if (has_after) out.after = std::move(fields.after.json);
    out.timestamp = std::move(timestamp);
    return true;
  }
};

Rejection parse_error_rejection(std::string_view text, const rapidjson::ParseResult& result) {
  const std::size_t offset = result.Offset();
  std::string where = " at byte " + std::to_string(offset);
  switch (result.Code()) {
    case rapidjson::kParseErrorStringInvalidEncoding:
      return make_rejection("invalid_utf8", "text is not valid UTF-8" + where, text);
    case rapidjson::kParseErrorDocumentEmpty:
      return make_rejection("empty_frame", "frame holds only whitespace", text);
    default:
      return make_rejection("invalid_json",
                            std::string("not valid JSON: ") +
                                rapidjson::GetParseError_En(result.Code()) + where,
                            text);
  }
}

// Turns each finished batch element into a delta or a rejection as soon as it ends, so
// a batch costs memory for what it yields rather than for what it held. A frame gets at
// most kMaxItemisedRejections rejections one by one; past that, bad elements are
// counted into one summary rejection per reason, so a frame of a million broken
// elements cannot turn into a million quarantine rows.
class BatchSink {
 public:
  BatchSink(ReceiveTime& received, ParsedFrame& frame) : builder_{kFormatB, received}, frame_(frame) {}

  // For a fresh attempt at the same frame.
  void reset() { summaries_.clear(); }

  // `fields` is null when the element is not an object; `raw` is its text.
  void element(std::size_t index, Kind kind, Fields* fields, std::string_view raw,
               const std::string& duplicate_detail) {
    if (kind != Kind::object) {
      reject(index, "not_object", std::string("is ") + describe(kind) + ", not an object", raw);
      return;
    }
    if (!duplicate_detail.empty()) {
      reject(index, "duplicate_key", duplicate_detail, raw);
      return;
    }
    Delta delta;
    const char* reason = nullptr;
    std::string detail;
    if (!builder_.build(*fields, std::nullopt, delta, reason, detail)) {
      reject(index, reason, std::move(detail), raw);
      return;
    }
    frame_.deltas.push_back(std::move(delta));
  }

  void finish() {
    for (auto& [reason, summary] : summaries_) {
      Rejection rejection = make_rejection(
          std::string(reason),
          std::to_string(summary.count) + " more batch elements rejected as " + std::string(reason) +
              " (a frame itemises only its first " + std::to_string(kMaxItemisedRejections) +
              " rejections); the first of them, " + summary.first_detail,
          summary.first_raw);
      rejection.count = summary.count;
      frame_.rejections.push_back(std::move(rejection));
    }
    summaries_.clear();
  }

 private:
  struct Summary {
    std::size_t count = 0;
    std::string first_detail;
    std::string first_raw;
  };

  void reject(std::size_t index, const char* reason, std::string detail, std::string_view raw) {
    auto where = [index] { return "batch element " + std::to_string(index) + ": "; };
    if (frame_.rejections.size() < kMaxItemisedRejections) {
      frame_.rejections.push_back(make_rejection(reason, where() + detail, raw));
      return;
    }
    for (auto& [known, summary] : summaries_) {
      if (known == reason) {
        ++summary.count;
        return;
      }
    }
    Rejection first = make_rejection(reason, where() + detail, raw);
    summaries_.push_back({reason, Summary{1, std::move(first.detail), std::move(first.raw)}});
  }

  DeltaBuilder builder_;
  ParsedFrame& frame_;
  std::vector<std::pair<std::string_view, Summary>> summaries_;  // a handful of reasons
};

// Duplicate detection compares against the keys seen so far in the same object; past
// this many keys a hash set takes over so a hostile object cannot go quadratic.
constexpr std::size_t kLinearKeyLimit = 16;

enum class Role : std::uint8_t { top, batch, element, other };

struct Level {
  Role role = Role::other;
  bool is_object = false;
  bool capture = false;       // inside a state being written out
  bool capture_root = false;  // the state object itself
  std::size_t count = 0;      // members or elements written, for commas
  std::size_t keys_begin = 0;
  std::unique_ptr<std::unordered_set<std::string_view>> key_set;
};

// The SAX handler. It does not know the format until it has seen "type", which may
// come after "delta": it keeps the top-level fields of format A, and streams the
// elements of a top-level "delta" array into the sink only once "type" has said
// "session_update" (or the caller already knows it has, on a second pass).
class FrameHandler {
 public:
  FrameHandler(std::string_view original, const char* buffer, rapidjson::InsituStringStream& stream,
               BatchSink& sink, bool assume_batch)
      : original_(original), buffer_(buffer), stream_(stream), sink_(sink), assume_batch_(assume_batch),
        // A lone surrogate can only come from a \u escape: without one in the
        // frame, no string needs the scan (one search instead of one per string).
        may_hold_surrogates_(original.find("\\u") != std::string_view::npos) {
    levels_.reserve(16);
    keys_.reserve(32);
  }

  Kind top_kind = Kind::absent;
  Fields top;
  Kind delta_kind = Kind::absent;
  bool streamed = false;             // the batch went to the sink
  std::string unstreamed_duplicate;  // first repeated key in a "delta" element not streamed
  std::string abort_reason;
  std::string abort_detail;

  // SAX interface. Numbers arrive through RawNumber only (kParseNumbersAsStringsFlag).
  bool Null() { return scalar(Kind::null, "null"); }
  bool Bool(bool value) { return scalar(Kind::boolean, value ? "true" : "false"); }
  bool Int(int) { return true; }
  bool Uint(unsigned) { return true; }
  bool Int64(std::int64_t) { return true; }
  bool Uint64(std::uint64_t) { return true; }
  bool Double(double) { return true; }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    // Read the digits from the original: the work buffer may hold a stand-in (see
    // neutralise_numbers).
    auto offset = static_cast<std::size_t>(text - buffer_);
    return scalar(Kind::number, original_.substr(offset, length));
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    std::string_view value(text, length);
    if (may_hold_surrogates_ && has_lone_surrogate(value)) return abort_lone_surrogate();
    return scalar(Kind::string, value);
  }
  bool StartObject() { return start(true); }
  bool StartArray() { return start(false); }
  bool EndObject(rapidjson::SizeType) { return end(); }
  bool EndArray(rapidjson::SizeType) { return end(); }

  bool Key(const char* text, rapidjson::SizeType length, bool) {
    std::string_view key(text, length);
    if (may_hold_surrogates_ && has_lone_surrogate(key)) return abort_lone_surrogate();
    Level& level = levels_.back();
    if (!remember_key(level, key)) {
      std::string detail = "key " + quote_short(key) + " appears twice in one object";
      if (!in_element_) return abort("duplicate_key", std::move(detail));
      // Inside a batch element only that element is spoiled.
      if (element_duplicate_.empty()) element_duplicate_ = std::move(detail);
    }
    if (level.capture) {
      if (level.count++ > 0) out_->push_back(',');
      append_json_string(*out_, key);
      out_->push_back(':');
      return true;
    }
    pending_scalar_ = nullptr;
    pending_state_ = nullptr;
    pending_batch_ = false;
    if (level.role == Role::top) {
      target(top, key, "sessionId", "type", "before", "after");
      if (key == "delta") pending_batch_ = true;
    } else if (level.role == Role::element && level.is_object && streaming_) {
      target(element_, key, "id", "change", "previous", "current");
    }
    return true;
  }

 private:
  void target(Fields& fields, std::string_view key, std::string_view id, std::string_view type,
              std::string_view before, std::string_view after) {
    if (key == id) pending_scalar_ = &fields.id;
    else if (key == type) pending_scalar_ = &fields.type;
    else if (key == "timestamp") pending_scalar_ = &fields.timestamp;
    else if (key == before) pending_state_ = &fields.before;
    else if (key == after) pending_state_ = &fields.after;
  }

  bool remember_key(Level& level, std::string_view key) {
    if (level.key_set) return level.key_set->insert(key).second;
    for (std::size_t i = level.keys_begin; i < keys_.size(); ++i) {
      if (keys_[i] == key) return false;
    }
    keys_.push_back(key);
    if (keys_.size() - level.keys_begin > kLinearKeyLimit) {
      level.key_set = std::make_unique<std::unordered_set<std::string_view>>(
          keys_.begin() + static_cast<std::ptrdiff_t>(level.keys_begin), keys_.end());
      keys_.resize(level.keys_begin);
    }
    return true;
  }

  // RapidJSON 1.1.0 refuses a lone high surrogate escape but decodes a lone low one
  // ("\udc00") into the bytes ED B0 80, which are not UTF-8. The input itself was
  // validated, so a lead byte ED followed by A0-BF can only have come from such an escape.
  static bool has_lone_surrogate(std::string_view text) {
    const char* at = text.data();
    const char* end = at + text.size();
    while ((at = static_cast<const char*>(std::memchr(at, '\xED', static_cast<std::size_t>(end - at))))) {
      if (++at < end && static_cast<unsigned char>(*at) >= 0xA0) return true;
    }
    return false;
  }

  bool abort_lone_surrogate() {
    return abort("invalid_json", "a string holds a lone UTF-16 surrogate escape, which is no character");
  }

  bool abort(const char* reason, std::string detail) {
    abort_reason = reason;
    abort_detail = std::move(detail);
    return false;
  }

  // A value inside a state: comma first if it is an array element.
  void capture_separator(Level& parent) {
    if (!parent.is_object && parent.count++ > 0) out_->push_back(',');
  }

  void clear_pending() {
    pending_scalar_ = nullptr;
    pending_state_ = nullptr;
    pending_batch_ = false;
  }

  bool scalar(Kind kind, std::string_view text) {
    if (levels_.empty()) {
      top_kind = kind;
      return true;
    }
    Level& parent = levels_.back();
    if (parent.capture) {
      capture_separator(parent);
      if (kind == Kind::string) append_json_string(*out_, text);
      else out_->append(text);
      return true;
    }
    if (parent.role == Role::batch) {
      if (streaming_) sink_.element(element_index_, kind, nullptr, scalar_json(Scalar{kind, text}), {});
      ++element_index_;
    } else if (pending_scalar_) {
      *pending_scalar_ = Scalar{kind, text};
    } else if (pending_state_) {
      pending_state_->kind = kind;
    } else if (pending_batch_) {
      delta_kind = kind;
    }
    clear_pending();
    return true;
  }

  bool start(bool is_object) {
    if (levels_.size() >= static_cast<std::size_t>(kMaxDepth)) {
      return abort("too_deep", "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    const Kind kind = is_object ? Kind::object : Kind::array;
    Level level;
    level.is_object = is_object;
    level.keys_begin = keys_.size();
    if (levels_.empty()) {
      top_kind = kind;
      if (is_object) level.role = Role::top;
    } else {
      Level& parent = levels_.back();
      if (parent.capture) {
        capture_separator(parent);
        out_->push_back(is_object ? '{' : '[');
        level.capture = true;
      } else if (parent.role == Role::batch) {
        element_ = Fields{};
        element_kind_ = kind;
        element_begin_ = stream_.Tell();
        element_duplicate_.clear();
        level.role = Role::element;
        in_element_ = true;
      } else {
        if (pending_scalar_) {
          pending_scalar_->kind = kind;
        } else if (pending_state_) {
          pending_state_->kind = kind;
          if (is_object) {
            out_ = &pending_state_->json;
            out_->clear();
            out_->push_back('{');
            level.capture = true;
            level.capture_root = true;
          }
        } else if (pending_batch_) {
          delta_kind = kind;
          if (!is_object && parent.role == Role::top) {
            level.role = Role::batch;
            streaming_ = assume_batch_ ||
                         (top.type.kind == Kind::string && top.type.text == "session_update");
            streamed = streaming_;
          }
        }
        clear_pending();
      }
    }
    levels_.push_back(std::move(level));
    return true;
  }

  bool end() {
    Level& level = levels_.back();
    if (level.capture) {
      out_->push_back(level.is_object ? '}' : ']');
      if (level.capture_root) out_ = nullptr;
    }
    if (level.role == Role::element) {
      // The iterative reader reports the end before consuming the bracket.
      const std::size_t end = stream_.Tell() + 1;
      if (streaming_) {
        sink_.element(element_index_, element_kind_,
                      element_kind_ == Kind::object ? &element_ : nullptr,
                      original_.substr(element_begin_, end - element_begin_), element_duplicate_);
      } else if (unstreamed_duplicate.empty()) {
        unstreamed_duplicate = element_duplicate_;
      }
      ++element_index_;
      in_element_ = false;
    } else if (level.role == Role::batch) {
      streaming_ = false;
    }
    keys_.resize(level.keys_begin);
    levels_.pop_back();
    return true;
  }

  std::string_view original_;
  const char* buffer_;
  rapidjson::InsituStringStream& stream_;
  BatchSink& sink_;
  const bool assume_batch_;
  const bool may_hold_surrogates_;
  std::vector<Level> levels_;
  std::vector<std::string_view> keys_;  // keys of the open objects, innermost last
  std::string* out_ = nullptr;          // the state being written
  Scalar* pending_scalar_ = nullptr;    // where the value after the last key goes
  State* pending_state_ = nullptr;
  bool pending_batch_ = false;
  bool streaming_ = false;   // inside the "delta" array of a known batch
  bool in_element_ = false;  // inside an element of the "delta" array
  Fields element_;           // the open element's fields
  Kind element_kind_ = Kind::absent;
  std::size_t element_begin_ = 0;
  std::size_t element_index_ = 0;
  std::string element_duplicate_;
};

}  // namespace

ParsedFrame parse_frame(std::string_view text, TimePoint received) {
  ParsedFrame frame;
  auto reject = [&](const char* reason, std::string detail) {
    frame.deltas.clear();
    frame.rejections.clear();
    frame.rejections.push_back(make_rejection(reason, std::move(detail), text));
    return std::move(frame);
  };

  std::size_t first = 0;
  while (first < text.size() && is_json_whitespace(text[first])) ++first;
  if (first == text.size()) {
    return reject("empty_frame", text.empty() ? "frame is empty" : "frame holds only whitespace");
  }
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") {
    return reject("byte_order_mark", "frame starts with a UTF-8 byte order mark");
  }
  if (const void* nul = std::memchr(text.data(), '\0', text.size())) {
    auto offset = static_cast<const char*>(nul) - text.data();
    return reject("invalid_json", "raw NUL byte at byte " + std::to_string(offset) +
                                      " (JSON allows it only escaped, as \\u0000 in a string)");
  }

  // The reader writes decoded strings into the work buffer and stops at the first NUL,
  // the one after the text. RapidJSON 1.1.0's UTF-8 validation reads all the tail
  // bytes a lead byte promises before judging them, so a frame that ends inside a
  // multi-byte character makes it read up to three bytes past that NUL: the padding
  // keeps those reads inside the buffer (they then fail as invalid UTF-8).
  constexpr std::size_t kPadding = 4;
  std::string buffer;
  buffer.reserve(text.size() + kPadding);
  bool neutralised = false;
  ReceiveTime receive{received, {}};
  BatchSink sink(receive, frame);
  std::optional<FrameHandler> handler;

  // Usually one pass. A second one when "type": "session_update" came after the batch,
  // so the first pass could not yet stream its elements.
  bool assume_batch = false;
  for (int pass = 0; pass < 2; ++pass) {
    rapidjson::ParseResult result;
    for (;;) {
      buffer.assign(text);
      buffer.append(kPadding, '\0');
      if (neutralised) neutralise_numbers(buffer);
      frame = ParsedFrame{};
      sink.reset();
      rapidjson::InsituStringStream stream(buffer.data());
      handler.emplace(text, buffer.data(), stream, sink, assume_batch);
      rapidjson::Reader reader;
      result = reader.Parse<kFrameParseFlags>(stream, *handler);
      if (result.Code() != rapidjson::kParseErrorNumberTooBig || neutralised) break;
      neutralised = true;
    }
    FrameHandler& h = *handler;
    if (result.IsError()) {
      if (result.Code() == rapidjson::kParseErrorTermination && !h.abort_reason.empty()) {
        return reject(h.abort_reason.c_str(), std::move(h.abort_detail));
      }
      frame = ParsedFrame{};
      frame.rejections.push_back(parse_error_rejection(text, result));
      return frame;
    }

    if (h.top_kind != Kind::object) {
      return reject("not_object", std::string("frame is ") + describe(h.top_kind) + ", not a JSON object");
    }
    const Scalar& type = h.top.type;
    if (!present(type.kind)) return reject("missing_type", "frame has no \"type\"");
    if (type.kind != Kind::string) {
      return reject("unknown_type", std::string("\"type\" is ") + describe(type.kind) + ", not a string");
    }

    if (type.text != "session_update") {
      auto delta_type = parse_delta_type(type.text);
      if (!delta_type) {
        return reject("unknown_type", "type " + quote_short(type.text) +
                                          " is not created, updated, deleted or session_update");
      }
      if (!h.unstreamed_duplicate.empty()) return reject("duplicate_key", h.unstreamed_duplicate);
      DeltaBuilder builder{kFormatA, receive};
      Delta delta;
      const char* reason = nullptr;
      std::string detail;
      if (!builder.build(h.top, *delta_type, delta, reason, detail)) {
        return reject(reason, std::move(detail));
      }
      frame.deltas.push_back(std::move(delta));
      return frame;
    }

    if (h.delta_kind != Kind::array) {
      return reject("invalid_batch", h.delta_kind == Kind::absent || h.delta_kind == Kind::null
                                         ? std::string("session_update frame has no \"delta\" array")
                                         : std::string("\"delta\" is ") + describe(h.delta_kind) +
                                               ", not an array");
    }
    if (h.streamed) {
      sink.finish();
      return frame;
    }
    assume_batch = true;
  }
  // The second pass always streams; this is not reached.
  return reject("invalid_batch", "batch could not be read");
}

Rejection binary_frame_rejection(std::string_view data) {
  return make_rejection("binary_frame",
                        "binary frame of " + std::to_string(data.size()) + " bytes; only text frames carry deltas",
                        data);
}

Rejection too_large_rejection(std::string_view head, std::size_t limit) {
  return make_rejection("too_large",
                        "frame exceeds the limit of " + std::to_string(limit) + " bytes", head);
}

}  // namespace deltatap
