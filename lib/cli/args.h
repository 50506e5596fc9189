// args: what the user typed, read into an Invocation, and the help texts that
// describe it.
//
// The command line is global options (--db, --url, --token, --token-file,
// --color, --utc/--local/--no-color) anywhere, one COMMAND, and that command's
// own options and positional arguments after it in any order. "--" ends the
// options, so a session id that starts with '-' can be given. An option that
// takes a value is accepted once; the flags may repeat, the last one deciding.
// Parsing checks names, the --color value and the mutually exclusive pairs; the
// values of command options (formats, times, limits) are judged later, by the
// command or by the API.
//
// Everything here is pure and usable from any thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace deltatap::cli {

// The text of `deltatap --help`: every global option and every command.
extern const char kUsageText[];

struct OptionSpec {
  std::string_view name;  // with its dashes: "--format"
  bool takes_value;       // false: a flag, whose Invocation::option() is "" when given
};

struct CommandSpec {
  std::string_view name;
  std::vector<OptionSpec> options;
  int positionals;  // exactly this many
  const char* help;  // the text of `deltatap COMMAND --help`
};

// The spec of the command called `name`, or nullptr when there is none. The
// pointer is to a static table and stays valid for the life of the program.
const CommandSpec* find_command(std::string_view name);

// Every command, in the order kUsageText lists them (deltatap(1) documents
// each from its help; tools/manpage.cc).
const std::vector<CommandSpec>& command_table();

struct Invocation {
  std::optional<std::string> db, url, token, token_file;
  bool utc = false;
  std::string color = "auto";  // "auto", "always" or "never"
  bool help = false, version = false;
  std::string command;  // "" when none was given
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> options;  // command options by name

  // The value given for a command option (`name` with its dashes), or nullopt.
  std::optional<std::string> option(std::string_view name) const;
};

struct UsageError {
  std::string message;  // one line, without the "deltatap: " prefix
};

// Reads `args` (the arguments after the program name). Returns an Invocation
// when every option is known and well formed, a UsageError naming the first
// problem otherwise. An unknown command is a UsageError only when it is given
// a command option; otherwise the Invocation carries it and the caller decides.
// The positional count is not checked here.
std::variant<Invocation, UsageError> parse_args(const std::vector<std::string>& args);

}  // namespace deltatap::cli
