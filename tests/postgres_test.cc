// The PostgreSQL sink against a real PostgreSQL started by the test
// (postgres_fixture.h): every delta exactly once, states equal as JSON to the
// SQLite store's, through server restarts and a kill -9 of the tap; several
// taps in one database; and a server that is wrong in every way a user meets
// (bad URL, wrong password, missing permissions, no answer) leaves the tap
// itself unaffected, with a clear error and nothing lost.
#define BOOST_TEST_MODULE postgres
#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "postgres_fixture.h"
#include "base/timestamp.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_parallel_writer.h"
#include "skip.h"
#include "storage/archive.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

std::string pg_precondition() { return PostgresServer::unavailable(); }

// A deltatapd with its HTTP API on a free port, storage in `dir`, and
// `conf` as its configuration file.
struct Tap {
  int http = free_port();
  std::map<std::string, std::string> env;
  fs::path conf;
  std::unique_ptr<Process> process;

  Tap(const TempDir& dir, const std::string& stream_url, const std::string& conf_text,
      const std::string& name = "tap") {
    env = daemon_env(stream_url, "");
    env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http);
    env["SNAPSHOT_INTERVAL"] = "2000";
    conf = dir / (name + ".conf");
    write_file(conf, conf_text);
    fs::create_directories(dir / name);
    start(dir / name);
  }

  void start(const fs::path& working_dir) {
    process = std::make_unique<Process>(
        ProcessOptions{deltatapd_argv({"--config", conf.string()}), env, working_dir});
  }

  std::optional<long long> stat(const std::string& key) {
    auto reply = http_request(http, "GET", "/api/stats");
    if (reply.status != 200) return std::nullopt;
    return json_integer(reply.body, key);
  }
  std::optional<double> metric(const std::string& name) { return metric_sample(http, name); }
  std::string log() const { return process->stderr_text(); }
};

// Rows of `source` in session_deltas; -1 while the table is not there yet.
long long pg_count(const PostgresServer& pg, const std::string& source,
                   const std::string& dbname = "postgres") {
  try {
    return std::stoll(pg.scalar("SELECT count(*) FROM session_deltas WHERE source = '" + source + "'",
                                dbname));
  } catch (const std::exception&) {
    return -1;
  }
}

// Every delta of the SQLite file `db` into PostgreSQL's table `expected`
// (COPY's text format: the file's exact text, NULL as \N).
void load_expected(const PostgresServer& pg, const fs::path& db, const std::string& table,
                   const std::string& dbname = "postgres") {
  pg.query("DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table +
               " (id bigint, session_id text, delta_type text, before_state text, after_state text, "
               "ts text, created_at text, origin text, gap int)",
           dbname);
  auto rows = query_db(db, "SELECT id, session_id, delta_type, before_state, after_state, timestamp, "
                           "created_at, origin, gap FROM session_deltas ORDER BY id");
  std::string data;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) data += '\t';
      // States are JSON objects: "NULL" can only be query_db's null.
      if (row[i] == "NULL" && (i == 3 || i == 4)) {
        data += "\\N";
      } else {
        append_copy_field(data, row[i]);
      }
    }
    data += '\n';
  }
  pg.copy_in("COPY " + table + " FROM STDIN", data, dbname);
}

// Rows of `table` (from load_expected) that PostgreSQL does not hold exactly:
// missing, or differing in any column; states compared as JSON values (jsonb
// equality: numbers by exact value, strings by their characters).
std::string mismatches(const PostgresServer& pg, const std::string& table, const std::string& source,
                       const std::string& dbname = "postgres") {
  return pg.scalar(
      "SELECT count(*) FROM " + table + " e LEFT JOIN session_deltas d ON d.source = '" + source +
      "' AND d.id = e.id WHERE d.id IS NULL OR d.session_id <> e.session_id OR "
      "d.delta_type <> e.delta_type OR d.before_state IS DISTINCT FROM e.before_state::jsonb OR "
      "d.after_state IS DISTINCT FROM e.after_state::jsonb OR d.\"timestamp\" <> e.ts::timestamptz OR "
      "d.created_at <> e.created_at::timestamptz OR d.origin <> e.origin OR d.gap <> (e.gap = 1)",
      dbname);
}

