#include "stream/tls_context.h"

#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>

namespace deltatap {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

bool is_ip_address(const std::string& host) {
  error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_client_context(const std::string& ca_file,
                                                             bool insecure_skip_verify) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1,
                       ec);
  if (insecure_skip_verify) {
    context->set_verify_mode(ssl::verify_none, ec);
  } else {
    context->set_default_verify_paths(ec);
    if (ec) return Error{"cannot load the system CA store: " + ec.message()};
    if (!ca_file.empty()) {
      context->load_verify_file(ca_file, ec);
      if (ec) return Error{"cannot load ca_file " + ca_file + ": " + ec.message()};
    }
    context->set_verify_mode(ssl::verify_peer, ec);
  }
  if (ec) return Error{ec.message()};
  return context;
}

Status set_tls_peer(SSL* handle, const std::string& host, bool insecure_skip_verify) {
  // OpenSSL checks the name (or address) during verification itself, and says
  // which check failed. SNI carries host names only (RFC 6066).
  if (is_ip_address(host)) {
    if (!insecure_skip_verify &&
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), host.c_str()) != 1) {
      return Error{"cannot set the address to verify"};
    }
    return ok_status();
  }
  if (SSL_set_tlsext_host_name(handle, host.c_str()) != 1) {
    return Error{"cannot set the server name (SNI)"};
  }
  if (!insecure_skip_verify) {
    SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(handle, host.c_str()) != 1) return Error{"cannot set the host name to verify"};
  }
  return ok_status();
}

std::string tls_verify_failure(SSL* handle) {
  long verify = SSL_get_verify_result(handle);
  if (verify == X509_V_OK) return "";
  return std::string(" (") + X509_verify_cert_error_string(verify) + ")";
}

}  // namespace deltatap
