// Reverse-time sampling with exact scores recovers p_0 (design.md, section 5): every predictor,
// predictor–corrector and corrector-only sampling, on the VE, VP and sub-VP SDEs.
//
// Gaussian data (p_0 = N(μ, Σ₀), exact score linear in x). Every predictor and corrector step is
// then an affine map x' = A x + c + B ΔW + D ΔZ (+ √(2ε) z for Langevin), so the sampler's output
// law is Gaussian and its mean and covariance follow exactly from
//   m' = A m + c,   C' = A C Aᵀ + [B D] Cov(ΔW, ΔZ) [B D]ᵀ,   Cov = [[h, h²/2], [h²/2, h³/3]] ⊗ I.
// A, c, B, D are read off the library's own step functions by probing them with prescribed
// increments (a step is affine, so d + m + m probes determine it), not re-derived by hand. Two
// independent checks, each with a derived tolerance:
//   (a) Simulation: the sample mean and covariance of PcSampler's output (n = 20,000) match this
//       exact chain law within 5 standard errors (EstimateMoments' delta-method errors).
//   (b) Convergence: the Fréchet distance between the chain law and the true p_ε decreases as N
//       grows at the predictor's weak order p (1 for Euler–Maruyama, Milstein, reverse diffusion and
//       ancestral sampling, 2 for SRK on this linear problem): the local order
//       log2(FD(N/2)/FD(N)) at N = 1600 lies within 0.1 of p. The deviation of a local order from p
//       is O(c/N) with c the ratio of the next error coefficient to the leading one; the local
//       orders at N = 200 → 400 → 800 → 1600 (printed) change by less than 0.05 between
//       consecutive doublings, so the bound leaves a margin of two.
// With the Langevin corrector at a fixed snr r, the step ε does not shrink with N and the chain's
// law converges to the corrector's own stationary law, which is biased by O(r²) (for N(0, v) the
// unadjusted Langevin chain is stationary at v/(1 − r²), +2.6% at r = 0.16; see the solvers'
// LangevinCorrector tests). For PC and corrector-only sampling (b) therefore checks that the
// chain's covariance error at N = 1600 is within a factor 2 of r² relative (the bias of one
// Langevin-dominated level), not zero; (a) checks the simulation exactly as for predictors.
//
// Mixture data (two components, nonlinear score): Monte Carlo only. At N = 1000 each sample
// moment (mean, covariance) must match p_ε's within 5 SE + |b̂|, where b̂ = m(N) − m(N/2) from the
// same noise (common random numbers) estimates the O(1/N) discretization bias of a first-order
// sampler (b(N) ≈ b(N/2)/2, so b(N) ≈ m(N/2) − m(N) up to O(1/N²)); and the fraction of samples
// nearer to the first component (by responsibility) matches the exact fraction under p_ε within 5
// binomial standard errors — a check mean and covariance alone would not make.
//
// Monte-Carlo confidence: 5σ two-sided per comparison (5.7e-7), fixed seeds.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

constexpr double kSigmas = 5.0;

std::unique_ptr<ScalarAffineSde> MakeFamily(const std::string& name, int d) {
  if (name == "ve") return std::make_unique<VeSde>(d);
  if (name == "vp") return std::make_unique<VpSde>(d);
  return std::make_unique<SubVpSde>(d);
}

Vector DataMean() {
  Vector m(2);
  m << 0.5, -1.0;
  return m;
}
Matrix DataCov() {
  Matrix c(2, 2);
  c << 1.0, 0.4, 0.4, 0.5;
  return c;
}

// A noise source returning prescribed (unscaled) increments for probing affine steps.
class PrescribedNoise final : public NoiseSource {
 public:
  explicit PrescribedNoise(int dim) : w_(Vector::Zero(dim)), z_(Vector::Zero(dim)) {}
  int dim() const override { return static_cast<int>(w_.size()); }
  void Increment(int64_t, double, double, int64_t, BatchRef dw) const override {
    dw = w_.replicate(1, dw.cols());
  }
  void IncrementWithArea(int64_t, double, double, int64_t, BatchRef dw,
                         BatchRef dz) const override {
    dw = w_.replicate(1, dw.cols());
    dz = z_.replicate(1, dz.cols());
  }
  Vector w_, z_;
};

// x' = A x + c + ξ with ξ ~ N(0, noise) independent of x.
struct AffineStep {
  Matrix a;
  Vector c;
  Matrix noise;
};