// A TCP listener that accepts (the kernel completes the handshake) and never
// says a word: a server that hangs.
struct SilentServer {
  int fd = -1;
  int port = free_port();
  SilentServer() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 16) != 0) {
      throw std::runtime_error("SilentServer: cannot listen");
    }
  }
  ~SilentServer() { ::close(fd); }
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

BOOST_AUTO_TEST_CASE(fifty_thousand_deltas_through_server_restarts_and_a_kill_9_arrive_exactly_once,
                     *needs(pg_precondition)) {
  PostgresServer pg;
  TempDir dir;
  // A sanitizer build's daemon stores far slower; at 2,500/s the simulator cuts
  // it off for backpressure and the outages below would wait on its backoff.
  Sim sim(dir, "sim", {"--format", "mixed", "--count", "50000", "--rate", kSanitized ? "800" : "2500",
                       "--seed", "21"});
  Tap tap(dir, sim.url(), "[postgres]\nurl = " + pg.socket_url() + "\nsource = room-a\n");
  auto count = [&] { return pg_count(pg, "room-a"); };

  // Twice: PostgreSQL crashes (immediate stop) while deltas flow, the sink
  // fails and holds a backlog, and catches up once the server is back. In
  // between, the tap itself is killed with -9 and started again.
  auto outage = [&](long long after) {
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return count() >= after; }, 90s), tap.log());
    pg.stop_immediate();
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return tap.metric("deltatap_postgres_lag_deltas").value_or(0) >= 1000; }, 30s),
                          tap.log());
    auto ready = http_request(tap.http, "GET", "/readyz");
    BOOST_TEST(ready.status == 503);
    BOOST_TEST(ready.body.find("PostgreSQL sink failing") != std::string::npos, ready.body);
    pg.start();
  };
  outage(8'000);
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return count() >= 20'000; }, 90s), tap.log());
  tap.process->signal(SIGKILL);
  BOOST_REQUIRE(tap.process->wait().has_value());
  tap.start(dir / "tap");
  outage(30'000);

  // The end: every stored delta sent, nothing waiting.
  BOOST_REQUIRE(sim.wait_sent(120s));
  auto caught_up = [&] {
    auto stored = tap.stat("deltaCount");
    auto lag = tap.metric("deltatap_postgres_lag_deltas");
    return stored && lag && *lag == 0 && *stored >= 49'000 && count() >= *stored;
  };
  BOOST_REQUIRE_MESSAGE(wait_until(caught_up, 120s),
                        "stored " << tap.stat("deltaCount").value_or(-1) << ", lag "
                                  << tap.metric("deltatap_postgres_lag_deltas").value_or(-1)
                                  << ", in PostgreSQL " << count() << ", sent " << sim.sent().value_or(-1)
                                  << "\n" << http_request(tap.http, "GET", "/readyz").body << "\n"
                                  << tap.log());
  BOOST_TEST(tap.metric("deltatap_postgres_errors_total").value_or(0) > 0);
  tap.process->signal(SIGTERM);
  BOOST_REQUIRE_EQUAL(tap.process->wait(30s).value_or(-1), 0);
  BOOST_TEST(tap.log().find("PostgreSQL sink failing") != std::string::npos);

  auto db = dir / "tap/data/sessions.sqlite";
  load_expected(pg, db, "expected");
  // Each stored delta exactly once, equal as JSON.
  BOOST_TEST(mismatches(pg, "expected", "room-a") == "0");
  BOOST_TEST(pg.scalar("SELECT count(*) - count(DISTINCT id) FROM session_deltas WHERE source = 'room-a'") == "0");
  // What PostgreSQL holds beyond the file can only be what the kill -9 cut
  // from the tap's journal after the sink had sent it (a group-commit
  // interval's worth); its ids were never given to other deltas.
  auto extra = std::stoll(pg.scalar(
      "SELECT count(*) FROM session_deltas d WHERE source = 'room-a' AND NOT EXISTS "
      "(SELECT 1 FROM expected e WHERE e.id = d.id)"));
  BOOST_TEST(extra <= 1000);
  // Exact digits: every traceId is odd and above 2^53, as the simulator sends
  // them, which a double could not hold.
  BOOST_TEST(std::stoll(pg.scalar("SELECT count(*) FROM session_deltas WHERE after_state #> "
                                  "'{metadata,traceId}' IS NOT NULL")) > 0);
  BOOST_TEST(pg.scalar("SELECT count(*) FROM session_deltas WHERE (after_state #>> "
                       "'{metadata,traceId}')::numeric % 2 = 0 OR (after_state #>> "
                       "'{metadata,traceId}')::numeric <= 9007199254740992") == "0");
  // Unicode, decoded (not escaped) in jsonb.
  BOOST_TEST(std::stoll(pg.scalar("SELECT count(*) FROM session_deltas WHERE after_state::text LIKE "
                                  "'%🐛%'")) > 0);
  // The view: one row per session of the source, counts adding up.
  BOOST_TEST(pg.scalar("SELECT sum(created + updated + deleted) = (SELECT count(*) FROM "
                       "session_deltas WHERE source = 'room-a') FROM sessions WHERE source = 'room-a'") == "t");
  // The partitions are by month.
  BOOST_TEST(std::stoll(pg.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                  "'session_deltas'::regclass")) >= 1);
}

