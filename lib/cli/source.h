// source: where the CLI's answers come from. Every command asks its question as
// an HTTP request to the API (method and target) and reads the API's answer, so
// a command is written once and works on both kinds of source:
//
//  - FileSource: a snapshot file, answered in-process by the daemon's own
//    ApiHandler over a Store opened on the file. The answer is the one the daemon
//    that wrote the file would give.
//  - LiveSource: the running daemon, over a small blocking HTTP/1.1 client (one
//    connection per request, plain HTTP only).
//
// A Source is used from one thread, one fetch at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace deltatap {
class ApiHandler;
class Store;
}  // namespace deltatap

namespace deltatap::cli {

// Asked when neither --db nor --url is given.
inline constexpr std::string_view kDefaultUrl = "http://127.0.0.1:9477";

// `text` percent-encoded for a path segment or a query value: everything but
// RFC 3986's unreserved characters becomes %XX.
std::string percent_encode(std::string_view text);

// `path` with "?name=value&..." appended, each value percent-encoded (names are
// the API's own and are taken as they are). `path` alone when `params` is empty.
std::string with_params(std::string path,
                        const std::vector<std::pair<std::string, std::string>>& params);

struct Answer {
  int status = 0;    // the HTTP status, whatever it is
  std::string body;  // empty when streamed into a sink
};

// Takes the next piece of a streamed body. An error stops the fetch, which then
// returns that error.
using Sink = std::function<Status(std::string_view)>;

class Source {
 public:
  virtual ~Source() = default;

  // Sends `method` `target` (origin form, already encoded: "/api/deltas?limit=5").
  // Returns the Answer whatever its status: a 4xx or 5xx is an answer, not an
  // error. Returns an Error when no answer could be had (daemon unreachable,
  // connection broken, the stream failed part way) or `sink` refused a piece.
  // With a sink and a 2xx status the body goes to the sink piece by piece, in
  // order, and Answer::body stays empty; otherwise the whole body is in
  // Answer::body. `sink`, when given, must stay valid for the call.
  virtual Result<Answer> fetch(std::string_view method, const std::string& target,
                               const Sink* sink = nullptr) = 0;
};

class FileBackend;  // the ApiBackend of a file: no stream, no snapshots

class FileSource : public Source {
 public:
  enum class Access {
    // The file itself through SQLite, read-only: a daemon writing the file at
    // the same time is never disturbed.
    read_only,
    // A private in-memory copy of the file that commands may change; writing it
    // back is the caller's business (the file is left as it was).
    private_copy,
  };

  // Opens the snapshot file at `path`. Returns the source, owned by the caller,
  // or an Error naming the file and the reason: missing or unreadable, not an
  // SQLite database, from a newer schema.
  static Result<std::unique_ptr<FileSource>> open(const std::string& path, Access access);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  // The store behind the answers; owned by this source. Changes made to it
  // (private_copy) are seen by the answers that follow.
  Store& store();

  Result<Answer> fetch(std::string_view method, const std::string& target,
                       const Sink* sink) override;

 private:
  explicit FileSource(std::unique_ptr<FileBackend> backend);

  std::unique_ptr<FileBackend> backend_;
  std::unique_ptr<ApiHandler> handler_;  // refers to *backend_, so declared after it
};

class LiveSource : public Source {
 public:
  // A source for the daemon at `url` ("http://HOST[:PORT][/PREFIX]"), sending
  // `token` as a bearer token unless it is empty. Nothing is connected yet.
  // Returns an Error when `url` is not a plain http URL with a host.
  static Result<std::unique_ptr<LiveSource>> create(const std::string& url, std::string token);

  // Blocks for one request on a fresh connection. Each step has a deadline
  // (connect 10 s, send 30 s, the answer's header 120 s, each piece of body
  // 60 s); name resolution has none of its own.
  Result<Answer> fetch(std::string_view method, const std::string& target,
                       const Sink* sink) override;

 private:
  LiveSource() = default;

  Error unreachable(const std::string& reason) const;

  std::string url_, host_, port_, host_header_, prefix_, token_;
};

}  // namespace deltatap::cli
