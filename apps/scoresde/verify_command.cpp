// Placeholder until issue 3 lands: registers `scoresde verify` so that --help lists it.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddVerifyCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("verify", "Run verification studies (convergence orders)");
  command->callback([] { throw Error("scoresde verify is not available in this build yet"); });
}

}  // namespace scoresde::cli
