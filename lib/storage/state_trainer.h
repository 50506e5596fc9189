// StateTrainer: trains a zstd dictionary (StateCodec::train_bytes) on a thread
// of its own, so that the store lane, which owns the database, does not stop
// for the hundreds of milliseconds ZDICT takes on 4,000 states.
//
// Threads: start(), poll(), busy() and the destructor are called by the
// owning thread only (the store lane, through StateColumns). The worker
// thread touches only the samples moved into it and the result it hands
// back; it never sees the database or the codec. The dictionary it returns is
// stored by the owning thread (StateCodec::add_dictionary).
//
// The destructor waits for a training under way (bounded by one ZDICT run
// over at most the samples given; no way to interrupt ZDICT).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"

namespace deltatap {

class StateTrainer {
 public:
  StateTrainer() = default;
  ~StateTrainer();
  StateTrainer(const StateTrainer&) = delete;
  StateTrainer& operator=(const StateTrainer&) = delete;

  // Whether a training has started and its result not been taken by poll().
  bool busy() const { return worker_.joinable(); }

  // Starts training on `samples` (moved in). Does nothing when busy().
  void start(std::vector<std::string> samples);

  // The finished training's dictionary bytes (or its error), once; nullopt
  // while it runs or when none was started.
  std::optional<Result<std::string>> poll();

  // How many samples the training under way (or last finished) was given.
  std::size_t samples() const { return samples_; }

 private:
  std::thread worker_;
  std::atomic<bool> done_{false};
  std::optional<Result<std::string>> result_;  // written by the worker before done_
  std::size_t samples_ = 0;
};

}  // namespace deltatap
