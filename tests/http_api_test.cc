// The HTTP API on a real loopback port, over a real store, asked by a real HTTP
// client: every endpoint and every error status, the cursor walk while deltas
// keep arriving, the streamed exports read back by Python's csv module, the
// listener's limits and its token.
#define BOOST_TEST_MODULE http_api
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/document.h>

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "api/http_api.h"
#include "base/logging.h"
#include "skip.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// Per-request lines are debug; keep the test output to what matters.
struct QuietLogs {
  QuietLogs() { init_logging({LogLevel::warning, LogFormat::text}); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuietLogs);

// Every awkward thing a state can hold: big integers, a fraction's own digits,
// quotes, commas, an escaped newline, unicode, nesting.
const std::string kTrickyState =
    R"({"id":"s","planStatus":"pending","n":123456789012345678901234567890,"f":1.50,)"
    R"("text":"a, \"b\"\nc","u":"üñí€😀","nested":{"a":[1,2,{"b":null}]}})";

Delta make_delta(std::string session, DeltaType type, std::string timestamp,
                 std::string before = R"({"planStatus":"pending"})",
                 std::string after = R"({"planStatus":"in_progress"})") {
  Delta d;
  d.session_id = std::move(session);
  d.type = type;
  if (type != DeltaType::created) d.before = std::move(before);
  if (type != DeltaType::deleted) d.after = std::move(after);
  d.timestamp = std::move(timestamp);
  return d;
}

std::string ts(int second_offset) {
  return format_timestamp(TimePoint(std::chrono::seconds(1'762'776'000 + second_offset)));
}

// A fake daemon around a real store.
class TestBackend : public ApiBackend {
 public:
  TestBackend() {
    auto opened = Store::open_empty();
    BOOST_REQUIRE(opened.ok());
    store_ = std::move(opened.value());
    extra.enabled = true;
    extra.db_path = "data/sessions.sqlite";
    extra.connected = true;
  }
  Store& store() override { return *store_; }
  StatsExtra stats_extra() override { return extra; }
  std::vector<std::string> not_ready_reasons() override { return reasons; }
  void snapshot_now(std::function<void(Status, std::uint64_t, double)> done) override {
    ++snapshots;
    snapshot(std::move(done));
  }
  Metrics& metrics() override { return metrics_; }

  StatsExtra extra;
  std::vector<std::string> reasons;
  std::function<void(std::function<void(Status, std::uint64_t, double)>)> snapshot =
      [](auto done) { done(ok_status(), 4096, 0.01); };
  int snapshots = 0;

 private:
  std::unique_ptr<Store> store_;
  Metrics metrics_;
};

// The API on its own io thread, as in the daemon.
class Server {
 public:
  explicit Server(HttpOptions options = {"127.0.0.1:0", ""}, HttpLimits limits = {},
                  const std::function<void(Store&)>& fill = {})
      : work_(net::make_work_guard(io_)) {
    if (fill) fill(backend.store());
    api_ = std::make_unique<HttpApi>(io_, options, backend, limits);
    auto started = api_->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error());
    auto bound = api_->bound_address();
    port = std::stoi(bound.substr(bound.rfind(':') + 1));
    thread_ = std::thread([this] { io_.run(); });
  }

  // Runs `f` on the io thread (the only one that may touch the store) and waits.
  template <typename F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    net::post(io_, [&task] { task(); });
    return result.get();
  }

  ~Server() {
    on_io([this] {
      api_->stop();
      return 0;
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  net::io_context& io() { return io_; }
  HttpApi& api() { return *api_; }

  TestBackend backend;
  int port = 0;

 private:
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::unique_ptr<HttpApi> api_;
  std::thread thread_;
};

struct Reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string& name) const {
    auto found = headers.find(name);
    return found == headers.end() ? "" : found->second;
  }
};

void set_receive_timeout(tcp::socket& socket, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

Reply request(int port, const std::string& method, const std::string& target,
              const std::vector<std::pair<std::string, std::string>>& headers = {},
              const std::string& body = "", unsigned version = 11) {
  net::io_context io;
  tcp::socket socket(io);
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  set_receive_timeout(socket, 20);
  http::request<http::string_body> req;
  req.version(version);
  req.target(target);
  req.method_string(method);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  if (!body.empty() || method == "POST") req.prepare_payload();
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  http::read(socket, buffer, parser);
  Reply reply;
  reply.status = parser.get().result_int();
  reply.body = parser.get().body();
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    reply.headers[name] = std::string(field.value());
  }
  return reply;
}

Reply get(int port, const std::string& target,
          const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return request(port, "GET", target, headers);
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError(), "not JSON: " << text.substr(0, 300));
  return doc;
}

std::vector<std::int64_t> ids_of(const rapidjson::Document& page) {
  std::vector<std::int64_t> ids;
  for (const auto& delta : page["deltas"].GetArray()) ids.push_back(delta["id"].GetInt64());
  return ids;
}

// Asserts a JSON error answer with this status that names `parameter`.
void expect_error(const Reply& reply, int status, const std::string& parameter = "") {
  BOOST_TEST(reply.status == status, "status " << reply.status << " body " << reply.body);
  BOOST_TEST(reply.header("content-type") == "application/json");
  auto doc = parse(reply.body);
  BOOST_TEST(doc.HasMember("error"));
  BOOST_TEST(doc.HasMember("detail"));
  if (!parameter.empty()) {
    BOOST_TEST(doc.HasMember("parameter"));
    if (doc.HasMember("parameter")) BOOST_TEST(doc["parameter"].GetString() == parameter);
  }
}

// 30 deltas over three sessions, one second apart.
void fill_sessions(Store& store) {
  std::vector<Delta> batch;
  for (int i = 0; i < 30; ++i) {
    std::string session = "sess_" + std::to_string(i % 3);
    auto type = i < 3 ? DeltaType::created : i >= 27 ? DeltaType::deleted : DeltaType::updated;
    batch.push_back(make_delta(session, type, ts(i)));
  }
  BOOST_REQUIRE(store.save_batch(batch).ok());
}

}  // namespace

