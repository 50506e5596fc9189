#include "sim/broadcast_server.h"

#include <algorithm>
#include <csignal>
#include <utility>

#include <boost/asio/post.hpp>

#include "base/duration.h"
#include "base/files.h"
#include "base/logging.h"
#include "sim/client_connection.h"
#include "sim/http_upgrade.h"

namespace deltatap::sim {

using namespace std::chrono_literals;

Server::Server(SimulatorOptions options, std::FILE* summary_out,
               std::optional<std::int64_t> start_ms)
    : options_(std::move(options)),
      summary_out_(summary_out),
      acceptor_(io_),
      accept_retry_(io_),
      signals_(io_, SIGINT, SIGTERM),
      pace_timer_(io_),
      restart_timer_(io_),
      world_(options_.seed, start_ms, options_.sessions),
      // A backend that has just started has an empty diff cache too; without
      // --lossy nothing is live before the first client, so it would not show.
      reannounce_pending_(options_.lossy) {}

Server::~Server() {
  if (record_ != nullptr) std::fclose(record_);
}

Status Server::open(const ListenAddress& where) {
  if (!options_.record.empty()) {
    record_ = std::fopen(options_.record.c_str(), "a");
    if (record_ == nullptr) {
      return Error{errno_text("cannot open the record file", options_.record)};
    }
  }
  boost::system::error_code ec;
  // base/address.h checked the host with inet_pton, as make_address does, so
  // an error here would be asio's own.
  tcp::endpoint endpoint(asio::ip::make_address(where.host, ec), where.port);
  if (!ec) acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{"cannot listen on " + options_.listen + ": " + ec.message()};
  }
  auto bound = acceptor_.local_endpoint();
  std::string host = bound.address().to_string();
  if (bound.address().is_v6()) host = "[" + host + "]";
  listening_ = host + ":" + std::to_string(bound.port());
  log_info("listening on " + listening_,
           {{"PATH", options_.path},
            {"FORMAT", std::string(format_name())},
            {"AUTH", options_.token.empty() ? "none" : "bearer subprotocol"},
            {"RESTART_EVERY", options_.restart_every.count() > 0
                                  ? format_duration(options_.restart_every)
                                  : std::string("never")},
            {"LOSSY", options_.lossy ? "yes" : "no"}});
  return ok_status();
}

int Server::port() const { return acceptor_.is_open() ? acceptor_.local_endpoint().port() : 0; }

int Server::run() {
  signals_.async_wait([this](beast::error_code ec, int signo) {
    if (ec) return;
    log_info("signal received; stopping", {{"SIGNAL", std::to_string(signo)}});
    stop();
  });
  accept();
  arm_restart();
  maybe_generate();  // with --lossy the sessions change before anybody listens
  io_.run();
  if (!summary_printed_) print_summary();
  log_info("stopped", {{"SENT", std::to_string(sent_)}});
  return 0;
}

void Server::post_stop() {
  asio::post(io_, [this] { stop(); });
}

void Server::stop() {
  if (stopping_) return;
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  accept_retry_.cancel();
  signals_.cancel();
  pace_timer_.cancel();
  restart_timer_.cancel();
  for (auto& weak : handshakes_) {
    if (auto pending = weak.lock()) pending->abort();
  }
  handshakes_.clear();
  auto sessions = sessions_;
  for (auto& session : sessions) {
    session->close(websocket::close_reason(websocket::close_code::normal, "server shutting down"),
                   2s);
  }
}

void Server::on_handshake_start(const std::shared_ptr<WsSession>& session) {
  sessions_.push_back(session);
}

void Server::on_open(const std::shared_ptr<WsSession>& session, std::string_view protocol) {
  ++connections_;
  open_.push_back(session);
  log_info("client connected", {{"REMOTE", session->remote()},
                                {"PROTOCOL", std::string(protocol)},
                                {"CONNECTIONS", std::to_string(connections_)},
                                {"OPEN", std::to_string(open_.size())}});
  if (reannounce_pending_) {
    reannounce_pending_ = false;
    reannounce();
  } else if (!options_.lossy) {
    send_first_poll(session);
  }
  maybe_generate();
}

void Server::on_closing(const WsSession& session) {
  std::erase_if(open_, [&](const auto& s) { return s.get() == &session; });
}

