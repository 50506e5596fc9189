// Installation and the Debian package, from the build tree this test was built in:
// `cmake --install` into a DESTDIR (twice: an edited configuration survives), and
// `cpack -G DEB` with `dpkg-deb` reading back what the package holds.
#define BOOST_TEST_MODULE packaging
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using namespace deltatap::testing;

// The executables CMakeLists.txt builds and installs: one per daemon/*.cc.
std::vector<std::string> executables() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(source_dir() / "daemon")) {
    if (entry.path().extension() == ".cc") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Process runs argv[0] as a path: find tools on PATH the way a shell would.
std::string tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return name;
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<unsigned>(st.st_mode & 07777);
}

CommandResult cmake_install(const fs::path& destdir, const std::string& prefix) {
  return run_command({tool("cmake"), "--install", bin_dir().string(), "--prefix", prefix},
                     {{"DESTDIR", destdir.string()}});
}

std::string unit_line(const std::string& unit, const std::string& key) {
  std::istringstream in(unit);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + "=", 0) == 0) return line;
  }
  return "";
}

// The package, built once for the cases that read it.
struct Package {
  Package() {
    auto result = run_command({tool("cpack"), "-G", "DEB", "-B", dir.path().string(), "--config",
                               (bin_dir() / "CPackConfig.cmake").string()},
                              {}, bin_dir());
    log = result.out + result.err;
    exit_code = result.exit_code;
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      if (entry.path().extension() == ".deb") deb = entry.path();
    }
  }
  TempDir dir;
  fs::path deb;
  int exit_code = -1;
  std::string log;
};

Package& package() {
  static Package built;
  BOOST_TEST_REQUIRE(built.exit_code == 0, built.log);
  BOOST_TEST_REQUIRE(!built.deb.empty(), "cpack made no .deb: " << built.log);
  return built;
}

std::string dpkg_deb(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {tool("dpkg-deb")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = run_command(argv);
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  return result.out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cmake_install_puts_everything_in_its_place) {
  TempDir destdir;
  auto result = cmake_install(destdir.path(), "/usr/local");
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.out + result.err);
  fs::path usr = destdir / "usr/local";

  for (const auto& name : executables()) {
    fs::path exe = usr / "bin" / name;
    BOOST_TEST(fs::exists(exe), exe);
    BOOST_TEST((mode_of(exe) & 0111) == 0111u, exe);
  }
  fs::path unit = usr / "lib/systemd/system/deltatap.service";
  BOOST_TEST_REQUIRE(fs::exists(unit));
  // The installed unit starts the binary this install put in place.
  BOOST_TEST(unit_line(read_file(unit), "ExecStart") ==
             "ExecStart=/usr/local/bin/deltatapd --config /etc/deltatap/deltatap.conf");
  BOOST_TEST(mode_of(unit) == 0644u);
  fs::path sysusers = usr / "lib/sysusers.d/deltatap.conf";
  BOOST_TEST(read_file(sysusers) == read_file(source_dir() / "systemd/deltatap.sysusers"));

  fs::path conf = destdir / "etc/deltatap/deltatap.conf";
  BOOST_TEST_REQUIRE(fs::exists(conf));
  BOOST_TEST(read_file(conf) == read_file(source_dir() / "conf/deltatap.conf"));
  BOOST_TEST(mode_of(conf) == 0644u);
  BOOST_TEST(fs::exists(usr / "share/doc/deltatap/README.md"));
  BOOST_TEST(fs::exists(usr / "share/doc/deltatap/service.md"));

  // Installing again (an upgrade from source) keeps the administrator's edits.
  std::string edited = read_file(conf) + "\n# edited by the administrator\n";
  write_file(conf, edited);
  auto again = cmake_install(destdir.path(), "/usr/local");
  BOOST_TEST_REQUIRE(again.exit_code == 0, again.out + again.err);
  BOOST_TEST(read_file(conf) == edited);
  BOOST_TEST(again.out.find("Keeping the existing") != std::string::npos, again.out);
}

BOOST_AUTO_TEST_CASE(install_prefix_usr_matches_the_unit_in_the_tree) {
  TempDir destdir;
  auto result = cmake_install(destdir.path(), "/usr");
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.out + result.err);
  BOOST_TEST(read_file(destdir / "usr/lib/systemd/system/deltatap.service") ==
             read_file(source_dir() / "systemd/deltatap.service"));
}

BOOST_AUTO_TEST_CASE(deb_holds_binaries_unit_sysusers_conf_and_docs) {
  auto& pkg = package();
  std::string contents = dpkg_deb({"--contents", pkg.deb.string()});
  std::set<std::string> paths;
  std::istringstream in(contents);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find(" ./");
    if (at != std::string::npos) paths.insert(line.substr(at + 1));
  }
  std::vector<std::string> expected = {
      "./usr/lib/systemd/system/deltatap.service", "./usr/lib/sysusers.d/deltatap.conf",
      "./etc/deltatap/deltatap.conf", "./usr/share/doc/deltatap/README.md",
      "./usr/share/doc/deltatap/service.md"};
  for (const auto& name : executables()) expected.push_back("./usr/bin/" + name);
  for (const auto& path : expected) BOOST_TEST(paths.count(path) == 1u, path << "\n" << contents);
  // Nothing escapes the package's layout (say, a stray /usr/local).
  for (const auto& path : paths) {
    bool known = path.rfind("./usr/bin/", 0) == 0 || path.rfind("./usr/lib/", 0) == 0 ||
                 path.rfind("./usr/share/", 0) == 0 || path.rfind("./etc/", 0) == 0 ||
                 path == "./" || path == "./usr/" || path == "./etc/";
    BOOST_TEST(known, path);
  }
}

