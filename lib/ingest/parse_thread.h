// ParseThread: frames are parsed on a thread of their own, in the order they
// arrived, and each result is handed back on the io_context thread in that same
// order. The io thread is left with reading the socket and storing, so the two
// halves of ingest run on two cores.
//
// Memory stays bounded: while more than max_backlog_bytes of frames wait to be
// parsed, submit() blocks until the thread is back under it. That is no longer
// than the io thread would have spent parsing them itself, and it slows the
// read loop exactly as parsing inline did.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "ingest/parser.h"
#include "base/timestamp.h"

namespace boost::asio {
class io_context;
}

namespace deltatap {

class ParseThread {
 public:
  using Deliver = std::function<void(ParsedFrame&& parsed, TimePoint received)>;

  // `deliver` runs on the io_context thread, once per submitted frame.
  ParseThread(boost::asio::io_context& io, Deliver deliver,
              std::size_t max_backlog_bytes = 8 * 1024 * 1024);
  // Joins the thread. Results it had not delivered yet are dropped with the
  // io_context's queue: drain() first to keep them.
  ~ParseThread();
  ParseThread(const ParseThread&) = delete;
  ParseThread& operator=(const ParseThread&) = delete;

  // Called on the io_context thread.
  void submit(std::string_view text, TimePoint received);
  // `then` runs on the io_context thread after every frame submitted so far has
  // been delivered.
  void drain(std::function<void()> then);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltatap
