#include "storage/state_facts.h"

#include <rapidjson/reader.h>

namespace deltatap {

namespace {

// A SAX handler that looks only at the top level (and one level into
// `approval`). RapidJSON reads the rest without building anything; numbers
// stay text (kParseNumbersAsStringsFlag), so none is converted. Once all three
// fields are found it stops the read by returning false, which RapidJSON
// reports as kParseErrorTermination: not an error here.
class FactsReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, FactsReader> {
 public:
  explicit FactsReader(StateFacts& facts) : facts_(facts) {}

  bool StartObject() {
    ++depth_;
    if (depth_ == 2) {
      in_approval_object_ = key_ == Field::approval;
      if (!in_approval_object_) settle_key();
    }
    key_ = Field::other;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    if (depth_ == 2 && in_approval_object_) {
      in_approval_object_ = false;
      approval_done_ = true;
    }
    --depth_;
    key_ = Field::other;
    return !done();
  }
  bool StartArray() {
    ++depth_;
    if (depth_ == 2) settle_key();
    key_ = Field::other;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    std::string_view name(text, length);
    key_ = Field::other;
    if (depth_ == 1) {
      if (name == "repo") key_ = Field::repo;
      else if (name == "planStatus") key_ = Field::plan_status;
      else if (name == "approval") key_ = Field::approval;
    } else if (depth_ == 2 && in_approval_object_ && name == "state") {
      key_ = Field::approval_state;
    }
    return true;
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    std::string_view value(text, length);
    switch (key_) {
      case Field::repo: facts_.repo = value; repo_done_ = true; break;
      case Field::plan_status: facts_.plan_status = value; plan_done_ = true; break;
      case Field::approval: facts_.approval = value; approval_done_ = true; break;
      case Field::approval_state: facts_.approval = value; break;
      case Field::other: break;
    }
    key_ = Field::other;
    return !done();
  }
  // Any other value: the key it belonged to is done with.
  bool Default() {
    if (depth_ == 1) settle_key();
    key_ = Field::other;
    return !done();
  }

 private:
  enum class Field { other, repo, plan_status, approval, approval_state };
  // The top-level key's value is not of the kind looked for: it is settled, empty.
  void settle_key() {
    if (key_ == Field::repo) repo_done_ = true;
    if (key_ == Field::plan_status) plan_done_ = true;
    if (key_ == Field::approval) approval_done_ = true;
  }
  bool done() const { return depth_ == 1 && repo_done_ && plan_done_ && approval_done_; }

  StateFacts& facts_;
  int depth_ = 0;
  Field key_ = Field::other;
  bool in_approval_object_ = false;
  bool repo_done_ = false, plan_done_ = false, approval_done_ = false;
};

}  // namespace

StateFacts StateFactsReader::read(std::string_view state) {
  StateFacts facts;
  FactsReader handler(facts);
  buffer_.assign(state);
  rapidjson::InsituStringStream stream(buffer_.data());
  rapidjson::Reader reader;
  reader.Parse<rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag |
               rapidjson::kParseStopWhenDoneFlag>(stream, handler);
  // An error part-way (termination included) keeps what was read: the store
  // holds only text the parser accepted, so a real error means someone else
  // wrote the row, and partial facts are the best that can be said of it.
  return facts;
}

bool is_terminal_plan_status(std::string_view status) {
  return status == "succeeded" || status == "failed";
}

bool is_approval_decision(std::string_view approval) {
  return approval == "approved" || approval == "rejected";
}

}  // namespace deltatap
