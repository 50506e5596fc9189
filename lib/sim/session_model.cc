#include "sim/session_model.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "base/timestamp.h"
#include "sim/frames.h"

namespace deltatap::sim {

World::World(std::uint64_t seed, std::optional<std::int64_t> start_ms, int slots)
    : seed_(seed),
      random_(seed),
      wall_clock_(!start_ms),
      clock_ms_(start_ms.value_or(wall_ms())),
      slots_(static_cast<std::size_t>(slots)) {}

Change World::next() {
  int step = 20 + below(1480);  // drawn either way: the rest stays the same
  clock_ms_ = wall_clock_ ? std::max(clock_ms_, wall_ms()) : clock_ms_ + step;
  auto& slot = slots_[static_cast<std::size_t>(below(static_cast<int>(slots_.size())))];
  if (!slot) {
    slot = create();
    return {DeltaType::created, slot->id, std::nullopt, slot->json};
  }
  bool finished = slot->plan == Plan::succeeded || slot->plan == Plan::failed;
  if (percent(finished ? 35 : 3)) {
    Change change{DeltaType::deleted, slot->id, std::move(slot->json), std::nullopt};
    slot.reset();
    return change;
  }
  std::string before = slot->json;
  evolve(*slot);
  slot->updated_ms = clock_ms_;
  ++slot->revision;
  slot->json = render_session(*slot);
  return {DeltaType::updated, slot->id, std::move(before), slot->json};
}

std::string World::wire_time() {
  int shape = below(100);
  if (shape < 40) return render_time(clock_ms_, 0, 3, 0);
  if (shape < 60) return render_time(clock_ms_, 0, 0, 0);
  if (shape < 75) return render_time(clock_ms_, 0, 6, below(1000));
  if (shape < 90) return render_time(clock_ms_, 120, below(2) * 3, 0);
  return render_time(clock_ms_, -300, 0, 0);
}

std::string World::poll_time() {
  if (wall_clock_) clock_ms_ = std::max(clock_ms_, wall_ms());
  return render_time(clock_ms_, 0, 3, 0);
}

int World::live_count() const {
  int live = 0;
  for (const auto& slot : slots_) live += slot ? 1 : 0;
  return live;
}

std::optional<Session> World::create() {
  Session s;
  s.id = next_id();
  s.created_ms = s.updated_ms = clock_ms_;
  s.repo = below(size_of(kRepos));
  s.branch = below(size_of(kBranches));
  s.summary = below(size_of(kSummaries));
  s.approval_object = percent(50);
  int people = 1 + below(3);
  while (static_cast<int>(s.participants.size()) < people) add_participant(s);
  if (percent(50)) s.labels.push_back(below(size_of(kLabels)));
  s.draft = percent(25);
  s.trace_id = 9007199254740993ull + 2 * static_cast<std::uint64_t>(below(1'000'000'000));
  s.json = render_session(s);
  return s;
}

// Distinct for every session of a run: a bijection of the creation counter.
std::string World::next_id() {
  std::uint64_t x = seed_ ^ (++created_ * 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  char text[32];
  std::snprintf(text, sizeof text, "sess_%016llx", static_cast<unsigned long long>(x));
  return text;
}

void World::add_participant(Session& s) {
  if (s.participants.size() >= static_cast<std::size_t>(size_of(kPeople))) return;
  int who = below(size_of(kPeople));
  while (std::find(s.participants.begin(), s.participants.end(), who) != s.participants.end()) {
    who = (who + 1) % size_of(kPeople);
  }
  s.participants.push_back(who);
}

// Something a person or the agent would change that is not the plan.
void World::touch(Session& s) {
  switch (below(4)) {
    case 0: s.summary = below(size_of(kSummaries)); break;
    case 1: add_participant(s); break;
    case 2: s.labels.push_back(below(size_of(kLabels))); break;
    default: s.draft = !s.draft; break;
  }
  if (s.labels.size() > 4) s.labels.erase(s.labels.begin());
}

void World::decide(Session& s, Approval verdict) {
  s.approval = verdict;
  s.approver = below(size_of(kPeople));
  s.decided_ms = clock_ms_;
}

void World::start(Session& s) {
  s.plan = Plan::in_progress;
  s.steps_done = 0;
  s.steps_total = 3 + below(6);
}

void World::evolve(Session& s) {
  switch (s.plan) {
    case Plan::pending:
      if (s.approval == Approval::pending) {
        if (percent(70)) {
          decide(s, percent(85) ? Approval::approved : Approval::rejected);
          if (s.approval == Approval::rejected) s.plan = Plan::failed;
        } else {
          touch(s);
        }
      } else {
        start(s);
      }
      break;
    case Plan::in_progress:
      if (percent(20)) {
        touch(s);
      } else if (++s.steps_done >= s.steps_total) {
        s.plan = percent(80) ? Plan::succeeded : Plan::failed;
      }
      break;
    case Plan::failed:
      // A retry: rejected plans go back for approval, failed runs start over.
      ++s.attempt;
      if (s.approval == Approval::rejected) {
        s.approval = Approval::pending;
        s.plan = Plan::pending;
      } else {
        start(s);
      }
      break;
    case Plan::succeeded:
      touch(s);
      break;
  }
}

std::int64_t World::wall_ms() { return now_millis().time_since_epoch().count(); }

}  // namespace deltatap::sim
