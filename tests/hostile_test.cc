// Hostile input, end to end: the real deltatapd taps a scripted WebSocket server
// (tests/fixtures/frame_server.py) that plays a catalogue of bad frames, each one
// followed by a good format A delta. What a user relies on afterwards:
//  - the daemon stayed up (same process throughout, exit 0 on SIGTERM) and kept
//    answering pings;
//  - every good delta, and every valid-but-strange one, is stored exactly once and
//    with its JSON as received;
//  - every bad frame (or bad batch element) is in rejected_messages, in order, with
//    the reason parser.h names and the raw bytes as received (cut at 64 KiB);
//  - the rejected counter carries each reason with the right count;
//  - the log stays small: one "Frame rejected" line per reason, no frame text in it.
//
// Two kinds of bad input never reach the parser, by design:
//  - a text frame that is not UTF-8 is a protocol error (RFC 6455 8.1): Beast fails
//    the connection with close code 1007 and the daemon reconnects. What is recorded
//    is a stream_events "disconnected" row with close_code 1007; the server sees 1007.
//  - a message above max_message_bytes is refused from its frame header (close 1009)
//    without being read, so there is no raw text to keep: the daemon records an
//    "oversized" stream event (1009), counts too_large and reconnects.
// The script server hands a reconnecting client the rest of the script, so a frame
// that costs the connection costs exactly that frame.
#define BOOST_TEST_MODULE hostile
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ingest/parser.h"
#include "storage/store.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

// Small enough that a frame one byte over it stays cheap to send, large enough for
// the 100,000-delta batch (about 5.2 MB) to be a legal frame.
constexpr std::size_t kMaxMessageBytes = 6 * 1024 * 1024;
constexpr long kBigBatch = 100000;
constexpr long kDeepNesting = 100000;

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// As SQLite's hex() writes it, so blobs with NUL bytes compare exactly.
std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

// A JSON string for the script file (the script's strings are UTF-8 text).
std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// One piece of a generated frame; frame_server.py expands it the same way.
struct Part {
  std::string text;
  long count = 1;
  std::string sep;
  bool numbered = false;  // text is a printf format taking the copy's index
};

std::string numbered(const std::string& format, long i) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format.c_str(), i);
  return buf;
}

std::string expand(const std::vector<Part>& parts) {
  std::string out;
  for (const auto& p : parts) {
    for (long i = 0; i < p.count; ++i) {
      if (i > 0) out += p.sep;
      out += p.numbered ? numbered(p.text, i) : p.text;
    }
  }
  return out;
}

std::string big_entry(const std::vector<Part>& parts) {
  std::string out = "{\"big\":[";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    if (i > 0) out += ',';
    out += "{\"text\":" + json_quote(p.text) + ",\"count\":" + std::to_string(p.count) +
           ",\"sep\":" + json_quote(p.sep) + ",\"numbered\":" + (p.numbered ? "true" : "false") + "}";
  }
  return out + "]}";
}

// What a rejected frame (or batch element) must leave in quarantine.
struct Quarantined {
  std::string reason;
  std::string raw;        // as received, before the 64 KiB cut
  std::size_t count = 1;  // what it adds to the rejected counter
};

// A stored delta as "session|type|before|after" (states as exact text, NULL when absent).
std::string row_key(const std::string& session, const std::string& type, const std::string& before,
                    const std::string& after) {
  return session + "|" + type + "|" + before + "|" + after;
}

enum class Ending { none, invalid_utf8, oversized };

struct Case {
  std::string name;
  std::string entry;  // the script entry, JSON
  Ending ending = Ending::none;
  std::vector<Quarantined> quarantined;
  std::vector<std::string> stored;  // row_key()s, in order
  bool probe = false;               // not a frame, not hostile: a timing probe
};

Case text_case(std::string name, const std::string& text) {
  return Case{std::move(name), "{\"text_b64\":\"" + base64(text) + "\"}", Ending::none, {}, {}};
}

// A frame rejected whole, for `reason`.
Case rejected(std::string name, const std::string& text, std::string reason) {
  Case c = text_case(std::move(name), text);
  c.quarantined.push_back({std::move(reason), text});
  return c;
}

Case rejected_big(std::string name, const std::vector<Part>& parts, std::string reason) {
  Case c{std::move(name), big_entry(parts), Ending::none, {}, {}};
  c.quarantined.push_back({std::move(reason), expand(parts)});
  return c;
}

Case valid(std::string name, const std::string& text, std::vector<std::string> stored) {
  Case c = text_case(std::move(name), text);
  c.stored = std::move(stored);
  return c;
}

