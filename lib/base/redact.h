// Redaction: URLs as they may be shown (--check-config, error messages, logs),
// with the parts that can carry a credential hidden.
//
// A URL can hold a secret in its user info ("ws://user:s3cret@host/"), in its
// query ("?token=abc") and in its fragment. These functions replace each of
// them by "(hidden)" and keep the rest, so that an operator still sees which
// host, port, path and query keys are meant:
//   ws://user:s3cret@h:1/ws?token=abc&x=&flag#frag
//   -> ws://(hidden)@h:1/ws?token=(hidden)&x=&(hidden)#(hidden)
// A query parameter without "=" is hidden whole (it may be a bare key); an
// empty value stays empty.
//
// They work on text, not on a parsed URL, because they must also make safe a
// value that failed to parse. The user info is read generously: everything
// between "//" (or the start, without one) and the last "@" before the query
// or fragment, so that a password holding an unencoded "/" is hidden too. A
// path with an "@" in it is then shown hidden up to that "@": over-hiding is
// the safe side.
//
// Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>

namespace deltatap {

// `url` (the whole text is one URL) with user info, query values and fragment
// hidden. Text without any of them comes back unchanged.
std::string redact_url(std::string_view url);

// Whether redact_url() would hide user info in `url`: an "@" before the query
// or fragment, read as generously as above.
bool has_url_user_info(std::string_view url);

// `text` with every URL in it ("scheme://" up to the next white space, quote,
// angle bracket or control character) put through redact_url(); for free
// text that may quote a URL, such as an argument or a line of a config file.
std::string redact_urls_in(std::string_view text);

}  // namespace deltatap
