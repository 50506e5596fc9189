// One RapidJSON SAX pass over an in-situ copy of the body, with the parser's
// reader flags and its stand-in for numbers beyond double range
// (ingest/exact_numbers.h), finds the shape and cuts the list into elements.
// Each element is then handed to parse_frame() itself, spliced as the state of
// a `created` delta, in the manner of check_delta (delta_check.cc): every rule
// a state is held to, and the compact form it is written in, are the parser's
// own, not a copy of them that could drift. The price is a second pass over
// each element's bytes, once per reconciliation.
#include "ingest/reconcile_answer.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_set>
#include <utility>

#include "base/json_text.h"
#include "ingest/exact_numbers.h"
#include "ingest/json_tokens.h"
#include "ingest/rejection_text.h"

namespace deltatap {
namespace {

using namespace json_tokens;

constexpr std::string_view kShapes = "{\"sessions\":[...]} or an array of sessions";

// Turns each element of the list into a live session or a rejection as soon
// as it ends, so memory follows what is kept.
class SessionSink {
 public:
  explicit SessionSink(ReconcileAnswer& answer) : answer_(answer) {}

  // `raw` is the element's text as received; `id` its "id" member, if any.
  void element(Kind kind, std::string_view raw, const Scalar& id) {
    const std::size_t index = index_++;
    if (kind != Kind::object) {
      return reject(index, "not_object", std::string("is ") + describe(kind) + ", not an object", raw);
    }
    if (id.kind == Kind::absent || id.kind == Kind::null) {
      return reject(index, "missing_session_id", "session has no id", raw);
    }
    if (id.kind != Kind::string) {
      return reject(index, "invalid_session_id", std::string("id is ") + describe(id.kind) + ", not a string",
                    raw);
    }
    if (id.text.empty()) return reject(index, "invalid_session_id", "id is an empty string", raw);
    if (id.text.size() > kMaxSessionIdBytes) {
      return reject(index, "invalid_session_id",
                    "id is " + std::to_string(id.text.size()) + " bytes, over the limit of " +
                        std::to_string(kMaxSessionIdBytes),
                    raw);
    }
    std::string session_id(id.text);
    if (!seen_ids_.insert(session_id).second) {
      return reject(index, "invalid_session_id",
                    "id " + quote_short(session_id) + " was listed by an earlier element already", raw);
    }

    // The element as the `after` of a format-A frame: parse_frame checks it
    // and writes it exactly as it writes a state from the stream.
    std::string frame = "{\"type\":\"created\",\"sessionId\":";
    append_json_string(frame, session_id);
    frame += ",\"after\":";
    frame.append(raw);
    frame += '}';
    ParsedFrame parsed = parse_frame(frame, TimePoint{});
    if (!parsed.rejections.empty() || parsed.deltas.size() != 1 || !parsed.deltas.front().after) {
      Rejection why = parsed.rejections.empty()
                          ? Rejection{"invalid_state", "the session could not be read", {}, 1}
                          : std::move(parsed.rejections.front());
      answer_.unreadable_ids.push_back(std::move(session_id));
      return reject(index, why.reason, std::move(why.detail), raw);
    }
    answer_.sessions.push_back(LiveSession{std::move(session_id), std::move(*parsed.deltas.front().after)});
  }

  void finish() {
    for (auto& [reason, summary] : summaries_) {
      Rejection rejection = std::move(summary.first);
      rejection.detail = std::to_string(summary.count) + " more sessions rejected as " + reason +
                         " (an answer itemises only its first " +
                         std::to_string(kMaxItemisedRejections) + " rejections); the first of them, " +
                         rejection.detail;
      rejection.count = summary.count;
      answer_.rejections.push_back(std::move(rejection));
    }
    summaries_.clear();
  }

 private:
  struct Summary {
    std::size_t count = 0;
    Rejection first;
  };

  void reject(std::size_t index, std::string reason, std::string detail, std::string_view raw) {
    std::string where = "sessions element " + std::to_string(index) + ": ";
    if (answer_.rejections.size() < kMaxItemisedRejections) {
      answer_.rejections.push_back(make_rejection(std::move(reason), where + detail, raw));
      return;
    }
    Summary& summary = summaries_[reason];
    if (summary.count++ == 0) summary.first = make_rejection(reason, where + detail, raw);
  }

