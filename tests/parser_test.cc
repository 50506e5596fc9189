// The frame parser: both wire formats, every validation rule, byte-exact states, and
// hostile input that must be refused without stopping the tap.
#define BOOST_TEST_MODULE parser
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "fuzz/parser_invariants.h"
#include "ingest/parser.h"
#include "base/timestamp.h"

using namespace deltatap;

namespace {

const TimePoint kReceived = parse_timestamp("2025-11-10T12:00:00.123Z").value();
constexpr const char* kReceivedText = "2025-11-10T12:00:00.123Z";

ParsedFrame parse(std::string_view text) {
  ParsedFrame frame = parse_frame(text, kReceived);
  std::string problem = testing::check_parsed_frame(text, frame);
  BOOST_TEST(problem.empty(), problem);
  return frame;
}

// The single rejection of a frame that must be refused whole.
Rejection rejected(std::string_view text) {
  ParsedFrame frame = parse(text);
  BOOST_TEST(frame.deltas.empty());
  BOOST_TEST_REQUIRE(frame.rejections.size() == 1u);
  return frame.rejections[0];
}

Delta accepted(std::string_view text) {
  ParsedFrame frame = parse(text);
  if (!frame.rejections.empty()) {
    BOOST_TEST_MESSAGE("unexpected rejection: " << frame.rejections[0].reason << ": "
                                                << frame.rejections[0].detail);
  }
  BOOST_TEST(frame.rejections.empty());
  BOOST_TEST_REQUIRE(frame.deltas.size() == 1u);
  return frame.deltas[0];
}

// The compact form of `state` as stored, via a format A created frame.
std::string stored_state(const std::string& state) {
  Delta delta = accepted(R"({"type":"created","sessionId":"s","after":)" + state + "}");
  BOOST_TEST_REQUIRE(delta.after.has_value());
  return *delta.after;
}

}  // namespace

BOOST_AUTO_TEST_CASE(format_a_created) {
  Delta d = accepted(R"({"type":"created","sessionId":"sess_abc123",
      "after":{"id":"sess_abc123","planStatus":"pending"},"timestamp":"2025-11-10T12:05:00Z"})");
  BOOST_TEST(d.session_id == "sess_abc123");
  BOOST_TEST((d.type == DeltaType::created));
  BOOST_TEST(!d.before.has_value());
  BOOST_TEST(*d.after == R"({"id":"sess_abc123","planStatus":"pending"})");
  BOOST_TEST(d.timestamp == "2025-11-10T12:05:00.000Z");
}

BOOST_AUTO_TEST_CASE(format_a_updated) {
  Delta d = accepted(R"({"type":"updated","sessionId":"sess_abc123",
      "before":{"id":"sess_abc123","planStatus":"pending"},
      "after":{"id":"sess_abc123","planStatus":"in_progress"},
      "timestamp":"2025-11-10T12:05:00.250Z"})");
  BOOST_TEST((d.type == DeltaType::updated));
  BOOST_TEST(*d.before == R"({"id":"sess_abc123","planStatus":"pending"})");
  BOOST_TEST(*d.after == R"({"id":"sess_abc123","planStatus":"in_progress"})");
  BOOST_TEST(d.timestamp == "2025-11-10T12:05:00.250Z");
}

BOOST_AUTO_TEST_CASE(format_a_deleted) {
  Delta d = accepted(R"({"type":"deleted","sessionId":"s9","before":{"id":"s9"},"after":null,
      "timestamp":"2025-11-10T12:05:00Z"})");
  BOOST_TEST((d.type == DeltaType::deleted));
  BOOST_TEST(*d.before == R"({"id":"s9"})");
  BOOST_TEST(!d.after.has_value());
}

BOOST_AUTO_TEST_CASE(format_a_field_order_does_not_matter) {
  Delta d = accepted(R"({"timestamp":"2025-11-10T12:05:00Z","after":{"a":1},"sessionId":"s","type":"created"})");
  BOOST_TEST(d.session_id == "s");
  BOOST_TEST(*d.after == R"({"a":1})");
}

BOOST_AUTO_TEST_CASE(format_a_without_timestamp_takes_receive_time) {
  BOOST_TEST(accepted(R"({"type":"created","sessionId":"s","after":{}})").timestamp == kReceivedText);
  BOOST_TEST(accepted(R"({"type":"created","sessionId":"s","after":{},"timestamp":null})").timestamp ==
             kReceivedText);
}

BOOST_AUTO_TEST_CASE(offsets_are_normalised_to_utc) {
  BOOST_TEST(accepted(R"({"type":"created","sessionId":"s","after":{},"timestamp":"2025-11-10T12:05:00.5+02:00"})")
                 .timestamp == "2025-11-10T10:05:00.500Z");
  BOOST_TEST(accepted(R"({"type":"created","sessionId":"s","after":{},"timestamp":"2025-11-10 23:30:00-0530"})")
                 .timestamp == "2025-11-11T05:00:00.000Z");
}

