// The verification part of `scoresde demo` (demo.hpp): quick checks against closed forms.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <string>
#include <vector>

#include "demo.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/reverse.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/likelihood.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/convergence.hpp"
#include "scoresde/verification/flow_reference.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"
#include "scoresde/verification/statistics.hpp"
#include "selfcheck.hpp"

namespace scoresde::cli {
namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

nlohmann::json Check(const std::string& name, double value, double tolerance) {
  return {{"check", name}, {"value", value}, {"tolerance", tolerance}, {"passed", value <= tolerance}};
}

// The verification Gaussian: N((1, −0.5), [[0.5, 0.2], [0.2, 0.3]]), correlated so that the flow
// map is not diagonal in the coordinates.
GaussianMixture VerificationGaussian() {
  Vector mean(2);
  mean << 1.0, -0.5;
  Matrix cov(2, 2);
  cov << 0.5, 0.2, 0.2, 0.3;
  return GaussianMixture::Gaussian(mean, cov);
}

std::shared_ptr<const ScalarAffineSde> VerificationSde(const DemoOptions& o) {
  auto sde = std::dynamic_pointer_cast<const ScalarAffineSde>(MakeSde(o.sde, 2, 1e-3).sde);
  Require(sde != nullptr, "scoresde demo", "--sde", std::string_view(o.sde.name), "ve, vp or subvp");
  return sde;
}

std::string OrderToString(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f", x);
  return buffer;
}

}  // namespace

nlohmann::json SelfCheckSection() {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<SelfCheck> self = RunReferenceSelfCheck();
  nlohmann::json checks = nlohmann::json::array();
  for (const SelfCheck& c : self) checks.push_back(Check(c.name, c.value, c.tolerance));
  return {{"checks", checks}, {"seconds", Seconds(start)}};
}

nlohmann::json ConvergenceSection(const DemoOptions& o, const ReportFolder& folder,
                                  const DemoLog& log) {
  // Three problems of the harness, each with its own solvers and recommended levels and path
  // counts (chosen there so that the 99% intervals are narrower than 0.5): multiplicative noise
  // (GBM: Euler–Maruyama 0.5, Milstein 1, SRIW1 1.5), non-commutative noise (Milstein without
  // Lévy areas drops to 0.5: the harness sees order drops), and the reverse-time SDE of a Gaussian
  // mixture with its exact score (the samplers of the paper, additive noise: strong order 1).
  const std::vector<std::string> names = {"gbm-scalar", "non-commutative", "vp-mixture-reverse"};
  const auto start = std::chrono::steady_clock::now();
  std::vector<ConvergenceResult> all;
  for (const std::string& name : names) {
    log("convergence orders: " + name);
    const ConvergenceProblem problem = StandardConvergenceProblem(name);
    std::vector<std::unique_ptr<Predictor>> owned;
    std::vector<const Predictor*> predictors;
    for (const std::string& solver : problem.solvers) {
      owned.push_back(MakePredictor(solver));
      predictors.push_back(owned.back().get());
    }
    ConvergenceOptions options = problem.recommended;
    options.num_threads = o.threads;
    const std::vector<ConvergenceResult> results =
        RunConvergenceStudies(problem, predictors, options);
    all.insert(all.end(), results.begin(), results.end());
  }
  WriteConvergenceCsv(folder.File("convergence.csv"), all);

  // design.md section 4's form of `scoresde verify convergence --json`, and one check per order.
  nlohmann::json results = nlohmann::json::array();
  nlohmann::json checks = nlohmann::json::array();
  for (const ConvergenceResult& r : all) {
    results.push_back(ConvergenceJson(r));
    // A check passes when the interval contains the theoretical order: value = distance from the
    // order to the interval (0 inside).
    const auto outside = [](const OrderEstimate& e, double p) {
      return p < e.ci_low ? e.ci_low - p : (p > e.ci_high ? p - e.ci_high : 0.0);
    };
    checks.push_back(Check(r.problem + ", " + r.solver + ": strong order " +
                               OrderToString(r.strong.order) + " [" +
                               OrderToString(r.strong.ci_low) + ", " +
                               OrderToString(r.strong.ci_high) + "] contains " +
                               OrderToString(r.expected_strong),
                           outside(r.strong, r.expected_strong), 0.0));
    checks.push_back(Check(r.problem + ", " + r.solver + ": weak order " +
                               OrderToString(r.weak.order) + " [" + OrderToString(r.weak.ci_low) +
                               ", " + OrderToString(r.weak.ci_high) + "] contains " +
                               OrderToString(r.expected_weak),
                           outside(r.weak, r.expected_weak), 0.0));
  }
  folder.WriteJson("convergence.json", {{"results", results}});
  return {{"results", results},
          {"checks", checks},
          {"seconds", Seconds(start)},
          {"file", "convergence.csv"}};
}