void Server::on_finished(const WsSession& session) {
  on_closing(session);
  std::erase_if(sessions_, [&](const auto& s) { return s.get() == &session; });
}

void Server::on_write_done(const std::shared_ptr<Frame>& frame, bool ok) {
  if (ok) frame->delivered = true;
  if (--frame->pending_writes == 0) settle(*frame);
  maybe_generate();
}

std::string_view Server::format_name() const {
  switch (options_.format) {
    case SimFormat::delta: return "delta";
    case SimFormat::session_update: return "session_update";
    case SimFormat::mixed: return "mixed";
  }
  return "";
}

void Server::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping_) return;
    if (ec) {
      // Out of descriptors and the like: try again shortly, don't spin.
      log_warning("accept failed", {{"ERROR", ec.message()}});
      accept_retry_.expires_after(100ms);
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !stopping_) accept();
      });
      return;
    }
    auto session = std::make_shared<HttpSession>(*this, std::move(socket));
    std::erase_if(handshakes_, [](const auto& weak) { return weak.expired(); });
    handshakes_.push_back(session);
    session->start();
    accept();
  });
}

std::uint64_t Server::budget() const {
  if (options_.count == 0) return UINT64_MAX;
  std::uint64_t used = counted() + reserved_;
  return used >= options_.count ? 0 : options_.count - used;
}

// What has used up --count: the deltas sent and, with --lossy, those that
// nobody heard (without it they are given back: the rest goes to whoever
// connects next).
std::uint64_t Server::counted() const { return sent_ + (options_.lossy ? unseen_ : 0); }

// The backend's first poll for a new client reports every live session as
// created. Format A has no batches to carry that, so it joins mid-stream.
void Server::send_first_poll(const std::shared_ptr<WsSession>& session) {
  if (options_.format == SimFormat::delta) return;
  std::uint64_t room = budget();
  auto frame = std::make_shared<Frame>();
  frame->reannounce = true;
  world_.for_each_live([&](const Session& s) {
    if (frame->deltas.size() >= room) return;
    frame->deltas.push_back({DeltaType::created, s.id, std::nullopt, s.json, std::nullopt});
  });
  if (frame->deltas.empty()) return;
  frame->text = render_format_b(frame->deltas);
  reserved_ += frame->deltas.size();
  frame->pending_writes = 1;
  session->send(frame);
  log_debug("first poll: live sessions reported as created",
            {{"REMOTE", session->remote()}, {"DELTAS", std::to_string(frame->deltas.size())}});
  check_backpressure();
}

// The first poll since the backend (re)started: its diff cache is empty, so
// it reports every live session as created, in its current state, to every
// client listening. Format A has no batches: a frame per session, stamped
// with the poll's time. Called when a client has just opened.
void Server::reannounce() {
  std::uint64_t room = budget();
  std::vector<OutDelta> deltas;
  world_.for_each_live([&](const Session& s) {
    if (deltas.size() >= room) return;
    deltas.push_back({DeltaType::created, s.id, std::nullopt, s.json, std::nullopt});
  });
  log_info("first poll since the backend (re)started: every live session reported as created",
           {{"DELTAS", std::to_string(deltas.size())}, {"OPEN", std::to_string(open_.size())}});
  if (deltas.empty()) return;
  if (options_.format == SimFormat::delta) {
    std::string when = world_.poll_time();
    for (auto& d : deltas) {
      auto frame = std::make_shared<Frame>();
      frame->reannounce = true;
      d.timestamp = when;
      frame->text = render_format_a(d);
      frame->deltas.push_back(std::move(d));
      broadcast(frame);
    }
    return;
  }
  auto frame = std::make_shared<Frame>();
  frame->reannounce = true;
  frame->deltas = std::move(deltas);
  frame->text = render_format_b(frame->deltas);
  broadcast(frame);
}

// Hands `frame` (its deltas and text ready) to every open client. With none,
// it is settled at once as having reached nobody.
void Server::broadcast(const std::shared_ptr<Frame>& frame) {
  reserved_ += frame->deltas.size();
  // Counted before sending: send() never completes inline, but a frame
  // must not look settled while it is still being handed out.
  frame->pending_writes = static_cast<int>(open_.size());
  auto targets = open_;
  for (auto& session : targets) session->send(frame);
  if (targets.empty()) settle(*frame);
  check_backpressure();
}

