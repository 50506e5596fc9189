#include "cli/source.h"

#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <chrono>
#include <optional>

#include "api/delta_json.h"
#include "api/http_api.h"
#include "api/metrics.h"
#include "base/files.h"
#include "storage/archive_file.h"
#include "storage/snapshot.h"
#include "storage/store.h"

namespace deltatap::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string with_params(std::string path,
                        const std::vector<std::pair<std::string, std::string>>& params) {
  char separator = '?';
  for (const auto& [name, value] : params) {
    path += separator;
    path += name;
    path += '=';
    path += percent_encode(value);
    separator = '&';
  }
  return path;
}

// ---------------------------------------------------------------------------
// The file, through the API's own handler.

class FileBackend : public ApiBackend {
 public:
  FileBackend(std::unique_ptr<Store> store, std::string path)
      : store_(std::move(store)), path_(std::move(path)) {}
  Store& store() override { return *store_; }
  StatsExtra stats_extra() override {
    StatsExtra extra;
    extra.enabled = true;
    extra.db_path = path_;
    extra.file_size = file_size(path_);
    // Shown when there are archive files beside the file.
    if (auto files = list_archive_files(archive_directory_for(path_)); files.ok() && !files->empty()) {
      ArchiveStats archive;
      archive.directory = archive_directory_for(path_);
      for (const auto& file : *files) {
        ++archive.files;
        archive.bytes += file.bytes;
      }
      extra.archive = archive;
    }
    return extra;
  }
  std::vector<std::string> not_ready_reasons() override { return {}; }
  void snapshot_now(std::function<void(Status, std::uint64_t, double)> done) override {
    done(Error{"no daemon: snapshot needs the live API (--url)"}, 0, 0);
  }
  Metrics& metrics() override { return metrics_; }
  // The directory a daemon with this file as [storage] path keeps its archives in.
  std::optional<std::string> archive_directory() override {
    return archive_directory_for(path_);
  }

 private:
  std::unique_ptr<Store> store_;
  std::string path_;
  Metrics metrics_;
};

FileSource::FileSource(std::unique_ptr<FileBackend> backend)
    : backend_(std::move(backend)),
      handler_(std::make_unique<ApiHandler>(*backend_, ApiHandler::Options{})) {}

FileSource::~FileSource() = default;

Result<std::unique_ptr<FileSource>> FileSource::open(const std::string& path, Access access) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return Error{errno_text("cannot open", path)};
  }
  Result<std::unique_ptr<Store>> store = Error{""};
  if (access == Access::private_copy) {
    auto bytes = read_snapshot_file(path);
    if (!bytes.ok()) return Error{bytes.error()};
    if (!*bytes) return Error{path + " does not exist"};
    store = Store::load(**bytes);
  } else {
    store = Store::open_readonly(path);
  }
  if (!store.ok()) return Error{path + ": " + store.error()};
  return std::unique_ptr<FileSource>(
      new FileSource(std::make_unique<FileBackend>(std::move(store.value()), path)));
}

Store& FileSource::store() { return backend_->store(); }

Result<Answer> FileSource::fetch(std::string_view method, const std::string& target,
                                 const Sink* sink) {
  std::optional<ApiReply> reply;
  handler_->handle({std::string(method), target, ""},
                   [&](ApiReply r) { reply = std::move(r); });
  if (!reply) return Error{"internal error: the handler did not answer"};
  Answer answer;
  answer.status = reply->status;
  answer.body = std::move(reply->body);
  if (!reply->next_chunk) {
    if (sink && answer.status / 100 == 2) {
      if (auto s = (*sink)(answer.body); !s.ok()) return Error{s.error()};
      answer.body.clear();
    }
    return answer;
  }
  while (true) {
    auto piece = reply->next_chunk();
    if (!piece.ok()) return Error{piece.error()};
    if (!*piece) break;
    if (sink) {
      if (auto s = (*sink)(**piece); !s.ok()) return Error{s.error()};
    } else {
      answer.body += **piece;
    }
  }
  return answer;
}

// ---------------------------------------------------------------------------
// The daemon, over HTTP.

Result<std::unique_ptr<LiveSource>> LiveSource::create(const std::string& url, std::string token) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return Error{"--url " + url + " is not a URL"};
  if (parsed->scheme() != "http") {
    return Error{"--url must be http://HOST:PORT (the API speaks plain HTTP on loopback)"};
  }
  auto source = std::unique_ptr<LiveSource>(new LiveSource);
  source->url_ = url;
  source->host_ = parsed->encoded_host();
  if (source->host_.size() >= 2 && source->host_.front() == '[') {
    source->host_ = source->host_.substr(1, source->host_.size() - 2);
  }
  source->port_ = parsed->has_port() ? std::string(parsed->port()) : "80";
  source->host_header_ = parsed->encoded_host_and_port();
  source->prefix_ = parsed->encoded_path();
  while (!source->prefix_.empty() && source->prefix_.back() == '/') source->prefix_.pop_back();
  source->token_ = std::move(token);
  if (source->host_.empty()) return Error{"--url " + url + " has no host"};
  return source;
}

// Each step runs as an asynchronous operation on a private io_context, because
// only asynchronous operations honour the stream's deadlines.
Result<Answer> LiveSource::fetch(std::string_view method, const std::string& target,
                                 const Sink* sink) {
  net::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  auto run = [&io]() {
    io.restart();
    io.run();
  };
  beast::error_code ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(host_, port_, [&](beast::error_code e, tcp::resolver::results_type r) {
    ec = e;
    endpoints = std::move(r);
  });
  run();
  if (ec) return unreachable(ec.message());
  stream.expires_after(std::chrono::seconds(10));
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  run();
  if (ec) return unreachable(ec.message());

  http::request<http::empty_body> request{http::string_to_verb(method), prefix_ + target, 11};
  request.set(http::field::host, host_header_);
  request.set(http::field::user_agent, "deltatap/" DELTATAP_VERSION);
  if (!token_.empty()) request.set(http::field::authorization, "Bearer " + token_);
  request.keep_alive(false);
  stream.expires_after(std::chrono::seconds(30));
  http::async_write(stream, request, [&](beast::error_code e, std::size_t) { ec = e; });
  run();
  if (ec) return unreachable(ec.message());

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  // A snapshot of a large database may take a while; so may the first page.
  stream.expires_after(std::chrono::seconds(120));
  http::async_read_header(stream, buffer, parser,
                          [&](beast::error_code e, std::size_t) { ec = e; });
  run();
  if (ec) return Error{"reading the answer from " + url_ + ": " + ec.message()};
  Answer answer;
  answer.status = parser.get().result_int();
  bool to_sink = sink && answer.status / 100 == 2;
  std::vector<char> piece(64 * 1024);
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    stream.expires_after(std::chrono::seconds(60));
    http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Error{"reading the answer from " + url_ + ": " + ec.message()};
    std::string_view got(piece.data(), piece.size() - parser.get().body().size);
    if (to_sink) {
      if (auto s = (*sink)(got); !s.ok()) return Error{s.error()};
    } else {
      answer.body += got;
    }
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return answer;
}

Error LiveSource::unreachable(const std::string& reason) const {
  return Error{"cannot reach deltatapd at " + url_ + ": " + reason +
               " (is it running? for a snapshot file use --db PATH)"};
}

}  // namespace deltatap::cli