BOOST_AUTO_TEST_CASE(unknown_extra_fields_are_ignored) {
  Delta d = accepted(R"({"version":3,"source":{"host":"x","tags":[1,{"a":[]}]},"type":"created",
      "sessionId":"s","after":{"id":"s"},"delta":[{"id":"other","change":"created","current":{}}],
      "extra":null})");
  BOOST_TEST(d.session_id == "s");
}

BOOST_AUTO_TEST_CASE(format_b_mixed_batch) {
  const std::string bad = R"({"id":"sess_x","change":"renamed","current":{"id":"sess_x"}})";
  ParsedFrame f = parse(R"({"type":"session_update",
   "delta":[
     {"id":"sess_7","change":"created","current":{"id":"sess_7","planStatus":"pending"}},
     {"id":"sess_3","change":"updated","previous":{"id":"sess_3","planStatus":"pending"},
                                       "current":{"id":"sess_3","planStatus":"succeeded"}},
     )" + bad + R"(,
     {"id":"sess_9","change":"deleted","previous":{"id":"sess_9"}}
   ]})");
  BOOST_TEST_REQUIRE(f.deltas.size() == 3u);
  BOOST_TEST_REQUIRE(f.rejections.size() == 1u);

  BOOST_TEST(f.deltas[0].session_id == "sess_7");
  BOOST_TEST((f.deltas[0].type == DeltaType::created));
  BOOST_TEST(!f.deltas[0].before.has_value());
  BOOST_TEST(*f.deltas[0].after == R"({"id":"sess_7","planStatus":"pending"})");

  BOOST_TEST(f.deltas[1].session_id == "sess_3");
  BOOST_TEST((f.deltas[1].type == DeltaType::updated));
  BOOST_TEST(*f.deltas[1].before == R"({"id":"sess_3","planStatus":"pending"})");
  BOOST_TEST(*f.deltas[1].after == R"({"id":"sess_3","planStatus":"succeeded"})");

  BOOST_TEST(f.deltas[2].session_id == "sess_9");
  BOOST_TEST((f.deltas[2].type == DeltaType::deleted));
  BOOST_TEST(*f.deltas[2].before == R"({"id":"sess_9"})");
  BOOST_TEST(!f.deltas[2].after.has_value());

  for (const Delta& d : f.deltas) BOOST_TEST(d.timestamp == kReceivedText);

  BOOST_TEST(f.rejections[0].reason == "invalid_change");
  BOOST_TEST(f.rejections[0].raw == bad);  // the element as received, not the frame
  BOOST_TEST(f.rejections[0].detail.find("batch element 2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(format_b_type_after_the_batch) {
  ParsedFrame f = parse(R"({"delta":[{"id":"a","change":"created","current":{}}],"type":"session_update"})");
  BOOST_TEST_REQUIRE(f.deltas.size() == 1u);
  BOOST_TEST(f.deltas[0].session_id == "a");
}

BOOST_AUTO_TEST_CASE(format_b_gives_the_same_result_whatever_the_member_order) {
  const std::string elements = R"([{"id":"a","change":"created","current":{"n":1e400}},7,)"
                               R"({"id":"b","change":"deleted","previous":{"k":1,"k":2}},)"
                               R"({"id":"c","change":"updated","previous":{},"current":{}}])";
  ParsedFrame first = parse(R"({"type":"session_update","delta":)" + elements + "}");
  ParsedFrame last = parse(R"({"delta":)" + elements + R"(,"type":"session_update"})");
  for (const ParsedFrame* f : {&first, &last}) {
    BOOST_TEST_REQUIRE(f->deltas.size() == 2u);
    BOOST_TEST(f->deltas[0].session_id == "a");
    BOOST_TEST(*f->deltas[0].after == R"({"n":1e400})");
    BOOST_TEST(f->deltas[1].session_id == "c");
    BOOST_TEST_REQUIRE(f->rejections.size() == 2u);
    BOOST_TEST(f->rejections[0].reason == "not_object");
    BOOST_TEST(f->rejections[0].raw == "7");
    BOOST_TEST(f->rejections[1].reason == "duplicate_key");
    BOOST_TEST(f->rejections[1].detail.find("batch element 2") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_flood_of_bad_elements_is_summarised_not_itemised) {
  // A million broken elements: the first kMaxItemisedRejections are listed, the rest
  // counted into one summary per reason, and the good element still gets through.
  const std::size_t bad = 1'000'000;
  std::string frame = R"({"type":"session_update","delta":[)";
  frame.reserve(bad * 3 + 200);
  for (std::size_t i = 0; i < bad / 2; ++i) frame += "1,";
  frame += R"({"id":"ok","change":"created","current":{}},)";
  for (std::size_t i = 0; i < bad / 2; ++i) frame += "{},";
  frame.back() = ']';
  frame += "}";
  ParsedFrame f = parse(frame);
  BOOST_TEST_REQUIRE(f.deltas.size() == 1u);
  BOOST_TEST(f.deltas[0].session_id == "ok");
  BOOST_TEST_REQUIRE(f.rejections.size() == kMaxItemisedRejections + 2);
  std::size_t total = 0;
  for (const auto& r : f.rejections) total += r.count;
  BOOST_TEST(total == bad);
  const Rejection& numbers = f.rejections[kMaxItemisedRejections];
  BOOST_TEST(numbers.reason == "not_object");
  BOOST_TEST(numbers.count == bad / 2 - kMaxItemisedRejections);
  BOOST_TEST(numbers.raw == "1");
  BOOST_TEST(numbers.detail.find("batch element 100") != std::string::npos);
  const Rejection& empties = f.rejections[kMaxItemisedRejections + 1];
  BOOST_TEST(empties.reason == "missing_session_id");
  BOOST_TEST(empties.count == bad / 2);
  BOOST_TEST(empties.raw == "{}");
  BOOST_TEST(empties.detail.find("batch element 500001") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(format_b_own_timestamp_is_honoured) {
  ParsedFrame f = parse(R"({"type":"session_update","timestamp":"2001-01-01T00:00:00Z","delta":[
      {"id":"a","change":"created","current":{},"timestamp":"2025-11-10T09:00:00.5+01:00"},
      {"id":"b","change":"created","current":{}}]})");
  BOOST_TEST_REQUIRE(f.deltas.size() == 2u);
  BOOST_TEST(f.deltas[0].timestamp == "2025-11-10T08:00:00.500Z");
  // A batch-level timestamp is not part of format B: the receive time applies.
  BOOST_TEST(f.deltas[1].timestamp == kReceivedText);
}

BOOST_AUTO_TEST_CASE(format_b_field_mapping_is_strict) {
  // Format A names inside a batch element are unknown fields there.
  ParsedFrame f = parse(R"({"type":"session_update","delta":[
      {"sessionId":"a","change":"created","current":{"id":"a"}},
      {"id":"b","type":"created","current":{"id":"b"}},
      {"id":"c","change":"created","after":{"id":"c"}}]})");
  BOOST_TEST(f.deltas.empty());
  BOOST_TEST_REQUIRE(f.rejections.size() == 3u);
  BOOST_TEST(f.rejections[0].reason == "missing_session_id");
  BOOST_TEST(f.rejections[1].reason == "invalid_change");
  BOOST_TEST(f.rejections[2].reason == "missing_state");
}

BOOST_AUTO_TEST_CASE(empty_batch_yields_nothing) {
  ParsedFrame f = parse(R"({"type":"session_update","delta":[]})");
  BOOST_TEST(f.deltas.empty());
  BOOST_TEST(f.rejections.empty());
}

BOOST_AUTO_TEST_CASE(batch_elements_that_are_not_objects) {
  ParsedFrame f = parse(R"({"type":"session_update","delta":[42, "x\ty", [1, 2], null, true,
      {"id":"ok","change":"created","current":{}}]})");
  BOOST_TEST_REQUIRE(f.deltas.size() == 1u);
  BOOST_TEST_REQUIRE(f.rejections.size() == 5u);
  for (const auto& r : f.rejections) BOOST_TEST(r.reason == "not_object");
  BOOST_TEST(f.rejections[0].raw == "42");
  BOOST_TEST(f.rejections[1].raw == R"("x\ty")");
  BOOST_TEST(f.rejections[2].raw == "[1, 2]");
  BOOST_TEST(f.rejections[3].raw == "null");
  BOOST_TEST(f.rejections[4].raw == "true");
}