AffineStep ProbePredictor(const Predictor& predictor, const StepProblem& problem, double t,
                          double dt, int64_t step) {
  const int d = problem.sde->dim();
  PrescribedNoise noise(d);
  StepWorkspace ws;
  const auto apply = [&](const Vector& x0) {
    Batch x = x0;
    predictor.Step(problem, t, dt, step, noise, 0, x, &ws);
    return Vector(x.col(0));
  };
  AffineStep map;
  map.c = apply(Vector::Zero(d));
  map.a.resize(d, d);
  for (int i = 0; i < d; ++i) map.a.col(i) = apply(Vector::Unit(d, i)) - map.c;
  Matrix b(d, d), dmat = Matrix::Zero(d, d);
  for (int i = 0; i < d; ++i) {
    noise.w_ = Vector::Unit(d, i);
    b.col(i) = apply(Vector::Zero(d)) - map.c;
    noise.w_.setZero();
    if (predictor.needs_area()) {
      noise.z_ = Vector::Unit(d, i);
      dmat.col(i) = apply(Vector::Zero(d)) - map.c;
      noise.z_.setZero();
    }
  }
  const double h = std::abs(dt);
  map.noise = h * b * b.transpose() + 0.5 * h * h * (b * dmat.transpose() + dmat * b.transpose()) +
              (h * h * h / 3.0) * dmat * dmat.transpose();
  return map;
}

// Langevin (either rule in expectation form) at level t: x + ε s(x) + √(2ε) z.
AffineStep LangevinMap(const ScoreModel& score, double t, double step_size, int d) {
  Batch zero = Batch::Zero(d, 1), s0(d, 1), s(d, 1);
  const RowVector times = RowVector::Constant(1, t);
  score.Evaluate(zero, times, s0);
  AffineStep map;
  map.a = Matrix::Identity(d, d);
  for (int i = 0; i < d; ++i) {
    score.Evaluate(Vector::Unit(d, i), times, s);
    map.a.col(i) += step_size * (s - s0);
  }
  map.c = step_size * s0.col(0);
  map.noise = 2.0 * step_size * Matrix::Identity(d, d);
  return map;
}

struct GaussianLaw {
  Vector mean;
  Matrix cov;
};

void Apply(const AffineStep& map, GaussianLaw* law) {
  law->mean = map.a * law->mean + map.c;
  law->cov = map.a * law->cov * map.a.transpose() + map.noise;
  law->cov = 0.5 * (law->cov + law->cov.transpose());
}

// The exact law of a PcSampler's output for Gaussian data (denoise off), started from `start`.
GaussianLaw ChainLaw(const ScalarAffineSde& sde, const ScoreModel& score, const Predictor& predictor,
                     const Corrector& corrector, const PcSampler::Options& options,
                     const GaussianLaw& start) {
  const PcSampler sampler(sde, score, predictor, corrector, options);
  const int d = sde.dim();
  const StepProblem problem = StepProblem::Reverse(sde, score);
  GaussianLaw law = start;
  const double h = (sde.t_final() - options.eps) / options.num_steps;
  for (int i = 0; i < options.num_steps; ++i) {
    const double t = sampler.Time(i), t_next = sampler.Time(i + 1);
    Apply(ProbePredictor(predictor, problem, t, t_next - t, i), &law);
    if (options.corrector_steps == 0 || corrector.nfe_per_step() == 0) continue;
    const double alpha = LangevinAlpha(sde, t_next, h);
    double step_size;
    if (corrector.name() == "annealed-langevin") {
      const double sigma = sde.MarginalStd(t_next);
      step_size = 2.0 * alpha * std::pow(options.snr * sigma, 2);
    } else {
      step_size = 2.0 * alpha * options.snr * options.snr * d / sampler.expected_squared_norms()[i];
    }
    const AffineStep langevin = LangevinMap(score, t_next, step_size, d);
    for (int j = 0; j < options.corrector_steps; ++j) Apply(langevin, &law);
  }
  return law;
}

struct Config {
  std::string sde;
  std::string predictor;
  std::string corrector;
};

std::vector<Config> Configs(const std::vector<std::string>& families = {"ve", "vp", "subvp"}) {
  std::vector<Config> configs;
  for (const std::string& sde : families) {
    for (const std::string predictor :
         {"euler-maruyama", "milstein", "srk", "reverse-diffusion", "ancestral"}) {
      if (predictor == "ancestral" && sde == "subvp") continue;  // not defined there
      configs.push_back({sde, predictor, "none"});
    }
    configs.push_back({sde, "reverse-diffusion", "langevin"});
    configs.push_back({sde, "euler-maruyama", "annealed-langevin"});
    configs.push_back({sde, "none", "langevin"});
  }
  return configs;
}

std::string Name(const Config& c) { return c.sde + "/" + c.predictor + "+" + c.corrector; }