nlohmann::json GaussianLikelihoodSection(const DemoOptions& o, const ReportFolder& folder,
                                         const DemoLog& log) {
  log("likelihood exactness on a Gaussian");
  const auto start = std::chrono::steady_clock::now();
  const auto sde = VerificationSde(o);
  const GaussianMixtureScore score(VerificationGaussian(), *sde);
  const double eps = 1e-5;
  const double t_final = sde->t_final();
  constexpr int64_t kPoints = 500;
  Batch x(2, kPoints);
  score.initial().Sample(NoiseStream(o.seed, Stream::kData), 0, x);
  RowVector truth(kPoints);
  score.LogDensity(x, RowVector::Constant(kPoints, eps), truth);
  const GaussianMixture p_final = score.Marginal(t_final);
  const LogDensityFunction exact_prior = [&p_final](ConstBatchRef y, RowVectorRef logp) {
    p_final.LogDensity(y, logp);
  };

  CsvTable table({"prior", "tolerance", "nfe", "mean_abs_error", "max_abs_error",
                  "mean_abs_error_minus_mismatch"});
  nlohmann::json rows = nlohmann::json::array();
  double error_at_1e5 = 0.0, error_loosest = 0.0, error_tightest = 0.0;
  const std::vector<double> tolerances = {1e-3, 1e-4, 1e-5, 1e-6, 1e-7};
  for (double tol : tolerances) {
    LikelihoodOptions options;
    options.ode.rtol = options.ode.atol = tol;
    options.ode.num_threads = o.threads;
    options.eps = eps;
    const LikelihoodResult result = LikelihoodEstimator(*sde, score, options, exact_prior).Compute(x);
    const RowVector error = (result.logp - truth).cwiseAbs();
    const double nfe = static_cast<double>(result.nfe.sum()) / kPoints;
    table.AddRow({"exact", tol, nfe, error.mean(), error.maxCoeff(), error.mean()});
    rows.push_back({{"prior", "exact"}, {"tolerance", tol}, {"nfe", nfe},
                    {"mean_abs_error", error.mean()}, {"max_abs_error", error.maxCoeff()}});
    if (tol == 1e-5) error_at_1e5 = error.mean();
    if (tol == tolerances.front()) error_loosest = error.mean();
    if (tol == tolerances.back()) error_tightest = error.mean();
  }
  // The standard prior N(0, σ_prior² I): the error is the closed-form mismatch
  // log π(x_T) − log p_T(x_T) plus the solve's own error.
  LikelihoodOptions options;
  options.ode.num_threads = o.threads;
  options.eps = eps;
  const LikelihoodResult standard = LikelihoodEstimator(*sde, score, options).Compute(x);
  RowVector mismatch(kPoints);
  PriorMismatch(score, t_final, sde->PriorStd(), standard.latent, mismatch);
  const RowVector raw = standard.logp - truth;
  const double beyond_mismatch = (raw - mismatch).cwiseAbs().mean();
  const double nfe = static_cast<double>(standard.nfe.sum()) / kPoints;
  table.AddRow({"standard", 1e-5, nfe, raw.cwiseAbs().mean(), raw.cwiseAbs().maxCoeff(),
                beyond_mismatch});
  rows.push_back({{"prior", "standard"}, {"tolerance", 1e-5}, {"nfe", nfe},
                  {"mean_abs_error", raw.cwiseAbs().mean()},
                  {"max_abs_error", raw.cwiseAbs().maxCoeff()},
                  {"mean_abs_error_minus_mismatch", beyond_mismatch},
                  {"mean_abs_mismatch", mismatch.cwiseAbs().mean()}});
  folder.WriteCsv("likelihood_gaussian.csv", table);

  // Bounds: issue 4's requirement (1e-3 nats per sample at rtol = atol = 1e-5, the error then
  // being the local error control's accumulated O(tol) over the solve), and that it shrinks as the
  // tolerance does.
  nlohmann::json checks = nlohmann::json::array(
      {Check("exact prior, rtol = atol = 1e-5: mean |log p error| (nats)", error_at_1e5, 1e-3),
       Check("error shrinks with the tolerance: error(1e-7) / error(1e-3)",
             error_tightest / error_loosest, 1.0),
       Check("standard prior: mean |error - closed-form prior mismatch| (nats)",
             beyond_mismatch, 1e-3)});
  return {{"rows", rows},
          {"points", kPoints},
          {"sde", sde->family() == SdeFamily::kVe ? "ve" : (sde->family() == SdeFamily::kVp ? "vp" : "subvp")},
          {"checks", checks},
          {"seconds", Seconds(start)},
          {"file", "likelihood_gaussian.csv"}};
}