  ReconcileAnswer& answer_;
  std::size_t index_ = 0;
  std::unordered_set<std::string> seen_ids_;
  std::map<std::string, Summary> summaries_;  // a handful of reasons
};

// The SAX handler. Depth 1 is the body's own value; the list is the body
// itself (a bare array) or the top-level object's "sessions" array, and its
// elements are one level below it.
class AnswerHandler {
 public:
  AnswerHandler(std::string_view original, const char* buffer,
                rapidjson::InsituStringStream& stream, SessionSink& sink)
      : original_(original), buffer_(buffer), stream_(stream), sink_(sink) {}

  Kind top_kind = Kind::absent;
  std::size_t top_members = 0;
  Kind sessions_kind = Kind::absent;
  Scalar page_token;
  std::string abort_detail;

  bool Null() { return scalar(Kind::null, "null"); }
  bool Bool(bool value) { return scalar(Kind::boolean, value ? "true" : "false"); }
  bool Int(int) { return true; }
  bool Uint(unsigned) { return true; }
  bool Int64(std::int64_t) { return true; }
  bool Uint64(std::uint64_t) { return true; }
  bool Double(double) { return true; }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    // The digits as written: the work buffer may hold a stand-in.
    auto offset = static_cast<std::size_t>(text - buffer_);
    return scalar(Kind::number, original_.substr(offset, length));
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return scalar(Kind::string, std::string_view(text, length));
  }
  bool StartObject() { return start(Kind::object); }
  bool StartArray() { return start(Kind::array); }
  bool EndObject(rapidjson::SizeType) { return end(); }
  bool EndArray(rapidjson::SizeType) { return end(); }

  bool Key(const char* text, rapidjson::SizeType length, bool) {
    std::string_view key(text, length);
    if (depth_ == 1) {
      ++top_members;
      if (!top_keys_.insert(key).second) {
        abort_detail = "key " + quote_short(key) + " appears twice in the answer's top-level object";
        return false;
      }
      pending_ = key == "sessions" ? Pending::sessions
                 : key == "nextPageToken" ? Pending::page_token
                                          : Pending::other;
    } else if (in_element(depth_)) {
      id_next_ = element_kind_ == Kind::object && key == "id";
    }
    return true;
  }

 private:
  enum class Pending : std::uint8_t { other, sessions, page_token };

  // Whether `depth` is that of the list's elements.
  bool in_element(int depth) const { return list_depth_ != 0 && depth == list_depth_ + 1; }

  bool scalar(Kind kind, std::string_view text) {
    if (depth_ == 0) {
      top_kind = kind;
    } else if (depth_ == 1 && top_kind == Kind::object) {
      if (pending_ == Pending::sessions) sessions_kind = kind;
      if (pending_ == Pending::page_token) page_token = Scalar{kind, text};
    } else if (list_depth_ != 0 && depth_ == list_depth_) {
      sink_.element(kind, scalar_json(kind, text), {});
    } else if (in_element(depth_) && id_next_) {
      element_id_ = Scalar{kind, text};
    }
    id_next_ = false;
    return true;
  }

  bool start(Kind kind) {
    const int depth = depth_ + 1;
    if (depth > kMaxDepth + 1) {
      abort_detail = "the answer is nested deeper than " + std::to_string(kMaxDepth + 1) + " levels";
      return false;
    }
    if (depth == 1) {
      top_kind = kind;
      if (kind == Kind::array) list_depth_ = 1;
    } else if (depth == 2 && top_kind == Kind::object) {
      if (pending_ == Pending::sessions) {
        sessions_kind = kind;
        if (kind == Kind::array) list_depth_ = 2;
      }
      if (pending_ == Pending::page_token) page_token.kind = kind;
    } else if (in_element(depth)) {
      // The iterative reader reports the start before consuming the bracket.
      element_begin_ = stream_.Tell();
      element_kind_ = kind;
      element_id_ = Scalar{};
    } else if (in_element(depth - 1) && id_next_) {
      element_id_ = Scalar{kind, {}};
    }
    id_next_ = false;
    depth_ = depth;
    return true;
  }

