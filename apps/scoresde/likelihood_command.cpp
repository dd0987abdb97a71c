// Placeholder until issue 4 lands: registers `scoresde likelihood` so that --help lists it.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddLikelihoodCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("likelihood", "Exact log-likelihoods through the probability-flow ODE");
  command->callback([] { throw Error("scoresde likelihood is not available in this build yet"); });
}

}  // namespace scoresde::cli
