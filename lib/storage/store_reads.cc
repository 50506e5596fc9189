// Store, reading rows: pages of deltas and their cursors, a session's
// history, one delta, the ledger's rows, and how a stored row becomes a
// StoredDelta (states decoded, references resolved within the read, times as
// text). Writing rows is store.cc; how a database comes into being, store_open.cc.
#include "storage/store.h"

#include <sqlite3.h>

#include "storage/session_ledger.h"
#include "storage/sqlite_statement.h"
#include "storage/state_chain.h"
#include "storage/state_columns.h"
#include "storage/store_impl.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace deltatap {

namespace {

void bind_named(sqlite3_stmt* stmt, const char* name, std::string_view text) {
  int index = sqlite3_bind_parameter_index(stmt, name);
  if (index > 0) bind_text(stmt, index, text);
}

}  // namespace

std::optional<Cursor> parse_cursor(std::string_view text) {
  auto split = text.rfind('_');
  if (split == std::string_view::npos) return std::nullopt;
  Cursor cursor;
  auto id_text = text.substr(split + 1);
  auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), cursor.id);
  if (ec != std::errc() || end != id_text.data() + id_text.size() || cursor.id <= 0) {
    return std::nullopt;
  }
  auto timestamp = normalise_timestamp(text.substr(0, split));
  if (!timestamp.ok() || *timestamp != text.substr(0, split)) return std::nullopt;
  cursor.timestamp = *timestamp;
  return cursor;
}

std::string format_cursor(const Cursor& cursor) {
  return cursor.timestamp + "_" + std::to_string(cursor.id);
}

namespace {

// Every column of delta_columns() but the two states.
StoredDelta read_delta_but_states(sqlite3_stmt* stmt) {
  StoredDelta row;
  row.id = sqlite3_column_int64(stmt, 0);
  row.delta.session_id = column_text(stmt, 1);
  row.delta.type = parse_delta_type(column_text(stmt, 2)).value_or(DeltaType::updated);
  row.delta.timestamp = TimeColumns::read(stmt, 5);
  row.created_at = TimeColumns::read(stmt, 6);
  row.origin = parse_delta_origin(column_text(stmt, 7)).value_or(DeltaOrigin::stream);
  row.gap = sqlite3_column_int(stmt, 8) != 0;
  return row;
}

}  // namespace

// Every column of delta_columns() but the before state.
Status Store::Impl::read_delta_but_before(sqlite3_stmt* stmt, StoredDelta& row) {
  row = read_delta_but_states(stmt);
  auto after = columns.read_after(db, stmt, 4, 3, 9, row.id);
  if (!after.ok()) return Error{after.error()};
  row.delta.after = std::move(*after);
  return ok_status();
}

Result<StoredDelta> Store::Impl::read_delta(sqlite3_stmt* stmt) {
  StoredDelta row;
  if (auto s = read_delta_but_before(stmt, row); !s.ok()) return Error{s.error()};
  auto before = columns.read_before(db, stmt, 3, 9, row.id);
  if (!before.ok()) return Error{before.error()};
  row.delta.before = std::move(*before);
  return row;
}

Status Store::Impl::read_delta_of(sqlite3_stmt* stmt, std::vector<StoredDelta>& rows,
                                  std::vector<PendingReference>& pending) {
  if (sqlite3_column_type(stmt, 9) == SQLITE_NULL) {
    auto row = read_delta(stmt);  // both states in the row itself
    if (!row.ok()) return Error{row.error()};
    rows.push_back(std::move(*row));
    return ok_status();
  }
  StoredDelta row = read_delta_but_states(stmt);
  PendingReference waiting{rows.size(), sqlite3_column_int64(stmt, 9), {}};
  if (StateColumns::is_prefixed(stmt, 4)) {
    waiting.prefixed_after = std::string(StateChain::stored(stmt, 4).bytes);
  } else {
    auto after = columns.read(stmt, 4, row.id);
    if (!after.ok()) return Error{after.error()};
    row.delta.after = std::move(*after);
  }
  pending.push_back(std::move(waiting));
  rows.push_back(std::move(row));
  return ok_status();
}