BOOST_AUTO_TEST_CASE(healthz_and_readyz) {
  Server server;
  auto health = get(server.port, "/healthz");
  BOOST_TEST(health.status == 200);
  BOOST_TEST(health.body == R"({"status":"ok"})");

  BOOST_TEST(get(server.port, "/readyz").status == 200);
  server.on_io([&] {
    server.backend.reasons = {"stream disconnected", "last snapshot failed: disk full"};
    return 0;
  });
  auto ready = get(server.port, "/readyz");
  BOOST_TEST(ready.status == 503);
  auto doc = parse(ready.body);
  BOOST_REQUIRE(doc["reasons"].IsArray());
  BOOST_TEST(doc["reasons"].Size() == 2u);
  BOOST_TEST(doc["reasons"][1].GetString() == std::string("last snapshot failed: disk full"));
}

BOOST_AUTO_TEST_CASE(stats_has_the_document_fields_and_more) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  auto reply = get(server.port, "/api/stats");
  BOOST_TEST(reply.status == 200);
  auto doc = parse(reply.body);
  BOOST_TEST(doc["enabled"].GetBool());
  BOOST_TEST(doc["dbPath"].GetString() == std::string("data/sessions.sqlite"));
  BOOST_TEST(doc["fileSize"].IsUint64());
  BOOST_TEST(doc["deltaCount"].GetInt64() == 30);
  BOOST_TEST(doc["sessionCount"].GetInt64() == 3);
  BOOST_TEST(doc["oldest"].GetString() == ts(0));
  BOOST_TEST(doc["newest"].GetString() == ts(29));
  BOOST_TEST(doc["schemaVersion"].GetInt() == kSchemaVersion);
  BOOST_TEST(doc["connected"].GetBool());
}

BOOST_AUTO_TEST_CASE(deltas_newest_first_with_default_limit_and_ties_by_id) {
  Server server({"127.0.0.1:0", ""}, {}, [](Store& store) {
    std::vector<Delta> batch;
    // 150 deltas sharing one timestamp: the order must fall back to id.
    for (int i = 0; i < 150; ++i) batch.push_back(make_delta("tie", DeltaType::updated, ts(0)));
    BOOST_REQUIRE(store.save_batch(batch).ok());
  });
  auto doc = parse(get(server.port, "/api/deltas").body);
  auto ids = ids_of(doc);
  BOOST_TEST(ids.size() == 100u);  // the default limit
  BOOST_TEST(ids.front() == 150);
  BOOST_TEST(std::is_sorted(ids.rbegin(), ids.rend()));
  BOOST_TEST(doc["next"].IsString());

  auto last = parse(get(server.port, "/api/deltas?limit=1000").body);
  BOOST_TEST(ids_of(last).size() == 150u);
  BOOST_TEST(last["next"].IsNull());
}

BOOST_AUTO_TEST_CASE(each_delta_has_the_session_delta_shape_with_exact_states) {
  Server server({"127.0.0.1:0", ""}, {}, [](Store& store) {
    BOOST_REQUIRE(store.save(make_delta("s", DeltaType::created, ts(0), "", kTrickyState)).ok());
    BOOST_REQUIRE(store.save(make_delta("s", DeltaType::updated, ts(1), kTrickyState,
                                        R"({"planStatus":"in_progress"})")).ok());
    BOOST_REQUIRE(store.save(make_delta("s", DeltaType::deleted, ts(2), kTrickyState)).ok());
  });
  auto reply = get(server.port, "/api/deltas?sessionId=s");
  BOOST_TEST(reply.status == 200);
  BOOST_TEST(reply.header("content-type") == "application/json");
  // The states are the stored text itself: no digit of the big number lost.
  BOOST_TEST(reply.body.find("\"before\":" + kTrickyState) != std::string::npos);
  BOOST_TEST(reply.body.find("\"after\":" + kTrickyState) != std::string::npos);
  auto doc = parse(reply.body);
  const auto& deltas = doc["deltas"];
  BOOST_REQUIRE(deltas.Size() == 3u);
  const auto& deleted = deltas[0];
  BOOST_TEST(deleted["type"].GetString() == std::string("deleted"));
  BOOST_TEST(deleted["sessionId"].GetString() == std::string("s"));
  BOOST_TEST(deleted["timestamp"].GetString() == ts(2));
  BOOST_TEST(deleted.HasMember("before"));
  BOOST_TEST(!deleted.HasMember("after"));
  BOOST_TEST(deleted["id"].GetInt64() == 3);
  BOOST_TEST(deleted["createdAt"].IsString());
  BOOST_TEST(deltas[1]["after"]["planStatus"].GetString() == std::string("in_progress"));
  BOOST_TEST(!deltas[2].HasMember("before"));
  BOOST_TEST(deltas[2]["after"]["u"].GetString() == std::string("üñí€😀"));
}

