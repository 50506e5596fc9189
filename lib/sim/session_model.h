// session_model: the upstream the simulated backend polls. A pool of fake
// Jules sessions, each created in an empty slot, moved through approval and
// plan states (approve or reject, run its steps, succeed or fail, retry), and
// sometimes deleted, on a clock that is simulated or follows the wall clock.
// A session's state as JSON text is spelled by frames.h (render_session()).
//
// Everything a World produces comes from one generator seeded once, and it
// draws nothing that depends on timing or connections, so a seed (and start
// time) names one history. The broadcast server draws its own choices (frame
// kind, batch size, which deltas carry a timestamp) from the same generator
// through below(), percent() and wire_time(), so those follow the seed too.
//
// Threads: a World is not synchronised. The broadcast server owns one and
// calls it from its io thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/delta.h"

namespace deltatap::sim {

// A Session holds indexes into these; render_session() spells them out.
inline constexpr std::string_view kRepos[] = {
    "acme/widgets",      "acme/payments-api",  "jules-labs/control-room",
    "oss/zstd-bindings", "ops/terraform-live", "mobile/ios-app",
};
inline constexpr std::string_view kBranches[] = {
    "main", "fix/upload-retry", "feature/dark-mode", "chore/deps-bump", "jules/修复-缓存",
    "release/2.4",
};
// Unicode of every width, escapes a writer must get right, a line break.
inline constexpr std::string_view kSummaries[] = {
    "Réparer le bug 🐛 — 修复",
    "Fix flaky upload retries in the S3 client",
    "Добавить проверку токена при переподключении",
    "テストのタイムアウトを修正する ✅",
    "Quote \"paths\" like C:\\Temp\\build\tand tabs",
    "Naïve café, déjà vu — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 everywhere",
    "Bump dependencies\nand regenerate the lock file",
    "Migrate CI to the new runners 🚀",
};
inline constexpr std::string_view kPeople[] = {
    "alice", "bob", "jules-bot", "søren", "李雷", "renée", "ömer", "priya",
};
inline constexpr std::string_view kLabels[] = {
    "ci", "backend", "frontend", "security", "needs-review", "flaky",
};

template <typename T, std::size_t N>
constexpr int size_of(const T (&)[N]) {
  return static_cast<int>(N);
}

enum class Plan { pending, in_progress, succeeded, failed };
enum class Approval { pending, approved, rejected };

struct Session {
  std::string id;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  int repo = 0;
  int branch = 0;
  int summary = 0;
  Plan plan = Plan::pending;
  Approval approval = Approval::pending;
  bool approval_object = false;  // {"state":...} as in the domain documents
  int approver = 0;
  std::int64_t decided_ms = 0;
  std::vector<int> participants;
  std::vector<int> labels;
  int attempt = 1;
  int revision = 1;
  int steps_done = 0;
  int steps_total = 0;
  bool draft = false;
  std::uint64_t trace_id = 0;  // above 2^53: a double would change it
  std::string json;            // the current state, as sent
};

// One step of the history: for `created` no `before`, for `deleted` no
// `after`; both are the state JSON text of the session.
struct Change {
  DeltaType type = DeltaType::created;
  std::string session_id;
  std::optional<std::string> before;
  std::optional<std::string> after;
};

class World {
 public:
  // With a start time the clock is simulated (a seeded step per delta);
  // without one it follows the wall clock, so timestamps are real send times.
  // `slots` (the live session pool) must be at least 1.
  World(std::uint64_t seed, std::optional<std::int64_t> start_ms, int slots);

  // A draw from [0, n); n must be at least 1.
  int below(int n) { return static_cast<int>(random_() % static_cast<std::uint64_t>(n)); }
  // True in `p` cases out of 100.
  bool percent(int p) { return below(100) < p; }

  // Advances the clock (a seeded 20-1499 ms step, or up to the wall clock,
  // never backwards) and changes one slot picked at random: an empty one gets
  // a new session, a live one is updated or deleted. An update's `before` is
  // the session's previous `after`, byte for byte. Never fails.
  Change next();

  // A timestamp for the delta just made, in one of the shapes seen on the
  // wire: milliseconds, whole seconds or microseconds, "Z" or an offset, all
  // naming the clock's instant (to the precision shown).
  std::string wire_time();

  // The time of a poll that changes nothing (the re-announce after a start
  // or restart), in milliseconds and "Z": the simulated clock as it stands, or
  // the wall clock (which the clock then keeps to, never going backwards).
  // Draws nothing from the generator, so polls do not change the history.
  std::string poll_time();

  // Live sessions now.
  int live_count() const;

  // Calls visit(const Session&) for every live session, in slot order.
  template <typename F>
  void for_each_live(F&& visit) const {
    for (const auto& slot : slots_) {
      if (slot) visit(*slot);
    }
  }

 private:
  std::optional<Session> create();
  std::string next_id();
  void add_participant(Session& s);
  void touch(Session& s);
  void decide(Session& s, Approval verdict);
  void start(Session& s);
  void evolve(Session& s);

  static std::int64_t wall_ms();

  std::uint64_t seed_;
  std::mt19937_64 random_;
  bool wall_clock_;
  std::int64_t clock_ms_;
  std::uint64_t created_ = 0;
  std::vector<std::optional<Session>> slots_;
};

}  // namespace deltatap::sim
