// scoresde likelihood: log-densities through the probability-flow ODE (solvers/likelihood.hpp).
//
//   scoresde likelihood --problem gmm_2d.json [--data rows.npy | --n 1000 --seed 0]
//       [--sde vp --sde-param eps=1e-5 ...] [--score analytic] [--method rk45 --rtol 1e-5 ...]
//       [--divergence exact|hutchinson --probes K --probe rademacher|gaussian]
//       [--prior standard|exact] [--dequantize LO HI] [--out latents.npy] [--json]
//
// Without --data, --n rows are drawn exactly from the problem's p_0. With a problem file the exact
// log p_ε of every row is reported beside the computed one, with the error (and, for the standard
// prior, the closed-form prior-mismatch term m(x_T) that the error should equal).
#include <cmath>
#include <iostream>
#include <memory>
#include <numbers>
#include <vector>

#include "commands.hpp"
#include "flow_cli.hpp"
#include "scoresde/scoring/array_io.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/likelihood.hpp"
#include "scoresde/verification/flow_reference.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde::cli {
namespace {

struct LikelihoodFlags {
  InputFlags input;
  SdeFlags sde;
  OdeFlags ode;
  std::string score = "analytic";
  std::string divergence = "exact";
  int probes = 1;
  std::string probe = "rademacher";
  std::string prior = "standard";
  std::vector<double> dequantize;
  std::string out;
  bool json = false;
};

void RunLikelihood(const LikelihoodFlags& flags) {
  FlowInputs inputs = LoadFlowInputs(
      flags.input, flags.score, flags.sde, /*default_eps=*/1e-5,
      [&](const ScoreChoice& choice, const Problem&, BatchRef x) {
        DrawMarginal(*choice.score, 0.0, NoiseStream(flags.input.seed, Stream::kData), x);
      });
  const Sde& sde = *inputs.choice.sde.sde;
  const ScoreModel& score = *inputs.choice.score;
  const int d = sde.dim();
  const double eps = inputs.choice.sde.eps;

  // 8-bit data: rows of integers 0..255 dequantized uniformly to [lo, hi].
  Batch y = inputs.x;
  if (!flags.dequantize.empty()) {
    Dequantize(inputs.x, flags.dequantize[0], flags.dequantize[1],
               NoiseStream(flags.input.seed, Stream::kData), 0, y);
  }

  LikelihoodOptions options;
  options.ode = MakeOdeOptions(flags.ode);
  options.eps = eps;
  options.seed = flags.input.seed;
  options.num_probes = flags.probes;
  if (flags.divergence == "hutchinson") {
    options.divergence = flags.probe == "gaussian" ? DivergenceEstimator::kHutchinsonGaussian
                                                   : DivergenceEstimator::kHutchinsonRademacher;
  }
  LogDensityFunction prior;
  if (flags.prior == "exact") {
    prior = ExactLogDensity(score, sde.t_final());
    Require(static_cast<bool>(prior), "scoresde likelihood", "--prior", std::string_view("exact"),
            "used with --score analytic (the problem knows p_T)");
  } else {
    Require(dynamic_cast<const ScalarAffineSde*>(&sde) != nullptr, "scoresde likelihood",
            "--prior", std::string_view("standard"),
            "used with --sde ve, vp or subvp (GBM has no standard prior; use --prior exact)");
  }
  const LikelihoodEstimator estimator(sde, score, options, prior);
  const LikelihoodResult result = estimator.Compute(y);
  if (!flags.out.empty()) WriteArray(flags.out, result.latent);

  nlohmann::json json = SolveJson(result.summary, result.nfe);
  json["logp"] = ToJson(result.logp);
  json["bpd"] = result.mean_bits_per_dim;
  json["dim"] = d;
  json["n"] = y.cols();
  json["eps"] = eps;
  json["sde"] = flags.sde.name;
  json["method"] = flags.ode.method;
  json["step_control"] = flags.ode.step_control;
  json["rtol"] = flags.ode.rtol;
  json["atol"] = flags.ode.atol;
  json["divergence"] = ToString(options.divergence);
  json["prior"] = flags.prior;
  json["threads"] = flags.ode.threads;
  if (options.divergence != DivergenceEstimator::kExact) {
    json["probes"] = flags.probes;
    json["standard_error"] = ToJson(result.standard_error);
  }
  if (!flags.dequantize.empty()) {
    RowVector dequantized(result.logp.size());
    for (Eigen::Index j = 0; j < dequantized.size(); ++j) {
      dequantized(j) =
          DequantizedBitsPerDim(result.logp(j), d, flags.dequantize[0], flags.dequantize[1]);
    }
    json["dequantized_bpd"] = dequantized.mean();
    json["dequantized_bpd_per_row"] = ToJson(dequantized);
  }
  if (const LogDensityFunction exact = ExactLogDensity(score, eps)) {
    RowVector exact_logp(y.cols());
    exact(y, exact_logp);
    const RowVector error = result.logp - exact_logp;
    json["exact_logp"] = ToJson(exact_logp);
    json["error"] = {{"mean_abs", error.cwiseAbs().mean()}, {"max_abs", error.cwiseAbs().maxCoeff()}};
    const auto* mixture = dynamic_cast<const GaussianMixtureScore*>(&score);
    const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde);
    if (flags.prior == "standard" && mixture != nullptr && affine != nullptr) {
      RowVector mismatch(y.cols());
      PriorMismatch(*mixture, sde.t_final(), affine->PriorStd(), result.latent, mismatch);
      json["prior_mismatch"] = ToJson(mismatch);
      json["error_minus_mismatch"] = {{"mean_abs", (error - mismatch).cwiseAbs().mean()},
                                      {"max_abs", (error - mismatch).cwiseAbs().maxCoeff()}};
    }
  }
  if (!flags.out.empty()) json["out"] = flags.out;
  if (flags.json) {
    PrintJson(json);
    return;
  }
  std::cout << "log-likelihood of " << y.cols() << " rows (d = " << d << "): mean "
            << result.logp.mean() << " nats, " << result.mean_bits_per_dim << " bits/dim\n"
            << result.summary.BriefReport() << "\n";
  if (json.contains("error")) {
    std::cout << "exact log p: mean |error| " << json["error"]["mean_abs"].get<double>()
              << " nats\n";
  }
}

}  // namespace

void AddLikelihoodCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand(
      "likelihood", "Log-likelihoods (nats, bits/dim) through the probability-flow ODE");
  auto flags = std::make_shared<LikelihoodFlags>();
  AddInputFlags(command, &flags->input,
                "Rows to evaluate (.npy or .csv, one sample per row); drawn from --problem if "
                "absent");
  AddSdeFlags(command, &flags->sde);
  AddOdeFlags(command, &flags->ode);
  command->add_option("--score", flags->score, "analytic (the problem's exact score)")
      ->capture_default_str();
  command->add_option("--divergence", flags->divergence, "exact or hutchinson")
      ->check(CLI::IsMember({"exact", "hutchinson"}))
      ->capture_default_str();
  command->add_option("--probes", flags->probes, "Hutchinson probes per sample (K)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--probe", flags->probe, "Hutchinson probe: rademacher or gaussian")
      ->check(CLI::IsMember({"rademacher", "gaussian"}))
      ->capture_default_str();
  command
      ->add_option("--prior", flags->prior,
                   "standard (N(0, sigma_prior^2 I)) or exact (the problem's p_T)")
      ->check(CLI::IsMember({"standard", "exact"}))
      ->capture_default_str();
  command
      ->add_option("--dequantize", flags->dequantize,
                   "LO HI: rows are 8-bit integers, dequantized uniformly to [LO, HI]; reports "
                   "dequantized bits/dim")
      ->expected(2);
  command->add_option("--out", flags->out, "Write the latent codes x_T (.npy or .csv)");
  command->add_flag("--json", flags->json, "Print one JSON object");
  command->callback([flags] { RunLikelihood(*flags); });
}

}  // namespace scoresde::cli
