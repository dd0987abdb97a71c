// Placeholder until issue 4 lands: registers `scoresde encode` so that --help lists it.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddEncodeCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("encode", "Encode data to latent codes (and decode) through the probability-flow ODE");
  command->callback([] { throw Error("scoresde encode is not available in this build yet"); });
}

}  // namespace scoresde::cli
