#include "base/redact.h"

namespace deltatap {

namespace {

constexpr std::string_view kHidden = "(hidden)";

bool is_scheme_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '-' || c == '.';
}

// Where the authority starts: after "scheme://", or after a leading "//", or
// at 0 when there is neither (the generous reading: a value such as
// "user:pw@host" is hidden too).
std::size_t authority_start(std::string_view url) {
  auto separator = url.find("://");
  if (separator != std::string_view::npos) {
    bool scheme = true;
    for (char c : url.substr(0, separator)) scheme = scheme && is_scheme_char(c);
    if (scheme) return separator + 3;
  }
  if (url.substr(0, 2) == "//") return 2;
  return 0;
}

// The "@" that ends the user info, or npos.
std::size_t user_info_end(std::string_view url, std::size_t start) {
  std::size_t stop = url.find_first_of("?#", start);
  std::string_view head = url.substr(start, stop == std::string_view::npos ? url.npos : stop - start);
  std::size_t at = head.rfind('@');
  return at == std::string_view::npos ? at : start + at;
}

void append_query(std::string& out, std::string_view query) {
  std::size_t i = 0;
  while (true) {
    std::size_t amp = query.find('&', i);
    std::string_view param = query.substr(i, amp == std::string_view::npos ? query.npos : amp - i);
    auto eq = param.find('=');
    if (eq == std::string_view::npos) {
      if (!param.empty()) out += kHidden;
    } else {
      out.append(param.substr(0, eq + 1));
      if (eq + 1 < param.size()) out += kHidden;
    }
    if (amp == std::string_view::npos) break;
    out += '&';
    i = amp + 1;
  }
}

// Where a URL quoted in free text ends.
bool ends_url(char c) {
  auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`';
}

}  // namespace

std::string redact_url(std::string_view url) {
  std::size_t start = authority_start(url);
  std::string out;
  std::size_t at = user_info_end(url, start);
  std::size_t rest = start;
  out.append(url.substr(0, start));
  if (at != std::string_view::npos) {
    out += kHidden;
    rest = at;  // from the "@" on
  }
  std::size_t stop = url.find_first_of("?#", rest);
  out.append(url.substr(rest, stop == std::string_view::npos ? url.npos : stop - rest));
  if (stop == std::string_view::npos) return out;
  if (url[stop] == '?') {
    std::size_t hash = url.find('#', stop);
    out += '?';
    append_query(out, url.substr(stop + 1, hash == std::string_view::npos ? url.npos
                                                                            : hash - stop - 1));
    stop = hash;
  }
  if (stop != std::string_view::npos) {
    out += '#';
    if (stop + 1 < url.size()) out += kHidden;
  }
  return out;
}

bool has_url_user_info(std::string_view url) {
  return user_info_end(url, authority_start(url)) != std::string_view::npos;
}

std::string redact_urls_in(std::string_view text) {
  std::string out;
  std::size_t done = 0;  // text before this is in `out`
  std::size_t search = 0;
  while (true) {
    std::size_t separator = text.find("://", search);
    if (separator == std::string_view::npos) break;
    std::size_t begin = separator;
    while (begin > done && is_scheme_char(text[begin - 1])) --begin;
    std::size_t end = separator + 3;
    while (end < text.size() && !ends_url(text[end])) ++end;
    out.append(text.substr(done, begin - done));
    out += redact_url(text.substr(begin, end - begin));
    done = end;
    search = end;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace deltatap
