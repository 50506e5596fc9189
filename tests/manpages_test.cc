// Man pages: the four pages the `manpages` target writes into the build
// directory (tools/manpage.cc) cannot drift from the programs. Each option the
// real programs print in --help is in its page, and each option the help lists
// as an item is an item (.TP) of the page; every key of the configuration key
// table has its entry in its section of deltatap.conf(5), with its default, its
// variables and its options; man and groff find nothing to warn about, and
// lexgrog reads each page's NAME line (what lintian and mandb read).
//
// The last case shows that the checks bite: the real pages, each with one key
// entry or one option item taken out, are reported, every key and every item.
#define BOOST_TEST_MODULE manpages
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "service/config.h"
#include "service/config_keys.h"
#include "test_support.h"

using namespace deltatap;
using namespace deltatap::testing;

namespace {

fs::path man_dir() { return bin_dir() / "man"; }

std::string page_text(const std::string& file) {
  fs::path path = man_dir() / file;
  BOOST_TEST_REQUIRE(fs::exists(path), path.string() << " is missing: build the target manpages");
  return read_file(path);
}

std::string help_of(const std::string& program, std::vector<std::string> args) {
  args.insert(args.begin(), (bin_dir() / program).string());
  auto result = run_command(args);
  BOOST_TEST_REQUIRE(result.exit_code == 0, program << " --help: exit " << result.exit_code << "\n" << result.err);
  BOOST_TEST_REQUIRE(!result.out.empty(), program << " --help printed nothing");
  return result.out;
}

// As a page writes what is typed: every hyphen as \-.
std::string roff(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (c == '-') out += '\\';
    out += c;
  }
  return out;
}

// The options a text names: "-h", "--log-level" (from "--option=value" too).
std::set<std::string> options_in(const std::string& text) {
  static const std::regex option(R"((^|[^A-Za-z0-9_-])(--?[A-Za-z][A-Za-z0-9-]*))");
  std::set<std::string> found;
  for (std::sregex_iterator it(text.begin(), text.end(), option), end; it != end; ++it) {
    found.insert((*it)[2].str());
  }
  return found;
}

// The options of the help's item lines ("  --url URL   backend stream, ...",
// "  -h, --help ..."): the term before the description, not the description.
std::set<std::string> listed_options(const std::string& help) {
  std::set<std::string> found;
  std::istringstream in(help);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  -", 0) != 0) continue;
    auto gap = line.find("  ", 2);
    for (const auto& o : options_in(line.substr(2, gap == std::string::npos ? std::string::npos : gap - 2))) {
      found.insert(o);
    }
  }
  return found;
}

// Whether `text` holds `word` (roff) as a whole: not followed by more of a
// name ("\-\-log" does not count for "\-\-log\-level").
bool has_word(const std::string& text, const std::string& word) {
  for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    std::size_t next = at + word.size();
    bool more = next < text.size() &&
                (std::isalnum(static_cast<unsigned char>(text[next])) || text[next] == '_' ||
                 text.compare(next, 2, "\\-") == 0);
    if (!more) return true;
  }
  return false;
}

// The tag lines of a page: each line after a .TP.
std::string tags_of(const std::string& page) {
  std::string tags;
  std::istringstream in(page);
  bool after_tp = false;
  for (std::string line; std::getline(in, line);) {
    if (after_tp) tags += line + "\n";
    after_tp = line == ".TP";
  }
  return tags;
}

// What a page lacks of a help text: each option the help names that the page
// does not, and each option the help lists as an item that is no item tag of
// the page.
std::vector<std::string> missing_options(const std::string& page, const std::string& help) {
  std::vector<std::string> missing;
  for (const auto& o : options_in(help)) {
    if (!has_word(page, roff(o))) missing.push_back(o + " (not in the page)");
  }
  std::string tags = tags_of(page);
  for (const auto& o : listed_options(help)) {
    if (!has_word(tags, roff(o))) missing.push_back(o + " (no item of its own)");
  }
  return missing;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += "\n  " + i;
  return out;
}

// The text from `start` to the next line starting with one of `ends` (or the end).
std::string block(const std::string& text, std::size_t start, const std::vector<std::string>& ends) {
  std::size_t end = std::string::npos;
  for (const auto& e : ends) end = std::min(end, text.find("\n" + e, start + 1));
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start + 1);
}

// The built-in defaults as --check-config prints them: "stream.url" -> value.
std::map<std::string, std::string> described_defaults() {
  std::map<std::string, std::string> out;
  std::istringstream in(describe_config(Config{}));
  std::string section;
  for (std::string line; std::getline(in, line);) {
    if (line.size() > 2 && line.front() == '[' && line.back() == ']') section = line.substr(1, line.size() - 2);
    auto eq = line.find(" =");
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    std::string value = eq + 2 < line.size() ? line.substr(eq + 3) : "";
    out.emplace(section + "." + line.substr(0, eq), value);
  }
  return out;
}