BOOST_AUTO_TEST_CASE(filters_combine) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  auto doc = parse(get(server.port, "/api/deltas?sessionId=sess_1&type=updated&since=" + ts(10) +
                                        "&until=" + ts(20)).body);
  // sess_1 holds i = 1, 4, 7, ...; updated and 10 <= i < 20: 10, 13, 16, 19.
  auto ids = ids_of(doc);
  BOOST_TEST(ids == (std::vector<std::int64_t>{20, 17, 14, 11}), boost::test_tools::per_element());
  for (const auto& delta : doc["deltas"].GetArray()) {
    BOOST_TEST(delta["sessionId"].GetString() == std::string("sess_1"));
    BOOST_TEST(delta["type"].GetString() == std::string("updated"));
  }
  // A '+' left unencoded is a space in a query: refused, with a hint.
  auto plus = get(server.port, "/api/deltas?since=2025-11-10T14:00:28+02:00");
  expect_error(plus, 400, "since");
  BOOST_TEST(plus.body.find("%2B") != std::string::npos);
  // An offset in since is read as the instant it names.
  auto shifted = parse(get(server.port, "/api/deltas?since=2025-11-10T14:00:28%2B02:00").body);
  BOOST_TEST(ids_of(shifted) == (std::vector<std::int64_t>{30, 29}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(session_path_is_percent_decoded_and_may_hold_anything) {
  const std::vector<std::string> odd = {"sess/with/slashes", "quote\"d 'id'", "ünï ✓ 😀",
                                        "a+b%c?d#e&f=g", "..", "sess_1"};
  Server server({"127.0.0.1:0", ""}, {}, [&](Store& store) {
    int i = 0;
    for (const auto& id : odd) {
      BOOST_REQUIRE(store.save(make_delta(id, DeltaType::created, ts(i++))).ok());
      BOOST_REQUIRE(store.save(make_delta(id + "x", DeltaType::created, ts(i++))).ok());
    }
  });
  auto encode = [](const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(buffer);
    }
    return out;
  };
  for (const auto& id : odd) {
    auto reply = get(server.port, "/api/deltas/" + encode(id));
    BOOST_TEST(reply.status == 200, id << ": " << reply.body);
    auto doc = parse(reply.body);
    BOOST_REQUIRE(doc["deltas"].Size() == 1u);
    BOOST_TEST(doc["deltas"][0]["sessionId"].GetString() == id);
    // The same id as a query parameter.
    auto by_param = parse(get(server.port, "/api/deltas?sessionId=" + encode(id)).body);
    BOOST_TEST(ids_of(by_param) == ids_of(doc), boost::test_tools::per_element());
  }
  // Literal slashes after the prefix belong to the id as well.
  auto literal = parse(get(server.port, "/api/deltas/sess/with/slashes").body);
  BOOST_TEST(literal["deltas"].Size() == 1u);
  // Unknown sessions are an empty answer, not an error.
  auto unknown = get(server.port, "/api/deltas/nobody");
  BOOST_TEST(unknown.status == 200);
  BOOST_TEST(parse(unknown.body)["deltas"].Size() == 0u);
  expect_error(get(server.port, "/api/deltas/"), 400, "sessionId");
  expect_error(get(server.port, "/api/deltas/bad%zzencoding"), 400);  // not a URL at all
  // The path form takes no sessionId parameter.
  expect_error(get(server.port, "/api/deltas/sess_1?sessionId=other"), 400, "sessionId");
}

BOOST_AUTO_TEST_CASE(bad_parameters_get_400_naming_them) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"limit=abc", "limit"},        {"limit=-1", "limit"},        {"limit=0", "limit"},
      {"limit=100000", "limit"},     {"limit=1001", "limit"},      {"limit=", "limit"},
      {"limit=1e3", "limit"},        {"since=yesterday", "since"}, {"until=2025-02-30T00:00:00Z", "until"},
      {"since=2025-11-10", "since"}, {"type=exploded", "type"},    {"type=", "type"},
      {"before=garbage", "before"},  {"before=2025-11-10T12:00:00.000Z_0", "before"},
      {"sessionId=", "sessionId"},   {"sesionId=typo", "sesionId"},
      {"limit=5&limit=6", "limit"},  {"'%20OR%201%3D1--=x", "' OR 1=1--"},
  };
  for (const auto& [query, parameter] : cases) {
    auto reply = get(server.port, "/api/deltas?" + query);
    BOOST_TEST_CONTEXT(query) { expect_error(reply, 400, parameter); }
  }
  auto detail = parse(get(server.port, "/api/deltas?limit=100000").body);
  BOOST_TEST(std::string(detail["detail"].GetString()).find("1 to 1000") != std::string::npos);
  auto type_detail = parse(get(server.port, "/api/deltas?type=exploded").body);
  BOOST_TEST(std::string(type_detail["detail"].GetString()).find("created, updated or deleted") !=
             std::string::npos);
  expect_error(get(server.port, "/api/export?format=xml"), 400, "format");
  expect_error(get(server.port, "/api/stats?verbose=1"), 400, "verbose");
  // The store is untouched by all of that.
  BOOST_TEST(parse(get(server.port, "/api/stats").body)["deltaCount"].GetInt64() == 30);
}

