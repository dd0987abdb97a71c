// Placeholder until issue 5 lands: registers `scoresde train` so that --help lists it.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddTrainCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("train", "Train a score model");
  command->callback([] { throw Error("scoresde train is not available in this build yet"); });
}

}  // namespace scoresde::cli
