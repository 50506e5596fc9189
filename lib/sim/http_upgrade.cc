#include "sim/http_upgrade.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

#include "base/logging.h"
#include "sim/broadcast_server.h"
#include "sim/client_connection.h"
#include "sim/http_api.h"

namespace deltatap::sim {

namespace {

using namespace std::chrono_literals;

std::string remote_of(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// Every offered subprotocol, from however many header lines.
std::vector<std::string> offered_protocols(const http::request<http::string_body>& request) {
  std::vector<std::string> offered;
  auto range = request.equal_range(http::field::sec_websocket_protocol);
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (!list.empty()) {
      auto comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) offered.emplace_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return offered;
}

}  // namespace

HttpSession::HttpSession(Server& server, tcp::socket socket)
    : server_(server), stream_(std::move(socket)), remote_(remote_of(stream_.socket())) {}

void HttpSession::start() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(kMaxBodyBytes);
  stream_.expires_after(10s);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->on_read(ec);
                   });
}

void HttpSession::abort() {
  boost::system::error_code ec;
  stream_.socket().close(ec);
}

void HttpSession::on_read(beast::error_code ec) {
  if (ec == http::error::header_limit || ec == http::error::body_limit) {
    bool header = ec == http::error::header_limit;
    log_info("HTTP request too large; refused",
             {{"REMOTE", remote_}, {"ERROR", ec.message()}});
    answer(json_error(header ? http::status::request_header_fields_too_large
                             : http::status::payload_too_large,
                      11, header ? "request header fields too large" : "payload too large",
                      header ? "the request line and headers may hold " +
                                   std::to_string(kMaxHeaderBytes) + " bytes"
                             : "the body may hold " + std::to_string(kMaxBodyBytes) + " bytes"));
    return;
  }
  if (ec) {
    if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
      log_debug("bad or incomplete HTTP request", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
    }
    abort();
    return;
  }
  request_ = parser_->release();
  parser_.reset();
  std::string path(request_.target());
  if (!websocket::is_upgrade(request_)) {
    auto response = answer_plain_request(request_, server_.options(), server_.world());
    auto status = response.result_int();
    log(status == 200 ? LogLevel::debug : LogLevel::info,
        status == 200 ? "HTTP request answered" : "HTTP request refused",
        {{"REMOTE", remote_},
         {"METHOD", std::string(request_.method_string())},
         {"PATH", path},
         {"STATUS", std::to_string(status)}});
    answer(std::move(response));
    return;
  }
  const auto& options = server_.options();
  auto offered = offered_protocols(request_);
  std::string chosen;
  if (!options.token.empty()) {
    if (offered.empty()) {
      reject(http::status::upgrade_required, "no subprotocol offered; a bearer token is required");
      return;
    }
    std::string wanted = "bearer." + options.token;
    auto match = std::find_if(offered.begin(), offered.end(),
                              [&](const std::string& p) { return same_secret(p, wanted); });
    if (match == offered.end()) {
      reject(http::status::unauthorized, "wrong or missing bearer token");
      return;
    }
    chosen = *match;
  } else if (!offered.empty()) {
    auto bearer = std::find_if(offered.begin(), offered.end(),
                               [](const std::string& p) { return p.starts_with("bearer."); });
    chosen = bearer != offered.end() ? *bearer : offered.front();
  }
  if (path != options.path) {
    log_info("upgrade on another path than --path; accepted, as the backend does",
             {{"REMOTE", remote_}, {"PATH", path}, {"EXPECTED_PATH", options.path}});
  } else {
    log_debug("upgrade request", {{"REMOTE", remote_}, {"PATH", path}});
  }
  stream_.expires_never();
  auto session =
      std::make_shared<WsSession>(server_, stream_.release_socket(), remote_, std::move(chosen));
  server_.on_handshake_start(session);
  session->start(std::move(request_));
}

void HttpSession::reject(http::status status, std::string_view why) {
  log_info("upgrade refused", {{"REMOTE", remote_},
                               {"STATUS", std::to_string(static_cast<int>(status))},
                               {"REASON", std::string(why)}});
  http::response<http::string_body> response(status, request_.version());
  response.set(http::field::server, kServerName);
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::upgrade_required) {
    response.set(http::field::upgrade, "websocket");
    response.set(http::field::sec_websocket_version, "13");
  }
  response.keep_alive(false);
  response.body() = std::string(why) + "\n";
  response.prepare_payload();
  answer(std::move(response));
}

void HttpSession::answer(http::response<http::string_body> response) {
  auto message = std::make_shared<http::response<http::string_body>>(std::move(response));
  message->keep_alive(false);
  stream_.expires_after(10s);  // a client that reads nothing does not keep the socket
  http::async_write(stream_, *message,
                    [self = shared_from_this(), message](beast::error_code ec, std::size_t) {
                      boost::system::error_code ignored;
                      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      if (ec) {
                        self->abort();
                        return;
                      }
                      self->stream_.expires_after(kLinger);
                      self->linger();
                    });
}

// Closing a socket with bytes unread resets the connection, and a reset can
// destroy the answer before the client has read it (a request refused for
// its size is the usual case). So read and drop what the client still sends
// until it closes, kLinger and kMaxLingerBytes at most, then close.
void HttpSession::linger() {
  stream_.async_read_some(asio::buffer(discard_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->lingered_ += n;
                            if (ec || self->lingered_ > kMaxLingerBytes) {
                              self->abort();
                              return;
                            }
                            self->linger();
                          });
}

}  // namespace deltatap::sim