BOOST_AUTO_TEST_CASE(unknown_paths_404_and_wrong_methods_405_with_allow) {
  Server server;
  expect_error(get(server.port, "/nope"), 404);
  expect_error(get(server.port, "/api"), 404);
  expect_error(get(server.port, "/api/deltasX"), 404);
  auto post_stats = request(server.port, "POST", "/api/stats");
  expect_error(post_stats, 405);
  BOOST_TEST(post_stats.header("allow") == "GET");
  auto get_snapshot = get(server.port, "/api/snapshot");
  expect_error(get_snapshot, 405);
  BOOST_TEST(get_snapshot.header("allow") == "POST");
  auto delete_deltas = request(server.port, "DELETE", "/api/deltas/x");
  expect_error(delete_deltas, 405);
  BOOST_TEST(delete_deltas.header("allow") == "GET");
  auto brew = request(server.port, "BREW", "/api/sessions");
  expect_error(brew, 405);
}

BOOST_AUTO_TEST_CASE(sessions_one_row_each_with_counts_and_last_state) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  auto reply = get(server.port, "/api/sessions");
  BOOST_TEST(reply.status == 200);
  auto doc = parse(reply.body);
  const auto& rows = doc["sessions"];
  BOOST_REQUIRE(rows.Size() == 3u);
  // Newest activity first: i = 29 is sess_2.
  BOOST_TEST(rows[0]["sessionId"].GetString() == std::string("sess_2"));
  std::int64_t total = 0;
  for (const auto& row : rows.GetArray()) {
    total += row["created"].GetInt64() + row["updated"].GetInt64() + row["deleted"].GetInt64();
    BOOST_TEST(row["created"].GetInt64() == 1);
    BOOST_TEST(row["deleted"].GetInt64() == 1);
    BOOST_TEST(row["lastType"].GetString() == std::string("deleted"));
    BOOST_TEST(row["lastState"]["planStatus"].GetString() == std::string("pending"));
  }
  BOOST_TEST(total == 30);
  BOOST_TEST(rows[2]["firstSeen"].GetString() == ts(0));
  BOOST_TEST(rows[2]["lastSeen"].GetString() == ts(27));
}

BOOST_AUTO_TEST_CASE(cursor_walk_sees_every_delta_once_while_deltas_arrive) {
  constexpr int kInitial = 2500;
  Server server({"127.0.0.1:0", ""}, {}, [](Store& store) {
    std::vector<Delta> batch;
    for (int i = 0; i < kInitial; ++i) {
      // Every tenth shares its timestamp with its neighbour: ties cross pages.
      batch.push_back(make_delta("s" + std::to_string(i % 17), DeltaType::updated, ts(i - i % 2)));
    }
    BOOST_REQUIRE(store.save_batch(batch).ok());
  });

  // Meanwhile the io thread stores more: some newer than everything, some
  // among the old timestamps (as format A deltas with their own time can be).
  // Only the io thread touches these until the walk is over.
  bool inserting = true;
  int inserted = 0;
  bool insert_failed = false;
  auto timer = std::make_unique<net::steady_timer>(server.io());
  std::mt19937 random(42);
  std::function<void()> insert_some = [&] {
    if (!inserting) return;
    int when = (random() % 2) ? kInitial + inserted : static_cast<int>(random() % kInitial);
    if (!server.backend.store().save(make_delta("late", DeltaType::created, ts(when))).ok()) {
      insert_failed = true;
    }
    ++inserted;
    timer->expires_after(std::chrono::microseconds(300));
    timer->async_wait([&](beast::error_code ec) {
      if (!ec) insert_some();
    });
  };
  server.on_io([&] {
    insert_some();
    return 0;
  });

  std::set<std::int64_t> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    std::string target = "/api/deltas?limit=97";
    if (cursor) target += "&before=" + *cursor;
    auto doc = parse(get(server.port, target).body);
    for (auto id : ids_of(doc)) BOOST_TEST_REQUIRE(seen.insert(id).second, "id " << id << " twice");
    cursor = doc["next"].IsNull() ? std::nullopt : std::optional<std::string>(doc["next"].GetString());
    ++pages;
  } while (cursor);
  int total_inserted = server.on_io([&] {
    inserting = false;
    timer.reset();
    return inserted;
  });
  // A timer completion queued before the reset may still call insert_some (which
  // then returns): one more round trip runs it while the locals it uses live.
  server.on_io([] { return 0; });
  BOOST_TEST(!insert_failed);
  BOOST_TEST(total_inserted > 0);
  for (std::int64_t id = 1; id <= kInitial; ++id) BOOST_TEST_REQUIRE(seen.count(id) == 1u);
  BOOST_TEST(pages >= kInitial / 97);
}