BOOST_AUTO_TEST_CASE(frame_level_validation_rules) {
  struct Case {
    const char* frame;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"", "empty_frame"},
      {" \r\n\t ", "empty_frame"},
      {"\xEF\xBB\xBF{\"type\":\"created\",\"sessionId\":\"s\",\"after\":{}}", "byte_order_mark"},
      {"not json", "invalid_json"},
      {"{", "invalid_json"},
      {R"({"type":"created",})", "invalid_json"},
      {R"({"type":"created","sessionId":"s","after":{}} x)", "invalid_json"},
      {R"({"type":"created","sessionId":"s","after":{}}{})", "invalid_json"},
      {R"({'type':'created'})", "invalid_json"},
      {R"({"a":NaN})", "invalid_json"},
      {R"({"a":1 /* comment */})", "invalid_json"},
      {R"({"a":01})", "invalid_json"},
      {R"({"a":1.})", "invalid_json"},
      {R"({"a":"\x"})", "invalid_json"},
      {R"({"a":"\ud800"})", "invalid_json"},
      {R"({"a":"\ud800x"})", "invalid_json"},
      {R"({"a":"\udc00"})", "invalid_json"},
      {R"({"a":"x\udfff"})", "invalid_json"},
      {R"({"\ude00":1})", "invalid_json"},
      {R"({"a":"\ud83d\u0041"})", "invalid_json"},
      {"{\"a\":\"tab\there\"}", "invalid_json"},
      {"{\"a\":\"\xC0\x80\"}", "invalid_utf8"},
      {"{\"a\":\"\xED\xA0\x80\"}", "invalid_utf8"},
      {"{\"a\":\"\xF5\x80\x80\x80\"}", "invalid_utf8"},
      {"{\"a\":\"\x80\"}", "invalid_utf8"},
      {"{\"a\":\"\xE2\x82\"}", "invalid_utf8"},
      {"[]", "not_object"},
      {"\"created\"", "not_object"},
      {"42", "not_object"},
      {"null", "not_object"},
      {R"({"sessionId":"s","after":{}})", "missing_type"},
      {R"({"type":null,"sessionId":"s","after":{}})", "missing_type"},
      {R"({"type":7,"sessionId":"s","after":{}})", "unknown_type"},
      {R"({"type":"renamed","sessionId":"s","after":{}})", "unknown_type"},
      {R"({"type":"Created","sessionId":"s","after":{}})", "unknown_type"},
      {R"({"type":"session_update"})", "invalid_batch"},
      {R"({"type":"session_update","delta":null})", "invalid_batch"},
      {R"({"type":"session_update","delta":{"id":"a","change":"created","current":{}}})", "invalid_batch"},
      {R"({"type":"session_update","delta":"[]"})", "invalid_batch"},
      {R"({"type":"created","after":{"id":"s"}})", "missing_session_id"},
      {R"({"type":"created","sessionId":null,"after":{"id":"s"}})", "missing_session_id"},
      {R"({"type":"created","sessionId":"","after":{}})", "invalid_session_id"},
      {R"({"type":"created","sessionId":12,"after":{}})", "invalid_session_id"},
      {R"({"type":"created","sessionId":{"id":"s"},"after":{}})", "invalid_session_id"},
      {R"({"type":"created","sessionId":"s"})", "missing_state"},
      {R"({"type":"created","sessionId":"s","after":null})", "missing_state"},
      {R"({"type":"deleted","sessionId":"s","after":{}})", "missing_state"},
      {R"({"type":"updated","sessionId":"s","after":{}})", "missing_state"},
      {R"({"type":"updated","sessionId":"s","before":{}})", "missing_state"},
      {R"({"type":"updated","sessionId":"s","before":null,"after":{}})", "missing_state"},
      {R"({"type":"created","sessionId":"s","after":"{}"})", "invalid_state"},
      {R"({"type":"created","sessionId":"s","after":[]})", "invalid_state"},
      {R"({"type":"created","sessionId":"s","before":5,"after":{}})", "invalid_state"},
      {R"({"type":"created","sessionId":"s","after":{},"timestamp":"yesterday"})", "invalid_timestamp"},
      {R"({"type":"created","sessionId":"s","after":{},"timestamp":"2025-02-30T00:00:00Z"})", "invalid_timestamp"},
      {R"({"type":"created","sessionId":"s","after":{},"timestamp":"2025-11-10T24:00:00Z"})", "invalid_timestamp"},
      {R"({"type":"created","sessionId":"s","after":{},"timestamp":1731240300})", "invalid_timestamp"},
      {R"({"type":"created","sessionId":"s","after":{},"timestamp":""})", "invalid_timestamp"},
      {R"({"type":"created","type":"created","sessionId":"s","after":{}})", "duplicate_key"},
      {R"({"type":"created","sessionId":"s","after":{"id":"s","meta":{"k":1,"k":2}}})", "duplicate_key"},
      {R"({"type":"created","sessionId":"s","after":{},"x":[{"a":1,"a":1}]})", "duplicate_key"},
      {R"({"type":"created","sessionId":"s","after":{},"delta":[{"a":1,"a":1}]})", "duplicate_key"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.frame) {
      Rejection r = rejected(c.frame);
      BOOST_TEST(r.reason == c.reason);
      BOOST_TEST(!r.detail.empty());
      BOOST_TEST(r.raw == c.frame);  // a whole-frame rejection keeps the whole frame
    }
  }
}