// What deltatap.conf(5) lacks of the key table: for every key, an entry
// (".TP" then "\fBkey\fR") in the subsection of its section, holding its
// default as --check-config shows it, each variable that sets it and each
// deltatapd option; and every variable in ENVIRONMENT.
std::vector<std::string> missing_keys(const std::string& page) {
  std::vector<std::string> missing;
  auto defaults = described_defaults();
  for (const auto& spec : key_table()) {
    std::string name = key_name(spec.section, spec.key);
    auto heading = page.find(".SS \"[" + std::string(spec.section) + "]\"\n");
    if (heading == std::string::npos) {
      missing.push_back(name + " (no subsection [" + std::string(spec.section) + "])");
      continue;
    }
    std::string section = block(page, heading, {".SS", ".SH"});
    auto at = section.find(".TP\n\\fB" + std::string(spec.key) + "\\fR\n");
    if (at == std::string::npos) {
      missing.push_back(name + " (no entry)");
      continue;
    }
    std::string entry = block(section, at, {".TP", ".SS", ".SH"});
    auto value = defaults.find(std::string(spec.section) + "." + std::string(spec.key));
    if (value == defaults.end() || value->second == "(none)") {
      if (entry.find("Default: none.") == std::string::npos) missing.push_back(name + " (default none)");
    } else if (value->second.empty()) {
      if (entry.find("Default: empty.") == std::string::npos) missing.push_back(name + " (default empty)");
    } else if (entry.find("Default: \\fB" + roff(value->second) + "\\fR.") == std::string::npos) {
      missing.push_back(name + " (default " + value->second + ")");
    }
    for (const auto& var : environment_table()) {
      if (var.section == spec.section && var.key == spec.key &&
          entry.find("\\fB" + std::string(var.name) + "\\fR") == std::string::npos) {
        missing.push_back(name + " (variable " + var.name + ")");
      }
    }
    for (auto flag : key_flags(spec.section, spec.key)) {
      if (!has_word(entry, roff(std::string(flag)))) missing.push_back(name + " (option " + std::string(flag) + ")");
    }
  }
  auto environment = page.find(".SH ENVIRONMENT\n");
  std::string variables = environment == std::string::npos ? "" : block(page, environment, {".SH"});
  for (const auto& var : environment_table()) {
    if (variables.find(".TP\n\\fB" + std::string(var.name) + "\\fR\n") == std::string::npos) {
      missing.push_back(std::string(var.name) + " (not in ENVIRONMENT)");
    }
  }
  return missing;
}

// A program of man-db or groff by name, from PATH; "" when it is not there.
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

const std::vector<std::string> kPages = {"deltatapd.8", "deltatap.1", "deltatap-sim.1", "deltatap.conf.5"};

}  // namespace

BOOST_AUTO_TEST_CASE(deltatapd_page_has_every_option_of_its_help) {
  std::string help = help_of("deltatapd", {"--help"});
  BOOST_TEST_REQUIRE(listed_options(help).count("--log-level") == 1, help);  // the parse sees the list
  auto missing = missing_options(page_text("deltatapd.8"), help);
  BOOST_TEST(missing.empty(), "deltatapd(8) lacks, of deltatapd --help:" << joined(missing));
}

BOOST_AUTO_TEST_CASE(deltatap_page_has_every_option_of_every_help) {
  std::string page = page_text("deltatap.1");
  std::string help = help_of("deltatap", {"--help"});
  auto missing = missing_options(page, help);
  BOOST_TEST(missing.empty(), "deltatap(1) lacks, of deltatap --help:" << joined(missing));

  // Every command --help lists, and every command of the table, has its
  // subsection with every option of its own help.
  std::set<std::string> commands;
  BOOST_TEST_REQUIRE(help.find("\nCommands:\n") != std::string::npos, help);
  std::istringstream in(help.substr(help.find("\nCommands:\n")));
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  while (std::getline(in, line) && line.rfind("  ", 0) == 0) {
    commands.insert(line.substr(2, line.find(' ', 2) - 2));
  }
  BOOST_TEST_REQUIRE(commands.count("timeline") == 1, help);
  for (const auto& spec : cli::command_table()) commands.insert(std::string(spec.name));
  for (const auto& command : commands) {
    auto heading = page.find(".SS " + roff(command) + "\n");
    BOOST_TEST(heading != std::string::npos, "deltatap(1) has no subsection for " << command);
    if (heading == std::string::npos) continue;
    std::string section = block(page, heading, {".SS", ".SH"});
    std::string command_help = help_of("deltatap", {command, "--help"});
    auto lacking = missing_options(section, command_help);
    BOOST_TEST(lacking.empty(), "deltatap(1), " << command << ", lacks of deltatap " << command
                                               << " --help:" << joined(lacking));
  }
}

BOOST_AUTO_TEST_CASE(deltatap_sim_page_has_every_option_of_its_help) {
  std::string help = help_of("deltatap-sim", {"--help"});
  BOOST_TEST_REQUIRE(listed_options(help).count("--backpressure-bytes") == 1, help);
  auto missing = missing_options(page_text("deltatap-sim.1"), help);
  BOOST_TEST(missing.empty(), "deltatap-sim(1) lacks, of deltatap-sim --help:" << joined(missing));
}