// The good delta after every hostile one; the type cycles so all three are seen.
Case good(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "good_%03d", i);
  std::string sid = id;
  std::string state_before =
      "{\"id\":\"" + sid + "\",\"seq\":" + std::to_string(i) + ",\"planStatus\":\"pending\"}";
  std::string state_after =
      "{\"id\":\"" + sid + "\",\"seq\":" + std::to_string(i) + ",\"planStatus\":\"in_progress\"}";
  std::string text, type;
  switch (i % 3) {
    case 0:
      type = "created";
      text = "{\"type\":\"created\",\"sessionId\":\"" + sid + "\",\"after\":" + state_after +
             ",\"timestamp\":\"2025-11-10T12:05:00Z\"}";
      return valid("good delta " + sid, text, {row_key(sid, type, "NULL", state_after)});
    case 1:
      type = "updated";
      text = "{\"type\":\"updated\",\"sessionId\":\"" + sid + "\",\"before\":" + state_before +
             ",\"after\":" + state_after + ",\"timestamp\":\"2025-11-10T12:05:00.123Z\"}";
      return valid("good delta " + sid, text, {row_key(sid, type, state_before, state_after)});
    default:
      type = "deleted";
      text = "{\"type\":\"deleted\",\"sessionId\":\"" + sid + "\",\"before\":" + state_before +
             ",\"timestamp\":\"2025-11-10T14:05:00+02:00\"}";
      return valid("good delta " + sid, text, {row_key(sid, type, state_before, "NULL")});
  }
}

// A batch of elements written without whitespace, so each element's raw text is
// exactly the string given here.
std::string batch(const std::vector<std::string>& elements) {
  std::string out = "{\"type\":\"session_update\",\"delta\":[";
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (i > 0) out += ',';
    out += elements[i];
  }
  return out + "]}";
}

