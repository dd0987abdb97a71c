// scoresde encode: latent codes through the probability-flow ODE, x_ε → x_T, and with --decode the
// inverse x_T → x_ε (an ODE sampler).
//
//   scoresde encode --problem gaussian_2d.json [--data rows.npy | --n 1000 --seed 0]
//       [--decode [--prior standard|exact]] [--round-trip] [--method rk45 ...] [--out FILE] [--json]
//
// Decoding also runs the fast exponential-integrator samplers of the VE/VP/sub-VP families
// (--method dpm-solver-1|2|3, dpm-solver++2m, edm-heun; --steps is then the evaluation budget of
// DPM-Solver, the steps of DPM-Solver++ and the noise levels of EDM; they stop at x_ε unless
// --denoise asks for the papers' final denoising step). Without --data, encoding draws
// --n rows from the problem's p_0 and decoding draws latents from the prior. With a problem file
// the result is compared with the closed forms: the exact flow map for a Gaussian, and the Fréchet
// distance of decoded samples to p_ε with its Monte-Carlo floor.
#include <cmath>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "flow_cli.hpp"
#include "scoresde/scoring/array_io.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/edm_sampler.hpp"
#include "scoresde/solvers/exponential_samplers.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/flow_reference.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde::cli {
namespace {

struct EncodeFlags {
  InputFlags input;
  SdeFlags sde;
  OdeFlags ode;
  std::string score = "analytic";
  bool decode = false;
  bool round_trip = false;
  std::string prior = "standard";
  std::string grid = "logSNR";
  bool denoise = false;
  std::string out;
  bool json = false;
};

bool IsFastSampler(const std::string& method) {
  return method == "dpm-solver-1" || method == "dpm-solver-2" || method == "dpm-solver-3" ||
         method == "dpm-solver++2m" || method == "edm-heun";
}

// Decodes with a fast sampler (VE/VP/sub-VP only).
OdeSolution FastDecode(const EncodeFlags& flags, const Sde& sde, const ScoreModel& score,
                       double eps, ConstBatchRef latent) {
  const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde);
  Require(affine != nullptr, "scoresde encode", "--method", flags.ode.method,
          "used with --sde ve, vp or subvp");
  const std::string& method = flags.ode.method;
  if (method == "edm-heun") {
    EdmSampler::Options options;
    options.num_steps = flags.ode.steps;
    options.eps = eps;
    options.final_step_to_zero = flags.denoise;
    options.num_threads = flags.ode.threads;
    return EdmSampler(*affine, score, options).Sample(latent);
  }
  const TimeGrid grid = ParseTimeGrid(flags.grid, "--grid");
  if (method == "dpm-solver++2m") {
    DpmSolverPlusPlus2M::Options options;
    options.num_steps = flags.ode.steps;
    options.grid = grid;
    options.eps = eps;
    options.denoise_to_zero = flags.denoise;
    options.num_threads = flags.ode.threads;
    return DpmSolverPlusPlus2M(*affine, score, options).Sample(latent);
  }
  DpmSolver::Options options;
  options.order = method.back() - '0';
  options.nfe = flags.ode.steps;
  options.grid = grid;
  options.eps = eps;
  options.denoise_to_zero = flags.denoise;
  options.num_threads = flags.ode.threads;
  return DpmSolver(*affine, score, options).Sample(latent);
}

nlohmann::json ErrorJson(const Batch& error) {
  const RowVector per_sample = error.cwiseAbs().colwise().maxCoeff();
  return {{"max_abs", per_sample.maxCoeff()},
          {"rms", std::sqrt(error.squaredNorm() / static_cast<double>(error.size()))}};
}