void Server::arm_restart() {
  if (options_.restart_every.count() <= 0 || stopping_) return;
  restart_timer_.expires_after(options_.restart_every);
  restart_timer_.async_wait([this](beast::error_code ec) {
    if (ec || stopping_) return;
    // Once --count is done nothing more is sent: a restart would only cut
    // clients off, and the summary line, printed already, would miss it.
    if (options_.count > 0 && counted() >= options_.count) return;
    restart();
    arm_restart();
  });
}

// What a restart of the backend's process does to its clients: every
// connection goes, upgrades and plain requests in progress too, and the diff
// cache is empty. The sessions upstream (the World) are untouched.
void Server::restart() {
  ++restarts_;
  restart_disconnects_ += open_.size();
  log_info("simulated restart: closing every client with 1012 service restart; the next poll "
           "reports every live session as created",
           {{"RESTARTS", std::to_string(restarts_)},
            {"OPEN", std::to_string(open_.size())},
            {"LIVE_SESSIONS", std::to_string(world_.live_count())}});
  for (auto& weak : handshakes_) {
    if (auto pending = weak.lock()) pending->abort();
  }
  handshakes_.clear();
  // No more broadcasts to anybody, before the first close: a close hands
  // back queued frames, and what that sets off must not pick a client that
  // is about to go.
  open_.clear();
  auto sessions = sessions_;
  for (auto& session : sessions) {
    session->close(websocket::close_reason(websocket::close_code::service_restart,
                                           "service restart"),
                   2s);
  }
  reannounce_pending_ = true;
}

Server::Plan Server::plan_frame() {
  Kind kind = Kind::b;
  if (options_.format == SimFormat::delta) kind = Kind::a;
  if (options_.format == SimFormat::mixed) kind = world_.percent(50) ? Kind::a : Kind::b;
  return {kind, kind == Kind::a ? 1 : 1 + world_.below(options_.batch)};
}

// Polls upstream once if the clients and the pace allow. With --rate 0 the
// next frame waits until some client has written the previous one and its
// kernel queue has drained below a quarter of the backpressure limit: "as
// fast as the socket takes them" must not mean "faster than the client
// reads", or every consumer would be cut off. With a rate the frame goes
// out on time, and a client still busy queues it: that is the backlog the
// backend cuts off at, and the cut is what bounds the queue.
//
// The backend polls only while somebody listens. With --lossy the World is
// polled regardless (a rate is required then): the upstream changes while
// nobody listens, and what nobody hears is gone.
void Server::maybe_generate() {
  if (stopping_ || pace_scheduled_) return;
  if (open_.empty() && !options_.lossy) return;
  std::uint64_t room = budget();
  if (room == 0) return;
  if (options_.rate <= 0) {
    bool any_idle = false;
    bool any_ready = false;
    for (const auto& s : open_) {
      if (!s->idle()) continue;
      any_idle = true;
      if (s->backlog().kernel <= options_.backpressure_bytes / 4) {
        any_ready = true;
        break;
      }
    }
    if (!any_idle) return;  // a write completion calls again
    if (!any_ready) {
      // The kernel says nothing when its queue drains: look again shortly.
      schedule_pace(SteadyClock::now() + 1ms);
      return;
    }
  }
  if (!planned_) planned_ = plan_frame();
  auto n = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(planned_->size), room));
  if (options_.rate > 0) {
    auto now = SteadyClock::now();
    if (now < next_emit_) {
      schedule_pace(next_emit_);
      return;
    }
    // A little late keeps the schedule; after an idle spell, no burst.
    auto base = now - next_emit_ < 100ms ? next_emit_ : now;
    next_emit_ = base + std::chrono::duration_cast<SteadyClock::duration>(
                            std::chrono::duration<double>(n / options_.rate));
  }
  Kind kind = planned_->kind;
  planned_.reset();  // before emit(): a nested call may plan the next one
  emit(kind, n);
  // The next frame by the timer, even when it is due already: a loop of
  // nested calls would grow the stack without end at a rate faster than a
  // frame is made (with --lossy and nobody listening, frames are cheap).
  if (options_.rate > 0 && !pace_scheduled_) schedule_pace(next_emit_);
}

