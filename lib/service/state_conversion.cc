#include "service/state_conversion.h"

#include "base/logging.h"

namespace deltatap {

StateConversion::StateConversion(boost::asio::io_context& io, Store& store)
    : store_(store), timer_(io) {}

void StateConversion::start() {
  auto stats = store_.compression_stats();
  logged_dictionary_ = stats.newest_dictionary;
  logged_converted_ = stats.converted;
  stopped_ = false;
  schedule(kConvertIdle);
}

void StateConversion::stop() {
  stopped_ = true;
  timer_.cancel();
}

void StateConversion::schedule(std::chrono::milliseconds wait) {
  timer_.expires_after(wait);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    step();
  });
}

void StateConversion::step() {
  auto done = store_.convert_step(kConvertRows);
  if (!done.ok()) {
    if (!error_) log_error("Converting stored states failed; retrying", {{"ERROR", done.error()}});
    error_ = done.error();
    schedule(kConvertRetry);
    return;
  }
  if (error_) log_info("Converting stored states works again");
  error_.reset();
  note();
  // More to do: next in line behind what else waits, without a pause.
  schedule(*done > 0 ? std::chrono::milliseconds(0) : kConvertIdle);
}

void StateConversion::note() {
  auto stats = store_.compression_stats();
  if (stats.newest_dictionary > logged_dictionary_) {
    log_info("Compression dictionary trained",
             {{"DICTIONARY", std::to_string(stats.newest_dictionary)}});
    logged_dictionary_ = stats.newest_dictionary;
  }
  if (!stats.last_training_error.empty() && stats.last_training_error != logged_training_error_) {
    log_warning("Compression dictionary training failed; retried later",
                {{"ERROR", stats.last_training_error}});
  }
  logged_training_error_ = stats.last_training_error;
  // Once: a retrain restarts the pass, which then finds nothing to do.
  if (stats.converted && !logged_converted_) {
    log_info("Stored states converted", {{"COMPRESSION", stats.mode}});
    logged_converted_ = true;
  }
}

}  // namespace deltatap