BOOST_AUTO_TEST_CASE(frame_ending_inside_a_utf8_character) {
  // Found by the fuzzer: RapidJSON reads the promised tail bytes past the end of input
  // before judging them; the parser pads its buffer so that stays in bounds.
  for (const char* tail : {"\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xE5", "\xF4"}) {
    std::string frame = std::string(R"({"type":"created","sessionId":"s","after":{"a":")") + tail;
    BOOST_TEST_CONTEXT(frame) {
      Rejection r = rejected(frame);
      BOOST_TEST(r.reason == "invalid_utf8");
      BOOST_TEST(r.raw == frame);
    }
    // Same as a key, and as the whole frame.
    BOOST_TEST(rejected(std::string("{\"") + tail).reason == "invalid_utf8");
    BOOST_TEST(rejected(tail).reason == "invalid_json");
  }
}

BOOST_AUTO_TEST_CASE(a_delta_without_session_id_is_rejected_even_when_its_state_has_one) {
  Rejection r = rejected(R"({"type":"updated","before":{"id":"sess_1"},"after":{"id":"sess_1"}})");
  BOOST_TEST(r.reason == "missing_session_id");
  ParsedFrame f = parse(R"({"type":"session_update","delta":[{"change":"created","current":{"id":"sess_1"}}]})");
  BOOST_TEST(f.deltas.empty());
  BOOST_TEST_REQUIRE(f.rejections.size() == 1u);
  BOOST_TEST(f.rejections[0].reason == "missing_session_id");
}