std::vector<Case> catalogue() {
  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(std::move(c)); };
  const std::string a_good =
      "{\"type\":\"created\",\"sessionId\":\"s1\",\"after\":{\"id\":\"s1\"},"
      "\"timestamp\":\"2025-11-10T12:05:00Z\"}";

  // --- not JSON ---------------------------------------------------------------
  add(rejected("invalid JSON (bare words)", "{type: created, sessionId: s1}", "invalid_json"));
  add(rejected("truncated JSON", a_good.substr(0, 40), "invalid_json"));
  add(rejected("trailing data after the object", a_good + " {}", "invalid_json"));
  add(rejected("trailing comma", "{\"type\":\"created\",\"sessionId\":\"tc\",\"after\":{},}",
               "invalid_json"));
  add(rejected("single-quoted strings", "{'type':'created','sessionId':'sq','after':{}}", "invalid_json"));
  add(rejected("NaN in a state", "{\"type\":\"created\",\"sessionId\":\"nan\",\"after\":{\"x\":NaN}}",
               "invalid_json"));
  add(rejected("raw tab inside a string", "{\"type\":\"created\",\"sessionId\":\"a\tb\",\"after\":{}}",
               "invalid_json"));
  add(rejected("lone surrogate escape", "{\"type\":\"created\",\"sessionId\":\"\\ud800\",\"after\":{}}",
               "invalid_json"));
  add(rejected("raw NUL byte in the frame",
               std::string("{\"type\":\"created\",\"sessionId\":\"n") + '\0' + "l\",\"after\":{}}",
               "invalid_json"));

  // --- JSON, but not an object ------------------------------------------------
  add(rejected("top-level array", "[" + a_good + "]", "not_object"));
  add(rejected("top-level string", "\"created\"", "not_object"));
  add(rejected("top-level number", "42", "not_object"));
  add(rejected("top-level null", "null", "not_object"));
  add(rejected("top-level boolean", "true", "not_object"));
  add(rejected("empty frame", "", "empty_frame"));
  add(rejected("whitespace-only frame", " \r\n\t ", "empty_frame"));
  add(rejected("UTF-8 byte-order mark before a valid delta", "\xEF\xBB\xBF" + a_good, "byte_order_mark"));

  // --- type -------------------------------------------------------------------
  add(rejected("unknown type", "{\"type\":\"renamed\",\"sessionId\":\"u1\",\"after\":{}}", "unknown_type"));
  add(rejected("type in capitals", "{\"type\":\"CREATED\",\"sessionId\":\"u2\",\"after\":{}}",
               "unknown_type"));
  add(rejected("type a number", "{\"type\":1,\"sessionId\":\"u3\",\"after\":{}}", "unknown_type"));
  add(rejected("missing type", "{\"sessionId\":\"u4\",\"after\":{}}", "missing_type"));
  add(rejected("type null", "{\"type\":null,\"sessionId\":\"u5\",\"after\":{}}", "missing_type"));

  // --- session id -------------------------------------------------------------
  add(rejected("missing sessionId (the state has an id)", "{\"type\":\"created\",\"after\":{\"id\":\"i1\"}}",
               "missing_session_id"));
  add(rejected("sessionId null", "{\"type\":\"created\",\"sessionId\":null,\"after\":{}}",
               "missing_session_id"));
  add(rejected("sessionId a number", "{\"type\":\"created\",\"sessionId\":12345,\"after\":{}}",
               "invalid_session_id"));
  add(rejected("sessionId an object", "{\"type\":\"created\",\"sessionId\":{\"id\":\"x\"},\"after\":{}}",
               "invalid_session_id"));
  add(rejected("empty sessionId", "{\"type\":\"created\",\"sessionId\":\"\",\"after\":{}}",
               "invalid_session_id"));
  add(rejected_big("100 KB session id",
                   {{"{\"type\":\"created\",\"sessionId\":\""}, {"s", 100 * 1024}, {"\",\"after\":{}}"}},
                   "invalid_session_id"));

  // --- states -----------------------------------------------------------------
  add(rejected("created without after", "{\"type\":\"created\",\"sessionId\":\"m1\"}", "missing_state"));
  add(rejected("created with after null", "{\"type\":\"created\",\"sessionId\":\"m2\",\"after\":null}",
               "missing_state"));
  add(rejected("deleted without before", "{\"type\":\"deleted\",\"sessionId\":\"m3\",\"after\":{}}",
               "missing_state"));
  add(rejected("updated without before", "{\"type\":\"updated\",\"sessionId\":\"m4\",\"after\":{}}",
               "missing_state"));
  add(rejected("after a string", "{\"type\":\"created\",\"sessionId\":\"v1\",\"after\":\"{}\"}",
               "invalid_state"));
  add(rejected("after an array", "{\"type\":\"created\",\"sessionId\":\"v2\",\"after\":[{}]}",
               "invalid_state"));
  add(rejected("before a number", "{\"type\":\"updated\",\"sessionId\":\"v3\",\"before\":7,\"after\":{}}",
               "invalid_state"));

  // --- timestamps -------------------------------------------------------------
  auto stamped = [](const std::string& ts) {
    return "{\"type\":\"created\",\"sessionId\":\"t1\",\"after\":{},\"timestamp\":" + ts + "}";
  };
  add(rejected("unparseable timestamp", stamped("\"yesterday\""), "invalid_timestamp"));
  add(rejected("impossible date 2025-02-30", stamped("\"2025-02-30T12:00:00Z\""), "invalid_timestamp"));
  add(rejected("impossible time 25:00", stamped("\"2025-11-10T25:00:00Z\""), "invalid_timestamp"));
  add(rejected("timestamp a number", stamped("1731240300"), "invalid_timestamp"));

  // --- duplicate keys ---------------------------------------------------------
  add(rejected("duplicate top-level key",
               "{\"type\":\"created\",\"sessionId\":\"d1\",\"sessionId\":\"d2\",\"after\":{}}",
               "duplicate_key"));
  add(rejected("duplicate key nested in a state",
               "{\"type\":\"created\",\"sessionId\":\"d3\",\"after\":{\"m\":{\"k\":1,\"k\":2}}}",
               "duplicate_key"));
  add(rejected("duplicate key spelled with an escape",
               "{\"type\":\"created\",\"sessionId\":\"d4\",\"session\\u0049d\":\"d5\",\"after\":{}}",
               "duplicate_key"));

  // --- depth ------------------------------------------------------------------
  add(rejected_big("nesting 100,000 deep (arrays at the top)", {{"[", kDeepNesting}, {"]", kDeepNesting}},
                   "too_deep"));
  add(rejected_big("nesting 100,000 deep inside a state",
                   {{"{\"type\":\"created\",\"sessionId\":\"deep\",\"after\":{\"a\":"},
                    {"{\"a\":", kDeepNesting},
                    {"1"},
                    {"}", kDeepNesting},
                    {"}}"}},
                   "too_deep"));

  // --- batches ----------------------------------------------------------------
  add(rejected("batch without delta", "{\"type\":\"session_update\"}", "invalid_batch"));
  add(rejected(
      "batch whose delta is an object",
      "{\"type\":\"session_update\",\"delta\":{\"id\":\"b0\",\"change\":\"created\",\"current\":{}}}",
      "invalid_batch"));
  {
    std::string element = "{\"id\":\"bc1\",\"change\":\"moved\",\"current\":{}}";
    Case c = text_case("batch element with an unknown change", batch({element}));
    c.quarantined.push_back({"invalid_change", element});
    add(std::move(c));
  }
  {
    std::string element = "{\"id\":\"bc2\",\"current\":{}}";
    Case c = text_case("batch element without a change", batch({element}));
    c.quarantined.push_back({"invalid_change", element});
    add(std::move(c));
  }
  {
    Case c = text_case("batch elements that are not objects", batch({"1", "\"x\"", "null", "[]"}));
    for (const char* raw : {"1", "\"x\"", "null", "[]"}) c.quarantined.push_back({"not_object", raw});
    add(std::move(c));
  }
  {
    // One bad element of each kind among good ones: the good ones are kept, in order.
    std::vector<std::string> elements = {
        "{\"id\":\"mix_1\",\"change\":\"created\",\"current\":{\"n\":1}}",
        "{\"id\":\"mix_bad_state\",\"change\":\"created\"}",
        "{\"id\":\"mix_2\",\"change\":\"updated\",\"previous\":{\"n\":1},\"current\":{\"n\":2}}",
        "{\"id\":\"mix_dup\",\"id\":\"mix_dup2\",\"change\":\"created\",\"current\":{}}",
        "{\"id\":\"mix_3\",\"change\":\"deleted\",\"previous\":{\"n\":2}}",
        "{\"id\":\"mix_bad_ts\",\"change\":\"created\",\"current\":{},\"timestamp\":\"2025-13-01T00:00:"
        "00Z\"}",
        "{\"id\":\"mix_4\",\"change\":\"created\",\"current\":{\"n\":4},\"timestamp\":\"2025-11-10T12:00:"
        "00Z\"}",
    };
    Case c = text_case("batch with bad elements among good ones", batch(elements));
    c.quarantined = {
        {"missing_state", elements[1]}, {"duplicate_key", elements[3]}, {"invalid_timestamp", elements[5]}};
    c.stored = {row_key("mix_1", "created", "NULL", "{\"n\":1}"),
                row_key("mix_2", "updated", "{\"n\":1}", "{\"n\":2}"),
                row_key("mix_3", "deleted", "{\"n\":2}", "NULL"),
                row_key("mix_4", "created", "NULL", "{\"n\":4}")};
    add(std::move(c));
  }
  {
    // Past kMaxItemisedRejections a frame's bad elements are summarised: one row for
    // the rest, which still counts each of them.
    constexpr std::size_t kBad = kMaxItemisedRejections + 30;
    std::vector<std::string> elements;
    for (std::size_t i = 0; i < kBad; ++i) {
      elements.push_back(
          numbered("{\"id\":\"sum_%03ld\",\"change\":\"renamed\",\"current\":{}}", static_cast<long>(i)));
    }
    elements.push_back("{\"id\":\"sum_ok\",\"change\":\"created\",\"current\":{\"ok\":true}}");
    Case c = text_case("batch of 130 bad elements and one good", batch(elements));
    for (std::size_t i = 0; i < kMaxItemisedRejections; ++i)
      c.quarantined.push_back({"invalid_change", elements[i]});
    c.quarantined.push_back(
        {"invalid_change", elements[kMaxItemisedRejections], kBad - kMaxItemisedRejections});
    c.stored = {row_key("sum_ok", "created", "NULL", "{\"ok\":true}")};
    add(std::move(c));
  }
  {
    std::vector<Part> parts = {
        {"{\"type\":\"session_update\",\"delta\":["},
        {"{\"id\":\"big_%06ld\",\"change\":\"created\",\"current\":{}}", kBigBatch, ",", true},
        {"]}"}};
    Case c{"a 100,000-delta batch", big_entry(parts), Ending::none, {}, {}};
    for (long i = 0; i < kBigBatch; ++i)
      c.stored.push_back(row_key(numbered("big_%06ld", i), "created", "NULL", "{}"));
    add(std::move(c));
    // Not a frame: times how long the daemon takes to read again after that batch.
    Case probe{"a ping right after the big batch", "{\"ping\":true}", Ending::none, {}, {}};
    probe.probe = true;
    cases.push_back(std::move(probe));
  }
  add(valid("type after the batch it names",
            "{\"delta\":[{\"id\":\"late_type\",\"change\":\"created\",\"current\":{\"x\":1}}],\"type\":"
            "\"session_update\"}",
            {row_key("late_type", "created", "NULL", "{\"x\":1}")}));

  // --- valid, but easy to get wrong -------------------------------------------
  {
    std::string state =
        "{\"id\":\"numbers\",\"huge\":1e400,\"tiny\":-1e-400,\"int\":9007199254740993,"
        "\"long\":123456789012345678901234567890,\"zero\":-0,\"dec\":1.50}";
    add(valid("1e400 and other numbers beyond double",
              "{\"type\":\"created\",\"sessionId\":\"numbers\",\"after\":" + state + "}",
              {row_key("numbers", "created", "NULL", state)}));
  }
  add(valid("NUL escaped inside a string",
            "{\"type\":\"created\",\"sessionId\":\"nul_escaped\",\"after\":{\"note\":\"a\\u0000b\"}}",
            {row_key("nul_escaped", "created", "NULL", "{\"note\":\"a\\u0000b\"}")}));
  {
    // "é" (C3 A9) and "😀" (F0 9F 98 80) cut between frames: UTF-8 is checked per
    // message, so this is valid.
    std::string text =
        "{\"type\":\"created\",\"sessionId\":\"fragmented\",\"after\":{\"s\":\"caf\xC3\xA9 "
        "\xF0\x9F\x98\x80\"}}";
    auto e = text.find("\xC3") + 1;
    auto f = text.find("\xF0") + 2;
    Case c{"a message in three fragments cut inside UTF-8 characters",
           "{\"fragments\":[\"" + base64(text.substr(0, e)) + "\",\"" + base64(text.substr(e, f - e)) +
               "\",\"" + base64(text.substr(f)) + "\"]}",
           Ending::none,
           {},
           {row_key("fragmented", "created", "NULL", "{\"s\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}")}};
    add(std::move(c));
  }

  // --- frames the parser never sees ---------------------------------------------
  {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    Case c{"binary frame",
           "{\"binary_b64\":\"" + base64(bytes) + "\"}",
           Ending::none,
           {{"binary_frame", bytes}},
           {}};
    add(std::move(c));
    add(Case{"empty binary frame", "{\"binary_b64\":\"\"}", Ending::none, {{"binary_frame", ""}}, {}});
  }
  add(Case{"invalid UTF-8 (0xFF) in a text frame",
           "{\"text_b64\":\"" + base64("{\"type\":\"created\",\"sessionId\":\"\xFF\xFE\",\"after\":{}}") +
               "\",\"expect_close\":true}",
           Ending::invalid_utf8,
           {},
           {}});
  add(Case{"a UTF-16 surrogate encoded as UTF-8 (ED A0 80)",
           "{\"text_b64\":\"" + base64("{\"type\":\"created\",\"sessionId\":\"\xED\xA0\x80\",\"after\":{}}") +
               "\",\"expect_close\":true}",
           Ending::invalid_utf8,
           {},
           {}});
  {
    // Exactly max_message_bytes is allowed; one byte more is not.
    std::string head = "{\"type\":\"created\",\"sessionId\":\"at_limit\",\"after\":{\"pad\":\"";
    std::string tail = "\"}}";
    long pad = static_cast<long>(kMaxMessageBytes - head.size() - tail.size());
    add(Case{"a frame of exactly max_message_bytes",
             big_entry({{head}, {"x", pad}, {tail}}),
             Ending::none,
             {},
             {row_key("at_limit", "created", "NULL", "{\"pad\":\"" + std::string(pad, 'x') + "\"}")}});
    std::string over_head = "{\"type\":\"created\",\"sessionId\":\"over_limit\",\"after\":{\"pad\":\"";
    long over_pad = static_cast<long>(kMaxMessageBytes + 1 - over_head.size() - tail.size());
    std::string entry = big_entry({{over_head}, {"x", over_pad}, {tail}});
    entry.insert(entry.size() - 1, ",\"expect_close\":true");
    add(Case{"a frame one byte above max_message_bytes", entry, Ending::oversized, {}, {}});
  }
  return cases;
}