BOOST_AUTO_TEST_CASE(export_streams_chunked_in_all_three_formats) {
  TempDir dir;
  HttpLimits limits;
  limits.export_page_rows = 7;  // many chunks from a small store
  const std::vector<std::string> sessions = {"plain", "comma,quote\"", "new\nline\r\nid", "ü😀"};
  Server server({"127.0.0.1:0", ""}, limits, [&](Store& store) {
    for (int i = 0; i < 50; ++i) {
      auto type = static_cast<DeltaType>(i % 3);
      BOOST_REQUIRE(store.save(make_delta(sessions[i % 4], type, ts(i / 2), kTrickyState,
                                          R"({"summary":"x,\"y\"","n":-0.000000000000000000001e-7})"))
                        .ok());
    }
  });
  auto csv = get(server.port, "/api/export?format=csv");
  BOOST_TEST(csv.status == 200);
  BOOST_TEST(csv.header("transfer-encoding") == "chunked");
  BOOST_TEST(csv.header("content-type").find("text/csv") == 0u);
  BOOST_TEST(csv.body.find("\r\n") != std::string::npos);
  auto ndjson = get(server.port, "/api/export?format=ndjson");
  BOOST_TEST(ndjson.header("content-type") == "application/x-ndjson");
  auto json = get(server.port, "/api/export");  // json is the default
  BOOST_TEST(json.header("content-type") == "application/json");

  // JSON: one array holding every delta, newest first like a query.
  auto array = parse(json.body);
  BOOST_REQUIRE(array.IsArray());
  BOOST_TEST(array.Size() == 50u);
  auto all = server.on_io([&] {
    DeltaQuery q;
    q.limit = 1000;
    return server.backend.store().get_deltas(q).value().deltas;
  });
  for (std::size_t i = 0; i < all.size(); ++i) BOOST_TEST(array[i]["id"].GetInt64() == all[i].id);

  // CSV and NDJSON read back by an independent reader, field by field.
  write_file(dir / "export.csv", csv.body);
  write_file(dir / "export.ndjson", ndjson.body);
  auto script = source_dir() / "tests/fixtures/csv_roundtrip.py";
  auto result = run_command({"/usr/bin/python3", script.string(), (dir / "export.csv").string(),
                             (dir / "export.ndjson").string()});
  BOOST_REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  auto records = parse(result.out);
  BOOST_REQUIRE(records.Size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& r = records[i];
    const auto& d = all[i];
    BOOST_TEST(r[0].GetString() == std::to_string(d.id));
    BOOST_TEST(r[1].GetString() == std::string(to_string(d.delta.type)));
    BOOST_TEST(r[2].GetString() == d.delta.session_id);
    BOOST_TEST(r[3].GetString() == d.delta.timestamp);
    BOOST_TEST(r[4].GetString() == d.created_at);
    BOOST_TEST(r[5].GetString() == d.delta.before.value_or(""));
    BOOST_TEST(r[6].GetString() == d.delta.after.value_or(""));
    BOOST_TEST(r[7].GetString() == std::string(to_string(d.origin)));
    BOOST_TEST(r[8].GetString() == std::string(d.gap ? "1" : "0"));
  }
}

BOOST_AUTO_TEST_CASE(empty_exports_are_well_formed) {
  Server server;
  BOOST_TEST(parse(get(server.port, "/api/export").body).Size() == 0u);
  BOOST_TEST(get(server.port, "/api/export?format=ndjson").body.empty());
  BOOST_TEST(get(server.port, "/api/export?format=csv").body ==
             "id,type,sessionId,timestamp,createdAt,before,after,origin,gap\r\n");
}