void RunEncode(const EncodeFlags& flags) {
  const bool fast = IsFastSampler(flags.ode.method);
  Require(!fast || flags.decode, "scoresde encode", "--method", flags.ode.method,
          "an ODE method when encoding (the fast samplers only decode)");
  Require(!flags.denoise || fast, "scoresde encode", "--denoise", std::string_view("set"),
          "used with a fast sampler (--method dpm-solver-*, edm-heun)");
  Require(!(flags.round_trip && flags.decode), "scoresde encode", "--round-trip",
          std::string_view("with --decode"), "used when encoding");
  FlowInputs inputs = LoadFlowInputs(
      flags.input, flags.score, flags.sde, /*default_eps=*/1e-3,
      [&](const ScoreChoice& choice, const Problem&, BatchRef x) {
        if (!flags.decode) {
          DrawMarginal(*choice.score, 0.0, NoiseStream(flags.input.seed, Stream::kData), x);
        } else if (flags.prior == "exact") {
          DrawMarginal(*choice.score, choice.sde.sde->t_final(),
                       NoiseStream(flags.input.seed, Stream::kPrior), x);
        } else {
          const auto* affine = dynamic_cast<const ScalarAffineSde*>(choice.sde.sde.get());
          Require(affine != nullptr, "scoresde encode", "--prior", std::string_view("standard"),
                  "used with --sde ve, vp or subvp (GBM has no standard prior; use --prior "
                  "exact)");
          affine->SamplePrior(NoiseStream(flags.input.seed, Stream::kPrior), 0, x);
        }
      });
  const Sde& sde = *inputs.choice.sde.sde;
  const ScoreModel& score = *inputs.choice.score;
  const double eps = inputs.choice.sde.eps;
  const double t_final = sde.t_final();

  OdeSolution solution;
  std::unique_ptr<ProbabilityFlow> flow;
  if (fast) {
    solution = FastDecode(flags, sde, score, eps, inputs.x);
  } else {
    flow = std::make_unique<ProbabilityFlow>(sde, score, MakeOdeOptions(flags.ode));
    solution = flags.decode ? flow->Decode(inputs.x, eps) : flow->Encode(inputs.x, eps);
  }
  if (!flags.out.empty()) WriteArray(flags.out, solution.y);

  nlohmann::json json = SolveJson(solution.summary, solution.nfe);
  json["direction"] = flags.decode ? "decode" : "encode";
  json["dim"] = sde.dim();
  json["n"] = inputs.x.cols();
  json["eps"] = eps;
  json["sde"] = flags.sde.name;
  json["method"] = flags.ode.method;
  json["threads"] = flags.ode.threads;
  if (!fast) {
    json["step_control"] = flags.ode.step_control;
    json["rtol"] = flags.ode.rtol;
    json["atol"] = flags.ode.atol;
  }
  if (fast || !IsAdaptive(ParseOdeMethod(flags.ode.method))) json["steps"] = flags.ode.steps;
  if (flags.decode && flags.input.data.empty()) json["prior"] = flags.prior;
  if (flags.denoise) json["denoised"] = true;
  if (!flags.out.empty()) json["out"] = flags.out;

  if (flags.round_trip) {
    const OdeSolution back = flow->Decode(solution.y, eps);
    json["round_trip_error"] = ErrorJson(back.y - inputs.x);
    json["round_trip_nfe"] = back.summary.nfe;
  }
  const auto* mixture = dynamic_cast<const GaussianMixtureScore*>(&score);
  if (mixture != nullptr && dynamic_cast<const ScalarAffineSde*>(&sde) != nullptr) {
    // A denoised output is the data prediction at ε, not x_ε: no flow map to compare with.
    if (mixture->initial().num_components() == 1 && !flags.denoise) {
      Batch exact(inputs.x.rows(), inputs.x.cols());
      if (flags.decode) {
        GaussianFlowMap(*mixture, t_final, eps, inputs.x, exact);
      } else {
        GaussianFlowMap(*mixture, eps, t_final, inputs.x, exact);
      }
      json["flow_map_error"] = ErrorJson(solution.y - exact);
    }
    if (flags.decode && solution.y.cols() >= 2) {
      // Fréchet distance (squared) of the decoded samples' moments to p_ε, and the same for as many
      // exact draws of p_ε: the Monte-Carlo floor below which the sampler's error is invisible.
      const GaussianMixture target = mixture->Marginal(eps);
      const MomentEstimate decoded = EstimateMoments(solution.y);
      Batch reference(solution.y.rows(), solution.y.cols());
      target.Sample(NoiseStream(flags.input.seed + 1, Stream::kData), 0, reference);
      const MomentEstimate floor = EstimateMoments(reference);
      json["frechet_to_p_eps"] =
          FrechetDistance(decoded.mean, decoded.cov, target.Mean(), target.Covariance());
      json["frechet_floor"] =
          FrechetDistance(floor.mean, floor.cov, target.Mean(), target.Covariance());
    }
  }
  if (flags.json) {
    PrintJson(json);
    return;
  }
  std::cout << (flags.decode ? "decoded " : "encoded ") << inputs.x.cols() << " rows (d = "
            << sde.dim() << ") with " << flags.ode.method << ": "
            << solution.summary.BriefReport() << "\n";
  if (json.contains("flow_map_error")) {
    std::cout << "max |error| against the exact flow map: "
              << json["flow_map_error"]["max_abs"].get<double>() << "\n";
  }
  if (json.contains("round_trip_error")) {
    std::cout << "round trip max |decode(encode(x)) - x|: "
              << json["round_trip_error"]["max_abs"].get<double>() << "\n";
  }
}

}  // namespace

void AddEncodeCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand(
      "encode", "Encode data to latent codes (or --decode latents) through the probability-flow ODE");
  auto flags = std::make_shared<EncodeFlags>();
  AddInputFlags(command, &flags->input,
                "Rows to encode (or latents to decode), .npy or .csv; drawn if absent");
  AddSdeFlags(command, &flags->sde);
  AddOdeFlags(command, &flags->ode,
              "; with --decode also dpm-solver-1, dpm-solver-2, dpm-solver-3, dpm-solver++2m, "
              "edm-heun");
  command->add_option("--score", flags->score, "analytic (the problem's exact score)")
      ->capture_default_str();
  command->add_flag("--decode", flags->decode, "Decode latents x_T to data x_eps");
  command->add_flag("--round-trip", flags->round_trip,
                    "Also decode the codes and report |decode(encode(x)) - x|");
  command
      ->add_option("--prior", flags->prior,
                   "Latents drawn when decoding without --data: standard or exact (p_T)")
      ->check(CLI::IsMember({"standard", "exact"}))
      ->capture_default_str();
  command->add_option("--grid", flags->grid, "DPM-Solver time grid: logSNR, time-uniform, "
                                             "time-quadratic")
      ->capture_default_str();
  command->add_flag("--denoise", flags->denoise,
                    "Fast samplers: finish with the data prediction (DPM-Solver's denoise_to_zero, "
                    "EDM's last step to sigma = 0) instead of stopping at x_eps");
  command->add_option("--out", flags->out, "Write the codes (or decoded rows), .npy or .csv");
  command->add_flag("--json", flags->json, "Print one JSON object");
  command->callback([flags] { RunEncode(*flags); });
}

}  // namespace scoresde::cli
