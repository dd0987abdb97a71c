// The subcommands of the scoresde program (design.md section 4). Each lives in its own
// <name>_command.cpp and registers itself on the top-level app.
#pragma once

#include <CLI/CLI.hpp>

namespace scoresde::cli {

void AddSampleCommand(CLI::App& app);
void AddLikelihoodCommand(CLI::App& app);
void AddEncodeCommand(CLI::App& app);
void AddTrainCommand(CLI::App& app);
void AddVerifyCommand(CLI::App& app);
void AddBenchCommand(CLI::App& app);
void AddDemoCommand(CLI::App& app);

}  // namespace scoresde::cli
