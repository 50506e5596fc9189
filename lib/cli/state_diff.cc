#include "cli/state_diff.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <string>
#include <system_error>
#include <utility>

#include "base/json_text.h"
#include "ingest/parser.h"

namespace deltatap::cli {

namespace {

// The parser's limit (see state_diff.h): what the daemon stored always fits.
constexpr std::size_t kMaxTreeDepth = static_cast<std::size_t>(kMaxDepth);

class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  bool Null() { return add({JsonNode::Kind::null, "null"}); }
  bool Bool(bool b) { return add({JsonNode::Kind::boolean, b ? "true" : "false"}); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return add({JsonNode::Kind::number, std::string(text, length)});
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return add({JsonNode::Kind::string, std::string(text, length)});
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    keys_.emplace_back(text, length);
    return true;
  }
  bool StartObject() { return open(JsonNode::Kind::object); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return open(JsonNode::Kind::array); }
  bool EndArray(rapidjson::SizeType) { return close(); }

  JsonNode take() { return std::move(root_); }
  // Whether parsing stopped because the text is nested deeper than the limit.
  bool too_deep() const { return too_deep_; }

 private:
  bool open(JsonNode::Kind kind) {
    if (stack_.size() >= kMaxTreeDepth) {
      too_deep_ = true;
      return false;
    }
    stack_.push_back(JsonNode{kind, {}, {}, {}});
    return true;
  }
  bool close() {
    JsonNode done = std::move(stack_.back());
    stack_.pop_back();
    return add(std::move(done));
  }
  bool add(JsonNode node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return true;
    }
    auto& parent = stack_.back();
    if (parent.kind == JsonNode::Kind::object) {
      parent.members.emplace_back(std::move(keys_.back()), std::move(node));
      keys_.pop_back();
    } else {
      parent.items.push_back(std::move(node));
    }
    return true;
  }

  std::vector<JsonNode> stack_;
  std::vector<std::string> keys_;
  JsonNode root_;
  bool too_deep_ = false;
};

bool same(const JsonNode& a, const JsonNode& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case JsonNode::Kind::object: {
      if (a.members.size() != b.members.size()) return false;
      for (const auto& [key, value] : a.members) {
        auto other = member(b, key);
        if (!other || !same(value, *other)) return false;
      }
      return true;
    }
    case JsonNode::Kind::array:
      if (a.items.size() != b.items.size()) return false;
      for (std::size_t i = 0; i < a.items.size(); ++i) {
        if (!same(a.items[i], b.items[i])) return false;
      }
      return true;
    default:
      return a.text == b.text;
  }
}

std::string path_join(const std::string& path, const std::string& key) {
  bool simple = !key.empty() && !(key[0] >= '0' && key[0] <= '9') &&
                std::all_of(key.begin(), key.end(), [](char c) {
                  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '$';
                });
  if (simple) return path.empty() ? key : path + "." + key;
  return path + "[" + json_quoted(key) + "]";
}

// Objects are compared key by key (nested paths); anything else, arrays
// included, as a whole value.
void diff(const std::string& path, const JsonNode& a, const JsonNode& b,
          std::vector<Change>& changes) {
  if (a.kind == JsonNode::Kind::object && b.kind == JsonNode::Kind::object) {
    for (const auto& [key, value] : a.members) {
      auto other = member(b, key);
      if (!other) changes.push_back({Change::Op::removed, path_join(path, key), &value, nullptr});
      else diff(path_join(path, key), value, *other, changes);
    }
    for (const auto& [key, value] : b.members) {
      if (!member(a, key)) {
        changes.push_back({Change::Op::added, path_join(path, key), nullptr, &value});
      }
    }
    return;
  }
  if (!same(a, b)) changes.push_back({Change::Op::changed, path.empty() ? "(state)" : path, &a, &b});
}

// Every leaf of a state as added (a created delta).
void leaves(const std::string& path, const JsonNode& node, std::vector<Change>& changes) {
  if (node.kind == JsonNode::Kind::object && !node.members.empty()) {
    for (const auto& [key, value] : node.members) leaves(path_join(path, key), value, changes);
    return;
  }
  changes.push_back({Change::Op::added, path.empty() ? "(state)" : path, nullptr, &node});
}

}  // namespace

Result<JsonNode> parse_tree(std::string_view text) {
  rapidjson::MemoryStream bytes(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
  TreeBuilder builder;
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseValidateEncodingFlag;
  if (reader.Parse<kFlags>(in, builder).IsError()) {
    if (builder.too_deep()) {
      return Error{"is nested deeper than " + std::to_string(kMaxTreeDepth) + " levels"};
    }
    return Error{"is not valid JSON"};
  }
  return builder.take();
}

const JsonNode* member(const JsonNode& object, std::string_view key) {
  for (const auto& [name, value] : object.members) {
    if (name == key) return &value;
  }
  return nullptr;
}

void append_compact(std::string& out, const JsonNode& node) {
  switch (node.kind) {
    case JsonNode::Kind::string: append_json_string(out, node.text); break;
    case JsonNode::Kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : node.members) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        append_compact(out, value);
      }
      out += '}';
      break;
    }
    case JsonNode::Kind::array: {
      out += '[';
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        if (i) out += ',';
        append_compact(out, node.items[i]);
      }
      out += ']';
      break;
    }
    default: out += node.text;
  }
}

std::string show_value(const JsonNode& node) {
  if (node.kind == JsonNode::Kind::string) {
    const std::string& s = node.text;
    bool plain = !s.empty() && s.front() != ' ' && s.back() != ' ' && s != "true" &&
                 s != "false" && s != "null" && s.find(" → ") == std::string::npos &&
                 std::none_of(s.begin(), s.end(), [](char c) {
                   return static_cast<unsigned char>(c) < 0x20 || c == '"';
                 });
    if (plain) {
      double ignored;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), ignored);
      if (ec == std::errc() && end == s.data() + s.size()) plain = false;
    }
    if (plain) return s;
  }
  std::string out;
  append_compact(out, node);
  return out;
}

void compute_changes(const StoredDelta& row, DeltaChanges& out) {
  auto read = [&](const std::optional<std::string>& state, std::optional<JsonNode>& tree) {
    if (!state || out.unreadable) return;
    auto parsed = parse_tree(*state);
    if (!parsed) {
      out.unreadable = true;
      out.problem = parsed.error();
      return;
    }
    tree = std::move(parsed.value());
  };
  read(row.delta.before, out.before);
  read(row.delta.after, out.after);
  if (out.unreadable) return;
  if (out.before && out.after) diff("", *out.before, *out.after, out.changes);
  else if (out.after && row.delta.type == DeltaType::created) leaves("", *out.after, out.changes);
}

}  // namespace deltatap::cli
