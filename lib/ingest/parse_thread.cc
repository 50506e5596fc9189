#include "ingest/parse_thread.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace deltatap {

namespace asio = boost::asio;

namespace {

using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

// A frame to parse, or (with `then` set) the marker drain() leaves in the queue.
// The guard keeps io_context::run() from returning while its result is owed.
struct Work {
  std::string text;
  TimePoint received{};
  std::function<void()> then;
  WorkGuard guard;
};

struct Outcome {
  ParsedFrame parsed;
  TimePoint received{};
  std::function<void()> then;
};

}  // namespace

// Under load the queue holds many frames: the thread takes a group of them at
// once and hands their results back in one io_context handler, so the two
// threads meet once per group, not once per frame. A group is kept small
// (kMaxGroupBytes): with the whole queue as one group, the io thread waited at
// the backlog limit while the group was parsed, then stored its results while
// this thread waited for new frames, and each core idled half the time.
constexpr std::size_t kMaxGroupBytes = 256 * 1024;

struct ParseThread::Impl {
  asio::io_context& io;
  Deliver deliver;
  std::size_t max_backlog_bytes;

  std::mutex mutex;
  std::condition_variable work_ready;    // the thread waits for work
  std::condition_variable below_limit;   // submit() waits for room
  std::deque<Work> queue;
  std::size_t backlog_bytes = 0;         // submitted, not yet parsed
  bool thread_waiting = false;
  bool stopping = false;
  std::thread thread;

  Impl(asio::io_context& io, Deliver deliver, std::size_t max_backlog_bytes)
      : io(io), deliver(std::move(deliver)), max_backlog_bytes(max_backlog_bytes) {
    thread = std::thread([this] { run(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    work_ready.notify_one();
    thread.join();
  }

  void push(Work work) {
    bool wake = false;
    {
      std::unique_lock lock(mutex);
      below_limit.wait(lock, [this] { return backlog_bytes <= max_backlog_bytes; });
      backlog_bytes += work.text.size();
      queue.push_back(std::move(work));
      wake = std::exchange(thread_waiting, false);
    }
    if (wake) work_ready.notify_one();
  }

  void run() {
    std::deque<Work> taken;
    for (;;) {
      {
        std::unique_lock lock(mutex);
        while (queue.empty() && !stopping) {
          thread_waiting = true;
          work_ready.wait(lock);
        }
        if (stopping) return;
        std::size_t group_bytes = 0;
        while (!queue.empty() && group_bytes < kMaxGroupBytes) {
          group_bytes += queue.front().text.size();
          taken.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      std::vector<Outcome> results;
      results.reserve(taken.size());
      std::size_t bytes = 0;
      for (auto& work : taken) {
        if (work.then) {
          results.push_back({{}, {}, std::move(work.then)});
          continue;
        }
        results.push_back({parse_frame(work.text, work.received), work.received, nullptr});
        bytes += work.text.size();
      }
      {
        std::lock_guard lock(mutex);
        backlog_bytes -= bytes;
      }
      below_limit.notify_one();
      asio::post(io, [this, results = std::move(results)]() mutable {
        for (auto& result : results) {
          if (result.then) {
            result.then();
          } else {
            deliver(std::move(result.parsed), result.received);
          }
        }
      });
      taken.clear();  // only now: each guard held io_context::run() until its result was queued
    }
  }
};

ParseThread::ParseThread(asio::io_context& io, Deliver deliver, std::size_t max_backlog_bytes)
    : impl_(std::make_unique<Impl>(io, std::move(deliver), max_backlog_bytes)) {}

ParseThread::~ParseThread() = default;

void ParseThread::submit(std::string_view text, TimePoint received) {
  impl_->push({std::string(text), received, nullptr, asio::make_work_guard(impl_->io)});
}

void ParseThread::drain(std::function<void()> then) {
  impl_->push({{}, {}, std::move(then), asio::make_work_guard(impl_->io)});
}

}  // namespace deltatap