Status Store::Impl::resolve_references(std::vector<StoredDelta>& rows,
                                       std::vector<PendingReference>& pending) {
  if (pending.empty()) return ok_status();
  std::unordered_map<std::int64_t, std::size_t> index;
  index.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) index.emplace(rows[i].id, i);
  // Oldest first: a row's before state is an older row's after state.
  std::sort(pending.begin(), pending.end(), [&](const auto& a, const auto& b) {
    return rows[a.row].id < rows[b.row].id;
  });
  for (auto& [row, ref, prefixed_after] : pending) {
    auto found = index.find(ref);
    if (found != index.end() && rows[found->second].delta.after) {
      rows[row].delta.before = rows[found->second].delta.after;
    } else {
      auto before = columns.resolve(db, ref, rows[row].id);
      if (!before.ok()) return Error{before.error()};
      rows[row].delta.before = std::move(*before);
    }
    if (prefixed_after.empty()) continue;
    auto after = columns.decode_against(prefixed_after, *rows[row].delta.before, rows[row].id);
    if (!after.ok()) return Error{after.error()};
    rows[row].delta.after = std::move(*after);
  }
  return ok_status();
}

std::string delta_query_sql(const DeltaQuery& query, bool cursor) {
  std::string sql = " WHERE 1";
  if (query.session_id) sql += " AND session_id = :sid";
  if (query.type) sql += " AND delta_type = :type";
  if (query.since) sql += " AND timestamp >= :since";
  if (query.until) sql += " AND timestamp < :until";
  // The first term bounds the index range; the second orders ties by id.
  if (cursor) sql += " AND timestamp <= :cts AND (timestamp, id) < (:cts, :cid)";
  return sql + " ORDER BY timestamp DESC, id DESC LIMIT :limit";
}

void bind_delta_query(sqlite3_stmt* stmt, const DeltaQuery& query,
                      const std::optional<Cursor>& cursor, TimeColumns times, std::int64_t fetch) {
  if (query.session_id) bind_named(stmt, ":sid", *query.session_id);
  if (query.type) bind_named(stmt, ":type", to_string(*query.type));
  if (query.since) times.bind(stmt, ":since", *query.since);
  if (query.until) times.bind(stmt, ":until", *query.until);
  if (cursor) {
    times.bind(stmt, ":cts", cursor->timestamp);
    sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":cid"), cursor->id);
  }
  sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":limit"), fetch);
}

Result<DeltaPage> Store::get_deltas(const DeltaQuery& query) {
  std::optional<Cursor> cursor;
  if (query.before) {
    cursor = parse_cursor(*query.before);
    if (!cursor) return Error{"invalid cursor"};
  }
  int limit = std::clamp(query.limit, 1, kMaxQueryLimit);
  auto stmt = impl_->statement("SELECT " + impl_->delta_columns() + " FROM session_deltas" +
                               delta_query_sql(query, cursor.has_value()));
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_delta_query(*use, query, cursor, impl_->times, std::int64_t{limit} + 1);
  DeltaPage page;
  std::vector<Impl::PendingReference> pending;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    if (static_cast<int>(page.deltas.size()) == limit) {
      const auto& last = page.deltas.back();
      page.next = format_cursor({last.delta.timestamp, last.id});
      break;
    }
    if (auto s = impl_->read_delta_of(*use, page.deltas, pending); !s.ok()) return Error{s.error()};
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "query")};
  if (auto s = impl_->resolve_references(page.deltas, pending); !s.ok()) return Error{s.error()};
  return page;
}

Status Store::for_each_delta(const std::function<bool(const StoredDelta&)>& visit) {
  // Not cached: a long export must not hold a statement another query needs.
  sqlite3_stmt* raw = nullptr;
  std::string sql = "SELECT " + impl_->delta_columns() + " FROM session_deltas ORDER BY id";
  if (sqlite3_prepare_v2(impl_->db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    return Error{sqlite_error(impl_->db, "prepare export")};
  }
  Statement stmt(raw);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    auto row = impl_->read_delta(raw);
    if (!row.ok()) return Error{row.error()};
    if (!visit(*row)) return ok_status();
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "export")};
  return ok_status();
}

