// Registration of the aciq subcommands; each adds its options and schedules its action.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace aciq::cli {

using SetAction = std::function<void(std::function<int()>)>;

void add_eval_commands(CLI::App& app, SetAction set_action);   // eval, collect, sweep
void add_info_commands(CLI::App& app, SetAction set_action);   // alpha, layers, analyze
void add_bench_command(CLI::App& app, SetAction set_action);   // bench
void add_plan_commands(CLI::App& app, SetAction set_action);   // calibrate, export

std::string default_split(const std::string& data_spec);

}  // namespace aciq::cli