// The script: each hostile case between good deltas; a good one first and last.
struct Script {
  std::vector<Case> cases;
  int hostile = 0;
};

Script make_script() {
  Script s;
  int n = 0;
  s.cases.push_back(good(n++));
  for (auto& c : catalogue()) {
    bool probe = c.probe;
    s.cases.push_back(std::move(c));
    if (probe) continue;
    ++s.hostile;
    s.cases.push_back(good(n++));
  }
  return s;
}

std::string script_json(const Script& s) {
  std::string out = "[\n";
  for (std::size_t i = 0; i < s.cases.size(); ++i) {
    out += s.cases[i].entry;
    out += i + 1 < s.cases.size() ? ",\n" : "\n";
  }
  return out + "]\n";
}

long count_lines(const std::string& text, const std::regex& re) {
  return std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
}

std::optional<long> delta_count(int http_port) {
  auto r = http_request(http_port, "GET", "/api/stats");
  static const std::regex count_re("\"deltaCount\":([0-9]+)");
  std::smatch m;
  if (r.status != 200 || !std::regex_search(r.body, m, count_re)) return std::nullopt;
  return std::stol(m[1]);
}

std::map<std::string, long> rejected_counters(const std::string& metrics) {
  std::map<std::string, long> out;
  static const std::regex sample_re("deltatap_messages_rejected_total\\{reason=\"([a-z_0-9]+)\"\\} ([0-9]+)");
  for (std::sregex_iterator it(metrics.begin(), metrics.end(), sample_re), end; it != end; ++it) {
    out[(*it)[1]] = std::stol((*it)[2]);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_catalogue_of_hostile_frames_costs_exactly_those_frames) {
  const auto started = std::chrono::steady_clock::now();
  TempDir dir;
  const Script script = make_script();
  BOOST_TEST_REQUIRE(script.hostile >= 25);
  write_file(dir / "script.json", script_json(script));

  Process server({{"/usr/bin/python3", (source_dir() / "tests/fixtures/frame_server.py").string(), "--script",
                   (dir / "script.json").string(), "--ping-interval", "0.25",
                   // Generous, as the backend's 30 s: storing the 100,000-delta batch holds
                   // the daemon's io thread for seconds (over 10 s under the sanitizers).
                   "--pong-timeout", "30", "--close-timeout", "60"},
                  {},
                  dir.path()});
  int ws_port = read_printed_port(server);
  BOOST_REQUIRE_MESSAGE(ws_port > 0, "frame_server.py did not start: " << server.stderr_text());

  write_file(dir / "deltatap.conf",
             "[stream]\n"
             "max_message_bytes = " +
                 std::to_string(kMaxMessageBytes) + "\n" +
                 // Short backoff: three frames in the catalogue cost the connection.
                 "backoff_initial = 0.1s\n"
                 "backoff_max = 1s\n");
  int http_port = free_port();
  auto env = daemon_env("ws://127.0.0.1:" + std::to_string(ws_port) + "/ws", "");
  env["DELTATAP_HTTP"] = "127.0.0.1:" + std::to_string(http_port);
  Process daemon({deltatapd_argv({"--config", (dir / "deltatap.conf").string()}), env, dir.path()});

  BOOST_REQUIRE_MESSAGE(
      wait_until(
          [&] { return server.stdout_text().find("\ndone\n") != std::string::npos || !daemon.running(); },
          50s),
      "the script was not played to the end; server log:\n"
          << server.stdout_text().substr(0, 4000) << "\ndaemon log:\n"
          << daemon.stderr_text().substr(0, 4000));
  BOOST_REQUIRE_MESSAGE(daemon.running(), "deltatapd died during the catalogue:\n" << daemon.stderr_text());

  // The last connection stays open and pinged: the daemon still answers.
  int last_connection = 0;
  for (auto& c : script.cases) last_connection += c.ending != Ending::none;
  BOOST_TEST(wait_until([&] {
               return server.stdout_text().find("pong n=" + std::to_string(last_connection) + " ") !=
                      std::string::npos;
             }),
             "no pong on the last connection");

  long expected_rows = 0;
  for (auto& c : script.cases) expected_rows += static_cast<long>(c.stored.size());
  bool all_in = wait_until([&] { return delta_count(http_port) == expected_rows; }, 30s);
  BOOST_TEST(all_in,
             "deltaCount is " << delta_count(http_port).value_or(-1) << ", expected " << expected_rows);

  // The rejected counter, per reason: each frame or element once, a summary by its count.
  std::map<std::string, long> expected_counters;
  for (auto& c : script.cases) {
    for (auto& q : c.quarantined) expected_counters[q.reason] += static_cast<long>(q.count);
    if (c.ending == Ending::oversized) expected_counters["too_large"] += 1;
  }
  auto metrics = http_request(http_port, "GET", "/metrics");
  BOOST_TEST(metrics.status == 200);
  auto counters = rejected_counters(metrics.body);
  for (auto reason : kRejectionReasons) {
    std::string r(reason);
    long want = expected_counters.count(r) ? expected_counters[r] : 0;
    long got = counters.count(r) ? counters[r] : 0;
    BOOST_TEST(got == want, "deltatap_messages_rejected_total{reason=\"" << r << "\"} is " << got
                                                                         << ", expected " << want);
  }

  BOOST_TEST(daemon.running());
  daemon.signal(SIGTERM);
  BOOST_TEST(daemon.wait(30s).value_or(-1) == 0, "deltatapd did not exit 0 on SIGTERM:\n"
                                                     << daemon.stderr_text());
  const auto elapsed = std::chrono::steady_clock::now() - started;
  auto db = dir / "data/sessions.sqlite";
  BOOST_REQUIRE(fs::exists(db));

  // --- every good delta exactly once, in the order sent --------------------------
  std::vector<std::string> want_rows;
  for (auto& c : script.cases) want_rows.insert(want_rows.end(), c.stored.begin(), c.stored.end());
  std::vector<std::string> got_rows;
  for (auto& r : query_db(db,
                          "SELECT session_id, delta_type, COALESCE(before_state, 'NULL'), "
                          "COALESCE(after_state, 'NULL') FROM session_deltas ORDER BY id")) {
    got_rows.push_back(row_key(r[0], r[1], r[2], r[3]));
  }
  BOOST_TEST(got_rows.size() == want_rows.size());
  std::multiset<std::string> want_set(want_rows.begin(), want_rows.end());
  std::multiset<std::string> got_set(got_rows.begin(), got_rows.end());
  if (want_set != got_set) {
    std::vector<std::string> missing, extra;
    std::set_difference(want_set.begin(), want_set.end(), got_set.begin(), got_set.end(),
                        std::back_inserter(missing));
    std::set_difference(got_set.begin(), got_set.end(), want_set.begin(), want_set.end(),
                        std::back_inserter(extra));
    std::ostringstream diff;
    for (std::size_t i = 0; i < missing.size() && i < 5; ++i)
      diff << "\n  missing: " << missing[i].substr(0, 200);
    for (std::size_t i = 0; i < extra.size() && i < 5; ++i)
      diff << "\n  extra:   " << extra[i].substr(0, 200);
    BOOST_TEST(false, missing.size() << " deltas missing, " << extra.size() << " unexpected or duplicated"
                                     << diff.str());
  } else {
    BOOST_TEST((got_rows == want_rows), "every delta is stored, but not in the order received");
  }
  BOOST_TEST(query_db(db, "SELECT COUNT(*) FROM session_deltas WHERE session_id LIKE 'good_%'")[0][0] ==
             std::to_string(script.hostile + 1));
  // Timestamps normalised to UTC, the offset one included.
  BOOST_TEST(query_db(db, "SELECT timestamp FROM session_deltas WHERE session_id = 'good_002'")[0][0] ==
             "2025-11-10T12:05:00.000Z");

  // --- every bad frame in quarantine, in order, with its reason and raw bytes ----
  auto rows = query_db(db,
                       "SELECT reason, COALESCE(hex(raw), ''), COALESCE(length(raw), 0), detail, received_at "
                       "FROM rejected_messages ORDER BY id");
  std::size_t want_quarantined = 0;
  for (auto& c : script.cases) want_quarantined += c.quarantined.size();
  BOOST_TEST(rows.size() == want_quarantined, "quarantine rows");
  std::size_t at = 0;
  for (auto& c : script.cases) {
    for (auto& q : c.quarantined) {
      if (at >= rows.size()) break;
      auto& row = rows[at++];
      std::string raw = q.raw.substr(0, kMaxRejectedRawBytes);
      BOOST_TEST(row[0] == q.reason, c.name << ": reason " << row[0] << ", expected " << q.reason
                                            << " (detail: " << row[3] << ")");
      BOOST_TEST((row[1] == hex(raw)), c.name << ": raw is not the " << raw.size() << " bytes received ("
                                              << row[2] << " bytes stored)");
      BOOST_TEST(!row[3].empty(), c.name << ": no detail");
      BOOST_TEST(row[3].size() < 512u, c.name << ": detail of " << row[3].size() << " bytes");
      BOOST_TEST(row[4].size() == 24u, c.name << ": received_at " << row[4]);
    }
  }
  BOOST_TEST(query_db(db, "SELECT MAX(length(raw)) FROM rejected_messages")[0][0] ==
             std::to_string(kMaxRejectedRawBytes));

  // --- what the frames the parser never saw left behind --------------------------
  int utf8_cases = 0, oversized_cases = 0;
  for (auto& c : script.cases) {
    utf8_cases += c.ending == Ending::invalid_utf8;
    oversized_cases += c.ending == Ending::oversized;
  }
  auto count_events = [&](const std::string& where) {
    return std::stoi(query_db(db, "SELECT COUNT(*) FROM stream_events WHERE " + where)[0][0]);
  };
  BOOST_TEST(count_events("event = 'connected'") == 1 + utf8_cases + oversized_cases,
             "one connection, plus one more after each frame that failed it");
  BOOST_TEST(count_events("event = 'disconnected' AND close_code = 1007") == utf8_cases);
  BOOST_TEST(count_events("event = 'oversized' AND close_code = 1009") == oversized_cases);
  BOOST_TEST(count_events("event = 'disconnected' AND close_code = 1009") == oversized_cases);
  BOOST_TEST(count_events("event = 'disconnected' AND close_code NOT IN (1000, 1007, 1009)") == 0,
             "no other drop: " << query_db(db,
                                           "SELECT group_concat(close_code || ' ' || reason, '; ') "
                                           "FROM stream_events WHERE event = 'disconnected'")[0][0]);

  server.signal(SIGTERM);
  BOOST_TEST(server.wait().has_value());
  auto server_log = server.stdout_text();
  std::string server_events;  // the log without its one line per frame, for messages
  {
    std::istringstream in(server_log);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("sent ", 0) != 0 && line.rfind("pong ", 0) != 0) server_events += line + "\n";
    }
  }
  // The server saw RFC 6455's close codes from the client, not a dropped socket.
  BOOST_TEST(count_lines(server_log, std::regex("closed n=[0-9]+ code=1007 ")) == utf8_cases, server_events);
  BOOST_TEST(count_lines(server_log, std::regex("closed n=[0-9]+ code=1009 ")) == oversized_cases,
             server_events);
  BOOST_TEST(count_lines(server_log, std::regex("no-close ")) == 0, server_events);
  // Pings were answered throughout, the 100,000-delta batch included.
  BOOST_TEST(count_lines(server_log, std::regex("no-pong ")) == 0, server_events);
  // The backend terminates a client that has not answered its ping by the next one,
  // 30 s later: storing the 100,000-delta batch must not take the daemon that long.
  long batch_pong_ms = -1;
  static const std::regex probe_re("ping-entry i=[0-9]+ ms=([0-9]+)");
  std::smatch probe_match;
  if (std::regex_search(server_log, probe_match, probe_re)) batch_pong_ms = std::stol(probe_match[1]);
  BOOST_TEST(batch_pong_ms >= 0, "the ping after the big batch was not answered: " << server_events);
  BOOST_TEST(batch_pong_ms < 30000, "the ping after the big batch took " << batch_pong_ms << " ms");

  // --- the log stays small ----------------------------------------------------------
  auto log = daemon.stderr_text();
  if (const char* keep = std::getenv("HOSTILE_LOG_DIR")) {  // for a look at a failure
    write_file(fs::path(keep) / "deltatapd.log", log);
    write_file(fs::path(keep) / "frame_server.log", server_log);
    write_file(fs::path(keep) / "script.json", script_json(script));
  }
  BOOST_TEST((log.find("Sanitizer") == std::string::npos && log.find("runtime error:") == std::string::npos),
             "a sanitizer report in deltatapd's stderr");
  BOOST_TEST(log.size() < 48u * 1024, "stderr is " << log.size() << " bytes");
  std::size_t longest = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) longest = std::max(longest, line.size());
  BOOST_TEST(longest < 2048u, "a log line of " << longest << " bytes");
  BOOST_TEST(
      log.find("sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss") == std::string::npos,
      "the 100 KB session id is in the log");
  // The daemon logs a rejection once per reason per minute; on top of that the logging
  // layer lets through a burst of 5 lines of one message per 10 s and reports the rest
  // as "Suppressed repeats of ...: N". So each reason is logged at most once a minute,
  // and every reason is either logged or counted as suppressed: none vanishes.
  const long allowed = 1 + std::chrono::duration_cast<std::chrono::minutes>(elapsed).count();
  long logged = 0;
  for (auto& [reason, count] : expected_counters) {
    if (reason == "too_large") continue;  // logged as "Oversized frame refused" instead
    long lines_for_reason =
        count_lines(log, std::regex("Frame rejected and quarantined reason=" + reason + " "));
    BOOST_TEST(lines_for_reason <= allowed, reason << " logged " << lines_for_reason << " times");
    logged += lines_for_reason;
  }
  long suppressed = 0;
  static const std::regex suppressed_re("Suppressed repeats of \"Frame rejected and quarantined\": ([0-9]+)");
  for (std::sregex_iterator it(log.begin(), log.end(), suppressed_re), end; it != end; ++it) {
    suppressed += std::stol((*it)[1]);
  }
  const long reasons =
      static_cast<long>(expected_counters.size()) - (expected_counters.count("too_large") ? 1 : 0);
  BOOST_TEST(logged <= reasons * allowed);
  if (allowed == 1) {
    BOOST_TEST(logged + suppressed == reasons, logged << " rejection lines and " << suppressed
                                                      << " suppressed for " << reasons << " reasons");
  } else {
    BOOST_TEST(logged + suppressed >= reasons);
  }
  BOOST_TEST_MESSAGE("catalogue: " << script.hostile << " hostile frames, " << want_rows.size() << " deltas, "
                                   << want_quarantined << " quarantine rows, " << log.size()
                                   << " bytes of log, ping after the big "
                                   << "batch answered in " << batch_pong_ms << " ms, "
                                   << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                                   << " ms");
}