// (b): the chain law converges to p_ε at the weak order (predictors), or to the corrector's O(r²)
// bias (PC and corrector-only).
TEST(ReverseSamplingSuite, GaussianChainLawConvergesToTheTrueMarginal) {
  for (const Config& c : Configs()) {
    SCOPED_TRACE(Name(c));
    const auto sde = MakeFamily(c.sde, 2);
    const GaussianMixtureScore score(GaussianMixture::Gaussian(DataMean(), DataCov()), *sde);
    const auto predictor = MakePredictor(c.predictor);
    const auto corrector = MakeCorrector(c.corrector);
    PcSampler::Options options;
    const GaussianMixture target = score.Marginal(options.eps);
    // Start from the exact p_T so that only the discretization is measured (the prior's mismatch
    // with p_T is an N-independent floor, reported by the sampler table).
    const GaussianMixture p_t = score.Marginal(sde->t_final());
    const GaussianLaw start{p_t.mean(0), p_t.cov(0)};
    std::vector<double> distances;
    const std::vector<int> steps = {200, 400, 800, 1600};
    for (int n : steps) {
      options.num_steps = n;
      const GaussianLaw law = ChainLaw(*sde, score, *predictor, *corrector, options, start);
      distances.push_back(
          std::sqrt(FrechetDistance(law.mean, law.cov, target.mean(0), target.cov(0))));
      if (n == steps.back() && c.corrector != "none") {
        // Relative covariance error of the corrector-dominated chain: O(r²).
        const double relative = (law.cov - target.cov(0)).norm() / target.cov(0).norm();
        std::printf("%-40s N = %d  relative covariance error %.4f (r^2 = %.4f)\n",
                    Name(c).c_str(), n, relative, options.snr * options.snr);
        EXPECT_LT(relative, 2.0 * options.snr * options.snr);
      }
    }
    std::printf("%-40s FD:", Name(c).c_str());
    for (size_t k = 0; k < distances.size(); ++k) std::printf(" %.3e", distances[k]);
    std::printf("  local orders:");
    for (size_t k = 1; k < distances.size(); ++k) {
      std::printf(" %.3f", std::log2(distances[k - 1] / distances[k]));
    }
    std::printf("\n");
    if (c.corrector == "none") {
      // The distance falls at least at the weak order (faster where the leading coefficient
      // nearly vanishes: Euler–Maruyama on VE Gaussian data shows ≈ 2 over this range).
      const double order = predictor->weak_order(NoiseType::kScalar);
      for (size_t k = 1; k < distances.size(); ++k) {
        EXPECT_GT(std::log2(distances[k - 1] / distances[k]), order - 0.1) << "doubling " << k;
      }
    }
  }
}

PcSampler::InitialSampler ExactStart(const GaussianMixtureScore& score, double t) {
  return [&score, t](const NoiseStream& noise, int64_t first, BatchRef x) {
    score.SampleMarginal(t, noise, first, x);
  };
}

// (a): PcSampler's samples have the chain's exact law (5 SE on each mean and covariance entry).
void CheckGaussianSamples(const std::string& family) {
  for (const Config& c : Configs({family})) {
    SCOPED_TRACE(Name(c));
    const auto sde = MakeFamily(c.sde, 2);
    const GaussianMixtureScore score(GaussianMixture::Gaussian(DataMean(), DataCov()), *sde);
    const auto predictor = MakePredictor(c.predictor);
    const auto corrector = MakeCorrector(c.corrector);
    PcSampler::Options options;
    options.num_steps = 50;
    options.seed = 11;
    options.num_threads = 2;
    options.initial_sampler = ExactStart(score, sde->t_final());
    const GaussianMixture p_t = score.Marginal(sde->t_final());
    const GaussianLaw law =
        ChainLaw(*sde, score, *predictor, *corrector, options, {p_t.mean(0), p_t.cov(0)});
    const SampleResult result =
        PcSampler(*sde, score, *predictor, *corrector, options).Sample(10000);
    ASSERT_TRUE(result.summary.ok()) << result.summary.BriefReport();
    const MomentEstimate m = EstimateMoments(result.x);
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(m.mean(i), law.mean(i), kSigmas * m.mean_stderr(i)) << "mean " << i;
      for (int j = 0; j < 2; ++j) {
        EXPECT_NEAR(m.cov(i, j), law.cov(i, j), kSigmas * m.cov_stderr(i, j))
            << "cov " << i << j;
      }
    }
  }
}

TEST(ReverseSamplingSuite, GaussianSamplesHaveTheChainLawVe) { CheckGaussianSamples("ve"); }
TEST(ReverseSamplingSuite, GaussianSamplesHaveTheChainLawVp) { CheckGaussianSamples("vp"); }
TEST(ReverseSamplingSuite, GaussianSamplesHaveTheChainLawSubVp) { CheckGaussianSamples("subvp"); }

