// Installation and the Debian packages, from the build tree this test was built in:
// `cmake --install` into a DESTDIR (twice: an edited configuration survives);
// `cpack -G DEB` with `dpkg-deb` reading back what the packages hold (deltatap, and
// deltatap-tools with deltatap-sim); `lintian` on them (nothing to say); the
// maintainer scripts with stand-ins for the systemd tools; and the packages
// installed, removed and purged on this machine with dpkg (as root only, and only
// when no deltatap is installed here already; everything it did is undone after).
#define BOOST_TEST_MODULE packaging
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "skip.h"
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

// The programs that go into deltatap-tools rather than the daemon's package.
const std::set<std::string> kToolPrograms = {"deltatap-sim"};

// The packages, built once for the cases that read them: deltatap_<v>_<arch>.deb
// and deltatap-tools_<v>_<arch>.deb.
struct Package {
  Package() {
    auto result = run_command({tool("cpack"), "-G", "DEB", "-B", dir.path().string(), "--config",
                               (bin_dir() / "CPackConfig.cmake").string()},
                              {}, bin_dir());
    log = result.out + result.err;
    exit_code = result.exit_code;
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      if (entry.path().extension() != ".deb") continue;
      std::string name = entry.path().filename().string();
      if (name.rfind("deltatap_", 0) == 0) deb = entry.path();
      if (name.rfind("deltatap-tools_", 0) == 0) tools_deb = entry.path();
    }
  }
  TempDir dir;
  fs::path deb;        // deltatap: the daemon, the CLI, the unit, the configuration
  fs::path tools_deb;  // deltatap-tools: deltatap-sim
  int exit_code = -1;
  std::string log;
};

Package& package() {
  static Package built;
  BOOST_TEST_REQUIRE(built.exit_code == 0, built.log);
  BOOST_TEST_REQUIRE(!built.deb.empty(), "cpack made no deltatap .deb: " << built.log);
  BOOST_TEST_REQUIRE(!built.tools_deb.empty(), "cpack made no deltatap-tools .deb: " << built.log);
  return built;
}

