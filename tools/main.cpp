// aciq command-line entry point: parses the subcommand, runs it, turns errors into one line + exit code.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <new>

#include "aciq/core.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"aciq: post-training integer quantization with analytical clipping (ACIQ)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "aciq 0.1.0");
  std::function<int()> action;
  auto set_action = [&action](std::function<int()> a) { action = std::move(a); };
  aciq::cli::add_eval_commands(app, set_action);
  aciq::cli::add_info_commands(app, set_action);
  aciq::cli::add_bench_command(app, set_action);
  aciq::cli::add_plan_commands(app, set_action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action ? action() : 0;
  } catch (const aciq::Error& e) {
    std::cerr << "aciq: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "aciq: error: out of memory" << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "aciq: error: " << e.what() << std::endl;
    return 1;
  }
}
