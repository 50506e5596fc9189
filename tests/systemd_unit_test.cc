// systemd/deltatap.service and its sysusers snippet, checked with systemd's own
// tools: the sandbox's exposure score, `systemd-analyze verify`, the user the
// unit runs as, and the settings the rest of deltatap relies on (notify, watchdog,
// state directory as working directory, the token credential).
#define BOOST_TEST_MODULE systemd_unit
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "service/config.h"
#include "test_support.h"

namespace {

using namespace deltatap::testing;

fs::path unit_path() { return source_dir() / "systemd" / "deltatap.service"; }
fs::path sysusers_path() { return source_dir() / "systemd" / "deltatap.sysusers"; }

// Every `Key=value` of the unit (sections flattened), in order of appearance.
std::multimap<std::string, std::string> unit_settings() {
  std::multimap<std::string, std::string> settings;
  std::istringstream in(read_file(unit_path()));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    settings.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return settings;
}

std::string setting(const std::multimap<std::string, std::string>& settings,
                    const std::string& key) {
  auto it = settings.find(key);
  return it == settings.end() ? std::string("(unset)") : it->second;
}

// systemd-analyze without a pager or colours, whatever the caller's environment.
CommandResult analyze(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/systemd-analyze");
  return run_command(args, {{"SYSTEMD_PAGER", ""}, {"SYSTEMD_COLORS", "0"}});
}

}  // namespace

