// Placeholder until issue 3 lands: registers `scoresde bench` so that --help lists it.
#include "commands.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {

void AddBenchCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("bench", "Run benchmarks");
  command->callback([] { throw Error("scoresde bench is not available in this build yet"); });
}

}  // namespace scoresde::cli
