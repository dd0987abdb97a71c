// scoresde: score-based generative modeling through SDEs, from the command line.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "scoresde/sde/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"scoresde: score-based generative modeling through stochastic differential "
               "equations (Song et al., ICLR 2021)"};
  app.set_version_flag("--version", SCORESDE_VERSION);
  app.require_subcommand(1);
  scoresde::cli::AddSampleCommand(app);
  scoresde::cli::AddLikelihoodCommand(app);
  scoresde::cli::AddEncodeCommand(app);
  scoresde::cli::AddTrainCommand(app);
  scoresde::cli::AddVerifyCommand(app);
  scoresde::cli::AddBenchCommand(app);
  scoresde::cli::AddDemoCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const scoresde::InvalidArgument& e) {
    std::cerr << "scoresde: invalid argument: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "scoresde: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