Result<std::vector<SessionSummary>> Store::sessions() {
  if (auto s = impl_->settle_ledger(); !s.ok()) return Error{s.error()};
  // Every Store has a ledger that adds up (open_readonly loads a file whose
  // ledger does not into memory and rebuilds it there).
  auto stmt = impl_->statement(
      "SELECT s.session_id, s.created, s.updated, s.deleted, s.gaps, s.inferred, s.first_seen, "
      "s.last_seen, s.last_id, s.last_type, s.live, "
      "CASE WHEN d.delta_type = 'deleted' THEN " + json_before_sql("d") + " ELSE " +
      json_after_sql("d") + " END "
      "FROM sessions s LEFT JOIN session_deltas d ON d.id = s.last_id "
      "ORDER BY s.last_seen DESC, s.session_id");
  if (!stmt.ok()) return Error{stmt.error()};
  std::vector<SessionSummary> result;
  Use use(*stmt);
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    SessionSummary row;
    row.session_id = column_text(*use, 0);
    row.created = sqlite3_column_int64(*use, 1);
    row.updated = sqlite3_column_int64(*use, 2);
    row.deleted = sqlite3_column_int64(*use, 3);
    row.gaps = sqlite3_column_int64(*use, 4);
    row.inferred = sqlite3_column_int64(*use, 5);
    row.first_seen = column_text(*use, 6);
    row.last_seen = column_text(*use, 7);
    row.last_id = sqlite3_column_int64(*use, 8);
    row.last_type = column_text(*use, 9);
    row.live = sqlite3_column_int(*use, 10) != 0;
    row.last_state = column_optional(*use, 11);
    result.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "sessions")};
  return result;
}

Result<std::vector<StoredDelta>> Store::session_history(const std::string& session_id) {
  auto stmt = impl_->statement("SELECT " + impl_->delta_columns() +
                               " FROM session_deltas WHERE session_id = ?1 ORDER BY id");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  bind_text(*use, 1, session_id);
  std::vector<StoredDelta> rows;
  std::vector<Impl::PendingReference> pending;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) {
    if (auto s = impl_->read_delta_of(*use, rows, pending); !s.ok()) return Error{s.error()};
  }
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "session history")};
  if (auto s = impl_->resolve_references(rows, pending); !s.ok()) return Error{s.error()};
  return rows;
}

Result<std::optional<LedgerEntry>> Store::ledger_entry(const std::string& session_id) {
  if (!impl_->has_ledger) return std::optional<LedgerEntry>();
  auto row = impl_->ledger.row(impl_->db, session_id);
  if (!row.ok()) return Error{row.error()};
  if (!*row) return std::optional<LedgerEntry>();
  return std::optional<LedgerEntry>(LedgerEntry{(*row)->live, (*row)->last_id, (*row)->state_digest});
}

Result<std::optional<StoredDelta>> Store::delta_by_id(std::int64_t delta_id) {
  auto stmt = impl_->statement("SELECT " + impl_->delta_columns() +
                               " FROM session_deltas WHERE id = ?1");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  sqlite3_bind_int64(*use, 1, delta_id);
  int rc = sqlite3_step(*use);
  if (rc == SQLITE_DONE) return std::optional<StoredDelta>();
  if (rc != SQLITE_ROW) return Error{sqlite_error(impl_->db, "delta")};
  auto row = impl_->read_delta(*use);
  if (!row.ok()) return Error{row.error()};
  return std::optional<StoredDelta>(std::move(*row));
}

Result<std::vector<std::string>> Store::live_sessions() {
  if (auto s = impl_->settle_ledger(); !s.ok()) return Error{s.error()};
  auto stmt = impl_->statement("SELECT session_id FROM sessions WHERE live ORDER BY session_id");
  if (!stmt.ok()) return Error{stmt.error()};
  Use use(*stmt);
  std::vector<std::string> ids;
  int rc;
  while ((rc = sqlite3_step(*use)) == SQLITE_ROW) ids.push_back(column_text(*use, 0));
  if (rc != SQLITE_DONE) return Error{sqlite_error(impl_->db, "live sessions")};
  return ids;
}

}  // namespace deltatap
