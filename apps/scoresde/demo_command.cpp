// `scoresde demo`: the README's main job (demo.hpp): train, sample, likelihood, verification and a
// report folder with figures.
#include <algorithm>
#include <iostream>
#include <memory>
#include <thread>

#include "cli_common.hpp"
#include "commands.hpp"
#include "demo.hpp"

namespace scoresde::cli {

void AddDemoCommand(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  o->threads = std::max(1u, std::thread::hardware_concurrency());
  auto json = std::make_shared<bool>(false);
  CLI::App* command = app.add_subcommand(
      "demo",
      "Train a score model on 2-D data, sample it with every kind of sampler, compute its "
      "held-out likelihood, run the quick verification checks and write a report with figures");
  command->add_option("--dataset", o->dataset,
                      "Built-in data: swiss-roll, two-moons, eight-gaussians, checkerboard, "
                      "circles, pinwheel")
      ->check(CLI::IsMember({"swiss-roll", "two-moons", "eight-gaussians", "checkerboard",
                             "circles", "pinwheel"}))
      ->capture_default_str();
  command->add_option("--problem", o->problem,
                      "Data from a Gaussian or mixture problem file (JSON) instead")
      ->check(CLI::ExistingFile);
  command->add_option("--data", o->data,
                      "Data from an .npy or .csv file (one example per row) instead; a fifth "
                      "(at most --heldout rows) is held out")
      ->check(CLI::ExistingFile);
  AddSdeFlags(command, &o->sde);
  command->add_option("--train-steps", o->train_steps, "Training steps")->capture_default_str();
  command->add_option("--batch", o->batch, "Training batch size")->capture_default_str();
  command->add_option("--width", o->width, "MLP hidden width")->capture_default_str();
  command->add_option("--depth", o->depth, "MLP SiLU layers")->capture_default_str();
  command->add_option("--steps", o->steps,
                      "N: steps of the SDE samplers (predictor-only and corrector-only run 2N)")
      ->capture_default_str();
  command->add_option("--n", o->num_samples, "Samples per sampler")->capture_default_str();
  command->add_option("--heldout", o->num_heldout, "Held-out data points")->capture_default_str();
  command->add_option("--likelihood-points", o->likelihood_points,
                      "Held-out points whose log-likelihood is computed")
      ->capture_default_str();
  command->add_flag("!--no-verify", o->verify,
                    "Skip the verification section (self-check, convergence orders, likelihood "
                    "exactness, NFE against error)");
  command->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->capture_default_str();
  command->add_option("--seed", o->seed, "Seed of data, training and sampling")
      ->capture_default_str();
  command->add_option("--out", o->out, "Report folder")->capture_default_str();
  command->add_flag("!--no-plots", o->plots, "Write the data and report without drawing figures");
  command->add_option("--python", o->python,
                      "Python with matplotlib for the figures (default: $SCORESDE_PYTHON, "
                      "/usr/bin/python3, python3)");
  command->add_option("--plot-script", o->plot_script,
                      "The plotting script (default: the source tree's scripts/plot_report.py)");
  command->add_flag("--json", *json, "Print the report's JSON on stdout");
  command->callback([o, json] {
    const nlohmann::json report =
        RunDemo(*o, [](const std::string& line) { std::cerr << "demo " << line << std::endl; });
    if (*json) {
      nlohmann::json summary = report;
      // design.md section 4: "nfe" (score evaluations per sample, here summed over the samplers)
      // and "seconds".
      summary["nfe"] = report["sampling"]["nfe"];
      summary["out"] = o->out;
      PrintJson(summary);
    }
  });
}

}  // namespace scoresde::cli
