#include "sim/client_connection.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "base/files.h"
#include "base/logging.h"
#include "sim/broadcast_server.h"

namespace deltatap::sim {

namespace {

// The kernel takes at most this much not yet sent per socket, so a write
// completes only while the connection moves and a stalled client's backlog
// piles up in the app queue, whatever the kernel's buffer limits are.
constexpr int kNotSentLowWater = 128 * 1024;

}  // namespace

WsSession::WsSession(Server& server, tcp::socket socket, std::string remote, std::string protocol)
    : server_(server),
      ws_(std::move(socket)),
      ping_timer_(server.io()),
      kill_timer_(server.io()),
      remote_(std::move(remote)),
      protocol_(std::move(protocol)) {}

void WsSession::start(http::request<http::string_body> request) {
  int fd = beast::get_lowest_layer(ws_).socket().native_handle();
  int low_water = kNotSentLowWater;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &low_water, sizeof low_water) != 0) {
    log_debug("TCP_NOTSENT_LOWAT not available", {{"ERROR", errno_text(errno)}});
  }
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.handshake_timeout = server_.options().close_timeout;
  timeouts.idle_timeout = websocket::stream_base::none();  // our own pings decide
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([protocol = protocol_](
                                                       websocket::response_type& response) {
    response.set(http::field::server, kServerName);
    if (!protocol.empty()) response.set(http::field::sec_websocket_protocol, protocol);
  }));
  ws_.text(true);
  ws_.auto_fragment(false);  // one frame per message, as the backend sends
  ws_.read_message_max(1u << 20);
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) {
      ping_outstanding_ = false;
    } else if (kind == websocket::frame_type::close) {
      log_debug("close frame from client", {{"REMOTE", remote_},
                                            {"CLOSE_CODE", std::to_string(ws_.reason().code)}});
    }
    (void)payload;
  });
  request_ = std::move(request);
  ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
    self->on_accept(ec);
  });
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) {
    log_info("WebSocket handshake failed", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
    finish();
    return;
  }
  if (closing_) {  // stopped while the handshake ran
    finish();
    return;
  }
  open_ = true;
  read();
  arm_ping();
  server_.on_open(shared_from_this(), protocol_);
}

void WsSession::read() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->on_read(ec);
  });
}

void WsSession::on_read(beast::error_code ec) {
  if (!ec) {
    // The backend ignores what clients say; so does the simulator.
    log_debug("client message ignored", {{"REMOTE", remote_},
                                         {"BYTES", std::to_string(buffer_.size())}});
    buffer_.consume(buffer_.size());
    read();
    return;
  }
  if (ec == websocket::error::closed) {
    if (!we_closed_) {
      log_info("client closed the connection",
               {{"REMOTE", remote_},
                {"CLOSE_CODE", std::to_string(ws_.reason().code)},
                {"REASON", std::string(ws_.reason().reason.data(), ws_.reason().reason.size())}});
    } else {
      log_info("connection closed", {{"REMOTE", remote_}});
    }
  } else if (!closing_) {
    log_info("connection lost", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
  } else {
    log_debug("connection ended", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
  }
  finish();
}

void WsSession::send(std::shared_ptr<Frame> frame) {
  queued_bytes_ += frame->text.size();
  queue_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void WsSession::write_next() {
  if (queue_.empty() || closing_) return;
  writing_ = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= writing_->text.size();
  ws_.async_write(asio::buffer(writing_->text),
                  [self = shared_from_this()](beast::error_code ec, std::size_t) {
                    self->on_write(ec);
                  });
}

void WsSession::on_write(beast::error_code ec) {
  auto frame = std::move(writing_);
  writing_.reset();
  if (ec && !closing_) {
    log_debug("write failed", {{"REMOTE", remote_}, {"ERROR", ec.message()}});
  }
  if (!ec) write_next();
  server_.on_write_done(frame, !ec);
}

Backlog WsSession::backlog(bool with_unsent) {
  Backlog backlog;
  backlog.app = queued_bytes_ + (writing_ ? writing_->text.size() : 0);
  int unacknowledged = 0;
  int unsent = 0;
  int fd = beast::get_lowest_layer(ws_).socket().native_handle();
  if (fd >= 0 && ::ioctl(fd, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged > 0) {
    backlog.kernel = static_cast<std::uint64_t>(unacknowledged);
  }
  if (with_unsent && fd >= 0 && ::ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0) {
    backlog.kernel_unsent = static_cast<std::uint64_t>(unsent);
  }
  return backlog;
}

void WsSession::arm_ping() {
  auto interval = server_.options().ping_interval;
  if (interval.count() <= 0 || closing_) return;
  ping_timer_.expires_after(interval);
  ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    self->on_ping_timer(ec);
  });
}

void WsSession::on_ping_timer(beast::error_code ec) {
  if (ec || closing_ || finished_) return;
  if (ping_outstanding_) {
    log_warning("client did not answer the previous ping; terminating it",
                {{"REMOTE", remote_}});
    terminate("ping timeout");
    return;
  }
  ping_outstanding_ = true;
  std::string payload = "deltatap-sim " + std::to_string(++pings_);
  ws_.async_ping(websocket::ping_data(payload.c_str()),
                 [self = shared_from_this()](beast::error_code ping_ec) {
                   if (ping_ec && !self->closing_) {
                     log_debug("ping failed", {{"REMOTE", self->remote_},
                                               {"ERROR", ping_ec.message()}});
                   }
                 });
  arm_ping();
}

void WsSession::close(websocket::close_reason reason, std::chrono::milliseconds kill_after) {
  if (closing_ || finished_) return;
  closing_ = true;
  we_closed_ = true;
  server_.on_closing(*this);
  ping_timer_.cancel();
  if (!open_) {  // still in the handshake
    force_close();
    return;
  }
  drop_queue();
  kill_timer_.expires_after(kill_after);
  kill_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->finished_) return;
    log_info("closing handshake not finished in time; dropping the connection",
             {{"REMOTE", self->remote_}});
    self->force_close();
  });
  ws_.async_close(reason, [self = shared_from_this()](beast::error_code ec) {
    if (ec) log_debug("close failed", {{"REMOTE", self->remote_}, {"ERROR", ec.message()}});
  });
}

void WsSession::terminate(std::string_view why) {
  if (finished_) return;
  log_info("terminating connection", {{"REMOTE", remote_}, {"REASON", std::string(why)}});
  closing_ = true;
  server_.on_closing(*this);
  ping_timer_.cancel();
  drop_queue();
  force_close();
}

// Queued frames will never reach this client; they are settled as missed.
void WsSession::drop_queue() {
  auto dropped = std::move(queue_);
  queue_.clear();
  queued_bytes_ = 0;
  for (auto& frame : dropped) server_.on_write_done(frame, false);
}

void WsSession::force_close() {
  boost::system::error_code ec;
  beast::get_lowest_layer(ws_).socket().close(ec);
}

void WsSession::finish() {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  ping_timer_.cancel();
  kill_timer_.cancel();
  server_.on_closing(*this);
  drop_queue();
  force_close();
  server_.on_finished(*this);
}

}  // namespace deltatap::sim