BOOST_AUTO_TEST_CASE(deb_control_has_dependencies_conffile_and_scripts) {
  auto& pkg = package();
  BOOST_TEST(dpkg_deb({"-f", pkg.deb.string(), "Package"}) == "deltatap\n");
  std::string depends = dpkg_deb({"-f", pkg.deb.string(), "Depends"});
  for (const char* library : {"libsqlite3-0", "libssl3", "libsystemd0", "libboost-log1.81.0"}) {
    BOOST_TEST(depends.find(library) != std::string::npos, library << " not in: " << depends);
  }
  TempDir control;
  auto result = run_command({tool("dpkg-deb"), "--control", pkg.deb.string(),
                             (control / "DEBIAN").string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  BOOST_TEST(read_file(control / "DEBIAN/conffiles") == "/etc/deltatap/deltatap.conf\n");
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    fs::path path = control / "DEBIAN" / script;
    BOOST_TEST_REQUIRE(fs::exists(path), script);
    BOOST_TEST(mode_of(path) == 0755u, script);
    auto syntax = run_command({"/bin/sh", "-n", path.string()});
    BOOST_TEST(syntax.exit_code == 0, script << ": " << syntax.err);
  }
  BOOST_TEST(read_file(control / "DEBIAN/postinst").find("systemd-sysusers deltatap.conf") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(deb_payload_creates_the_user_and_starts_the_packaged_binary) {
  auto& pkg = package();
  TempDir root;
  auto extract = run_command({tool("dpkg-deb"), "-x", pkg.deb.string(), root.path().string()});
  BOOST_TEST_REQUIRE(extract.exit_code == 0, extract.err);
  std::string unit = read_file(root / "usr/lib/systemd/system/deltatap.service");
  BOOST_TEST(unit_line(unit, "ExecStart") ==
             "ExecStart=/usr/bin/deltatapd --config /etc/deltatap/deltatap.conf");
  auto version = run_command({(root / "usr/bin/deltatapd").string(), "--version"});
  BOOST_TEST(version.exit_code == 0, version.err);
  BOOST_TEST(version.out.find("deltatapd ") == 0u, version.out);
  // What postinst's `systemd-sysusers deltatap.conf` does, on the packaged snippet.
  auto sysusers = run_command({"/usr/bin/systemd-sysusers", "--root=" + root.path().string(),
                               (root / "usr/lib/sysusers.d/deltatap.conf").string()});
  BOOST_TEST_REQUIRE(sysusers.exit_code == 0, sysusers.err);
  BOOST_TEST(read_file(root / "etc/passwd").find("deltatap:x:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(maintainer_scripts_create_the_user_and_talk_to_systemd) {
  // postinst and prerm run with stand-ins for systemd-sysusers and systemctl that
  // record their arguments, so nothing on this machine changes.
  TempDir dir;
  fs::path bin = dir / "bin";
  fs::create_directories(bin);
  fs::path calls = dir / "calls";
  for (const char* tool : {"systemd-sysusers", "systemctl"}) {
    write_file(bin / tool, std::string("#!/bin/sh\necho \"") + tool + " $*\" >> " + calls.string() +
                               "\n");
    fs::permissions(bin / tool, fs::perms::owner_all);
  }
  std::map<std::string, std::string> env = {{"PATH", bin.string() + ":/usr/sbin:/usr/bin:/sbin:/bin"}};
  fs::path scripts = source_dir() / "packaging";
  bool systemd_running = fs::is_directory("/run/systemd/system");

  auto fresh = run_command({"/bin/sh", (scripts / "postinst").string(), "configure"}, env);
  BOOST_TEST(fresh.exit_code == 0, fresh.err);
  std::string recorded = read_file(calls);
  BOOST_TEST(recorded.find("systemd-sysusers deltatap.conf\n") != std::string::npos, recorded);
  // A fresh install is not started behind the administrator's back.
  BOOST_TEST(recorded.find("systemctl start") == std::string::npos, recorded);
  BOOST_TEST(recorded.find("systemctl enable") == std::string::npos, recorded);
  if (systemd_running) {
    BOOST_TEST(recorded.find("systemctl daemon-reload") != std::string::npos, recorded);
  }

  write_file(calls, "");
  auto upgrade = run_command({"/bin/sh", (scripts / "postinst").string(), "configure", "0.0.1"},
                             env);
  BOOST_TEST(upgrade.exit_code == 0, upgrade.err);
  recorded = read_file(calls);
  BOOST_TEST(recorded.find("systemd-sysusers deltatap.conf\n") != std::string::npos, recorded);
  if (systemd_running) {
    BOOST_TEST(recorded.find("systemctl try-restart deltatap.service") != std::string::npos,
               recorded);
  }

  write_file(calls, "");
  auto remove = run_command({"/bin/sh", (scripts / "prerm").string(), "remove"}, env);
  BOOST_TEST(remove.exit_code == 0, remove.err);
  if (systemd_running) {
    BOOST_TEST(read_file(calls).find("systemctl stop deltatap.service") != std::string::npos);
  } else {
    BOOST_TEST(read_file(calls).empty(), read_file(calls));
  }
}
