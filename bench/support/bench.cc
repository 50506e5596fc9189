#include "bench.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <optional>

namespace deltatap::bench {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

[[noreturn]] void usage_error(const std::string& program, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), message.c_str());
  std::exit(2);
}

void append_escaped(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned char>(c));
      out += buffer;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

Args::Args(int argc, char** argv) : program_(argc > 0 ? argv[0] : "bench") {
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (name.size() < 3 || name.rfind("--", 0) != 0) usage_error(program_, "unexpected " + name);
    name.erase(0, 2);
    bool has_value = i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0;
    values_[name] = has_value ? argv[++i] : "";
  }
}

Args::~Args() {
  for (const auto& [name, value] : values_) {
    if (!read_.contains(name)) usage_error(program_, "unknown flag --" + name);
  }
}

std::string Args::text(const std::string& name, const std::string& fallback) {
  read_.insert(name);
  auto found = values_.find(name);
  return found == values_.end() ? fallback : found->second;
}

std::int64_t Args::number(const std::string& name, std::int64_t fallback) {
  read_.insert(name);
  auto found = values_.find(name);
  if (found == values_.end()) return fallback;
  std::int64_t value = 0;
  const auto& text = found->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    usage_error(program_, "--" + name + " needs a whole number, got \"" + text + "\"");
  }
  return value;
}

bool Args::flag(const std::string& name) {
  read_.insert(name);
  return values_.contains(name);
}

Summary summarize(std::vector<double> samples) {
  Summary summary;
  summary.count = samples.size();
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double q) {
    auto index = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return samples[std::clamp<std::size_t>(index, 1, samples.size()) - 1];
  };
  summary.p50 = rank(0.50);
  summary.p95 = rank(0.95);
  summary.p99 = rank(0.99);
  summary.max = samples.back();
  summary.mean = std::accumulate(samples.begin(), samples.end(), 0.0) /
                 static_cast<double>(samples.size());
  return summary;
}

void JsonLine::key(std::string_view name) {
  if (!body_.empty()) body_ += ',';
  append_escaped(body_, name);
  body_ += ':';
}

JsonLine& JsonLine::add(std::string_view name, double value) {
  key(name);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", std::isfinite(value) ? value : 0.0);
  body_ += buffer;
  return *this;
}

JsonLine& JsonLine::add(std::string_view name, std::int64_t value) {
  key(name);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::add(std::string_view name, std::string_view value) {
  key(name);
  append_escaped(body_, value);
  return *this;
}

JsonLine& JsonLine::add(std::string_view prefix, const Summary& summary) {
  std::string p(prefix);
  add(p + "_count", static_cast<std::int64_t>(summary.count));
  add(p + "_p50_us", summary.p50);
  add(p + "_p95_us", summary.p95);
  add(p + "_p99_us", summary.p99);
  add(p + "_max_us", summary.max);
  add(p + "_mean_us", summary.mean);
  return *this;
}

void JsonLine::print() const {
  std::printf("%s\n", str().c_str());
  std::fflush(stdout);
}

std::int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

struct HttpClient::Impl {
  int port;
  asio::io_context io;
  std::optional<tcp::socket> socket;
  boost::beast::flat_buffer buffer;

  bool connect(std::string& error) {
    boost::system::error_code ec;
    socket.emplace(io);
    socket->connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
    if (ec) {
      socket.reset();
      error = "connect: " + ec.message();
      return false;
    }
    socket->set_option(tcp::no_delay(true));
    buffer.clear();
    return true;
  }

  Response once(std::string_view method, std::string_view target) {
    Response response;
    if (!socket && !connect(response.error)) return response;
    http::request<http::empty_body> request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.keep_alive(true);
    boost::system::error_code ec;
    http::write(*socket, request, ec);
    http::response<http::string_body> answer;
    if (!ec) http::read(*socket, buffer, answer, ec);
    if (ec) {
      socket.reset();
      response.error = ec.message();
      return response;
    }
    response.status = static_cast<int>(answer.result_int());
    response.body = std::move(answer.body());
    if (!answer.keep_alive()) socket.reset();
    return response;
  }
};

HttpClient::HttpClient(int port) : impl_(std::make_unique<Impl>()) { impl_->port = port; }
HttpClient::~HttpClient() = default;

HttpClient::Response HttpClient::request(std::string_view method, std::string_view target) {
  // A kept-alive connection the server closed meanwhile fails once; the retry
  // opens a new one, as any HTTP client would.
  auto response = impl_->once(method, target);
  if (response.status == 0) response = impl_->once(method, target);
  return response;
}

}  // namespace deltatap::bench