BOOST_AUTO_TEST_CASE(conf_page_has_every_key_of_the_table) {
  BOOST_TEST_REQUIRE(key_table().size() >= 23u);
  auto missing = missing_keys(page_text("deltatap.conf.5"));
  BOOST_TEST(missing.empty(), "deltatap.conf(5) lacks, of the key table:" << joined(missing));
}

BOOST_AUTO_TEST_CASE(pages_format_without_warnings) {
  // man-db and groff-base are Debian packages (scripts/setup installs them):
  // without them nothing here can be checked, which is a failure, not a pass.
  std::string man = find_program("man");
  std::string groff = find_program("groff");
  std::string lexgrog = find_program("lexgrog");
  BOOST_TEST_REQUIRE(!man.empty(), "man is not installed (Debian package man-db; scripts/setup "
                                   "installs it): the man pages cannot be checked");
  BOOST_TEST_REQUIRE(!lexgrog.empty(), "lexgrog is not installed (Debian package man-db; "
                                       "scripts/setup installs it): the man pages cannot be checked");
  BOOST_TEST_REQUIRE(!groff.empty(), "groff is not installed (Debian package groff-base; "
                                     "scripts/setup installs it): the man pages cannot be checked");
  // The environment and options lintian uses for its man-page check.
  const std::map<std::string, std::string> env = {
      {"LC_ALL", "C.UTF-8"}, {"MANROFFSEQ", ""}, {"MANWIDTH", "80"}};
  for (const auto& name : kPages) {
    std::string file = (man_dir() / name).string();
    BOOST_TEST_REQUIRE(fs::exists(file), file << " is missing: build the target manpages");
    auto checked = run_command({man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", file}, env);
    BOOST_TEST(checked.exit_code == 0, name << ": man exit " << checked.exit_code);
    BOOST_TEST(checked.err.empty(), name << ": man --warnings:\n" << checked.err);
    BOOST_TEST(!checked.out.empty(), name << ": man printed nothing");
    auto strict = run_command({groff, "-man", "-ww", "-z", "-k", file}, env);
    BOOST_TEST(strict.exit_code == 0, name << ": groff exit " << strict.exit_code);
    BOOST_TEST(strict.err.empty(), name << ": groff -ww:\n" << strict.err);
    auto whatis = run_command({lexgrog, file}, env);
    std::string title = name.substr(0, name.rfind('.'));
    BOOST_TEST(whatis.exit_code == 0, name << ": lexgrog exit " << whatis.exit_code << "\n" << whatis.err);
    BOOST_TEST(whatis.out.find(": \"" + title + " - ") != std::string::npos,
               name << ": lexgrog reads no NAME line for " << title << ": " << whatis.out);
  }
}

BOOST_AUTO_TEST_CASE(the_checks_report_a_page_that_lost_an_entry) {
  // deltatap.conf(5) without one key's entry, for each key in turn: that key
  // is reported (and only the entry was taken out, so nothing else need be).
  std::string conf = page_text("deltatap.conf.5");
  BOOST_TEST_REQUIRE(missing_keys(conf).empty());
  for (const auto& spec : key_table()) {
    auto heading = conf.find(".SS \"[" + std::string(spec.section) + "]\"\n");
    BOOST_TEST_REQUIRE(heading != std::string::npos);
    auto at = conf.find(".TP\n\\fB" + std::string(spec.key) + "\\fR\n", heading);
    BOOST_TEST_REQUIRE(at != std::string::npos);
    std::string entry = block(conf, at, {".TP", ".SS", ".SH"});
    std::string without = conf.substr(0, at) + conf.substr(at + entry.size());
    auto missing = missing_keys(without);
    std::string name = key_name(spec.section, spec.key);
    BOOST_TEST((missing.size() == 1 && missing[0].rfind(name + " (", 0) == 0),
               "without its entry, " << name << " is reported as:" << joined(missing));
  }

  // deltatapd(8) without one option's item, for each item of its --help.
  std::string page = page_text("deltatapd.8");
  std::string help = help_of("deltatapd", {"--help"});
  BOOST_TEST_REQUIRE(missing_options(page, help).empty());
  for (const auto& option : listed_options(help)) {
    // The item whose tag names the option: from its .TP to the next macro line
    // after its text.
    std::size_t at = std::string::npos;
    for (auto tp = page.find(".TP\n"); tp != std::string::npos; tp = page.find(".TP\n", tp + 1)) {
      std::string tag = page.substr(tp + 4, page.find('\n', tp + 4) - tp - 4);
      if (has_word(tag, roff(option))) at = tp;
    }
    BOOST_TEST_REQUIRE(at != std::string::npos, option);
    std::string item = block(page, at, {".TP", ".PP", ".SH", ".SS"});
    std::string without = page.substr(0, at) + page.substr(at + item.size());
    auto missing = missing_options(without, help);
    bool reported = false;
    for (const auto& m : missing) reported = reported || m.rfind(option + " ", 0) == 0;
    BOOST_TEST(reported, "without its item, " << option << " is not reported:" << joined(missing));
  }
}
