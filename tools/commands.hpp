// Registration of the aciq subcommands; each adds its options and schedules its action.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "cli_common.hpp"

namespace aciq::cli {

// A command's work, run after parsing succeeded; gets the command line for its result records.
using Action = std::function<int(const Invocation&)>;
using SetAction = std::function<void(Action)>;

void add_eval_commands(CLI::App& app, SetAction set_action);    // eval (alias inference-sim), collect, sweep
void add_info_commands(CLI::App& app, SetAction set_action);    // alpha, ops, layers, analyze
void add_bench_command(CLI::App& app, SetAction set_action);    // bench
void add_plan_commands(CLI::App& app, SetAction set_action);    // calibrate, export
void add_tensor_commands(CLI::App& app, SetAction set_action);  // run, compare
void add_report_command(CLI::App& app, SetAction set_action);   // report

}  // namespace aciq::cli