std::string dpkg_deb(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {tool("dpkg-deb")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = run_command(argv);
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  return result.out;
}

// The paths a package holds ("./usr/bin/deltatapd"; a link without its target),
// with directories ending in "/".
std::set<std::string> deb_paths(const fs::path& deb) {
  std::set<std::string> paths;
  std::istringstream in(dpkg_deb({"--contents", deb.string()}));
  for (std::string line; std::getline(in, line);) {
    auto at = line.find(" ./");
    if (at == std::string::npos) continue;
    std::string path = line.substr(at + 1);
    auto arrow = path.find(" -> ");
    if (arrow != std::string::npos) path.resize(arrow);
    paths.insert(path);
  }
  return paths;
}

// The files and links (not directories) a package puts on a system: "/usr/bin/deltatapd".
std::vector<fs::path> payload_files(const fs::path& deb) {
  std::vector<fs::path> files;
  for (const auto& path : deb_paths(deb)) {
    if (!path.empty() && path.back() != '/') files.push_back(path.substr(1));
  }
  return files;
}

// The man pages the manpages target generated, by the package that ships them.
// None before that target exists.
std::map<std::string, std::string> built_man_pages() {
  std::map<std::string, std::string> pages;
  for (const char* page : {"deltatapd.8", "deltatap.1", "deltatap.conf.5", "deltatap-sim.1"}) {
    if (!fs::exists(bin_dir() / "man" / page)) continue;
    std::string name = page;
    pages["./usr/share/man/man" + name.substr(name.size() - 1) + "/" + name + ".gz"] =
        name == "deltatap-sim.1" ? "deltatap-tools" : "deltatap";
  }
  return pages;
}

// Whether this build used dpkg-buildflags (cmake/packaging.cmake says so).
bool built_with_dpkg_buildflags() {
  return read_file(bin_dir() / "packaging-files/dpkg-buildflags").rfind("ON\n", 0) == 0;
}

bool exists_or_link(const fs::path& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
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
  BOOST_TEST(fs::exists(usr / "share/doc/deltatap/copyright"));
  BOOST_TEST(fs::exists(usr / "share/doc/deltatap/changelog.gz"));
  for (const auto& [page, owner] : built_man_pages()) {
    BOOST_TEST(fs::exists(usr / page.substr(std::string("./usr/").size())), page);
  }

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
  std::set<std::string> paths = deb_paths(pkg.deb);
  std::string contents = dpkg_deb({"--contents", pkg.deb.string()});
  std::vector<std::string> expected = {
      "./usr/lib/systemd/system/deltatap.service", "./usr/lib/sysusers.d/deltatap.conf",
      "./etc/deltatap/deltatap.conf", "./usr/share/doc/deltatap/README.md",
      "./usr/share/doc/deltatap/service.md", "./usr/share/doc/deltatap/copyright",
      "./usr/share/doc/deltatap/changelog.gz",
      // The sqlite3 extension for compressed files (docs/capacity.md).
      "./usr/lib/deltatap/deltatap_sqlite.so"};
  for (const auto& name : executables()) {
    if (!kToolPrograms.count(name)) expected.push_back("./usr/bin/" + name);
  }
  for (const auto& [page, owner] : built_man_pages()) {
    if (owner == "deltatap") expected.push_back(page);
  }
  fs::path packaging = source_dir() / "packaging";
  if (fs::exists(packaging / "completions/deltatap.bash")) {
    for (const char* name : {"deltatap", "deltatapd", "deltatap-sim"}) {
      expected.push_back(std::string("./usr/share/bash-completion/completions/") + name);
    }
  }
  if (fs::exists(packaging / "completions/_deltatap")) {
    expected.push_back("./usr/share/zsh/vendor-completions/_deltatap");
  }
  if (fs::exists(packaging / "prometheus/deltatap.rules.yml")) {
    expected.push_back("./usr/share/deltatap/deltatap.rules.yml");
  }
  if (fs::exists(packaging / "grafana/deltatap-dashboard.json")) {
    expected.push_back("./usr/share/deltatap/deltatap-dashboard.json");
  }
  for (const auto& path : expected) BOOST_TEST(paths.count(path) == 1u, path << "\n" << contents);
  // The tools are not in the daemon's package.
  for (const auto& name : kToolPrograms) {
    BOOST_TEST(paths.count("./usr/bin/" + name) == 0u, name << "\n" << contents);
  }
  // Nothing escapes the package's layout (say, a stray /usr/local).
  for (const auto& path : paths) {
    bool known = path.rfind("./usr/bin/", 0) == 0 || path.rfind("./usr/lib/", 0) == 0 ||
                 path.rfind("./usr/share/", 0) == 0 || path.rfind("./etc/", 0) == 0 ||
                 path == "./" || path == "./usr/" || path == "./etc/";
    BOOST_TEST(known, path);
  }
}

BOOST_AUTO_TEST_CASE(tools_deb_holds_the_simulator_alone) {
  auto& pkg = package();
  std::set<std::string> paths = deb_paths(pkg.tools_deb);
  std::set<std::string> expected = {"./usr/share/doc/deltatap-tools/copyright",
                                    "./usr/share/doc/deltatap-tools/changelog.gz"};
  for (const auto& name : kToolPrograms) expected.insert("./usr/bin/" + name);
  for (const auto& [page, owner] : built_man_pages()) {
    if (owner == "deltatap-tools") expected.insert(page);
  }
  std::set<std::string> files;
  for (const auto& path : paths) {
    if (path.back() != '/') files.insert(path);
  }
  BOOST_TEST(files == expected, dpkg_deb({"--contents", pkg.tools_deb.string()}));
  BOOST_TEST(dpkg_deb({"-f", pkg.tools_deb.string(), "Package"}) == "deltatap-tools\n");
  BOOST_TEST(dpkg_deb({"-f", pkg.tools_deb.string(), "Version"}) ==
             dpkg_deb({"-f", pkg.deb.string(), "Version"}));
  // No maintainer scripts and no conffiles: nothing to set up.
  TempDir control;
  auto result = run_command({tool("dpkg-deb"), "--control", pkg.tools_deb.string(),
                             (control / "DEBIAN").string()});
  BOOST_TEST_REQUIRE(result.exit_code == 0, result.err);
  for (const char* name : {"postinst", "prerm", "postrm", "preinst", "conffiles"}) {
    BOOST_TEST(!fs::exists(control / "DEBIAN" / name), name);
  }
}

BOOST_AUTO_TEST_CASE(both_debs_carry_the_copyright_and_the_changelog_of_this_version) {
  auto& pkg = package();
  std::string version = dpkg_deb({"-f", pkg.deb.string(), "Version"});
  version.pop_back();
  for (const auto& [deb, name] : {std::pair{pkg.deb, "deltatap"}, {pkg.tools_deb, "deltatap-tools"}}) {
    TempDir root;
    auto extract = run_command({tool("dpkg-deb"), "-x", deb.string(), root.path().string()});
    BOOST_TEST_REQUIRE(extract.exit_code == 0, extract.err);
    fs::path doc = root / "usr/share/doc" / name;
    BOOST_TEST(read_file(doc / "copyright") == read_file(source_dir() / "packaging/copyright"));
    // gzip -n -9: no name, no time stamp, maximum compression.
    std::string gz = read_file(doc / "changelog.gz");
    BOOST_TEST_REQUIRE(gz.size() > 10u);
    BOOST_TEST((gz[3] & 0x08) == 0, "the gzip header names the file");
    BOOST_TEST(gz.substr(4, 4) == std::string(4, '\0'), "the gzip header has a time stamp");
    BOOST_TEST(gz[8] == 2, "not compressed with -9");
    auto changelog = run_command({"/bin/gzip", "-dc", (doc / "changelog.gz").string()});
    BOOST_TEST_REQUIRE(changelog.exit_code == 0, changelog.err);
    BOOST_TEST(changelog.out == read_file(source_dir() / "packaging/changelog"));
    // The newest entry is for the version packaged.
    BOOST_TEST(changelog.out.rfind("deltatap (" + version + ") ", 0) == 0u,
               changelog.out.substr(0, changelog.out.find('\n')) << " vs " << version);
  }
}

BOOST_AUTO_TEST_CASE(lintian_has_nothing_to_say) {
  auto& pkg = package();
  std::string lintian = tool("lintian");
  if (::access(lintian.c_str(), X_OK) != 0) {
    skip("lintian is not installed (scripts/setup installs it): packages not checked");
    return;
  }
  std::vector<std::string> argv = {lintian};
  // As root lintian warns on stderr that it runs as root; this test runs as root
  // on a disposable machine to install the packages.
  if (::geteuid() == 0) argv.push_back("--allow-root");
  argv.push_back(pkg.deb.string());
  argv.push_back(pkg.tools_deb.string());

  auto result = run_command(argv);
  std::string out = result.out;
  if (built_man_pages().empty()) {
    // The man pages come from the manpages target; until this build has it, that
    // one complaint is expected (and reported).
    std::string kept;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(": no-manual-page ") != std::string::npos) {
        BOOST_TEST_MESSAGE("no man pages in this build: " << line);
      } else {
        kept += line + "\n";
      }
    }
    out = kept;
  }
  BOOST_TEST(result.exit_code == 0, result.out + result.err);
  BOOST_TEST(out.empty(), out);
  BOOST_TEST(result.err.empty(), result.err);

  // Hardening: lintian reports these at the "info" level only; a build with
  // dpkg-buildflags (the default for an optimised, unsanitised build) has none.
  if (built_with_dpkg_buildflags()) {
    std::vector<std::string> hardening = argv;
    hardening.insert(hardening.begin() + 1,
                     {"-I", "-T",
                      "hardening-no-bindnow,hardening-no-fortify-functions,hardening-no-relro,"
                      "hardening-no-pie"});
    auto flags = run_command(hardening);
    BOOST_TEST(flags.exit_code == 0, flags.out + flags.err);
    BOOST_TEST(flags.out.empty(), flags.out);
  } else {
    BOOST_TEST_MESSAGE("built without dpkg-buildflags: "
                       << read_file(bin_dir() / "packaging-files/dpkg-buildflags"));
  }
}

