#include "postgres_fixture.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace deltatap::testing {

namespace {

// Debian installs each major version's server programs under
// /usr/lib/postgresql/N/bin; the newest there is the one to use.
fs::path server_bin_dir() {
  fs::path best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl")) continue;
    auto version = [](const fs::path& b) {
      auto name = b.parent_path().filename().string();
      return std::all_of(name.begin(), name.end(), ::isdigit) && !name.empty() ? std::stoi(name) : 0;
    };
    if (best.empty() || version(bin) > version(best)) best = bin;
  }
  return best;
}

bool running_as_root() { return ::geteuid() == 0; }

// Process runs argv[0] as a path, not through $PATH.
std::string runuser_path() {
  for (const char* path : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
    if (fs::exists(path)) return path;
  }
  return "";
}

// Who owns the cluster when the test runs as root.
constexpr const char* kOwner = "nobody";

std::string describe(const CommandResult& result) {
  return "exit " + std::to_string(result.exit_code) + ": " + result.out + result.err;
}

// Every row of `result` (NULL as "NULL"), or the error as an exception.
std::vector<std::vector<std::string>> rows_of(PGconn* conn, PGresult* result) {
  auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = PQresultErrorMessage(result);
    PQclear(result);
    throw std::runtime_error("PostgreSQL: " + message);
  }
  std::vector<std::vector<std::string>> rows;
  for (int r = 0; r < PQntuples(result); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(result); ++c) {
      row.push_back(PQgetisnull(result, r, c) ? "NULL" : PQgetvalue(result, r, c));
    }
    rows.push_back(std::move(row));
  }
  PQclear(result);
  (void)conn;
  return rows;
}

struct Connection {
  PGconn* conn;
  explicit Connection(const std::string& url) : conn(PQconnectdb(url.c_str())) {
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("PostgreSQL: cannot connect: " + message);
    }
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);  // "… skipping" NOTICEs
  }
  ~Connection() { PQfinish(conn); }
};

}  // namespace

std::string PostgresServer::unavailable() {
  if (server_bin_dir().empty()) {
    return "PostgreSQL's server programs (initdb, pg_ctl) are not installed (Debian: postgresql)";
  }
  if (running_as_root() && !getpwnam(kOwner)) return "no user 'nobody' to run PostgreSQL as";
  if (running_as_root() && runuser_path().empty()) {
    return "runuser is missing (Debian: util-linux)";
  }
  return "";
}

std::vector<std::string> PostgresServer::as_owner(std::vector<std::string> argv) const {
  if (!running_as_root()) return argv;
  argv.insert(argv.begin(), {runuser_path(), "-u", kOwner, "--"});
  return argv;
}

void PostgresServer::run_owned(const std::vector<std::string>& argv) const {
  auto result = run_command(as_owner(argv), {}, dir_.path());
  if (result.exit_code != 0) {
    throw std::runtime_error(argv[0] + " failed (" + describe(result) + ")\n" + log());
  }
}

PostgresServer::PostgresServer() {
  auto bin = server_bin_dir();
  if (bin.empty()) throw std::runtime_error(unavailable());
  // The cluster's owner must reach the directory: it is made 0711 (enter,
  // not list) and what it holds belongs to that owner.
  fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  auto home = dir_ / "pg";
  fs::create_directory(home);
  data_dir_ = home / "data";
  socket_dir_ = home;
  log_path_ = home / "server.log";
  auto password_file = home / "superuser-password";
  write_file(password_file, std::string(kSuperuserPassword) + "\n");
  if (running_as_root()) {
    auto* owner = getpwnam(kOwner);
    if (!owner) throw std::runtime_error(unavailable());
    for (const auto& path : {home, password_file}) {
      if (::chown(path.c_str(), owner->pw_uid, owner->pw_gid) != 0) {
        throw std::runtime_error("chown " + path.string() + " failed");
      }
    }
  }
  port_ = free_port();
  run_owned({(bin / "initdb").string(), "-D", data_dir_.string(), "-U", "postgres",
             "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + password_file.string(),
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"});
  // The server's own settings: small and quick, no disk flushes (a test's
  // crash is a process's, not the machine's: what was written survives it).
  // synchronous_commit stays on: off, a crash loses commits already
  // confirmed, which no client can make up for.
  std::string settings = "\nlisten_addresses = '127.0.0.1'\nport = " + std::to_string(port_) +
                         "\nunix_socket_directories = '" + socket_dir_.string() +
                         "'\nfsync = off\nmax_connections = 40\n"
                         "shared_buffers = 32MB\nlog_min_messages = warning\n";
  auto conf = data_dir_ / "postgresql.conf";
  write_file(conf, read_file(conf) + settings);
  start();
}

PostgresServer::~PostgresServer() {
  if (running_) {
    (void)run_command(as_owner({(server_bin_dir() / "pg_ctl").string(), "-D", data_dir_.string(),
                                "-m", "immediate", "-w", "stop"}),
                      {}, dir_.path());
  }
}

void PostgresServer::start() {
  run_owned({(server_bin_dir() / "pg_ctl").string(), "-D", data_dir_.string(), "-l",
             log_path_.string(), "-w", "-t", "60", "start"});
  running_ = true;
}

void PostgresServer::stop_immediate() {
  run_owned({(server_bin_dir() / "pg_ctl").string(), "-D", data_dir_.string(), "-m", "immediate",
             "-w", "stop"});
  running_ = false;
}

std::string PostgresServer::socket_url(const std::string& dbname) const {
  return "host=" + socket_dir_.string() + " port=" + std::to_string(port_) + " dbname=" + dbname +
         " user=postgres";
}

std::string PostgresServer::tcp_url(const std::string& user, const std::string& password,
                                    const std::string& dbname) const {
  return "postgresql://" + user + (password.empty() ? "" : ":" + password) + "@127.0.0.1:" +
         std::to_string(port_) + "/" + dbname;
}

std::vector<std::vector<std::string>> PostgresServer::query(const std::string& sql,
                                                            const std::string& dbname) const {
  Connection c(socket_url(dbname));
  return rows_of(c.conn, PQexec(c.conn, sql.c_str()));
}

std::string PostgresServer::scalar(const std::string& sql, const std::string& dbname) const {
  auto rows = query(sql, dbname);
  if (rows.size() != 1 || rows[0].size() != 1) {
    throw std::runtime_error("PostgreSQL: expected one value from: " + sql);
  }
  return rows[0][0];
}

void PostgresServer::copy_in(const std::string& copy_sql, const std::string& data,
                             const std::string& dbname) const {
  Connection c(socket_url(dbname));
  PGresult* start = PQexec(c.conn, copy_sql.c_str());
  if (PQresultStatus(start) != PGRES_COPY_IN) {
    rows_of(c.conn, start);
    throw std::runtime_error("PostgreSQL: COPY did not start");
  }
  PQclear(start);
  if (PQputCopyData(c.conn, data.data(), static_cast<int>(data.size())) != 1 ||
      PQputCopyEnd(c.conn, nullptr) != 1) {
    throw std::runtime_error(std::string("PostgreSQL: COPY failed: ") + PQerrorMessage(c.conn));
  }
  while (PGresult* result = PQgetResult(c.conn)) rows_of(c.conn, result);
}

std::string PostgresServer::log() const { return read_file(log_path_); }

}  // namespace deltatap::testing
