#include "cli/context.h"

#include <algorithm>
#include <ostream>
#include <utility>

#include "api/delta_json.h"
#include "base/json_text.h"

namespace deltatap::cli {

int fail(const Context& ctx, std::string_view message) {
  ctx.io.err << "deltatap: " << message << '\n';
  return kExitFailed;
}

int usage(const CliIo& io, std::string_view message) {
  io.err << "deltatap: " << message << "\n(see deltatap --help)\n";
  return kExitUsage;
}

int api_error(const Context& ctx, const Answer& answer) {
  std::string error = "HTTP " + std::to_string(answer.status);
  std::string detail;
  if (auto members = raw_object_members(answer.body); members.ok()) {
    for (const auto& m : *members) {
      if (m.key == "error") error = decode_json_string(m.value).value_or(error);
      if (m.key == "detail") detail = decode_json_string(m.value).value_or("");
    }
  }
  ctx.io.err << "deltatap: " << error << (detail.empty() ? "" : ": ") << detail << '\n';
  return answer.status == 400 ? kExitUsage : kExitFailed;
}

std::optional<Answer> get_ok(const Context& ctx, std::string_view method,
                             const std::string& target, int& code, const Sink* sink) {
  auto answer = ctx.source->fetch(method, target, sink);
  if (!answer.ok()) {
    code = fail(ctx, answer.error());
    return std::nullopt;
  }
  if (answer->status / 100 != 2) {
    code = api_error(ctx, *answer);
    return std::nullopt;
  }
  return std::move(answer.value());
}

std::optional<std::string> check_format(const Context& ctx,
                                        std::initializer_list<std::string_view> allowed,
                                        std::string_view fallback, int& code) {
  std::string format = ctx.inv.option("--format").value_or(std::string(fallback));
  if (std::find(allowed.begin(), allowed.end(), format) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    code = usage(ctx.io, "--format for " + ctx.inv.command + " must be one of " + list +
                             ", not " + json_quoted(format));
    return std::nullopt;
  }
  return format;
}

}  // namespace deltatap::cli