void Server::schedule_pace(SteadyClock::time_point when) {
  pace_scheduled_ = true;
  pace_timer_.expires_at(when);
  pace_timer_.async_wait([this](beast::error_code ec) {
    pace_scheduled_ = false;
    if (!ec) maybe_generate();
  });
}

void Server::emit(Kind kind, int n) {
  auto frame = std::make_shared<Frame>();
  frame->deltas.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    Change change = world_.next();
    OutDelta d{change.type, std::move(change.session_id), std::move(change.before),
               std::move(change.after), std::nullopt};
    // Format A always says when; in batches the receiver mostly has to.
    if (kind == Kind::a || world_.percent(10)) d.timestamp = world_.wire_time();
    frame->deltas.push_back(std::move(d));
  }
  if (!open_.empty()) {  // nobody to read it (--lossy): no need to spell it out
    frame->text = kind == Kind::a ? render_format_a(frame->deltas.front())
                                  : render_format_b(frame->deltas);
  }
  broadcast(frame);
}

void Server::check_backpressure() {
  auto sessions = open_;
  for (auto& session : sessions) {
    if (session->backlog().total() <= options_.backpressure_bytes) continue;
    Backlog backlog = session->backlog(true);
    log_warning("client too slow; closing it with 4002 backpressure",
                {{"REMOTE", session->remote()},
                 {"BUFFERED_BYTES", std::to_string(backlog.total())},
                 {"APP_BYTES", std::to_string(backlog.app)},
                 {"KERNEL_BYTES", std::to_string(backlog.kernel)},
                 {"KERNEL_UNSENT_BYTES", std::to_string(backlog.kernel_unsent)},
                 {"LIMIT_BYTES", std::to_string(options_.backpressure_bytes)}});
    session->close(websocket::close_reason(static_cast<websocket::close_code>(4002), "backpressure"), options_.close_timeout + 1s);
  }
}

void Server::settle(Frame& frame) {
  reserved_ -= frame.deltas.size();
  if (!frame.delivered) {
    // A first poll that nobody took reported nothing new: nothing was missed.
    if (!frame.reannounce) unseen_ += frame.deltas.size();
    log_debug(options_.lossy && !frame.reannounce
                  ? "frame reached no client; its deltas are lost"
                  : "frame reached no client; its deltas are not counted",
              {{"DELTAS", std::to_string(frame.deltas.size())}});
    if (options_.lossy) check_count_done();
    return;
  }
  sent_ += frame.deltas.size();
  ++frames_;
  if (frame.reannounce) reannounced_ += frame.deltas.size();
  std::string lines;
  for (const auto& d : frame.deltas) {
    ++by_type_[static_cast<int>(d.type)];
    if (record_ != nullptr) lines += render_record(d);
  }
  if (record_ != nullptr) {
    std::fwrite(lines.data(), 1, lines.size(), record_);
    std::fflush(record_);
  }
  check_count_done();
}

void Server::check_count_done() {
  if (options_.count == 0 || counted() != options_.count || summary_printed_) return;
  print_summary();
  restart_timer_.cancel();
  log_info("all deltas sent; connections stay open until stopped",
           {{"SENT", std::to_string(sent_)},
            {"UNSEEN", std::to_string(unseen_)},
            {"FRAMES", std::to_string(frames_)}});
}

void Server::print_summary() {
  summary_printed_ = true;
  // "sent" first: scripts read it with a plain search.
  std::fprintf(summary_out_,
               "{\"sent\":%llu,\"by_type\":{\"created\":%llu,\"updated\":%llu,\"deleted\":%llu},"
               "\"frames\":%llu,\"connections\":%llu,\"restarts\":%llu,"
               "\"restart_disconnects\":%llu,\"reannounced\":%llu,\"unseen_deltas\":%llu,"
               "\"live_sessions\":%d}\n",
               static_cast<unsigned long long>(sent_),
               static_cast<unsigned long long>(by_type_[0]),
               static_cast<unsigned long long>(by_type_[1]),
               static_cast<unsigned long long>(by_type_[2]),
               static_cast<unsigned long long>(frames_),
               static_cast<unsigned long long>(connections_),
               static_cast<unsigned long long>(restarts_),
               static_cast<unsigned long long>(restart_disconnects_),
               static_cast<unsigned long long>(reannounced_),
               static_cast<unsigned long long>(unseen_),
               world_.live_count());
  std::fflush(summary_out_);
}

}  // namespace deltatap::sim
