// state_diff: what a delta changed, field by field, between its before and
// after states; the CHANGED column of `query` and every line of `timeline`.
//
// States are read into JsonNode trees that keep each number's text exactly as
// stored, so "3.10" never shows as 3.1 and 2^64 never as a rounded double. Two
// objects are compared key by key, recursing into nested objects to give paths
// such as "metadata.attempt"; anything else (arrays included) is compared as a
// whole value. Keys compare regardless of order; array items by position.
//
// Nesting: a state may be nested as deep as the parser lets a frame be
// (ingest/parser.h's kMaxDepth, 512 levels), one limit for both, so every
// state the daemon stored can be shown: a frame counts as a level of its own,
// so a stored state has at most kMaxDepth - 1. A deeper state (a file written
// by other means) is not read into a tree; it is reported as too deep rather
// than as "not JSON". The tree functions recurse once per level, which that
// limit bounds.
//
// Pure functions: any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "storage/store.h"

namespace deltatap::cli {

struct JsonNode {
  enum class Kind { null, boolean, number, string, object, array };
  Kind kind = Kind::null;
  std::string text;  // number digits, string value, "true"/"false"
  std::vector<std::pair<std::string, JsonNode>> members;  // in document order
  std::vector<JsonNode> items;
};

// The tree of one JSON text; or an error saying why not, worded to follow "the
// state ": "is nested deeper than 512 levels" (more than kMaxDepth), or "is not
// valid JSON" (a syntax error or invalid UTF-8).
Result<JsonNode> parse_tree(std::string_view text);

// The value of `object`'s member `key` (the first one, should a key repeat),
// or nullptr when there is none or `object` is not an object. The pointer is
// into `object`.
const JsonNode* member(const JsonNode& object, std::string_view key);

// Appends `node` as compact JSON: numbers as their stored text, members in order.
void append_compact(std::string& out, const JsonNode& node);

// A value for people: a string bare when that cannot be mistaken for anything
// else (a number, true/false/null, text with quotes, control characters, edge
// spaces or " → "), compact JSON otherwise.
std::string show_value(const JsonNode& node);

struct Change {
  enum class Op { changed, added, removed };
  Op op;
  // "a.b.c"; a key that is not a plain name is quoted, "a[\"odd key\"]"; the
  // whole state is "(state)".
  std::string path;
  // Into the trees of the DeltaChanges holding this Change. before is null for
  // added, after for removed.
  const JsonNode* before = nullptr;
  const JsonNode* after = nullptr;
};

// The changes of one delta together with the trees they point into; neither
// copied nor moved, so those pointers stay valid.
struct DeltaChanges {
  DeltaChanges() = default;
  DeltaChanges(const DeltaChanges&) = delete;
  DeltaChanges& operator=(const DeltaChanges&) = delete;

  std::optional<JsonNode> before, after;
  std::vector<Change> changes;
  bool unreadable = false;  // a state could not be read; changes is then empty
  // When unreadable, why, as parse_tree words it: "is not valid JSON".
  std::string problem;
};

// Fills `out`, which must be freshly constructed, with what `row` changed: with
// both states, the differences between them (an update); with only after, on a
// created delta, every leaf of it as added; otherwise (a deletion) nothing.
void compute_changes(const StoredDelta& row, DeltaChanges& out);

}  // namespace deltatap::cli