namespace {

// One session across a backend restart, as the ledger stores it (design.md,
// "Fidelity"): a created and an update the stream sent, an update after changes
// nobody observed (gap), a re-announcement with a changed state (resync), a
// deletion inferred from the backend's list (reconcile); and a session whose id
// a spreadsheet would run, to show the new columns keep the CSV rule.
void fill_fidelity(Store& store) {
  auto row = [](std::int64_t id, std::string session, DeltaType type,
                std::optional<std::string> before, std::optional<std::string> after, int second,
                DeltaOrigin origin, bool gap) {
    StoredDelta r;
    r.id = id;
    r.delta.session_id = std::move(session);
    r.delta.type = type;
    r.delta.before = std::move(before);
    r.delta.after = std::move(after);
    r.delta.timestamp = ts(second);
    r.created_at = "2025-11-10T12:10:00.000Z";
    r.origin = origin;
    r.gap = gap;
    return r;
  };
  const std::string pending = R"({"planStatus":"pending"})";
  const std::string running = R"({"planStatus":"in_progress"})";
  const std::string waiting = R"({"planStatus":"awaiting_approval"})";
  const std::string done = R"({"planStatus":"succeeded"})";
  std::vector<StoredDelta> rows = {
      row(1, "s", DeltaType::created, {}, pending, 0, DeltaOrigin::stream, false),
      row(2, "s", DeltaType::updated, waiting, running, 1, DeltaOrigin::stream, true),
      row(3, "s", DeltaType::updated, running, done, 2, DeltaOrigin::resync, false),
      row(4, "s", DeltaType::deleted, done, {}, 3, DeltaOrigin::reconcile, false),
      row(5, "=x", DeltaType::updated, pending, running, 4, DeltaOrigin::reconcile, true),
  };
  BOOST_REQUIRE(store.save_with_created_at(rows).ok());
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_delta_answer_carries_origin_and_gap) {
  Server server({"127.0.0.1:0", ""}, {}, fill_fidelity);
  const std::map<std::int64_t, std::pair<std::string, bool>> expected = {
      {1, {"stream", false}},   {2, {"stream", true}},    {3, {"resync", false}},
      {4, {"reconcile", false}}, {5, {"reconcile", true}}};
  auto check = [&](const std::string& what, const rapidjson::Value& deltas, std::size_t count) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_TEST_REQUIRE(deltas.IsArray());
      BOOST_TEST(deltas.Size() == count);
      for (const auto& d : deltas.GetArray()) {
        auto want = expected.at(d["id"].GetInt64());
        BOOST_TEST_REQUIRE(d.HasMember("origin"), "id " << d["id"].GetInt64());
        BOOST_TEST_REQUIRE(d.HasMember("gap"), "id " << d["id"].GetInt64());
        BOOST_TEST(d["origin"].GetString() == want.first, "id " << d["id"].GetInt64());
        BOOST_TEST(d["gap"].IsBool());
        BOOST_TEST(d["gap"].GetBool() == want.second, "id " << d["id"].GetInt64());
      }
    }
  };
  auto all = get(server.port, "/api/deltas");
  BOOST_TEST(all.status == 200);
  check("/api/deltas", parse(all.body)["deltas"], 5);
  // The two fields come last, after createdAt, so every earlier field keeps its
  // place; gap is a JSON boolean.
  BOOST_TEST(all.body.find(R"({"id":4,"type":"deleted","sessionId":"s",)"
                           R"("before":{"planStatus":"succeeded"},)"
                           R"("timestamp":"2025-11-10T12:00:03.000Z",)"
                           R"("createdAt":"2025-11-10T12:10:00.000Z",)"
                           R"("origin":"reconcile","gap":false})") != std::string::npos,
             all.body);
  BOOST_TEST(all.body.find(R"("createdAt":"2025-11-10T12:10:00.000Z","origin":"stream","gap":true})") !=
                 std::string::npos,
             all.body);
  check("/api/deltas/s", parse(get(server.port, "/api/deltas/s").body)["deltas"], 4);
  check("/api/deltas?sessionId=s", parse(get(server.port, "/api/deltas?sessionId=s").body)["deltas"], 4);

  check("/api/export", parse(get(server.port, "/api/export").body), 5);
  auto ndjson = get(server.port, "/api/export?format=ndjson").body;
  // One object a line: joined into an array, they are checked alike.
  std::string array = "[";
  std::size_t at = 0;
  while (at < ndjson.size()) {
    std::size_t end = ndjson.find('\n', at);
    BOOST_TEST_REQUIRE(end != std::string::npos, "an unterminated line");
    array += (at ? "," : "") + ndjson.substr(at, end - at);
    at = end + 1;
  }
  check("/api/export?format=ndjson", parse(array + "]"), 5);

  // CSV: origin and gap (0/1) appended, so the older columns keep their
  // positions; records end in CRLF; the formula rule holds as before.
  const std::string created = "2025-11-10T12:10:00.000Z";
  const std::string expected_csv =
      "id,type,sessionId,timestamp,createdAt,before,after,origin,gap\r\n"
      "5,updated,'=x,2025-11-10T12:00:04.000Z," + created +
      ",\"{\"\"planStatus\"\":\"\"pending\"\"}\",\"{\"\"planStatus\"\":\"\"in_progress\"\"}\",reconcile,1\r\n"
      "4,deleted,s,2025-11-10T12:00:03.000Z," + created +
      ",\"{\"\"planStatus\"\":\"\"succeeded\"\"}\",,reconcile,0\r\n"
      "3,updated,s,2025-11-10T12:00:02.000Z," + created +
      ",\"{\"\"planStatus\"\":\"\"in_progress\"\"}\",\"{\"\"planStatus\"\":\"\"succeeded\"\"}\",resync,0\r\n"
      "2,updated,s,2025-11-10T12:00:01.000Z," + created +
      ",\"{\"\"planStatus\"\":\"\"awaiting_approval\"\"}\",\"{\"\"planStatus\"\":\"\"in_progress\"\"}\",stream,1\r\n"
      "1,created,s,2025-11-10T12:00:00.000Z," + created +
      ",,\"{\"\"planStatus\"\":\"\"pending\"\"}\",stream,0\r\n";
  BOOST_TEST(get(server.port, "/api/export?format=csv").body == expected_csv);
  auto raw = get(server.port, "/api/export?format=csv&csv=raw").body;
  BOOST_TEST(raw.find("\r\n5,updated,=x,2025-11-10T12:00:04.000Z,") != std::string::npos, raw);
}

BOOST_AUTO_TEST_CASE(http_1_0_export_ends_with_the_connection) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  auto reply = request(server.port, "GET", "/api/export?format=ndjson", {}, "", 10);
  BOOST_TEST(reply.status == 200);
  BOOST_TEST(reply.header("transfer-encoding").empty());
  BOOST_TEST(std::count(reply.body.begin(), reply.body.end(), '\n') == 30);
}

BOOST_AUTO_TEST_CASE(snapshot_answers_when_the_daemon_is_done) {
  Server server;
  // The backend finishes later, as the worker thread would.
  auto timer = std::make_shared<net::steady_timer>(server.io());
  server.on_io([&] {
    server.backend.snapshot = [timer](auto done) {
      timer->expires_after(std::chrono::milliseconds(50));
      timer->async_wait([done](beast::error_code) { done(ok_status(), 123456, 0.042); });
    };
    return 0;
  });
  auto reply = request(server.port, "POST", "/api/snapshot");
  BOOST_TEST(reply.status == 200, reply.body);
  auto doc = parse(reply.body);
  BOOST_TEST(doc["bytes"].GetUint64() == 123456u);
  BOOST_TEST(doc["seconds"].GetDouble() == 0.042);
  BOOST_TEST(doc["path"].GetString() == std::string("data/sessions.sqlite"));

  server.on_io([&] {
    server.backend.snapshot = [](auto done) { done(Error{"No space left on device"}, 0, 0); };
    return 0;
  });
  auto failed = request(server.port, "POST", "/api/snapshot");
  expect_error(failed, 500);
  BOOST_TEST(failed.body.find("No space left on device") != std::string::npos);

  server.on_io([&] {
    server.backend.extra.enabled = false;
    return 0;
  });
  expect_error(request(server.port, "POST", "/api/snapshot"), 409);
  BOOST_TEST(server.on_io([&] { return server.backend.snapshots; }) == 2);
}