BOOST_AUTO_TEST_CASE(unit_names_its_man_pages) {
  auto& pkg = package();
  TempDir root;
  auto extract = run_command({tool("dpkg-deb"), "-x", pkg.deb.string(), root.path().string()});
  BOOST_TEST_REQUIRE(extract.exit_code == 0, extract.err);
  std::string documentation =
      unit_line(read_file(root / "usr/lib/systemd/system/deltatap.service"), "Documentation");
  BOOST_TEST(documentation.find("man:deltatapd(8)") != std::string::npos, documentation);
  BOOST_TEST(documentation.find("man:deltatap.conf(5)") != std::string::npos, documentation);
  // Every page it names is in the package, once the build makes them.
  if (!built_man_pages().empty()) {
    BOOST_TEST(fs::exists(root / "usr/share/man/man8/deltatapd.8.gz"));
    BOOST_TEST(fs::exists(root / "usr/share/man/man5/deltatap.conf.5.gz"));
  }
}

BOOST_AUTO_TEST_CASE(deb_control_has_dependencies_conffile_and_scripts) {
  auto& pkg = package();
  BOOST_TEST(dpkg_deb({"-f", pkg.deb.string(), "Package"}) == "deltatap\n");
  std::string depends = dpkg_deb({"-f", pkg.deb.string(), "Depends"});
  for (const char* library : {"libsqlite3-0", "libssl3", "libsystemd0", "libboost-log1.81.0"}) {
    BOOST_TEST(depends.find(library) != std::string::npos, library << " not in: " << depends);
  }
  // postinst runs systemd-sysusers: dh_installsysusers' dependency, and no adduser.
  BOOST_TEST(depends.find("systemd | systemd-sysusers") != std::string::npos, depends);
  // A name and an address lintian accepts (DELTATAP_PACKAGE_MAINTAINER sets another).
  std::string maintainer = dpkg_deb({"-f", pkg.deb.string(), "Maintainer"});
  BOOST_TEST(maintainer.find("root") == std::string::npos, maintainer);
  BOOST_TEST(maintainer.find("localhost") == std::string::npos, maintainer);
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
    std::string text = read_file(path);
    BOOST_TEST(text.find("adduser") == std::string::npos, script);
  }
  // dh_installsysusers' line.
  BOOST_TEST(read_file(control / "DEBIAN/postinst")
                 .find("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} deltatap.conf") !=
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

// --- The maintainer scripts, with stand-ins ---------------------------------------

// Runs a maintainer script with `env`, as if systemd were (or were not) PID 1: in a
// private mount namespace with an empty /run, plus /run/systemd/system when it
// "runs". Without the privilege for that (not root), the host's own state decides;
// `systemd_running` in the result says which it was.
struct ScriptRun {
  CommandResult result;
  bool systemd_running = false;
};
ScriptRun run_script(const fs::path& script, const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env, bool systemd_running) {
  static const bool can_fake = [] {
    if (::geteuid() != 0) return false;
    auto probe = run_command({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh",
                              "-c", "mount -t tmpfs deltatap-test /run"});
    return probe.exit_code == 0;
  }();
  std::vector<std::string> argv;
  ScriptRun run;
  if (can_fake) {
    argv = {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
            "mount -t tmpfs deltatap-test /run || exit 99\n"
            "if [ \"$1\" = running ]; then mkdir -p /run/systemd/system; fi\n"
            "shift\n"
            "exec /bin/sh \"$@\"",
            "fake-init", systemd_running ? "running" : "absent"};
    run.systemd_running = systemd_running;
  } else {
    argv = {"/bin/sh"};
    run.systemd_running = fs::is_directory("/run/systemd/system");
  }
  argv.push_back(script.string());
  argv.insert(argv.end(), args.begin(), args.end());
  run.result = run_command(argv, env);
  return run;
}

BOOST_AUTO_TEST_CASE(maintainer_scripts_create_the_user_and_talk_to_systemd) {
  // The scripts run with stand-ins for systemd-sysusers, systemctl and Debian's
  // helpers that record their arguments, so nothing on this machine changes.
  // deb-systemd-helper answers `debian-installed` and `was-enabled` as the files
  // "installed" and "enabled" beside the record say.
  TempDir dir;
  fs::path bin = dir / "bin";
  fs::create_directories(bin);
  fs::path calls = dir / "calls";
  for (const char* tool : {"systemd-sysusers", "systemctl", "deb-systemd-helper",
                           "deb-systemd-invoke"}) {
    std::string stub = std::string("#!/bin/sh\necho \"") + tool + " $*\" >> " + calls.string() + "\n";
    if (std::string(tool) == "deb-systemd-helper") {
      stub += "case \"$*\" in\n"
              "  \"debian-installed \"*) [ -e " + (dir / "installed").string() + " ] ;;\n"
              "  \"--quiet was-enabled \"*) [ -e " + (dir / "enabled").string() + " ] ;;\n"
              "esac\n";
    }
    write_file(bin / tool, stub);
    fs::permissions(bin / tool, fs::perms::owner_all);
  }
  std::map<std::string, std::string> env = {
      {"PATH", bin.string() + ":/usr/sbin:/usr/bin:/sbin:/bin"}, {"DPKG_ROOT", "\x01unset"}};
  fs::path scripts = source_dir() / "packaging";
  auto has = [](const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
  };

  for (bool running : {true, false}) {
    BOOST_TEST_CONTEXT("systemd " << (running ? "running" : "not running")) {
      // A fresh install: the user, the unit registered, but not enabled or started
      // behind the administrator's back.
      write_file(calls, "");
      fs::remove(dir / "installed");
      fs::remove(dir / "enabled");
      auto fresh = run_script(scripts / "postinst", {"configure"}, env, running);
      BOOST_TEST(fresh.result.exit_code == 0, fresh.result.err);
      std::string recorded = read_file(calls);
      BOOST_TEST(has(recorded, "systemd-sysusers deltatap.conf\n"), recorded);
      BOOST_TEST(has(recorded, "deb-systemd-helper update-state deltatap.service\n"), recorded);
      BOOST_TEST(!has(recorded, "start"), recorded);
      BOOST_TEST(!has(recorded, " enable "), recorded);
      BOOST_TEST(!has(recorded, "deb-systemd-invoke"), recorded);
      BOOST_TEST(has(recorded, "systemctl --system daemon-reload\n") == fresh.systemd_running,
                 recorded);
      // No systemctl but daemon-reload, ever (lintian: maintainer-script-calls-systemctl).
      std::istringstream lines(recorded);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("systemctl ", 0) == 0) BOOST_TEST(has(line, "daemon-reload"), line);
      }

      // An upgrade of an enabled service: still enabled, restarted if running.
      write_file(calls, "");
      write_file(dir / "installed", "");
      write_file(dir / "enabled", "");
      auto upgrade = run_script(scripts / "postinst", {"configure", "0.0.1"}, env, running);
      BOOST_TEST(upgrade.result.exit_code == 0, upgrade.result.err);
      recorded = read_file(calls);
      BOOST_TEST(has(recorded, "systemd-sysusers deltatap.conf\n"), recorded);
      BOOST_TEST(has(recorded, "deb-systemd-helper enable deltatap.service\n"), recorded);
      BOOST_TEST(has(recorded, "deb-systemd-invoke try-restart deltatap.service\n") ==
                     upgrade.systemd_running,
                 recorded);

      // An upgrade of a service the administrator disabled: it stays disabled.
      write_file(calls, "");
      fs::remove(dir / "enabled");
      auto disabled = run_script(scripts / "postinst", {"configure", "0.0.1"}, env, running);
      BOOST_TEST(disabled.result.exit_code == 0, disabled.result.err);
      recorded = read_file(calls);
      BOOST_TEST(!has(recorded, " enable "), recorded);
      BOOST_TEST(!has(recorded, "deb-systemd-invoke start"), recorded);

      // Removal stops the service and leaves the administrator's choice alone.
      write_file(calls, "");
      auto remove = run_script(scripts / "prerm", {"remove"}, env, running);
      BOOST_TEST(remove.result.exit_code == 0, remove.result.err);
      recorded = read_file(calls);
      if (remove.systemd_running) {
        BOOST_TEST(recorded == "deb-systemd-invoke stop deltatap.service\n");
      } else {
        BOOST_TEST(recorded.empty(), recorded);
      }
      // Not on upgrade: postinst restarts it with the new binary instead.
      write_file(calls, "");
      auto upgrading = run_script(scripts / "prerm", {"upgrade", "0.2.0"}, env, running);
      BOOST_TEST(upgrading.result.exit_code == 0, upgrading.result.err);
      BOOST_TEST(read_file(calls).empty(), read_file(calls));

      write_file(calls, "");
      auto removed = run_script(scripts / "postrm", {"remove"}, env, running);
      BOOST_TEST(removed.result.exit_code == 0, removed.result.err);
      recorded = read_file(calls);
      BOOST_TEST(recorded == (removed.systemd_running ? "systemctl --system daemon-reload\n" : ""));
      // (postrm purge removes /etc/deltatap and /var/lib/deltatap for real: the
      // installation case below runs it through dpkg.)
    }
  }
}