BOOST_AUTO_TEST_CASE(batch_element_validation_rules) {
  struct Case {
    const char* element;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {R"({"change":"created","current":{}})", "missing_session_id"},
      {R"({"id":null,"change":"created","current":{}})", "missing_session_id"},
      {R"({"id":"","change":"created","current":{}})", "invalid_session_id"},
      {R"({"id":7,"change":"created","current":{}})", "invalid_session_id"},
      {R"({"id":"a","current":{}})", "invalid_change"},
      {R"({"id":"a","change":null,"current":{}})", "invalid_change"},
      {R"({"id":"a","change":1,"current":{}})", "invalid_change"},
      {R"({"id":"a","change":"session_update","current":{}})", "invalid_change"},
      {R"({"id":"a","change":"created"})", "missing_state"},
      {R"({"id":"a","change":"deleted","current":{}})", "missing_state"},
      {R"({"id":"a","change":"updated","previous":{},"current":null})", "missing_state"},
      {R"({"id":"a","change":"created","current":[]})", "invalid_state"},
      {R"({"id":"a","change":"deleted","previous":"gone"})", "invalid_state"},
      {R"({"id":"a","change":"created","current":{},"timestamp":"2025-13-01T00:00:00Z"})", "invalid_timestamp"},
      {R"({"id":"a","change":"created","current":{},"timestamp":false})", "invalid_timestamp"},
      {R"({"id":"a","id":"b","change":"created","current":{}})", "duplicate_key"},
      {R"({"id":"a","change":"created","current":{"x":{"y":1,"y":1}}})", "duplicate_key"},
  };
  const std::string good = R"({"id":"good","change":"created","current":{"id":"good"}})";
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.element) {
      // The bad element sits between two good ones; only it is rejected.
      ParsedFrame f = parse(R"({"type":"session_update","delta":[)" + good + "," + c.element + "," + good + "]}");
      BOOST_TEST(f.deltas.size() == 2u);
      BOOST_TEST_REQUIRE(f.rejections.size() == 1u);
      BOOST_TEST(f.rejections[0].reason == c.reason);
      BOOST_TEST(f.rejections[0].raw == c.element);
    }
  }
}

BOOST_AUTO_TEST_CASE(null_counts_as_absent) {
  Delta d = accepted(R"({"type":"created","sessionId":"s","before":null,"after":{"a":null}})");
  BOOST_TEST(!d.before.has_value());
  BOOST_TEST(*d.after == R"({"a":null})");  // null inside a state is a value, kept
}

BOOST_AUTO_TEST_CASE(same_key_in_different_objects_is_fine) {
  Delta d = accepted(R"({"type":"created","sessionId":"s","after":{"id":"s","a":{"id":1},"b":[{"id":2},{"id":3}]}})");
  BOOST_TEST(*d.after == R"({"id":"s","a":{"id":1},"b":[{"id":2},{"id":3}]})");
}

