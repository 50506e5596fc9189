// Parser: turns one WebSocket text frame into deltas and rejections. It never throws
// and never drops input silently: every frame yields at least one delta or one
// rejection, except a valid batch with an empty `delta` array, which yields neither.
//
// Formats (spec/wire-formats.md), detected per frame by the top-level "type":
//   A  "created" | "updated" | "deleted": one delta from sessionId/before/after/timestamp.
//   B  "session_update": a batch; each element of the "delta" array is one delta from
//      id/change/previous/current and an optional timestamp. A bad element is rejected
//      alone (raw = that element's text) and the others are kept, in order. A top-level
//      "timestamp" in a batch is ignored like any other unknown field.
// The frame must be valid JSON as a whole: a syntax error, too deep nesting, or a
// duplicate key outside the batch elements rejects the whole frame, batch or not.
// A delta is checked in this order and rejected for the first failure: session id,
// type/change, states, timestamp. Keys are compared after unescaping ("\u0061" is "a").
// Unknown extra fields are ignored everywhere. null counts as absent everywhere.
// A delta without a timestamp takes `received`. A state that is present need not match
// the type (a `created` with a `before` keeps it); only missing required states are
// refused: created needs after, deleted needs before, updated both.
//
// States are stored as compact JSON that parses to the value received: numbers keep the
// digits as written (9007199254740993, 1.50, -0, 1e400), strings are written as UTF-8
// with only the escapes JSON requires ("\"", "\\", control characters), members keep
// their order.
//
// Rejection reasons (stable labels, used for metrics and the quarantine table):
//   empty_frame         zero bytes or only whitespace
//   binary_frame        a binary WebSocket frame (see binary_frame_rejection)
//   too_large           a frame over the stream's size limit (see too_large_rejection)
//   byte_order_mark     starts with a UTF-8 BOM; RFC 8259 forbids senders to add one, and
//                       accepting it would hide a misconfigured producer
//   invalid_utf8        bytes that are not UTF-8 (overlong forms and surrogates included)
//   invalid_json        anything else JSON forbids: syntax, trailing data, raw NUL bytes,
//                       lone surrogate escapes
//   too_deep            objects/arrays nested more than kMaxDepth levels, counting the
//                       frame itself
//   duplicate_key       an object with the same key twice, anywhere in the frame (inside
//                       a batch element only that element is rejected)
//   not_object          the frame, or a batch element, is not a JSON object
//   missing_type        no "type" (or null)
//   unknown_type        "type" is not a string or not one of the four known values
//   invalid_batch       "session_update" whose "delta" is absent or not an array
//   missing_session_id  no "sessionId" (A) / "id" (B), or null
//   invalid_session_id  not a string, empty, or longer than kMaxSessionIdBytes
//   invalid_change      a batch element's "change" is absent, null, not a string, or
//                       not created/updated/deleted
//   invalid_state       before/after/previous/current present but not an object
//   missing_state       the state the type needs is absent
//   invalid_timestamp   present but not a string, or not a valid ISO 8601 date-time
//                       (detail gives parse_timestamp's reason)
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"
#include "base/timestamp.h"

namespace deltatap {

inline constexpr int kMaxDepth = 512;
// Session ids are short opaque handles; a kilobyte of id is a broken producer, and the
// id is indexed and repeated in every log line about the session.
inline constexpr std::size_t kMaxSessionIdBytes = 1024;
inline constexpr std::size_t kMaxRawBytes = 64 * 1024;
// A frame lists at most this many rejections one by one; further bad batch elements are
// summarised, one rejection per reason carrying a count, so a hostile batch of millions
// of broken elements costs neither memory nor millions of quarantine rows.
inline constexpr std::size_t kMaxItemisedRejections = 100;

// Every reason this file can produce, e.g. to export each metric label from the start.
inline constexpr std::array<std::string_view, 18> kRejectionReasons = {
    "empty_frame",        "binary_frame",       "too_large",          "byte_order_mark",
    "invalid_utf8",       "invalid_json",       "too_deep",           "duplicate_key",
    "not_object",         "missing_type",       "unknown_type",       "invalid_batch",
    "missing_session_id", "invalid_session_id", "invalid_change",     "invalid_state",
    "missing_state",      "invalid_timestamp"};

struct Rejection {
  std::string reason;  // one of kRejectionReasons
  std::string detail;  // one human sentence
  // The frame, or for a batch the offending element's text as received; at most
  // kMaxRawBytes (cut at a UTF-8 character boundary when the input is UTF-8).
  std::string raw;
  // How many rejected items this stands for: 1, except for the summary of a batch with
  // more than kMaxItemisedRejections bad elements (raw and detail are then the first
  // one's). Count metrics by this.
  std::size_t count = 1;
};

struct ParsedFrame {
  std::vector<Delta> deltas;
  std::vector<Rejection> rejections;
};

// Parses one text frame. `received` is the frame's arrival time. Holds no shared
// state: any thread may call it.
ParsedFrame parse_frame(std::string_view text, TimePoint received);

// Checks a delta that did not come out of parse_frame (a journal record on replay,
// whose CRC proves only that its bytes are the ones written) by the rules
// parse_frame applies to a frame's delta: the session id, the type, the states
// (each exactly one JSON object, as the type requires: UTF-8, no duplicate key,
// at most kMaxDepth deep, counting the frame) and the timestamp, which must
// moreover already be in the normalised form the store orders by. A state need
// not be in parse_frame's own compact form: a journal written by another
// version of the parser stays readable. Returns nullopt when the delta is one
// parse_frame could have produced, else the rejection parse_frame would give
// (reason from kRejectionReasons; raw is the delta written as a format-A frame).
// Holds no shared state: any thread may call it.
std::optional<Rejection> check_delta(const Delta& delta);

// Binary frames are kept for inspection, not parsed.
Rejection binary_frame_rejection(std::string_view data);

// For a frame the stream refused for its size: `head` is whatever part of it was read.
Rejection too_large_rejection(std::string_view head, std::size_t limit);

}  // namespace deltatap
