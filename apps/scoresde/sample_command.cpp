// Placeholder until issue 3 lands: registers `scoresde sample` so that --help lists it.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddSampleCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("sample", "Draw samples by reverse-time SDE or predictor-corrector sampling");
  command->callback([] { throw Error("scoresde sample is not available in this build yet"); });
}

}  // namespace scoresde::cli