BOOST_AUTO_TEST_CASE(cleanup_deletes_by_stored_time_and_counts_it) {
  Server server({"127.0.0.1:0", ""}, {}, [](Store& store) {
    auto now = now_millis();
    std::vector<StoredDelta> rows;
    for (int i = 0; i < 10; ++i) {
      StoredDelta row;
      row.delta = make_delta("s", DeltaType::updated, ts(i));
      // Four stored 40 days ago, six an hour ago.
      row.created_at = format_timestamp(now - std::chrono::hours(i < 4 ? 40 * 24 : 1));
      rows.push_back(row);
    }
    BOOST_REQUIRE(store.save_with_created_at(rows).ok());
  });
  expect_error(request(server.port, "POST", "/api/cleanup"), 400, "olderThan");
  for (auto bad : {"30", "0d", "-5d", "30x", "yesterday", "30d&olderThan=2d"}) {
    BOOST_TEST_CONTEXT(bad) {
      expect_error(request(server.port, "POST", std::string("/api/cleanup?olderThan=") + bad), 400,
                   "olderThan");
    }
  }
  auto reply = request(server.port, "POST", "/api/cleanup?olderThan=30d");
  BOOST_TEST(reply.status == 200, reply.body);
  BOOST_TEST(parse(reply.body)["deleted"].GetInt64() == 4);
  auto again = request(server.port, "POST", "/api/cleanup?olderThan=2025-01-01T00:00:00Z");
  BOOST_TEST(parse(again.body)["deleted"].GetInt64() == 0);
  BOOST_TEST(parse(get(server.port, "/api/stats").body)["deltaCount"].GetInt64() == 6);
  auto metrics = get(server.port, "/metrics").body;
  BOOST_TEST(metrics.find("deltatap_cleanup_deleted_total 4\n") != std::string::npos);
  BOOST_TEST(metrics.find("deltatap_query_duration_seconds_count{query=\"cleanup\"} 2\n") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(metrics_page_is_current_and_promtool_accepts_it) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  server.on_io([&] {
    server.backend.metrics().deltas_stored(DeltaType::updated).inc(24);
    server.backend.metrics().messages_rejected("not_json").inc();
    server.backend.extra.file_size = 8192;
    server.backend.extra.journal_bytes = 512;
    return 0;
  });
  get(server.port, "/api/deltas?limit=5");
  get(server.port, "/nope");
  auto reply = get(server.port, "/metrics");
  BOOST_TEST(reply.status == 200);
  BOOST_TEST(reply.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  const auto& page = reply.body;
  BOOST_TEST(page.find("deltatap_store_deltas 30\n") != std::string::npos);
  BOOST_TEST(page.find("deltatap_database_file_bytes 8192\n") != std::string::npos);
  BOOST_TEST(page.find("deltatap_journal_bytes 512\n") != std::string::npos);
  BOOST_TEST(page.find("deltatap_websocket_connected 1\n") != std::string::npos);
  BOOST_TEST(page.find("deltatap_deltas_stored_total{type=\"updated\"} 24\n") != std::string::npos);
  BOOST_TEST(page.find("deltatap_http_requests_total{code=\"404\"} 1\n") != std::string::npos);
  BOOST_TEST(page.find("deltatap_query_duration_seconds_count{query=\"deltas\"} 1\n") !=
             std::string::npos);
  BOOST_TEST(page.find("deltatap_database_memory_bytes 0\n") == std::string::npos);

  if (run_command({"/bin/sh", "-c", "command -v promtool"}).exit_code != 0) {
    skip("promtool check: promtool not installed (Debian package prometheus)");
    return;
  }
  TempDir dir;
  write_file(dir / "metrics.txt", page);
  auto check = run_command(
      {"/bin/sh", "-c", "promtool check metrics < '" + (dir / "metrics.txt").string() + "'"});
  BOOST_TEST(check.exit_code == 0, "promtool: " << check.out << check.err);
}

BOOST_AUTO_TEST_CASE(a_token_protected_listener_refuses_without_it) {
  Server server({"127.0.0.1:0", "s3cret-token"}, {}, fill_sessions);
  for (const std::string target : {"/healthz", "/api/stats", "/metrics", "/api/deltas", "/nope"}) {
    auto none = get(server.port, target);
    BOOST_TEST_CONTEXT(target) {
      expect_error(none, 401);
      BOOST_TEST(none.header("www-authenticate").find("Bearer") == 0u);
    }
  }
  expect_error(get(server.port, "/api/stats", {{"Authorization", "Bearer wrong"}}), 401);
  expect_error(get(server.port, "/api/stats", {{"Authorization", "Bearer s3cret-tokenX"}}), 401);
  expect_error(get(server.port, "/api/stats", {{"Authorization", "Basic s3cret-token"}}), 401);
  expect_error(get(server.port, "/api/stats", {{"Authorization", "Bearer"}}), 401);
  expect_error(request(server.port, "POST", "/api/cleanup?olderThan=1d"), 401);

  BOOST_TEST(get(server.port, "/api/stats", {{"Authorization", "Bearer s3cret-token"}}).status == 200);
  BOOST_TEST(get(server.port, "/api/stats", {{"Authorization", "bearer  s3cret-token "}}).status == 200);
  auto post = request(server.port, "POST", "/api/cleanup?olderThan=1d",
                      {{"Authorization", "Bearer s3cret-token"}});
  BOOST_TEST(post.status == 200, post.body);
}

BOOST_AUTO_TEST_CASE(post_needs_a_token_beyond_loopback) {
  // Listening on every interface without a token: reads work, changes do not.
  Server server({"0.0.0.0:0", ""}, {}, fill_sessions);
  BOOST_TEST(server.api().bound_address().rfind("0.0.0.0:", 0) == 0u);
  BOOST_TEST(get(server.port, "/api/stats").status == 200);
  expect_error(request(server.port, "POST", "/api/cleanup?olderThan=1d"), 403);
  expect_error(request(server.port, "POST", "/api/snapshot"), 403);
  BOOST_TEST(server.on_io([&] { return server.backend.snapshots; }) == 0);
}

BOOST_AUTO_TEST_CASE(oversized_headers_and_bodies_get_413) {
  HttpLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_body_bytes = 1024;
  Server server({"127.0.0.1:0", ""}, limits);
  auto big_header = get(server.port, "/healthz", {{"X-Padding", std::string(8000, 'a')}});
  expect_error(big_header, 413);
  BOOST_TEST(big_header.header("connection") == "close");
  auto big_target = get(server.port, "/api/deltas?sessionId=" + std::string(5000, 'b'));
  expect_error(big_target, 413);
  auto big_body = request(server.port, "POST", "/api/snapshot", {}, std::string(4000, 'c'));
  expect_error(big_body, 413);
  BOOST_TEST(get(server.port, "/healthz").status == 200);
}

BOOST_AUTO_TEST_CASE(a_slow_client_is_dropped) {
  HttpLimits limits;
  limits.request_timeout = std::chrono::milliseconds(300);
  Server server({"127.0.0.1:0", ""}, limits);
  net::io_context io;
  tcp::socket socket(io);
  // Before the connection: the server's timer starts after it.
  auto start = std::chrono::steady_clock::now();
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port)});
  set_receive_timeout(socket, 10);
  net::write(socket, net::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n")));
  // Never finishes the headers: the server closes (eof, where our 10 s receive
  // timeout would be an error instead), and not before its request_timeout.
  char byte;
  beast::error_code ec;
  socket.read_some(net::buffer(&byte, 1), ec);
  BOOST_TEST(ec == net::error::eof);
  BOOST_TEST((std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(300)));
}