// (c): mixtures. p_0 = 0.3 N(m₁, C₁) + 0.7 N(m₂, C₂), well separated.
GaussianMixture TwoComponents() {
  Vector w(2), m1(2), m2(2);
  w << 0.3, 0.7;
  m1 << -1.5, 0.5;
  m2 << 1.0, -0.5;
  Matrix c1(2, 2), c2(2, 2);
  c1 << 0.2, 0.05, 0.05, 0.1;
  c2 << 0.15, -0.05, -0.05, 0.3;
  return GaussianMixture(w, {m1, m2}, {c1, c2});
}

// Fraction of columns whose responsibility under `law` is larger for component 0.
double FirstComponentFraction(const GaussianMixture& law, ConstBatchRef x) {
  const GaussianMixture first = GaussianMixture::Gaussian(law.mean(0), law.cov(0));
  const GaussianMixture second = GaussianMixture::Gaussian(law.mean(1), law.cov(1));
  RowVector l1(x.cols()), l2(x.cols());
  first.LogDensity(x, l1);
  second.LogDensity(x, l2);
  const double w1 = std::log(law.weight(0)), w2 = std::log(law.weight(1));
  return ((l1.array() + w1) > (l2.array() + w2)).cast<double>().mean();
}

void CheckMixtureSamples(const std::string& family) {
  const int n = 4000;
  for (const Config& c : Configs({family})) {
    // Corrector-only sampling moves samples by one Langevin step of relative size 2r² per level,
    // so it needs many more levels than a predictor (the paper's C2000 uses 2000): 1000 here.
    const int steps = c.predictor == "none" ? 1000 : 200;
    if (c.predictor == "milstein" || c.corrector == "annealed-langevin") continue;  // = EM here
    SCOPED_TRACE(Name(c));
    const auto sde = MakeFamily(c.sde, 2);
    const GaussianMixtureScore score(TwoComponents(), *sde);
    const auto predictor = MakePredictor(c.predictor);
    const auto corrector = MakeCorrector(c.corrector);
    PcSampler::Options options;
    options.seed = 5;
    options.num_threads = 2;
    options.pilot_size = 500;  // relative error √(2/(dP)) = 3% of E‖s‖², in the step size only
    options.initial_sampler = ExactStart(score, sde->t_final());
    options.num_steps = steps;
    const Batch x = PcSampler(*sde, score, *predictor, *corrector, options).Sample(n).x;
    options.num_steps = steps / 2;
    const Batch x_half = PcSampler(*sde, score, *predictor, *corrector, options).Sample(n).x;
    const GaussianMixture target = score.Marginal(options.eps);
    const MomentEstimate m = EstimateMoments(x), m_half = EstimateMoments(x_half);
    const Vector mean = target.Mean();
    const Matrix cov = target.Covariance();
    // The corrector's stationary bias (relative r² on the covariance) where a corrector runs.
    const double corrector_bias = c.corrector == "none" ? 0.0 : options.snr * options.snr;
    for (int i = 0; i < 2; ++i) {
      const double bias = std::abs(m.mean(i) - m_half.mean(i));
      EXPECT_NEAR(m.mean(i), mean(i),
                  kSigmas * m.mean_stderr(i) + bias + corrector_bias * std::sqrt(cov(i, i)))
          << "mean " << i;
      for (int j = 0; j < 2; ++j) {
        const double cov_bias = std::abs(m.cov(i, j) - m_half.cov(i, j));
        EXPECT_NEAR(m.cov(i, j), cov(i, j),
                    kSigmas * m.cov_stderr(i, j) + cov_bias +
                        corrector_bias * std::sqrt(cov(i, i) * cov(j, j)))
            << "cov " << i << j;
      }
    }
    // Mode weights: the exact fraction under p_ε from exact draws, binomial errors of both.
    Batch exact(2, 20000);
    target.Sample(NoiseStream(99, Stream::kData), 0, exact);
    const double f_exact = FirstComponentFraction(target, exact);
    const double f = FirstComponentFraction(target, x);
    const double se = std::sqrt(f_exact * (1 - f_exact) / n + f_exact * (1 - f_exact) / 20000.0);
    EXPECT_NEAR(f, f_exact, kSigmas * se + std::abs(f - FirstComponentFraction(target, x_half)));
  }
}

TEST(ReverseSamplingSuite, MixtureSamplesRecoverTheMarginalVe) { CheckMixtureSamples("ve"); }
TEST(ReverseSamplingSuite, MixtureSamplesRecoverTheMarginalVp) { CheckMixtureSamples("vp"); }
TEST(ReverseSamplingSuite, MixtureSamplesRecoverTheMarginalSubVp) { CheckMixtureSamples("subvp"); }

}  // namespace
}  // namespace scoresde