  bool end() {
    if (in_element(depth_)) {
      // ... and the end before consuming it, too.
      const std::size_t end = stream_.Tell() + 1;
      sink_.element(element_kind_, original_.substr(element_begin_, end - element_begin_), element_id_);
    } else if (depth_ == list_depth_) {
      list_depth_ = 0;
    }
    --depth_;
    return true;
  }

  // A scalar element's text for its rejection.
  static std::string scalar_json(Kind kind, std::string_view text) {
    if (kind != Kind::string) return std::string(text);
    std::string out;
    append_json_string(out, text);
    return out;
  }

  std::string_view original_;
  const char* buffer_;
  rapidjson::InsituStringStream& stream_;
  SessionSink& sink_;
  int depth_ = 0;       // containers open
  int list_depth_ = 0;  // the list's depth while it is open, else 0
  Pending pending_ = Pending::other;
  std::unordered_set<std::string_view> top_keys_;  // views into the work buffer
  std::size_t element_begin_ = 0;
  Kind element_kind_ = Kind::absent;
  Scalar element_id_;
  bool id_next_ = false;  // the next value is the open element's "id"
};

Error answer_error(std::string detail) { return Error{"the answer " + std::move(detail)}; }

}  // namespace

Result<ReconcileAnswer> parse_reconcile_answer(std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return answer_error("is empty");
  if (body.substr(0, 3) == "\xEF\xBB\xBF") return answer_error("starts with a UTF-8 byte order mark");
  if (const void* nul = std::memchr(body.data(), '\0', body.size())) {
    auto offset = static_cast<const char*>(nul) - body.data();
    return answer_error("holds a raw NUL byte at byte " + std::to_string(offset));
  }

  // As in parse_frame: the padding keeps RapidJSON's UTF-8 validation inside
  // the buffer when the text ends inside a multi-byte character.
  constexpr std::size_t kPadding = 4;
  std::string buffer;
  buffer.reserve(body.size() + kPadding);
  ReconcileAnswer answer;
  std::optional<SessionSink> sink;
  std::optional<AnswerHandler> handler;
  rapidjson::ParseResult result;
  for (bool neutralised : {false, true}) {
    buffer.assign(body);
    buffer.append(kPadding, '\0');
    if (neutralised) neutralise_numbers(buffer);
    answer = ReconcileAnswer{};
    sink.emplace(answer);
    rapidjson::InsituStringStream stream(buffer.data());
    handler.emplace(body, buffer.data(), stream, *sink);
    rapidjson::Reader reader;
    result = reader.Parse<kFrameParseFlags>(stream, *handler);
    if (result.Code() != rapidjson::kParseErrorNumberTooBig) break;
  }
  AnswerHandler& h = *handler;
  if (result.IsError()) {
    if (result.Code() == rapidjson::kParseErrorTermination && !h.abort_detail.empty()) {
      return Error{h.abort_detail};
    }
    std::string where = " at byte " + std::to_string(result.Offset());
    if (result.Code() == rapidjson::kParseErrorStringInvalidEncoding) {
      return answer_error("is not valid UTF-8" + where);
    }
    return answer_error(std::string("is not valid JSON: ") + rapidjson::GetParseError_En(result.Code()) +
                        where);
  }

  if (h.top_kind == Kind::object) {
    if (h.sessions_kind == Kind::absent && h.top_members > 0) {
      return answer_error("is an object without \"sessions\" (expected " + std::string(kShapes) + ")");
    }
    if (h.sessions_kind != Kind::absent && h.sessions_kind != Kind::array) {
      return answer_error(std::string("has \"sessions\" ") + describe(h.sessions_kind) +
                          ", not an array (expected " + std::string(kShapes) + ")");
    }
    if (h.page_token.kind == Kind::string) {
      answer.next_page_token = std::string(h.page_token.text);
    } else if (h.page_token.kind != Kind::absent && h.page_token.kind != Kind::null) {
      return answer_error(std::string("has \"nextPageToken\" ") + describe(h.page_token.kind) +
                          ", not a string");
    }
  } else if (h.top_kind != Kind::array) {
    return answer_error(std::string("is ") + describe(h.top_kind) + " (expected " + std::string(kShapes) + ")");
  }
  sink->finish();
  return answer;
}

}  // namespace deltatap
