// Plumbing shared by `scoresde likelihood` and `scoresde encode`: input data (a file, or draws from
// the problem), the ODE flags, and the closed-form references a problem file gives.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "scoresde/solvers/likelihood.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/problem.hpp"

namespace scoresde::cli {

// --problem, --data, --n, --seed.
struct InputFlags {
  std::string problem;
  std::string data;
  int64_t n = 1000;
  uint64_t seed = 0;
};
void AddInputFlags(CLI::App* command, InputFlags* flags, const char* data_help);

// --method, --rtol, --atol, --steps, --max-steps, --step-control, --threads.
struct OdeFlags {
  std::string method = "rk45";
  double rtol = 1e-5;
  double atol = 1e-5;
  int steps = 100;
  int64_t max_steps = 100000;
  std::string step_control = "per-sample";
  int threads = 1;
};
// extra_methods lists further --method names the command accepts (e.g. the fast samplers).
void AddOdeFlags(CLI::App* command, OdeFlags* flags, const std::string& extra_methods = "");
// OdeOptions for an ODE method name (throws InvalidArgument for other names).
OdeOptions MakeOdeOptions(const OdeFlags& flags);

// The problem (if any), the score and SDE, and the input rows as a d × n batch.
struct FlowInputs {
  std::optional<Problem> problem;
  ScoreChoice choice;
  Batch x;
};
// Loads --problem and --data, or draws --n rows from `draw` (called with the score and SDE when
// no --data is given; it must fill x). default_eps is the command's ε.
FlowInputs LoadFlowInputs(
    const InputFlags& input, const std::string& score_flag, const SdeFlags& sde_flags,
    double default_eps,
    const std::function<void(const ScoreChoice& choice, const Problem& problem, BatchRef x)>&
        draw);

// The problem's exact log p_t (Gaussian, mixture or log-normal under its SDE); empty if the score
// is not analytic.
LogDensityFunction ExactLogDensity(const ScoreModel& score, double t);
// Exact draws from p_t of the problem (analytic score), samples 0 … x.cols() − 1 of `noise`.
void DrawMarginal(const ScoreModel& score, double t, const NoiseStream& noise, BatchRef x);

// {"nfe", "nfe_max", "accepted_steps", "rejected_steps", "seconds", "status", "message",
// "warnings"} of a solve.
nlohmann::json SolveJson(const SolveSummary& summary, const IndexRowVector& nfe);
// A row vector as a JSON array.
nlohmann::json ToJson(const RowVector& v);

}  // namespace scoresde::cli
