// ReconcileAnswer: what the backend's list of live sessions (the body of
// GET /api/sessions, fetched by stream/reconcile_fetch.h) says, read by the
// rules the parser holds a frame to, for reconciliation (design.md,
// "Fidelity"; issue 14).
//
// Accepted shapes of the body (anything else is an Error, and nothing of it
// is used):
//   {"sessions":[...]}   the Jules API's list shape; other members are ignored,
//                        except "nextPageToken" (a string, or null)
//   {}                   no sessions: proto3 JSON leaves an empty list out
//   [...]                a bare array
// Each element of the list is one session object, kept whole as its state:
//   - it must be an object (else not_object) with an "id" that is a non-empty
//     string of at most kMaxSessionIdBytes (else missing_session_id or
//     invalid_session_id), the session id;
//   - it is then held to parse_frame's rules for a state and written in
//     parse_frame's compact form (it goes through parse_frame itself as the
//     state of a `created` delta): numbers keep their digits (9007199254740993,
//     1.50, 1e400), strings their unicode, members their order; a key given
//     twice in any of its objects rejects it (duplicate_key), and so do too
//     deep nesting (too_deep) and lone surrogate escapes (invalid_json);
//   - an element whose id an earlier element already had is rejected
//     (invalid_session_id), whether or not the earlier one was read: which of
//     the two is current cannot be known.
// A rejected element is rejected alone; the others are kept, in order. The
// rejection's raw text is the element as received; past kMaxItemisedRejections
// they are summarised one per reason with a count, as a frame's are.
//
// For the whole body, as for a frame: valid UTF-8 JSON without a byte order
// mark or raw NUL, no key twice in the top-level object, at most kMaxDepth + 1
// levels deep (so that an element may nest as deep as a state in a frame).
//
// Only the first page is read: a non-empty next_page_token says the list goes
// on and is therefore incomplete, so the sessions it lacks must not be taken
// for ended. Likewise unreadable_ids: sessions the backend did list, but whose
// state could not be read.
//
// Error messages and rejection details never quote more of the body than a
// key or an id (cut to 64 bytes); raw texts hold the elements themselves.
// Holds no shared state: any thread may call it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"
#include "base/result.h"
#include "ingest/parser.h"

namespace deltatap {

struct ReconcileAnswer {
  std::vector<LiveSession> sessions;  // in the body's order, ids unique
  std::vector<Rejection> rejections;  // elements not taken, in the body's order
  // The ids of listed sessions none of whose elements could be read (their
  // first element was rejected for something other than its id), in order.
  std::vector<std::string> unreadable_ids;
  // The "nextPageToken" of the Jules API's shape, when present and not empty:
  // more pages follow, which are not fetched.
  std::string next_page_token;

  // Whether the body lists every live session (no further page): only then
  // may a session in neither `sessions` nor `unreadable_ids` be taken for ended.
  bool complete() const { return next_page_token.empty(); }
};

Result<ReconcileAnswer> parse_reconcile_answer(std::string_view body);

}  // namespace deltatap