BOOST_AUTO_TEST_CASE(keep_alive_serves_several_requests_on_one_connection) {
  Server server({"127.0.0.1:0", ""}, {}, fill_sessions);
  net::io_context io;
  tcp::socket socket(io);
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port)});
  set_receive_timeout(socket, 10);
  beast::flat_buffer buffer;
  for (const char* target : {"/healthz", "/api/deltas?limit=2", "/api/export?format=ndjson", "/nope"}) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "x");
    http::write(socket, req);
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    BOOST_TEST(res.keep_alive());
    BOOST_TEST(res.result_int() == (std::string(target) == "/nope" ? 404 : 200));
  }
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_get_503) {
  HttpLimits limits;
  limits.max_connections = 2;
  Server server({"127.0.0.1:0", ""}, limits);
  net::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(std::make_unique<tcp::socket>(io));
    idle.back()->connect(
        {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port)});
  }
  // The server has accepted both once a request on a third one is refused.
  BOOST_TEST(wait_until([&] { return get(server.port, "/healthz").status == 503; }));
  auto refused = get(server.port, "/healthz");
  expect_error(refused, 503);
  idle.clear();
  BOOST_TEST(wait_until([&] { return get(server.port, "/healthz").status == 200; }));
}

BOOST_AUTO_TEST_CASE(stop_closes_open_connections_and_the_listener) {
  Server server;
  net::io_context io;
  tcp::socket socket(io);
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port)});
  set_receive_timeout(socket, 10);
  BOOST_TEST(get(server.port, "/healthz").status == 200);
  server.on_io([&] {
    server.api().stop();
    return 0;
  });
  char byte;
  beast::error_code ec;
  socket.read_some(net::buffer(&byte, 1), ec);
  BOOST_TEST(ec == net::error::eof);
  tcp::socket another(io);
  another.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port)}, ec);
  BOOST_TEST(ec == net::error::connection_refused);
}

BOOST_AUTO_TEST_CASE(a_busy_port_is_an_error_not_a_crash) {
  Server first;
  net::io_context io;
  TestBackend backend;
  HttpApi second(io, {"127.0.0.1:" + std::to_string(first.port), ""}, backend);
  auto started = second.start();
  BOOST_TEST(!started.ok());
  BOOST_TEST(started.error().find("bind") != std::string::npos, started.error());
  HttpApi invalid(io, {"localhost:80", ""}, backend);
  BOOST_TEST(!invalid.start().ok());
}
