// StateConversion: brings the stored rows to [storage] compression in the
// background (Store::convert_step, design.md "Capacity"), and stores the
// dictionaries trained meanwhile, in bounded steps on the store lane: each
// step of kConvertRows rows is posted behind whatever else the lane has to do
// (batches, HTTP requests, timers), like batches are; once nothing is left,
// one step a second (a dictionary trained since restarts the conversion).
// Logs a dictionary trained, a training that failed and the rows all
// converted, once each.
//
// Runs on the store lane's io_context: start() and stop() are called there,
// and the Store outlives it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "storage/store.h"

namespace deltatap {

inline constexpr std::size_t kConvertRows = 2'000;
inline constexpr std::chrono::milliseconds kConvertIdle{1'000};
inline constexpr std::chrono::milliseconds kConvertRetry{60'000};  // after a failed step

class StateConversion {
 public:
  StateConversion(boost::asio::io_context& io, Store& store);
  StateConversion(const StateConversion&) = delete;
  StateConversion& operator=(const StateConversion&) = delete;

  void start();
  void stop();  // no step runs after it

 private:
  void schedule(std::chrono::milliseconds wait);
  void step();
  void note();

  Store& store_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  std::optional<std::string> error_;  // logged once until a step works
  // What has been logged: the file's own dictionaries and state are not news.
  std::uint32_t logged_dictionary_ = 0;
  std::string logged_training_error_;
  bool logged_converted_ = false;
};

}  // namespace deltatap