// A batch goes out in two halves over two connections (pg_parallel_writer.h).
// One connection killed between batches: the next batch's half on it fails
// while the other half commits; sent again whole, every delta is there once.
BOOST_AUTO_TEST_CASE(a_batch_half_committed_and_sent_again_is_stored_once, *needs(pg_precondition)) {
  PostgresServer pg;
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 6000; ++i) {
    StoredDelta row;
    row.id = i;
    row.delta.session_id = "s-" + std::to_string(i % 37);
    row.delta.type = DeltaType::updated;
    row.delta.before = "{\"n\":" + std::to_string(i - 1) + "}";
    row.delta.after = "{\"n\":" + std::to_string(i) + ",\"big\":9007199254740993}";
    row.delta.timestamp = "2026-11-30T23:59:" + std::string(i < 3000 ? "58" : "59") + ".000Z";
    row.created_at = row.delta.timestamp;
    rows.push_back(row);
  }
  std::atomic<bool> never{false};
  PgParallelOptions options;
  options.connect.url = pg.socket_url();
  options.connect.application_name = "deltatap-halves";
  options.source = "halves";
  PgParallelWriter writer(options, never);
  std::span<const StoredDelta> all(rows);
  auto first = writer.write(all.first(2000));
  BOOST_REQUIRE_MESSAGE(first.ok(), first.error());
  BOOST_TEST(*first == 2000);
  BOOST_TEST(pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                       "'deltatap-halves'") == "2");
  // The newer backend serves one of the two halves; which one does not matter.
  BOOST_TEST(pg.scalar("SELECT pg_terminate_backend(max(pid)) FROM pg_stat_activity WHERE "
                       "application_name = 'deltatap-halves'") == "t");
  auto second = writer.write(all.subspan(2000, 4000));
  BOOST_TEST(!second.ok());
  auto half = pg_count(pg, "halves");
  BOOST_TEST((half == 4000 || half == 6000 || half == 2000), half);  // 4000: one half landed
  auto again = writer.write(all.subspan(2000, 4000));
  BOOST_REQUIRE_MESSAGE(again.ok(), again.error());
  BOOST_TEST(*again == 6000 - half);
  BOOST_TEST(pg_count(pg, "halves") == 6000);
  BOOST_TEST(pg.scalar("SELECT count(DISTINCT id) FROM session_deltas WHERE source = 'halves'") == "6000");
  BOOST_TEST(pg.scalar("SELECT after_state->>'big' FROM session_deltas WHERE source = 'halves' AND id = 4321") ==
             "9007199254740993");
  // Resent once more by a writer that knows nothing (a restarted tap): nothing new.
  PgParallelWriter fresh(options, never);
  auto resent = fresh.write(all);
  BOOST_REQUIRE_MESSAGE(resent.ok(), resent.error());
  BOOST_TEST(*resent == 0);
  BOOST_TEST(pg_count(pg, "halves") == 6000);
}

// export --to --archive: the archive files beside the file go too, once.
BOOST_AUTO_TEST_CASE(export_to_with_archive_copies_the_archive_files_too, *needs(pg_precondition)) {
  PostgresServer pg;
  TempDir dir;
  auto store = Store::open_empty();
  BOOST_REQUIRE(store.ok());
  const auto now = now_millis();
  std::vector<StoredDelta> rows;
  for (int i = 1; i <= 400; ++i) {
    StoredDelta row;
    row.id = i;
    row.delta.session_id = "s-" + std::to_string(i % 9);
    row.delta.type = DeltaType::updated;
    row.delta.before = "{\"n\":" + std::to_string(i - 1) + "}";
    row.delta.after = "{\"n\":" + std::to_string(i) + ",\"big\":9007199254740993,\"é\":\"日本\"}";
    // 300 stored 40 days ago (archived below), 100 an hour ago.
    auto created = now - (i <= 300 ? std::chrono::hours(24 * 40) : std::chrono::hours(1)) +
                   std::chrono::milliseconds(i);
    row.created_at = format_timestamp(created);
    row.delta.timestamp = row.created_at;
    rows.push_back(row);
  }
  BOOST_REQUIRE((*store)->save_with_created_at(rows).ok());
  ArchiveOptions options;
  options.directory = (dir / "archive").string();
  auto moved = archive_expired(**store, options, now - std::chrono::hours(24 * 30), now);
  BOOST_REQUIRE_MESSAGE(moved.ok(), moved.error());
  BOOST_REQUIRE(moved->moved == 300);
  auto file = dir / "sessions.sqlite";
  BOOST_REQUIRE((*store)->write_copy(file.string()).ok());

  auto deltatap = (bin_dir() / "deltatap").string();
  auto url = pg.socket_url();
  auto first = run_command({deltatap, "--db", file.string(), "export", "--to", url, "--source",
                            "archived", "--archive"});
  BOOST_TEST(first.exit_code == 0, first.err);
  BOOST_TEST(first.err.find("400 new, 0 already there") != std::string::npos, first.err);
  auto again = run_command({deltatap, "--db", file.string(), "export", "--to", url, "--source",
                            "archived", "--archive"});
  BOOST_TEST(again.err.find("0 new, 400 already there") != std::string::npos, again.err);
  BOOST_TEST(pg_count(pg, "archived") == 400);
  BOOST_TEST(pg.scalar("SELECT count(DISTINCT id) FROM session_deltas WHERE source = 'archived'") == "400");
  BOOST_TEST(pg.scalar("SELECT (after_state->>'big') || (after_state->>'é') FROM session_deltas "
                       "WHERE source = 'archived' AND id = 17") == "9007199254740993日本");
  auto memory_only = run_command({deltatap, "--db", file.string(), "export", "--to", url, "--source",
                                  "memory-only"});
  BOOST_TEST(memory_only.err.find("100 new") != std::string::npos, memory_only.err);
}

