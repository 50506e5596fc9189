#include "ingest/exact_numbers.h"

#include <string_view>

namespace deltatap {

namespace {

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// Whether `token` is exactly a JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
bool is_json_number(std::string_view token) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t start = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    return i - start;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == token.size();
}

}  // namespace

void neutralise_numbers(std::string& buffer) {
  std::size_t i = 0;
  const std::size_t n = buffer.size();
  while (i < n) {
    char c = buffer[i];
    if (c == '"') {
      for (++i; i < n && buffer[i] != '"'; ++i) {
        if (buffer[i] == '\\') ++i;
      }
      ++i;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t start = i;
      while (i < n && is_number_char(buffer[i])) ++i;
      std::string_view token(buffer.data() + start, i - start);
      if (token.size() >= 3 && is_json_number(token)) {
        buffer[start] = '0';
        buffer[start + 1] = 'e';
        for (std::size_t k = start + 2; k < i; ++k) buffer[k] = '0';
      }
    } else {
      ++i;
    }
  }
}

}  // namespace deltatap
