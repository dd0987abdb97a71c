// Plumbing shared by the subcommands: the SDE flags, problem files and analytic scores, and JSON
// output (one object on stdout; diagnostics go to stderr).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/verification/convergence.hpp"
#include "scoresde/verification/problem.hpp"

namespace scoresde::cli {

// --sde ve|vp|subvp|gbm and repeatable --sde-param key=value (sigma_min, sigma_max, kernel
// (exact|reference, VE only), beta_min, beta_max, mu, sigma, T, eps, N).
struct SdeFlags {
  std::string name = "vp";
  std::vector<std::string> params;
};
void AddSdeFlags(CLI::App* command, SdeFlags* flags);

struct SdeChoice {
  std::shared_ptr<const Sde> sde;
  double eps = 1e-3;  // end time of reverse solves (sde-param eps)
  int steps = 1000;   // N (sde-param N)
};

// Builds the named SDE on R^dim. Unknown names, unknown or malformed keys, and keys that do not
// belong to the family throw InvalidArgument naming them. default_eps is the command's ε.
SdeChoice MakeSde(const SdeFlags& flags, int dim, double default_eps);

// The exact score of the problem's data law under sde: GaussianMixtureScore for Gaussian and
// mixture problems under VE/VP/sub-VP, LogNormalReference for a lognormal problem under GBM.
// Throws InvalidArgument for other combinations. The score refers to sde, which must outlive it.
std::unique_ptr<ScoreModel> MakeAnalyticScore(const Problem& problem, const Sde& sde);

// --score: "analytic" (the problem's exact score under the chosen SDE) or a model file
// (MODEL.safetensors, whose metadata names its SDE; explicit --sde flags must agree with it).
struct ScoreChoice {
  SdeChoice sde;
  std::shared_ptr<const ScoreModel> score;
};
// problem may be null when the score is a model file. dim is the data dimension (from the problem
// or the data file). Throws InvalidArgument for unusable combinations.
ScoreChoice MakeScoreAndSde(const std::string& score_flag, const Problem* problem,
                            const SdeFlags& sde_flags, int dim, double default_eps);

// One entry of design.md section 4's `verify convergence` "results" list: sde, solver, the fitted
// strong and weak orders with their intervals, the expected orders and whether each interval
// contains its order, plus the study's size and cost.
nlohmann::json ConvergenceJson(const ConvergenceResult& r);

// Writes one JSON object to stdout (pretty-printed, newline-terminated).
void PrintJson(const nlohmann::json& result);

}  // namespace scoresde::cli
