// PostgresServer: a real PostgreSQL 15 for a test, in a temporary directory.
//
// initdb runs there (as `nobody` when the test runs as root: PostgreSQL
// refuses to run as root), and the server listens on a Unix socket in that
// directory and on 127.0.0.1 at a free port. Over the socket the superuser
// `postgres` needs no password; over TCP every role needs its password
// (scram-sha-256); the superuser's is kSuperuserPassword. The destructor
// stops the server (immediate mode) and removes the directory.
//
// Test code only; one thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "test_support.h"

namespace deltatap::testing {

class PostgresServer {
 public:
  static constexpr const char* kSuperuserPassword = "pg-super-secret";

  // "" when PostgreSQL can be run here (initdb and pg_ctl present, and, as
  // root, runuser); else why not. For needs().
  static std::string unavailable();

  PostgresServer();  // initdb and start; throws std::runtime_error on failure
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  const fs::path& socket_dir() const { return socket_dir_; }
  // Connection string as the superuser over the socket (no password needed).
  std::string socket_url(const std::string& dbname = "postgres") const;
  // postgresql://USER:PASSWORD@127.0.0.1:PORT/DBNAME (password omitted when empty).
  std::string tcp_url(const std::string& user, const std::string& password,
                      const std::string& dbname = "postgres") const;

  // pg_ctl stop -m immediate (as a crash would), and start again.
  void stop_immediate();
  void start();

  // Runs `sql` as the superuser over the socket; every row, NULL as "NULL".
  // Throws std::runtime_error with PostgreSQL's message on error.
  std::vector<std::vector<std::string>> query(const std::string& sql,
                                              const std::string& dbname = "postgres") const;
  // As query(), the single value of a one-row one-column answer.
  std::string scalar(const std::string& sql, const std::string& dbname = "postgres") const;
  // COPY `table` FROM STDIN with `data` in COPY's text format.
  void copy_in(const std::string& copy_sql, const std::string& data,
               const std::string& dbname = "postgres") const;

  std::string log() const;  // the server's log file

 private:
  std::vector<std::string> as_owner(std::vector<std::string> argv) const;
  void run_owned(const std::vector<std::string>& argv) const;

  TempDir dir_;
  fs::path data_dir_, socket_dir_, log_path_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace deltatap::testing