BOOST_AUTO_TEST_CASE(two_taps_share_one_database_under_their_source_names, *needs(pg_precondition)) {
  PostgresServer pg;
  pg.query("CREATE DATABASE shared");
  TempDir dir;
  Sim sim_a(dir, "sim-a", {"--format", "mixed", "--count", "3000", "--seed", "31"});
  Sim sim_b(dir, "sim-b", {"--format", "mixed", "--count", "2000", "--seed", "32"});
  Tap a(dir, sim_a.url(), "[postgres]\nurl = " + pg.socket_url("shared") + "\nsource = room-a\n", "a");
  Tap b(dir, sim_b.url(), "[postgres]\nurl = " + pg.socket_url("shared") + "\nsource = room-b\n", "b");
  BOOST_REQUIRE(sim_a.wait_sent());
  BOOST_REQUIRE(sim_b.wait_sent());
  for (auto* tap : {&a, &b}) {
    const char* source = tap == &a ? "room-a" : "room-b";
    // Sent is not yet stored (a sanitizer build's tap lags): wait for every
    // delta in the tap, then in PostgreSQL.
    const long long sent = tap == &a ? 3000 : 2000;
    BOOST_REQUIRE_MESSAGE(wait_until([&] {
                            auto stored = tap->stat("deltaCount");
                            return stored && *stored == sent && pg_count(pg, source, "shared") == sent;
                          }, 60s),
                          tap->log());
  }
  BOOST_TEST(pg_count(pg, "room-a", "shared") == 3000);
  BOOST_TEST(pg_count(pg, "room-b", "shared") == 2000);
  // Same ids, different sources: both kept.
  BOOST_TEST(pg.scalar("SELECT count(*) > 1000 FROM session_deltas a JOIN session_deltas b ON a.id = b.id "
                       "WHERE a.source = 'room-a' AND b.source = 'room-b'", "shared") == "t");
  BOOST_TEST(pg.scalar("SELECT count(DISTINCT source) FROM sessions", "shared") == "2");
  for (auto* tap : {&a, &b}) {
    tap->process->signal(SIGTERM);
    BOOST_TEST(tap->process->wait(30s).value_or(-1) == 0);
  }
  load_expected(pg, dir / "a/data/sessions.sqlite", "expected_a", "shared");
  BOOST_TEST(mismatches(pg, "expected_a", "room-a", "shared") == "0");

  // export --to: a file's history under its own source name, twice; the
  // second run adds nothing. Under the tap's own name it adds nothing either.
  auto deltatap = (bin_dir() / "deltatap").string();
  auto file = (dir / "b/data/sessions.sqlite").string();
  auto url = pg.socket_url("shared");
  auto first = run_command({deltatap, "--db", file, "export", "--to", url, "--source", "migrated"});
  BOOST_TEST(first.exit_code == 0, first.err);
  BOOST_TEST(first.err.find("2000 new, 0 already there") != std::string::npos, first.err);
  auto again = run_command({deltatap, "--db", file, "export", "--to", url, "--source", "migrated"});
  BOOST_TEST(again.exit_code == 0, again.err);
  BOOST_TEST(again.err.find("0 new, 2000 already there") != std::string::npos, again.err);
  auto same = run_command({deltatap, "--db", file, "export", "--to", url, "--source", "room-b"});
  BOOST_TEST(same.err.find("0 new, 2000 already there") != std::string::npos, same.err);
  BOOST_TEST(pg_count(pg, "migrated", "shared") == 2000);
  load_expected(pg, file, "expected_b", "shared");
  BOOST_TEST(mismatches(pg, "expected_b", "migrated", "shared") == "0");
  // Not a file: refused as a usage error.
  auto live = run_command({deltatap, "--url", "http://127.0.0.1:1", "export", "--to", url});
  BOOST_TEST(live.exit_code != 0, live.err);
  BOOST_TEST(live.err.find("--db") != std::string::npos, live.err);
}

BOOST_AUTO_TEST_CASE(bad_url_and_an_open_password_file_are_refused_at_start_without_the_password,
                     *needs(pg_precondition)) {
  TempDir dir;
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(free_port()) + "/ws", "");
  env["DELTATAP_POSTGRES_URL"] = "host=db password hunter2-secret";
  auto bad = run_command(deltatapd_argv(), env, dir.path());
  BOOST_TEST(bad.exit_code == 2);
  BOOST_TEST(bad.err.find("DELTATAP_POSTGRES_URL") != std::string::npos, bad.err);
  BOOST_TEST(bad.err.find("hunter2") == std::string::npos, bad.err);

  auto password = dir / "pg-password";
  write_file(password, "hunter2-secret\n");
  ::chmod(password.c_str(), 0644);
  write_file(dir / "open.conf", "[postgres]\nurl = host=db\npassword_file = " + password.string() + "\n");
  env.erase("DELTATAP_POSTGRES_URL");
  auto open = run_command(deltatapd_argv({"--config", (dir / "open.conf").string()}), env, dir.path());
  BOOST_TEST(open.exit_code == 2);
  BOOST_TEST(open.err.find("password_file") != std::string::npos, open.err);
  BOOST_TEST(open.err.find("hunter2") == std::string::npos, open.err);

  // --check-config shows the target, never the password.
  env["DELTATAP_POSTGRES_URL"] = "postgresql://tap:hunter2-secret@db.example/deltatap";
  auto shown = run_command(deltatapd_argv({"--check-config"}), env, dir.path());
  BOOST_TEST(shown.exit_code == 0, shown.err);
  BOOST_TEST(shown.out.find("db.example") != std::string::npos, shown.out);
  BOOST_TEST(shown.out.find("hunter2") == std::string::npos, shown.out);
}

