// aciq command-line entry point: parses the subcommand, runs it, and turns every failure (option
// parsing included) into one line "aciq: error: <what>: <problem>" and exit code 1.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>
#include <new>

#include "aciq/core.hpp"
#include "commands.hpp"

namespace {

// The seed's multi-letter single-dash flags, which CLI11 would read as -t h / -s m.
std::vector<std::string> seed_spellings(std::vector<std::string> args) {
  for (auto& a : args) {
    if (a == "-th") a = "--threshold";
    if (a == "-sm") a = "--stats-mode";
  }
  return args;
}

std::vector<std::string> option_names(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* o : cmd.get_options()) {
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
  }
  return names;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& names) {
  const auto close = aciq::closest_matches(word, names, 1);
  return close.empty() ? "" : "; did you mean " + close.front() + "?";
}

// One line for a CLI11 parse error, naming the offending word and the closest valid one.
std::string parse_error_line(const CLI::ParseError& e, CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> commands;
  for (const CLI::App* s : app.get_subcommands({})) commands.push_back(s->get_name());
  std::string list;
  for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
  const auto first =
      std::find_if(args.begin(), args.end(), [](const std::string& a) { return a.empty() || a[0] != '-'; });
  CLI::App* cmd = nullptr;
  try {
    if (first != args.end()) cmd = app.get_subcommand(*first);
  } catch (const CLI::OptionNotFound&) {
    cmd = nullptr;
  }
  if (!cmd) {
    if (first == args.end()) return "no command given (commands: " + list + "; `aciq --help` describes them)";
    return *first + ": unknown command" + did_you_mean(*first, commands) + " (commands: " + list + ")";
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    // The first word after the command that is not one of its options or their values.
    const auto names = option_names(*cmd);
    for (auto it = first + 1; it != args.end(); ++it) {
      const std::string word = it->substr(0, it->find('='));
      if (word.size() < 2 || word[0] != '-' || (word[1] >= '0' && word[1] <= '9')) continue;
      if (std::find(names.begin(), names.end(), word) != names.end()) continue;
      return word + ": unknown option for `aciq " + cmd->get_name() + "`" + did_you_mean(word, names);
    }
    std::string extras;
    for (const auto& x : cmd->remaining()) extras += (extras.empty() ? "" : " ") + x;
    return (extras.empty() ? std::string("arguments") : extras) + ": unexpected argument for `aciq " +
           cmd->get_name() + "` (options take the form --name VALUE)";
  }
  std::string msg = e.what();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  const std::string required = " is required";
  if (msg.size() > required.size() &&
      msg.compare(msg.size() - required.size(), required.size(), required) == 0) {
    msg = msg.substr(0, msg.size() - required.size()) + ": required (see `aciq " + cmd->get_name() +
          " --help`)";
  }
  return msg;
}

// Runs the command line on this process; errors become the message returned (empty on success).
struct RunResult {
  int code = 0;
  bool ok = true;
  bool peer = false;  // only another rank's failure
  std::string message;
};

RunResult run(int argc, char** argv, aciq::dist::Group& group) {
  CLI::App app{"aciq: post-training integer quantization with analytical clipping (ACIQ)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "aciq 0.1.0");
  aciq::cli::Action action;
  auto set_action = [&action](aciq::cli::Action a) { action = std::move(a); };
  aciq::cli::add_eval_commands(app, set_action);
  aciq::cli::add_info_commands(app, set_action);
  aciq::cli::add_bench_command(app, set_action);
  aciq::cli::add_plan_commands(app, set_action);
  aciq::cli::add_tensor_commands(app, set_action);
  aciq::cli::add_report_command(app, set_action);
  const std::vector<std::string> args = seed_spellings({argv + 1, argv + argc});
  aciq::cli::Invocation inv;
  inv.argv.assign(argv, argv + argc);
  inv.group = &group;
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 consumes from the back
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return {group.leader() ? app.exit(e) : 0, true, false, {}};
  } catch (const CLI::CallForAllHelp& e) {
    return {group.leader() ? app.exit(e) : 0, true, false, {}};
  } catch (const CLI::CallForVersion& e) {
    return {group.leader() ? app.exit(e) : 0, true, false, {}};
  } catch (const CLI::ParseError& e) {
    return {1, false, false, parse_error_line(e, app, args)};
  }
  try {
    if (group.size() > 1) {
      // Only the dataset passes are sharded; anything else would run N times over.
      const std::string name = app.get_subcommands().empty() ? "" : app.get_subcommands().front()->get_name();
      if (name != "eval" && name != "collect" && name != "sweep") {
        throw aciq::Error(name +
                          ": runs in one process; under mpirun only eval, collect and sweep are sharded");
      }
    }
    return {action ? action(inv) : 0, true, false, {}};
  } catch (const aciq::dist::PeerFailed& e) {
    return {1, false, true, e.what()};
  } catch (const aciq::Error& e) {
    group.report_failure();
    return {1, false, false, e.what()};
  } catch (const std::bad_alloc&) {
    group.report_failure();
    return {1, false, false, "out of memory"};
  } catch (const std::exception& e) {
    group.report_failure();
    return {1, false, false, e.what()};
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<aciq::dist::Group> group;
  try {
    group = aciq::dist::make_group(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "aciq: error: " << e.what() << std::endl;
    return 1;
  }
  const RunResult r = run(argc, argv, *group);
  // Every rank concludes; only rank 0 prints, one line for the whole job.
  const auto outcome = group->conclude(r.ok, r.peer, r.message);
  if (!outcome.message.empty()) std::cerr << "aciq: error: " << outcome.message << std::endl;
  // A rank can fail after the last collective while this one succeeded: the job still fails.
  return std::max(r.ok ? r.code : 1, outcome.exit_code);
}