BOOST_AUTO_TEST_CASE(sandbox_exposure_is_at_most_2_0) {
  auto result = analyze({"security", "--offline=true", "--no-pager", unit_path().string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  std::smatch match;
  std::regex overall(R"(Overall exposure level for deltatap\.service: (\d+\.\d))");
  BOOST_TEST_REQUIRE(std::regex_search(result.out, match, overall), result.out);
  double exposure = std::stod(match[1].str());
  BOOST_TEST_MESSAGE("exposure " << exposure);
  BOOST_TEST(exposure <= 2.0, result.out);
  // The tool's own threshold agrees (it counts in tenths).
  auto gated = analyze({"security", "--offline=true", "--threshold=20", "--no-pager",
                        unit_path().string()});
  BOOST_TEST(gated.exit_code == 0, gated.out);
}

BOOST_AUTO_TEST_CASE(verify_has_no_complaint) {
  // verify insists that ExecStart's binary exists. The unit names the installed
  // /usr/bin/deltatapd; a copy that differs only in that path lets the check run
  // on a build machine: the built deltatapd when there is one, else /bin/true.
  TempDir dir;
  fs::path executable = bin_dir() / "deltatapd";
  if (!fs::exists(executable)) executable = "/bin/true";
  std::string text = read_file(unit_path());
  const std::string installed = "ExecStart=/usr/bin/deltatapd ";
  auto at = text.find(installed);
  BOOST_TEST_REQUIRE(at != std::string::npos);
  text.replace(at, installed.size(), "ExecStart=" + executable.string() + " ");
  fs::path copy = dir / "deltatap.service";
  write_file(copy, text);

  auto result = analyze({"verify", copy.string()});
  BOOST_TEST(result.exit_code == 0, result.err);
  BOOST_TEST(result.out.empty(), result.out);
  BOOST_TEST(result.err.empty(), result.err);
}

BOOST_AUTO_TEST_CASE(unit_settings_that_deltatap_relies_on) {
  auto s = unit_settings();
  BOOST_TEST(setting(s, "Type") == "notify");
  BOOST_TEST(setting(s, "NotifyAccess") == "main");
  BOOST_TEST(setting(s, "WatchdogSec") != "(unset)");
  BOOST_TEST(setting(s, "Restart") == "on-failure");
  // A configuration error (exit 2) would fail the same way on every restart.
  BOOST_TEST(setting(s, "RestartPreventExitStatus") == "2");
  BOOST_TEST(setting(s, "ExecStart") ==
             "/usr/bin/deltatapd --config /etc/deltatap/deltatap.conf");
  BOOST_TEST(setting(s, "ExecReload") == "/bin/kill -HUP $MAINPID");
  // The store's relative default path lands in /var/lib/deltatap/data/.
  BOOST_TEST(setting(s, "StateDirectory") == "deltatap");
  BOOST_TEST(setting(s, "StateDirectoryMode") == "0700");
  BOOST_TEST(setting(s, "WorkingDirectory") == "/var/lib/deltatap");
  BOOST_TEST(setting(s, "ConfigurationDirectory") == "deltatap");
  BOOST_TEST(setting(s, "LoadCredential") == "token:/etc/deltatap/token");
  // systemd 252 has no "optional" LoadCredential=; a SetCredential= of the same
  // name is its documented fallback when the file is missing.
  BOOST_TEST(setting(s, "SetCredential").rfind("token:", 0) == 0u);
  BOOST_TEST(setting(s, "User") == "deltatap");
  BOOST_TEST(setting(s, "ProtectSystem") == "strict");
  BOOST_TEST(setting(s, "UMask") == "0077");
}

BOOST_AUTO_TEST_CASE(sysusers_creates_the_user_the_unit_runs_as) {
  TempDir root;
  fs::create_directories(root / "etc");
  auto result = run_command({"/usr/bin/systemd-sysusers", "--root=" + root.path().string(),
                             sysusers_path().string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  std::string passwd = read_file(root / "etc/passwd");
  std::string group = read_file(root / "etc/group");
  std::smatch match;
  std::regex user_line(R"((^|\n)deltatap:x:(\d+):(\d+):[^:\n]*:/var/lib/deltatap:([^\n]*))");
  BOOST_TEST_REQUIRE(std::regex_search(passwd, match, user_line), passwd);
  int uid = std::stoi(match[2].str());
  BOOST_TEST(uid > 0);
  BOOST_TEST(uid < 1000);  // a system user
  BOOST_TEST(match[4].str().find("nologin") != std::string::npos, match[4].str());
  BOOST_TEST(group.find("deltatap:x:" + match[3].str() + ":") != std::string::npos, group);
  BOOST_TEST(setting(unit_settings(), "User") == "deltatap");
  BOOST_TEST(setting(unit_settings(), "Group") == "deltatap");

  // Running it again (a package upgrade) changes nothing.
  auto again = run_command({"/usr/bin/systemd-sysusers", "--root=" + root.path().string(),
                            sysusers_path().string()});
  BOOST_TEST(again.exit_code == 0, again.err);
  BOOST_TEST(read_file(root / "etc/passwd") == passwd);
}

// What ExecStart runs, with what systemd gives the service: the shipped
// configuration, and $CREDENTIALS_DIRECTORY holding the token or, when
// /etc/deltatap/token is missing, the SetCredential= default (a lone newline).
namespace {

deltatap::Result<deltatap::Config> load_with_credential(const TempDir& credentials,
                                                        const std::string& credential) {
  write_file(credentials / "token", credential);
  ::chmod((credentials / "token").c_str(), 0400);
  std::string conf = (source_dir() / "conf" / "deltatap.conf").string();
  const char* argv[] = {"deltatapd", "--config", conf.c_str()};
  auto command_line = deltatap::parse_command_line(3, argv);
  BOOST_TEST_REQUIRE(command_line.ok(), command_line.error());
  deltatap::Environment env = {{"CREDENTIALS_DIRECTORY", credentials.path().string()}};
  return deltatap::load_config(*command_line, env);
}

}  // namespace

BOOST_AUTO_TEST_CASE(shipped_configuration_takes_the_token_credential) {
  TempDir credentials;
  auto config = load_with_credential(credentials, "s3cr3t-token\n");
  BOOST_TEST_REQUIRE(config.ok(), config.error());
  BOOST_TEST(config->stream.token == "s3cr3t-token");
  BOOST_TEST(deltatap::describe_config(*config).find("s3cr3t-token") == std::string::npos);
  // Storage is on in the shipped file, relative to the unit's working directory.
  BOOST_TEST(config->storage.enabled);
  BOOST_TEST(config->storage.path == "data/sessions.sqlite");
}

BOOST_AUTO_TEST_CASE(shipped_configuration_starts_without_a_token_file) {
  TempDir credentials;
  auto config = load_with_credential(credentials, "\n");
  BOOST_TEST_REQUIRE(config.ok(), config.error());
  BOOST_TEST(config->stream.token.empty());
}
