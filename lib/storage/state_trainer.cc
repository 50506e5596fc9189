#include "storage/state_trainer.h"

#include <utility>

#include "storage/state_codec.h"

namespace deltatap {

StateTrainer::~StateTrainer() {
  if (worker_.joinable()) worker_.join();
}

void StateTrainer::start(std::vector<std::string> samples) {
  if (busy()) return;
  samples_ = samples.size();
  done_.store(false, std::memory_order_relaxed);
  result_.reset();
  worker_ = std::thread([this, samples = std::move(samples)] {
    result_.emplace(StateCodec::train_bytes(samples));
    done_.store(true, std::memory_order_release);
  });
}

std::optional<Result<std::string>> StateTrainer::poll() {
  if (!worker_.joinable() || !done_.load(std::memory_order_acquire)) return std::nullopt;
  worker_.join();
  auto result = std::move(result_);
  result_.reset();
  return result;
}

}  // namespace deltatap