nlohmann::json NfeErrorSection(const DemoOptions& o, const ReportFolder& folder,
                               const DemoLog& log) {
  log("NFE against error on a Gaussian (every sampler, exact score)");
  const auto start = std::chrono::steady_clock::now();
  const auto sde = VerificationSde(o);
  const GaussianMixtureScore score(VerificationGaussian(), *sde);
  const double eps = 1e-3;
  const double t_final = sde->t_final();
  constexpr int64_t kSamples = 10000;
  const GaussianMixture target = score.Marginal(eps);
  const Vector mean = target.mean(0);
  const Matrix cov = target.cov(0);
  // Every sampler starts from exact draws of p_T, so what remains is the discretization error.
  const PcSampler::InitialSampler exact_start = [&score, t_final](const NoiseStream& noise,
                                                                  int64_t first, BatchRef x) {
    score.SampleMarginal(t_final, noise, first, x);
  };
  const auto frechet = [&](const Batch& y) {
    const MomentEstimate m = EstimateMoments(y);
    return std::sqrt(FrechetDistance(m.mean, m.cov, mean, cov));
  };
  // The Monte-Carlo floor: exact draws of p_ε.
  Batch exact(2, kSamples);
  score.SampleMarginal(eps, NoiseStream(o.seed, Stream::kData), 0, exact);
  const double floor = frechet(exact);

  CsvTable table({"family", "method", "steps", "tolerance", "nfe", "frechet", "path_error"});
  const auto record = [&](const std::string& family, const std::string& method, double steps,
                          double tol, double nfe, double distance, double path_error) {
    table.AddRow({family, method, steps, tol, nfe, distance, path_error});
  };
  const std::vector<int> levels = {8, 16, 32, 64, 128, 256, 512};
  struct Sampler {
    std::string name, predictor, corrector;
  };
  for (const Sampler& s : std::vector<Sampler>{{"euler-maruyama", "euler-maruyama", "none"},
                                               {"reverse-diffusion", "reverse-diffusion", "none"},
                                               {"pc", "reverse-diffusion", "langevin"}}) {
    const auto predictor = MakePredictor(s.predictor);
    const auto corrector = MakeCorrector(s.corrector);
    for (int n : levels) {
      PcSampler::Options options;
      options.num_steps = n;
      options.eps = eps;
      options.seed = o.seed;
      options.num_threads = o.threads;
      options.initial_sampler = exact_start;
      try {
        const PcSampler sampler(*sde, score, *predictor, *corrector, options);
        const SampleResult r = sampler.Sample(kSamples);
        record("sde", s.name, n, 0.0, static_cast<double>(r.summary.nfe), frechet(r.x), NAN);
      } catch (const InvalidArgument&) {
        // Too few steps for the discrete chain (VP: β(t)·h must stay below 1).
      } catch (const NumericalFailure&) {
        // The scheme diverged at this step size.
      }
    }
  }
  // The probability flow from the same kind of start; the per-path error is measured against the
  // exact flow map of the Gaussian (flow_reference.hpp).
  Batch latent(2, kSamples);
  score.SampleMarginal(t_final, NoiseStream(o.seed, Stream::kPrior), 0, latent);
  Batch mapped(2, kSamples);
  GaussianFlowMap(score, t_final, eps, latent, mapped);
  const auto run_flow = [&](const std::string& method, const OdeOptions& ode, double steps,
                            double tol) {
    const ProbabilityFlow flow(*sde, score, ode);
    const OdeSolution sol = flow.Decode(latent, eps);
    const double path_error =
        std::sqrt((sol.y - mapped).colwise().squaredNorm().mean());
    const double nfe = static_cast<double>(sol.nfe.sum()) / kSamples;
    record("ode", method, steps, tol, nfe, frechet(sol.y), path_error);
  };
  for (const OdeMethod method : {OdeMethod::kEuler, OdeMethod::kHeun, OdeMethod::kRk4}) {
    for (int n : {2, 4, 8, 16, 32, 64, 128, 256}) {
      OdeOptions ode;
      ode.method = method;
      ode.num_steps = n;
      ode.num_threads = o.threads;
      try {
        run_flow(std::string(ToString(method)), ode, n, 0.0);
      } catch (const NumericalFailure&) {
      }
    }
  }
  for (double tol : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7}) {
    OdeOptions ode;
    ode.method = OdeMethod::kDopri5;
    ode.rtol = ode.atol = tol;
    ode.num_threads = o.threads;
    run_flow("rk45", ode, 0.0, tol);
  }
  folder.WriteCsv("nfe_error.csv", table);
  return {{"samples", kSamples},
          {"eps", eps},
          {"floor", floor},
          {"rows", table.num_rows()},
          {"seconds", Seconds(start)},
          {"file", "nfe_error.csv"}};
}

