// scoresde sample: reverse-time SDE and predictor–corrector sampling (solvers/pc_sampler.hpp).
//
//   scoresde sample --problem gmm_2d.json [--sde vp --sde-param beta_max=20 ...] [--score analytic]
//       [--predictor reverse-diffusion] [--corrector langevin] [--snr 0.16] [--corrector-steps 1]
//       [--steps 1000] [--n 1000] [--seed 0] [--threads 1] [--prior standard|exact]
//       [--step-rule expectation|batch-average] [--denoise] [--out samples.npy] [--json]
//
// --prior exact starts from exact draws of the problem's p_T (GBM always does: it has no
// data-independent prior). With a Gaussian or mixture problem the report gives the distance of the
// samples to p_0 and to p_ε (the law the sampler targets): the Fréchet distance of the moments and
// the sliced Wasserstein distance to as many exact draws, beside the Monte-Carlo floor (the same
// distance between two independent exact sets). A lognormal problem reports the error of the
// log-moments. --compare-to a built-in 2-D set (fresh draws) or a data file reports the sliced
// Wasserstein distance of the samples to that data: how a learned model is checked end to end.
// Conditioning flags (--observe, --condition-method, ...) are in conditioning.hpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "conditioning.hpp"
#include "cli_common.hpp"
#include "scoresde/scoring/array_io.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde::cli {
namespace {

constexpr const char* kWhere = "scoresde sample";

struct SampleFlags {
  std::string problem;
  SdeFlags sde;
  std::string score = "analytic";
  std::string predictor = "reverse-diffusion";
  std::string corrector = "langevin";
  double snr = 0.16;
  int corrector_steps = 1;
  int steps = 0;  // 0: the SDE's N (--sde-param N, default 1000)
  int64_t n = 1000;
  uint64_t seed = 0;
  int threads = 1;
  std::string prior = "standard";
  std::string step_rule = "expectation";
  int pilot_size = 1000;
  int chunk_size = 0;
  bool denoise = false;
  std::string out;
  std::string dtype = "float64";
  bool json = false;
  std::string compare_to;
  ConditioningFlags conditioning;
};

// Exact draws of p_t from the analytic references, keyed by sample index.
PcSampler::InitialSampler ExactMarginalSampler(const ScoreModel& score, double t) {
  if (const auto* mixture = dynamic_cast<const GaussianMixtureScore*>(&score)) {
    return [mixture, t](const NoiseStream& noise, int64_t first, BatchRef x) {
      mixture->SampleMarginal(t, noise, first, x);
    };
  }
  if (const auto* lognormal = dynamic_cast<const LogNormalReference*>(&score)) {
    return [lognormal, t](const NoiseStream& noise, int64_t first, BatchRef x) {
      lognormal->SampleMarginal(t, noise, first, x);
    };
  }
  return nullptr;
}

// Distances of the samples to the mixture law `law`: Fréchet distance of the moments and the
// sliced Wasserstein distance to as many exact draws, with the Monte-Carlo floor of the latter.
nlohmann::json MixtureDistance(const GaussianMixture& law, ConstBatchRef x, uint64_t seed) {
  const MomentEstimate m = EstimateMoments(x);
  Batch exact(x.rows(), x.cols()), other(x.rows(), x.cols());
  law.Sample(NoiseStream(seed, Stream::kData), 0, exact);
  law.Sample(NoiseStream(seed + 1, Stream::kData), 0, other);
  constexpr int kProjections = 64;
  nlohmann::json json;
  json["frechet"] = std::sqrt(FrechetDistance(m.mean, m.cov, law.Mean(), law.Covariance()));
  json["sliced_wasserstein"] = SlicedWasserstein(x, exact, kProjections, seed);
  json["sliced_wasserstein_floor"] = SlicedWasserstein(other, exact, kProjections, seed);
  json["mean_error"] = (m.mean - law.Mean()).norm();
  json["covariance_error"] = (m.cov - law.Covariance()).norm();
  return json;
}

// Distance of the samples x (d × n) to data: a built-in 2-D set by name (fresh draws under a seed
// of their own, so independent of any training data drawn with a small seed) or the rows of an
// .npy/.csv file. For a built-in set the floor is the same distance between two fresh data sets.
nlohmann::json DataDistance(const std::string& source, ConstBatchRef x, uint64_t seed) {
  constexpr int kProjections = 256;
  constexpr uint64_t kFreshSeed = 0x636f6d70617265ULL;  // "compare": not a seed anyone trains with
  const bool builtin = std::any_of(AllToy2d().begin(), AllToy2d().end(),
                                   [&](Toy2d set) { return ToString(set) == source; });
  nlohmann::json json;
  json["data"] = source;
  Batch data;
  if (builtin) {
    Require(x.rows() == 2, kWhere, "--compare-to", std::string_view(source),
            "a data set of the samples' dimension (" + std::to_string(x.rows()) + ")");
    data.resize(2, x.cols());
    SampleToy2d(ParseToy2d(source), kFreshSeed + seed, 0, data);
    Batch other(2, x.cols());
    SampleToy2d(ParseToy2d(source), kFreshSeed + seed + 1, 0, other);
    json["sliced_wasserstein_floor"] = SlicedWasserstein(other, data, kProjections, seed);
  } else {
    data = ReadArray(source);  // d × B: one example per row of the file
    Require(data.rows() == x.rows(), kWhere, "--compare-to", std::string_view(source),
            "rows of dimension " + std::to_string(x.rows()) + " (it has " +
                std::to_string(data.rows()) + ")");
    Require(data.cols() >= 2, kWhere, "--compare-to", std::string_view(source),
            "at least 2 rows");
  }
  const MomentEstimate a = EstimateMoments(x), b = EstimateMoments(data);
  json["sliced_wasserstein"] = SlicedWasserstein(x, data, kProjections, seed);
  json["frechet"] = std::sqrt(FrechetDistance(a.mean, a.cov, b.mean, b.cov));
  json["data_points"] = data.cols();
  json["projections"] = kProjections;
  return json;
}

void RunSample(const SampleFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  Require(flags.n >= 1, kWhere, "--n", flags.n, ">= 1");
  Require(flags.prior == "standard" || flags.prior == "exact", kWhere, "--prior",
          std::string_view(flags.prior), "standard or exact");
  Require(flags.step_rule == "expectation" || flags.step_rule == "batch-average", kWhere,
          "--step-rule", std::string_view(flags.step_rule), "expectation or batch-average");
  Require(flags.dtype == "float64" || flags.dtype == "float32", kWhere, "--dtype",
          std::string_view(flags.dtype), "float64 or float32");
  std::optional<Problem> problem;
  if (!flags.problem.empty()) problem = LoadProblem(flags.problem);
  Require(problem.has_value() || flags.score != "analytic", kWhere, "--problem",
          std::string_view("(none)"), "given with --score analytic");
  Require(flags.snr > 0.0, kWhere, "--snr", flags.snr, "> 0");
  const ScoreChoice choice = MakeScoreAndSde(flags.score, problem ? &*problem : nullptr, flags.sde,
                                             problem ? problem->dim() : 0, /*default_eps=*/1e-3);
  const Sde& sde = *choice.sde.sde;
  const ScoreModel& score = *choice.score;
  const auto predictor = MakePredictor(flags.predictor);
  const auto corrector = MakeCorrector(flags.corrector);

  PcSampler::Options options;
  options.num_steps = flags.steps > 0 ? flags.steps : choice.sde.steps;
  options.eps = choice.sde.eps;
  options.corrector_steps = flags.corrector_steps;
  options.snr = flags.snr;
  options.step_rule = flags.step_rule == "batch-average" ? LangevinStepRule::kBatchAverage
                                                         : LangevinStepRule::kExpectation;
  options.pilot_size = flags.pilot_size;
  options.denoise = flags.denoise;
  options.seed = flags.seed;
  options.num_threads = flags.threads;
  options.chunk_size = flags.chunk_size;
  const bool affine = dynamic_cast<const ScalarAffineSde*>(&sde) != nullptr;
  std::string prior = flags.prior;
  // GBM has no data-independent prior: sampling starts from the closed-form p_T (design.md §4).
  if (!affine) prior = "exact";
  if (prior == "exact") {
    options.initial_sampler = ExactMarginalSampler(score, sde.t_final());
    Require(static_cast<bool>(options.initial_sampler), kWhere, "--prior", prior,
            "used with --score analytic (the problem gives p_T)");
  }

  Batch x;
  SolveSummary summary;
  nlohmann::json report;
  if (ConditioningRequested(flags.conditioning)) {
    SamplingSetup setup;
    setup.sde = choice.sde.sde;
    setup.score = choice.score;
    setup.analytic = flags.score == "analytic";
    setup.problem = problem ? &*problem : nullptr;
    setup.predictor = predictor.get();
    setup.corrector = corrector.get();
    setup.options = options;
    setup.exact_prior = prior == "exact";
    setup.num_samples = flags.n;
    ConditionalSamples conditional = SampleConditionally(flags.conditioning, setup);
    x = std::move(conditional.x);
    summary = conditional.summary;
    report = std::move(conditional.report);
  } else {
    options.throw_on_failure = false;
    const PcSampler sampler(sde, score, *predictor, *corrector, options);
    SampleResult result = sampler.Sample(flags.n);
    x = std::move(result.x);
    summary = result.summary;
  }
  if (!summary.ok()) {
    const FailureLocation where = summary.failure.value_or(FailureLocation{});
    throw NumericalFailure(summary.message, where.step, where.t, where.sample, where.coordinate);
  }
  if (!flags.out.empty()) {
    if (flags.dtype == "float32" && flags.out.size() > 4 &&
        flags.out.compare(flags.out.size() - 4, 4, ".npy") == 0) {
      WriteNpy(flags.out, x, NpyPrecision::kFloat32);
    } else {
      WriteArray(flags.out, x);
    }
  }

  nlohmann::json json = report.is_object() ? report : nlohmann::json::object();
  json["nfe"] = summary.nfe;
  // Wall time of construction (with the E‖s‖² pilot, if any) and sampling.
  json["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  json["out"] = flags.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(flags.out);
  json["steps"] = options.num_steps;
  json["samples"] = flags.n;
  json["dim"] = sde.dim();
  json["sde"] = flags.sde.name;
  json["eps"] = options.eps;
  json["predictor"] = flags.predictor;
  json["corrector"] = flags.corrector;
  json["corrector_steps"] = flags.corrector_steps;
  json["snr"] = flags.snr;
  json["step_rule"] = std::string(ToString(options.step_rule));
  json["prior"] = prior;
  json["denoise"] = flags.denoise;
  json["seed"] = flags.seed;
  json["threads"] = flags.threads;
  json["status"] = ToString(summary.status);
  json["warnings"] = summary.warnings;
  if (problem && !ConditioningRequested(flags.conditioning) && x.cols() >= 2) {
    if (const auto* mixture = dynamic_cast<const GaussianMixtureScore*>(&score)) {
      json["distance_to_p0"] = MixtureDistance(mixture->Marginal(0.0), x, flags.seed + 7);
      json["distance_to_p_eps"] = MixtureDistance(mixture->Marginal(options.eps), x, flags.seed + 7);
    } else if (const auto* lognormal = dynamic_cast<const LogNormalReference*>(&score)) {
      const Batch y = x.array().log().matrix();
      const MomentEstimate m = EstimateMoments(y);
      json["distance_to_p0"] = {
          {"log_mean_error", (m.mean - lognormal->LogMean(0.0)).norm()},
          {"log_variance_error",
           (m.cov.diagonal() - lognormal->LogVariance(0.0)).norm()},
          {"log_mean_stderr", m.mean_stderr.norm()}};
    }
  }
  if (!flags.compare_to.empty()) {
    json["distance_to_data"] = DataDistance(flags.compare_to, x, flags.seed);
  }
  if (flags.json) {
    PrintJson(json);
  } else {
    std::cout << "sampled " << flags.n << " points: " << summary.BriefReport() << "\n";
    if (!flags.out.empty()) std::cout << "wrote " << flags.out << "\n";
    if (json.contains("distance_to_p0")) {
      std::cout << "distance to p_0: " << json["distance_to_p0"].dump() << "\n";
    }
    if (json.contains("distance_to_data")) {
      std::cout << "distance to the data: " << json["distance_to_data"].dump() << "\n";
    }
  }
}

}  // namespace

void AddSampleCommand(CLI::App& app) {
  auto flags = std::make_shared<SampleFlags>();
  CLI::App* command = app.add_subcommand(
      "sample", "Draw samples by reverse-time SDE or predictor-corrector sampling");
  command->add_option("--problem", flags->problem, "Problem JSON (the data law p_0)");
  AddSdeFlags(command, &flags->sde);
  command->add_option("--score", flags->score,
                      "analytic (the problem's exact score) or MODEL.safetensors (scoresde train)")
      ->capture_default_str();
  std::string predictors, correctors;
  for (const std::string& name : PredictorNames()) predictors += (predictors.empty() ? "" : ", ") + name;
  for (const std::string& name : CorrectorNames()) correctors += (correctors.empty() ? "" : ", ") + name;
  command->add_option("--predictor", flags->predictor, "Predictor: " + predictors)
      ->capture_default_str();
  command->add_option("--corrector", flags->corrector, "Corrector: " + correctors)
      ->capture_default_str();
  command->add_option("--snr", flags->snr, "Langevin signal-to-noise ratio r")->capture_default_str();
  command->add_option("--corrector-steps", flags->corrector_steps, "Corrector steps per level M")
      ->capture_default_str();
  command->add_option("--steps", flags->steps, "Levels N (default: --sde-param N, 1000)");
  command->add_option("--n", flags->n, "Number of samples")->capture_default_str();
  command->add_option("--seed", flags->seed, "Random seed")->capture_default_str();
  command->add_option("--threads", flags->threads, "Worker threads")->capture_default_str();
  command->add_option("--prior", flags->prior,
                      "standard (the SDE's prior) or exact (the problem's p_T; always for GBM)")
      ->capture_default_str();
  command->add_option("--step-rule", flags->step_rule,
                      "Langevin step size: expectation (independent samples) or batch-average "
                      "(the paper's rule, couples the samples of a chunk)")
      ->capture_default_str();
  command->add_option("--pilot-size", flags->pilot_size, "Samples in the E||s||^2 pilot")
      ->capture_default_str();
  command->add_option("--chunk-size", flags->chunk_size,
                      "Samples carried together through all steps (0: about 256 KiB per buffer)");
  command->add_flag("--denoise", flags->denoise, "Finish with Tweedie's denoising step");
  command->add_option("--out", flags->out, "Write the samples (.npy or .csv)");
  command->add_option("--dtype", flags->dtype, "float64 or float32 (.npy output)")
      ->capture_default_str();
  command->add_flag("--json", flags->json, "Print one JSON object");
  command->add_option("--compare-to", flags->compare_to,
                      "Report the sliced Wasserstein distance to a built-in 2-D set (fresh draws) "
                      "or to the rows of an .npy/.csv file");
  AddConditioningFlags(command, &flags->conditioning);
  command->callback([flags] { RunSample(*flags); });
}

}  // namespace scoresde::cli