BOOST_AUTO_TEST_CASE(duplicate_keys_found_in_large_objects) {
  std::string state = "{";
  for (int i = 0; i < 5000; ++i) state += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  std::string unique = state;
  unique.back() = '}';
  BOOST_TEST(stored_state(unique) == unique);
  std::string dup = state + "\"k4321\":0}";
  BOOST_TEST(rejected(R"({"type":"created","sessionId":"s","after":)" + dup + "}").reason == "duplicate_key");
  // The first key repeated last, and a repeat before the hash set takes over.
  BOOST_TEST(rejected(R"({"type":"created","sessionId":"s","after":)" + state + "\"k0\":0}}").reason ==
             "duplicate_key");
  BOOST_TEST(rejected(R"({"type":"created","sessionId":"s","after":{"a":1,"b":2,"a":3}})").reason ==
             "duplicate_key");
}

BOOST_AUTO_TEST_CASE(duplicate_keys_differing_only_after_an_escape) {
  // "\u0061" is "a": equal after decoding, so a duplicate.
  BOOST_TEST(rejected(R"({"type":"created","sessionId":"s","after":{"a":1,"\u0061":2}})").reason ==
             "duplicate_key");
  // Case differs: different keys.
  BOOST_TEST(stored_state(R"({"a":1,"A":2})") == R"({"a":1,"A":2})");
}

BOOST_AUTO_TEST_CASE(numbers_keep_their_exact_digits) {
  const std::vector<std::string> numbers = {
      "0", "-0", "1.50", "9007199254740993", "-9223372036854775809", "18446744073709551616",
      "123456789012345678901234567890123456789", "1e400", "-1E+400", "1e-400", "2.5E-3",
      "0.1000000000000000055511151231257827", "1.0", "100e0", "-0.0e-0",
      std::string(400, '9'), "1" + std::string(400, '0') + ".5e999999"};
  for (const auto& number : numbers) {
    BOOST_TEST_CONTEXT(number) {
      BOOST_TEST(stored_state(R"({ "n" : )" + number + R"( , "a" : [ )" + number + " ] }") ==
                 R"({"n":)" + number + R"(,"a":[)" + number + "]}");
    }
  }
}

BOOST_AUTO_TEST_CASE(big_numbers_do_not_confuse_the_rest_of_the_frame) {
  // The stand-in for an out-of-range number must not touch strings that look like numbers.
  ParsedFrame f = parse(R"({"type":"session_update","delta":[
      {"id":"1e400","change":"created","current":{"n":1e400,"s":"1e400","k":[-1e999,0.5]}},
      {"id":"b","change":"created","current":{"t":"12345e678","u":"\"1e400"}}]})");
  BOOST_TEST_REQUIRE(f.deltas.size() == 2u);
  BOOST_TEST(f.deltas[0].session_id == "1e400");
  BOOST_TEST(*f.deltas[0].after == R"({"n":1e400,"s":"1e400","k":[-1e999,0.5]})");
  BOOST_TEST(*f.deltas[1].after == R"({"t":"12345e678","u":"\"1e400"})");
  // Invalid numbers stay invalid even after the retry.
  BOOST_TEST(rejected(R"({"a":1e400,"b":01})").reason == "invalid_json");
  BOOST_TEST(rejected(R"({"a":1e400,"b":1e})").reason == "invalid_json");
  BOOST_TEST(rejected(R"({"a":1e400,"b":--1})").reason == "invalid_json");
  BOOST_TEST(rejected(R"({"a":1e400 "b":1})").reason == "invalid_json");
}

BOOST_AUTO_TEST_CASE(strings_keep_their_unicode_and_only_required_escapes) {
  // Escaped non-ASCII comes out as UTF-8; \/ as "/"; control characters stay escaped.
  BOOST_TEST(stored_state(R"({"s":"h\u00e9llo \u2713 \ud83d\ude00 \/ caf\u00C9"})") ==
             "{\"s\":\"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80 / caf\xC3\x89\"}");
  BOOST_TEST(stored_state("{\"s\":\"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80\"}") ==
             "{\"s\":\"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80\"}");
  BOOST_TEST(stored_state(R"({"s":"q\" b\\ n\n t\t r\r b\b f\f nul\u0000 one\u0001 us\u001F del\u007f"})") ==
             R"({"s":"q\" b\\ n\n t\t r\r b\b f\f nul\u0000 one\u0001 us\u001f del)"
             "\x7f\"}");
  // Keys get the same treatment.
  BOOST_TEST(stored_state(R"({"k\u00e9\n":1})") == "{\"k\xC3\xA9\\n\":1}");
  // Either side of the surrogate range is ordinary text (U+D7FF is ED 9F BF).
  BOOST_TEST(stored_state(R"({"s":"\ud7ff\ue000"})") == "{\"s\":\"\xED\x9F\xBF\xEE\x80\x80\"}");
  BOOST_TEST(stored_state("{\"s\":\"\xED\x9F\xBF\"}") == "{\"s\":\"\xED\x9F\xBF\"}");
  // U+2028 needs no escape in JSON and keeps its bytes.
  BOOST_TEST(stored_state(R"({"s":"\u2028"})") == "{\"s\":\"\xE2\x80\xA8\"}");
}