nlohmann::json DivergenceTermSection(const DemoOptions& o, const ReportFolder& folder,
                                     const DemoLog& log) {
  log("the divergence term: reverse-time GBM with and without div(GG^T)");
  const auto start = std::chrono::steady_clock::now();
  // verification/problems/lognormal_2d.json under GBM with μ = 0, σ = 0.5 (the CLI's defaults):
  // G = diag(σx) depends on the state, ∇·(GGᵀ) = 2σ²x.
  const GbmSde sde(2, 0.0, 0.5);
  Vector m0(2), s0(2);
  m0 << 0.0, 0.5;
  s0 << 0.3, 0.2;
  const LogNormalReference score(m0, s0, sde);
  constexpr int64_t kSamples = 20000;
  constexpr int kSteps = 500;
  const auto predictor = MakePredictor("sriw1");
  const auto corrector = MakeCorrector("none");
  CsvTable table({"divergence_term", "coordinate", "mean_log_x", "exact", "standard_error", "z"});
  nlohmann::json rows = nlohmann::json::array();
  double z_with = 0.0, z_without = INFINITY;
  for (const DivergenceTerm term : {DivergenceTerm::kInclude, DivergenceTerm::kOmit}) {
    PcSampler::Options options;
    options.num_steps = kSteps;
    options.eps = 0.0;
    options.seed = o.seed;
    options.num_threads = o.threads;
    options.divergence_term = term;
    options.initial_sampler = [&score, &sde](const NoiseStream& noise, int64_t first, BatchRef x) {
      score.SampleMarginal(sde.t_final(), noise, first, x);
    };
    const PcSampler sampler(sde, score, *predictor, *corrector, options);
    const SampleResult r = sampler.Sample(kSamples);
    const Batch log_x = r.x.array().log().matrix();
    const MomentEstimate m = EstimateMoments(log_x);
    const std::string name = term == DivergenceTerm::kInclude ? "included" : "omitted";
    double worst = 0.0;
    for (int i = 0; i < 2; ++i) {
      const double z = std::abs(m.mean(i) - m0(i)) / m.mean_stderr(i);
      worst = std::max(worst, z);
      table.AddRow({name, i, m.mean(i), m0(i), m.mean_stderr(i), z});
      rows.push_back({{"divergence_term", name}, {"coordinate", i}, {"mean_log_x", m.mean(i)},
                      {"exact", m0(i)}, {"standard_error", m.mean_stderr(i)}, {"z", z}});
    }
    if (term == DivergenceTerm::kInclude) {
      z_with = worst;
    } else {
      z_without = std::min(z_without, worst);
    }
  }
  folder.WriteCsv("divergence_term.csv", table);
  // With the term the sampler targets the law of X_0: |mean − m0| within 5 standard errors
  // (SRIW1 has weak order 2, so at h = 1/500 its bias is O(h²) = 4e-6 relative, far below the
  // standard errors of 20000 samples, 2e-3 and 1.4e-3). Without it the sampler targets a
  // different law: its deviation must exceed 5 standard errors.
  nlohmann::json checks = nlohmann::json::array(
      {Check("with div(GG^T): max |mean ln X_0 - m0| / SE", z_with, 5.0),
       Check("without div(GG^T) the law is wrong: 5 SE / min |mean ln X_0 - m0|", 5.0 / z_without,
             1.0)});
  return {{"rows", rows},
          {"samples", kSamples},
          {"steps", kSteps},
          {"predictor", "sriw1"},
          {"checks", checks},
          {"seconds", Seconds(start)},
          {"file", "divergence_term.csv"}};
}

}  // namespace scoresde::cli
