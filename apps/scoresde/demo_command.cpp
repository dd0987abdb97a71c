// Placeholder until the references land in this command: registers `scoresde demo`.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddDemoCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("demo", "Self-check of the closed-form references");
  command->callback([] { throw Error("scoresde demo is not available in this build yet"); });
}

}  // namespace scoresde::cli