BOOST_AUTO_TEST_CASE(nested_states_round_trip_compact) {
  const std::string spaced = R"( {
    "id" : "sess_1",
    "participants" : [ "ana" , "bo" ],
    "metadata" : { "empty" : { } , "list" : [ ] , "deep" : [ [ [ { "x" : [ true , false , null ] } ] ] ] },
    "approval" : { "state" : "approved" , "by" : null } ,
    "count" : 12345678901234567890 } )";
  const std::string compact =
      R"({"id":"sess_1","participants":["ana","bo"],"metadata":{"empty":{},"list":[],)"
      R"("deep":[[[{"x":[true,false,null]}]]]},"approval":{"state":"approved","by":null},)"
      R"("count":12345678901234567890})";
  BOOST_TEST(stored_state(spaced) == compact);
  BOOST_TEST(stored_state(compact) == compact);
}

BOOST_AUTO_TEST_CASE(escaped_nul_is_kept_raw_nul_is_rejected) {
  BOOST_TEST(stored_state(R"({"s":"a\u0000b"})") == R"({"s":"a\u0000b"})");
  std::string with_nul = R"({"type":"created","sessionId":"s","after":{"s":"a)";
  with_nul += '\0';
  with_nul += R"(b"}})";
  Rejection r = rejected(with_nul);
  BOOST_TEST(r.reason == "invalid_json");
  BOOST_TEST(r.raw == with_nul);
  // A NUL after a complete frame is trailing data, not an end of input.
  std::string trailing = R"({"type":"created","sessionId":"s","after":{}})";
  trailing += '\0';
  BOOST_TEST(rejected(trailing).reason == "invalid_json");
}

BOOST_AUTO_TEST_CASE(session_id_length_limit) {
  const std::string at_limit(kMaxSessionIdBytes, 'a');
  BOOST_TEST(accepted(R"({"type":"created","sessionId":")" + at_limit + R"(","after":{}})").session_id ==
             at_limit);
  const std::string over(kMaxSessionIdBytes + 1, 'a');
  BOOST_TEST(rejected(R"({"type":"created","sessionId":")" + over + R"(","after":{}})").reason ==
             "invalid_session_id");
  const std::string huge(100 * 1024, 'x');
  Rejection r = rejected(R"({"type":"created","sessionId":")" + huge + R"(","after":{}})");
  BOOST_TEST(r.reason == "invalid_session_id");
  BOOST_TEST(r.detail.find("102400 bytes") != std::string::npos);
  // Unicode ids are fine; the limit counts bytes.
  BOOST_TEST(accepted("{\"type\":\"created\",\"sessionId\":\"s\xC3\xA9\",\"after\":{}}").session_id ==
             "s\xC3\xA9");
}

BOOST_AUTO_TEST_CASE(nesting_limit) {
  // The frame itself is level 1 and the state level 2, so a state can hold 510 more.
  auto frame_with_depth = [](int total) {
    int inner = total - 2;
    return R"({"type":"created","sessionId":"s","after":{"x":)" + std::string(inner, '[') +
           std::string(inner, ']') + "}}";
  };
  Delta d = accepted(frame_with_depth(kMaxDepth));
  BOOST_TEST(d.after->size() == 6u + 2u * (kMaxDepth - 2));
  BOOST_TEST(rejected(frame_with_depth(kMaxDepth + 1)).reason == "too_deep");
}

BOOST_AUTO_TEST_CASE(hundred_thousand_deep_nesting_is_rejected_without_crashing) {
  for (char open : {'[', '{'}) {
    std::string frame;
    const int depth = 100'000;
    for (int i = 0; i < depth; ++i) frame += open == '[' ? "[" : "{\"a\":";
    frame += "1";
    for (int i = 0; i < depth; ++i) frame += open == '[' ? ']' : '}';
    Rejection r = rejected(frame);
    BOOST_TEST(r.reason == "too_deep");
    BOOST_TEST(r.raw.size() == kMaxRawBytes);
    // Unterminated, too: whichever comes first, nothing crashes.
    BOOST_TEST(rejected(frame.substr(0, frame.size() / 2)).reason == "too_deep");
  }
}