BOOST_AUTO_TEST_CASE(wrong_password_missing_permissions_and_a_silent_server_leave_the_tap_unaffected,
                     *needs(pg_precondition)) {
  PostgresServer pg;
  pg.query("CREATE ROLE tap LOGIN PASSWORD 'right-secret'");
  TempDir dir;
  SilentServer silent;

  // Wrong password (from a private password file): the error, once, with
  // PostgreSQL's reason; the password nowhere.
  auto wrong = dir / "wrong-password";
  write_file(wrong, "wrong-secret\n");
  ::chmod(wrong.c_str(), 0600);
  Sim sim_w(dir, "sim-w", {"--format", "mixed", "--count", "1500", "--seed", "41"});
  Tap w(dir, sim_w.url(),
        "[postgres]\nurl = " + pg.tcp_url("tap", "") + "\nsource = w\npassword_file = " + wrong.string() + "\n",
        "w");

  // Right password, but the role may not create deltatap's tables (public is
  // not writable by PUBLIC in PostgreSQL 15): refused until granted, then
  // everything held arrives. Its memory guard (max_deltas 500) must not evict
  // what the sink has not sent.
  auto right = dir / "right-password";
  write_file(right, "right-secret\n");
  ::chmod(right.c_str(), 0600);
  Sim sim_p(dir, "sim-p", {"--format", "mixed", "--count", "1500", "--seed", "42"});
  Tap p(dir, sim_p.url(),
        "[storage]\nmax_deltas = 500\n[postgres]\nurl = " + pg.tcp_url("tap", "") +
            "\nsource = p\npassword_file = " + right.string() + "\n",
        "p");

  // A server that accepts and never answers.
  Sim sim_s(dir, "sim-s", {"--format", "mixed", "--count", "1500", "--seed", "43"});
  Tap s(dir, sim_s.url(),
        "[postgres]\nurl = host=127.0.0.1 port=" + std::to_string(silent.port) +
            " user=tap dbname=postgres connect_timeout=2 sslmode=disable\nsource = s\n",
        "s");

  for (auto* sim : {&sim_w, &sim_p, &sim_s}) BOOST_REQUIRE(sim->wait_sent());
  // The taps store everything regardless.
  for (auto* tap : {&w, &p, &s}) {
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return tap->stat("deltaCount").value_or(0) == 1500; }, 60s),
                          tap->log());
  }
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return w.log().find("password authentication failed") != std::string::npos; }, 30s),
                        w.log());
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return p.log().find("permission denied") != std::string::npos; }, 30s),
                        p.log());
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return s.log().find("timeout expired") != std::string::npos; }, 30s),
                        s.log());
  for (auto* tap : {&w, &p, &s}) {
    BOOST_TEST(tap->log().find("secret") == std::string::npos, tap->log());
    BOOST_TEST(tap->metric("deltatap_postgres_errors_total").value_or(0) >= 1);
    // Counted about once a second while a batch is out.
    BOOST_TEST(wait_until([&] { return tap->metric("deltatap_postgres_lag_deltas").value_or(0) == 1500; }, 10s));
    auto ready = http_request(tap->http, "GET", "/readyz");
    BOOST_TEST(ready.body.find("PostgreSQL sink failing, 1500 deltas waiting (kept from retention "
                               "and eviction)") != std::string::npos,
               ready.body);
    // /api/stats says the same, with libpq's reason and without the password.
    auto stats = http_request(tap->http, "GET", "/api/stats").body;
    BOOST_TEST(stats.find("\"lag\":1500") != std::string::npos, stats);
    BOOST_TEST(stats.find("\"lastError\":\"") != std::string::npos, stats);
    BOOST_TEST(stats.find("secret") == std::string::npos, stats);
  }
  // Logged once per change of state, not at every retry.
  auto failing = log_field_values(w.log(), "PostgreSQL sink failing", "error");
  BOOST_TEST(failing.size() <= 2u, w.log());

  // Granted: what was held arrives, exactly once.
  pg.query("GRANT CREATE ON SCHEMA public TO tap");
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return pg_count(pg, "p") == 1500; }, 60s), p.log());
  BOOST_REQUIRE(wait_until([&] { return p.metric("deltatap_postgres_lag_deltas").value_or(-1) == 0; }, 10s));

  // Every tap stops promptly, the silent server's too.
  for (auto* tap : {&w, &p, &s}) {
    tap->process->signal(SIGTERM);
    BOOST_TEST(tap->process->wait(15s).value_or(-1) == 0, tap->log());
  }
  BOOST_TEST(pg_count(pg, "w") <= 0);
  BOOST_TEST(pg_count(pg, "s") <= 0);
}

