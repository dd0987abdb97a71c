#include "flow_cli.hpp"

#include <cmath>

#include "scoresde/scoring/array_io.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"

namespace scoresde::cli {

void AddInputFlags(CLI::App* command, InputFlags* flags, const char* data_help) {
  command->add_option("--problem", flags->problem,
                      "Problem file (JSON): the data law whose score is --score analytic");
  command->add_option("--data", flags->data, data_help);
  command->add_option("--n", flags->n, "Rows to draw when there is no --data")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--seed", flags->seed, "Seed of drawn rows and Hutchinson probes")
      ->capture_default_str();
}

void AddOdeFlags(CLI::App* command, OdeFlags* flags, const std::string& extra_methods) {
  command
      ->add_option("--method", flags->method,
                   "ODE method: rk45 (= dopri5), cash-karp, fehlberg78 (adaptive); euler, heun, "
                   "rk4 (fixed step)" +
                       extra_methods)
      ->capture_default_str();
  command->add_option("--rtol", flags->rtol, "Relative tolerance (adaptive methods)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--atol", flags->atol, "Absolute tolerance (adaptive methods)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--steps", flags->steps, "Steps of a fixed-step method")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--max-steps", flags->max_steps, "Step budget per sample (adaptive)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      ->add_option("--step-control", flags->step_control,
                   "per-sample (each sample its own steps) or shared (one step for the batch, as "
                   "the paper's code)")
      ->check(CLI::IsMember({"per-sample", "shared"}))
      ->capture_default_str();
  command->add_option("--threads", flags->threads, "Worker threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

OdeOptions MakeOdeOptions(const OdeFlags& flags) {
  OdeOptions options;
  options.method = ParseOdeMethod(flags.method, "--method");
  options.rtol = flags.rtol;
  options.atol = flags.atol;
  options.num_steps = flags.steps;
  options.max_steps = flags.max_steps;
  options.step_control =
      flags.step_control == "shared" ? StepControl::kSharedStep : StepControl::kPerSample;
  options.num_threads = flags.threads;
  options.Validate();
  return options;
}

FlowInputs LoadFlowInputs(
    const InputFlags& input, const std::string& score_flag, const SdeFlags& sde_flags,
    double default_eps,
    const std::function<void(const ScoreChoice& choice, const Problem& problem, BatchRef x)>&
        draw) {
  FlowInputs inputs;
  if (!input.problem.empty()) inputs.problem = LoadProblem(input.problem);
  int dim = inputs.problem ? inputs.problem->dim() : 0;
  if (!input.data.empty()) {
    inputs.x = ReadArray(input.data);
    CheckFinite("--data", input.data, inputs.x);
    Require(inputs.x.cols() >= 1, "--data", input.data, static_cast<int64_t>(inputs.x.cols()),
            "a file with at least one row");
    if (inputs.problem) {
      Require(inputs.x.rows() == dim, "--data", "columns of " + input.data,
              static_cast<int64_t>(inputs.x.rows()),
              "the problem's dimension " + std::to_string(dim));
    }
    dim = static_cast<int>(inputs.x.rows());
  }
  inputs.choice = MakeScoreAndSde(score_flag, inputs.problem ? &*inputs.problem : nullptr,
                                  sde_flags, dim, default_eps);
  if (input.data.empty()) {
    Require(inputs.problem.has_value(), "scoresde", "--data", std::string_view("(none)"),
            "given, or rows are drawn from --problem");
    inputs.x.resize(dim, input.n);
    draw(inputs.choice, *inputs.problem, inputs.x);
  }
  return inputs;
}

LogDensityFunction ExactLogDensity(const ScoreModel& score, double t) {
  if (const auto* mixture = dynamic_cast<const GaussianMixtureScore*>(&score)) {
    return [mixture, t](ConstBatchRef x, RowVectorRef logp) {
      mixture->LogDensity(x, RowVector::Constant(x.cols(), t), logp);
    };
  }
  if (const auto* lognormal = dynamic_cast<const LogNormalReference*>(&score)) {
    return [lognormal, t](ConstBatchRef x, RowVectorRef logp) {
      lognormal->LogDensity(x, RowVector::Constant(x.cols(), t), logp);
    };
  }
  return nullptr;
}

void DrawMarginal(const ScoreModel& score, double t, const NoiseStream& noise, BatchRef x) {
  if (const auto* mixture = dynamic_cast<const GaussianMixtureScore*>(&score)) {
    mixture->SampleMarginal(t, noise, 0, x);
    return;
  }
  if (const auto* lognormal = dynamic_cast<const LogNormalReference*>(&score)) {
    lognormal->SampleMarginal(t, noise, 0, x);
    return;
  }
  throw InvalidArgument("--score: drawing from p_t needs an analytic score (--score analytic)");
}

nlohmann::json SolveJson(const SolveSummary& summary, const IndexRowVector& nfe) {
  nlohmann::json j;
  j["nfe"] = summary.nfe;
  j["nfe_max"] = nfe.size() > 0 ? nfe.maxCoeff() : 0;
  j["accepted_steps"] = summary.accepted_steps;
  j["rejected_steps"] = summary.rejected_steps;
  j["seconds"] = summary.seconds;
  j["status"] = ToString(summary.status);
  j["message"] = summary.message;
  j["warnings"] = summary.warnings;
  return j;
}

nlohmann::json ToJson(const RowVector& v) {
  nlohmann::json array = nlohmann::json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) array.push_back(v(i));
  return array;
}

}  // namespace scoresde::cli