BOOST_AUTO_TEST_CASE(hundred_thousand_delta_batch) {
  const int count = 100'000;
  std::string frame = R"({"type":"session_update","delta":[)";
  for (int i = 0; i < count; ++i) {
    if (i) frame += ',';
    std::string id = "sess_" + std::to_string(i);
    frame += R"({"id":")" + id + R"(","change":"updated","previous":{"id":")" + id +
             R"(","planStatus":"pending"},"current":{"id":")" + id + R"(","planStatus":"in_progress","n":)" +
             std::to_string(i) + "}}";
  }
  frame += "]}";
  auto start = std::chrono::steady_clock::now();
  ParsedFrame f = parse_frame(frame, kReceived);
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST_MESSAGE("100,000-delta batch (" << frame.size() << " bytes) parsed in " << elapsed << " s");
  BOOST_TEST(f.rejections.empty());
  BOOST_TEST_REQUIRE(f.deltas.size() == static_cast<std::size_t>(count));
  BOOST_TEST(f.deltas[0].session_id == "sess_0");
  BOOST_TEST(f.deltas[99'999].session_id == "sess_99999");
  BOOST_TEST(*f.deltas[99'999].after == R"({"id":"sess_99999","planStatus":"in_progress","n":99999})");
  for (const Delta& d : f.deltas) {
    if (d.timestamp != kReceivedText || !d.before || !d.after) {
      BOOST_TEST(false, "bad delta " << d.session_id);
      break;
    }
  }
}

BOOST_AUTO_TEST_CASE(raw_is_truncated_to_64_kib_at_a_character_boundary) {
  // 100 KB of two-byte characters in an invalid frame: the raw keeps whole characters.
  std::string frame = "{\"type\":\"bogus\",\"pad\":\"";
  for (int i = 0; i < 50'000; ++i) frame += "\xC3\xA9";
  frame += "\"";  // unterminated object
  Rejection r = rejected(frame);
  BOOST_TEST(r.reason == "invalid_json");
  BOOST_TEST(r.raw.size() <= kMaxRawBytes);
  BOOST_TEST(r.raw.size() >= kMaxRawBytes - 3);
  BOOST_TEST(frame.compare(0, r.raw.size(), r.raw) == 0);
  BOOST_TEST((static_cast<unsigned char>(frame[r.raw.size()]) & 0xC0) != 0x80);
  BOOST_TEST(r.detail.find("cut to") != std::string::npos);

  // In a batch, a huge bad element is cut the same way; a small one is whole.
  std::string big_element = R"({"id":"x","change":"nope","current":{"pad":")" + std::string(100'000, 'p') + "\"}}";
  ParsedFrame f = parse(R"({"type":"session_update","delta":[)" + big_element + "]}");
  BOOST_TEST_REQUIRE(f.rejections.size() == 1u);
  BOOST_TEST(f.rejections[0].raw.size() == kMaxRawBytes);
  BOOST_TEST(big_element.compare(0, kMaxRawBytes, f.rejections[0].raw) == 0);
}

BOOST_AUTO_TEST_CASE(binary_and_oversized_frames) {
  std::string data = "\x00\x01\xFF binary";
  data += std::string(70'000, '\x7f');
  Rejection r = binary_frame_rejection(data);
  BOOST_TEST(r.reason == "binary_frame");
  BOOST_TEST(r.raw.size() == kMaxRawBytes);
  BOOST_TEST(r.detail.find(std::to_string(data.size())) != std::string::npos);
  Rejection big = too_large_rejection("{\"type\":", 16 << 20);
  BOOST_TEST(big.reason == "too_large");
  BOOST_TEST(big.raw == "{\"type\":");
}

BOOST_AUTO_TEST_CASE(every_reason_is_listed) {
  // Each label the parser emits is in kRejectionReasons (also checked for every frame
  // above); here the list itself has no duplicates.
  for (std::size_t i = 0; i < kRejectionReasons.size(); ++i) {
    for (std::size_t j = i + 1; j < kRejectionReasons.size(); ++j) {
      BOOST_TEST(kRejectionReasons[i] != kRejectionReasons[j]);
    }
  }
}

BOOST_AUTO_TEST_CASE(parse_throughput_of_a_300_byte_delta) {
  const std::string frame =
      R"({"type":"updated","sessionId":"sess_0123456789ab","before":{"id":"sess_0123456789ab",)"
      R"("repo":"acme/widgets","branch":"main","planStatus":"pending","approval":"pending"},)"
      R"("after":{"id":"sess_0123456789ab","repo":"acme/widgets","branch":"main",)"
      R"("planStatus":"in_progress","approval":"approved"},"timestamp":"2025-11-10T12:05:00.123Z"})";
  BOOST_TEST_MESSAGE("frame is " << frame.size() << " bytes");
  const int iterations = 200'000;
  std::size_t total = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) total += parse_frame(frame, kReceived).deltas.size();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST(total == static_cast<std::size_t>(iterations));
  BOOST_TEST_MESSAGE("parse-only throughput: " << static_cast<long>(iterations / seconds) << " deltas/s");
}
