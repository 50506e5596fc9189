// tls_context: how deltatap verifies a backend over TLS, for every connection
// it makes to one (the WebSocket stream, the reconciliation fetch), so that
// both trust and check exactly the same things.
//
// A client context trusts the system's CA store plus an optional extra PEM
// file (`ca_file`), requires TLS 1.2 or newer, and verifies the peer's chain.
// Each connection then gets SNI (for a host name) and OpenSSL's own check of
// the certificate against the name or the IP address that was dialled, so a
// failure names what did not match. With insecure_skip_verify nothing is
// verified (SNI is still sent, so a name-routed proxy finds its backend);
// warning about that is the caller's business.
//
// Errors name the step and, for ca_file, the path; never a token or a URL.
// Pure functions on the objects passed in: any thread.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "base/result.h"

namespace deltatap {

// A new client context: system CA store and `ca_file` (when not empty) trusted,
// peers verified, unless `insecure_skip_verify`. Shared so that a stream can
// keep it alive for as long as it refers to it.
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_client_context(const std::string& ca_file,
                                                                          bool insecure_skip_verify);

// Prepares one connection (`handle`, made from such a context) to `host`, as
// resolved (without brackets): SNI for a host name, and unless
// `insecure_skip_verify` the name (no partial wildcards) or the IP address the
// certificate must match.
Status set_tls_peer(SSL* handle, const std::string& host, bool insecure_skip_verify);

// After a failed handshake: " (<why the certificate was refused>)" when the
// failure was the peer's certificate, else "". For appending to a message.
std::string tls_verify_failure(SSL* handle);

}  // namespace deltatap