// --- The packages on this machine -------------------------------------------------

// Runs dpkg, waiting out another dpkg or apt holding its lock.
CommandResult dpkg(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {tool("dpkg")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto deadline = std::chrono::steady_clock::now() + 120s;
  for (;;) {
    auto result = run_command(argv, {{"DEBIAN_FRONTEND", "noninteractive"}});
    // "dpkg frontend lock was locked by another process", "dpkg status database
    // is locked by another process".
    bool locked = result.exit_code != 0 &&
                  (result.err.find("lock was locked") != std::string::npos ||
                   result.err.find("is locked by another process") != std::string::npos);
    if (!locked || std::chrono::steady_clock::now() > deadline) return result;
    std::this_thread::sleep_for(1s);
  }
}

// "install ok installed", "deinstall ok config-files", or "" when dpkg does not know it.
std::string package_status(const std::string& name) {
  auto result = run_command({tool("dpkg-query"), "-W", "-f=${Status}", name});
  return result.exit_code == 0 ? result.out : "";
}

bool user_exists(const std::string& name) {
  return run_command({tool("getent"), "passwd", name}).exit_code == 0;
}

// The machine for the packages: one test at a time (other build trees run this test
// too), only when nothing of deltatap is here already, and put back as it was
// afterwards, whatever happened in between. A run killed half-way leaves a marker;
// the next run purges what it left.
class Machine {
 public:
  static constexpr const char* kLock = "/run/lock/deltatap-packaging-test.lock";
  static constexpr const char* kMarker = "/var/tmp/deltatap-packaging-test.installed";
  static constexpr const char* kWants =
      "/etc/systemd/system/multi-user.target.wants/deltatap.service";

  Machine() {
    if (::geteuid() != 0) {
      why_not_ = "not root";
      return;
    }
    if (::access(tool("dpkg").c_str(), X_OK) != 0) {
      why_not_ = "no dpkg";
      return;
    }
    fs::path lock = fs::is_directory("/run/lock") ? fs::path(kLock) : fs::path("/tmp") / fs::path(kLock).filename();
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) {
      why_not_ = "cannot open " + lock.string();
      return;
    }
    bool locked = wait_until([&] { return ::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0; }, 300s);
    if (!locked) {
      why_not_ = "another run held " + lock.string() + " for 5 minutes";
      return;
    }
    if (fs::exists(kMarker)) {
      // Left by an interrupted run: its packages and files are ours to clear.
      created_user_ = read_file(kMarker) == "user=created\n";
      clean_up();
    }
    for (const char* name : {"deltatap", "deltatap-tools"}) {
      if (!package_status(name).empty()) {
        why_not_ = std::string(name) + " is installed here (" + package_status(name) + ")";
        return;
      }
    }
    for (const char* path : {"/etc/deltatap", "/var/lib/deltatap", "/var/lib/private/deltatap", kWants}) {
      if (exists_or_link(path)) {
        why_not_ = std::string(path) + " exists (a source install?)";
        return;
      }
    }
    created_user_ = !user_exists("deltatap");
    write_file(kMarker, created_user_ ? "user=created\n" : "user=existed\n");
    usable_ = true;
  }

  ~Machine() {
    if (usable_) clean_up();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  bool usable() const { return usable_; }
  const std::string& why_not() const { return why_not_; }

 private:
  void clean_up() {
    std::vector<std::string> known;
    for (const char* name : {"deltatap-tools", "deltatap"}) {
      if (!package_status(name).empty()) known.push_back(name);
    }
    if (!known.empty()) {
      std::vector<std::string> args = {"--purge"};
      args.insert(args.end(), known.begin(), known.end());
      auto purge = dpkg(args);
      if (purge.exit_code != 0) {
        // A half-installed package whose scripts fail: remove it without them.
        args.insert(args.begin(), "--force-remove-reinstreq");
        dpkg(args);
      }
    }
    std::error_code ec;
    for (const char* path : {"/etc/deltatap", "/var/lib/deltatap", "/var/lib/private/deltatap",
                             kWants,
                             "/var/lib/systemd/deb-systemd-helper-enabled/deltatap.service.dsh-also",
                             "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/deltatap.service",
                             "/var/lib/systemd/deb-systemd-helper-masked/deltatap.service"}) {
      fs::remove_all(path, ec);
    }
    if (created_user_ && user_exists("deltatap")) {
      run_command({tool("userdel"), "deltatap"});
      run_command({tool("groupdel"), "deltatap"});
    }
    fs::remove(kMarker, ec);
  }

  int lock_fd_ = -1;
  bool usable_ = false;
  bool created_user_ = false;
  std::string why_not_;
};

BOOST_AUTO_TEST_CASE(debs_install_remove_and_purge_on_this_machine) {
  auto& pkg = package();
  Machine machine;
  if (!machine.usable()) {
    skip("packages not installed on this machine: " + machine.why_not());
    return;
  }
  std::vector<fs::path> files = payload_files(pkg.deb);
  std::vector<fs::path> tool_files = payload_files(pkg.tools_deb);
  std::vector<fs::path> all_files = files;
  all_files.insert(all_files.end(), tool_files.begin(), tool_files.end());
  const fs::path conf = "/etc/deltatap/deltatap.conf";
  const fs::path token = "/etc/deltatap/token";
  const fs::path state = "/var/lib/deltatap/data/sessions.sqlite";
  const fs::path wants = Machine::kWants;

  // Install. Every file is in place, the user exists, the daemon runs; the service
  // is neither enabled nor started (it needs a URL and a token first).
  auto install = dpkg({"--install", pkg.deb.string(), pkg.tools_deb.string()});
  BOOST_TEST_REQUIRE(install.exit_code == 0, install.out + install.err);
  BOOST_TEST(package_status("deltatap") == "install ok installed");
  BOOST_TEST(package_status("deltatap-tools") == "install ok installed");
  for (const auto& file : all_files) BOOST_TEST(exists_or_link(file), file);
  auto owner = run_command({tool("dpkg-query"), "--search", "/usr/bin/deltatap-sim"});
  BOOST_TEST(owner.out == "deltatap-tools: /usr/bin/deltatap-sim\n", owner.out + owner.err);
  BOOST_TEST(user_exists("deltatap"));
  auto version = run_command({"/usr/bin/deltatapd", "--version"});
  BOOST_TEST(version.exit_code == 0, version.err);
  BOOST_TEST(!exists_or_link(wants));

  // The administrator enables the service (what `systemctl enable` does), edits the
  // configuration, adds the token; the service stores its history.
  fs::create_directories(wants.parent_path());
  fs::create_symlink("/usr/lib/systemd/system/deltatap.service", wants);
  std::string edited = read_file(conf) + "\n# edited by the administrator\n";
  write_file(conf, edited);
  write_file(token, "secret\n");
  fs::create_directories(state.parent_path());
  write_file(state, "history");

  // Remove: the programs go; the configuration, the history and the administrator's
  // enable stay.
  auto remove = dpkg({"--remove", "deltatap-tools", "deltatap"});
  BOOST_TEST_REQUIRE(remove.exit_code == 0, remove.out + remove.err);
  BOOST_TEST(package_status("deltatap") == "deinstall ok config-files");
  BOOST_TEST(package_status("deltatap-tools") == "");
  for (const auto& file : all_files) {
    if (file.string().rfind("/usr/", 0) == 0) BOOST_TEST(!exists_or_link(file), file);
  }
  for (const char* dir : {"/usr/share/doc/deltatap", "/usr/share/doc/deltatap-tools",
                          "/usr/share/deltatap"}) {
    BOOST_TEST(!fs::exists(dir), dir);
  }
  BOOST_TEST(read_file(conf) == edited);
  BOOST_TEST(read_file(token) == "secret\n");
  BOOST_TEST(read_file(state) == "history");
  BOOST_TEST(exists_or_link(wants));

  // Reinstall: still enabled, still edited.
  auto again = dpkg({"--install", pkg.deb.string()});
  BOOST_TEST_REQUIRE(again.exit_code == 0, again.out + again.err);
  BOOST_TEST(exists_or_link(wants));
  BOOST_TEST(read_file(conf) == edited);

  // Disabled, removed and reinstalled: still disabled.
  fs::remove(wants);
  auto remove_disabled = dpkg({"--remove", "deltatap"});
  BOOST_TEST_REQUIRE(remove_disabled.exit_code == 0, remove_disabled.out + remove_disabled.err);
  auto reinstall_disabled = dpkg({"--install", pkg.deb.string()});
  BOOST_TEST_REQUIRE(reinstall_disabled.exit_code == 0,
                     reinstall_disabled.out + reinstall_disabled.err);
  BOOST_TEST(!exists_or_link(wants));

  // Purge (enabled again first): configuration, token, history and the enable go;
  // dpkg forgets the package. The system user stays, as with Debian's packages.
  fs::create_symlink("/usr/lib/systemd/system/deltatap.service", wants);
  auto purge = dpkg({"--purge", "deltatap"});
  BOOST_TEST_REQUIRE(purge.exit_code == 0, purge.out + purge.err);
  BOOST_TEST(package_status("deltatap") == "");
  for (const auto& file : all_files) BOOST_TEST(!exists_or_link(file), file);
  for (const char* path : {"/etc/deltatap", "/var/lib/deltatap", "/usr/share/doc/deltatap",
                           "/usr/share/deltatap"}) {
    BOOST_TEST(!fs::exists(path), path);
  }
  BOOST_TEST(!exists_or_link(wants));
  BOOST_TEST(!fs::exists("/var/lib/systemd/deb-systemd-helper-enabled/deltatap.service.dsh-also"));
  BOOST_TEST(user_exists("deltatap"));
}
