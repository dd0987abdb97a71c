// Verification suite: every analytic score against finite differences of its own log-density
// (design.md, section 5: "Scores: analytic vs finite differences of the analytic log-density"),
// divergences and Jacobian–vector products against finite differences of the score, and the
// closed-form E‖s‖² against Monte Carlo.
//
// Finite-difference tolerance, derived per point (never tuned). For a smooth g: R → R evaluated
// with absolute rounding error at most R, the central difference D(h) = (g(h) − g(−h)) / (2h)
// has error at most
//     (h²/6) |g'''| + R / h                                        (truncation + rounding)
// (Ceres's GradientChecker and Nocedal & Wright, "Numerical Optimization", section 8.1). We use
// h = cbrt(ε) · max(1, |x|) ≈ 6e-6 · max(1, |x|), which balances the two terms. The step is made
// exactly representable (the perturbed point minus the point), and for directional derivatives
// the analytic side is evaluated along the exact direction (x₊ − x₋) / (2h), so the
// perturbation's own rounding does not enter.
//   |g'''|: a five-point third difference at H = ε^{1/5} · max(1, |x|) (≈ 7e-4 · max(1, |x|),
//     the step that balances its O(H²) error against its 3R/H³ rounding); we take
//     M3 = 2 |estimate| + 3R/H³. The factor 2 covers the variation of g''' over [−h, h] and the
//     O((H/scale)²) error of the estimate, both below 1e-4 relative here (every distribution's
//     length scale is ≥ 0.06, H ≤ 1e-3 · scale).
//   R: the log-density is a log-sum-exp of terms log w_k − ½ q_k − ½ log det C_k − (d/2) log 2π
//     (Gaussian mixtures) or a sum over coordinates of −ln x − ½ ln(2πv) − z²/(2v) (log-normal);
//     each is computed by O(d) operations with relative error ≤ ε (backward-stable triangular
//     solves with condition numbers ≤ 10), so R = ε_f · Φ with Φ the sum of the magnitudes of
//     those terms and ε_f = 16 (d + 1) ε. For mixtures each component's terms are weighted by its
//     responsibility (see MixtureScales). The score's rounding is ε_f · S with S the magnitude of
//     its terms, including the responsibilities' share of the logits' rounding.
// The analytic side adds ε_f times its own scale (S, or a Hessian bound for the divergence and
// the JVP). As a check on sharpness, every derived tolerance must itself be below 1e-6 relative
// (max(1, |value|)); the suite prints the largest error/tolerance ratio seen.
//
// Monte Carlo: E‖s‖² (closed form for Gaussians and the log-normal) and the identity
// E[∇·s] = −E‖s‖² (integration by parts, for every score here) are checked within 5 standard
// errors of the sample mean (fixed seed; a 5σ two-sided excursion has probability 5.7e-7).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/linear_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"

namespace scoresde {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kSharpness = 1e-6;  // every derived FD tolerance must be below this, relative
constexpr double kStandardErrors = 5.0;
constexpr int kPointsPerTime = 16;
constexpr int kMonteCarloSamples = 20000;

// Rounding scales of one model at one point (see the header comment).
struct Scales {
  double phi;    // magnitude of the terms of log p
  double score;  // magnitude of the score's terms (its rounding is ε_f · score)
  double hess;   // bound on ‖∇² log p‖
};

// What the suite needs from a reference model, type-erased.
struct Model {
  std::string name;
  std::unique_ptr<Sde> sde;
  std::unique_ptr<ScoreModel> score;
  std::function<void(ConstBatchRef, ConstRowVectorRef, RowVectorRef)> log_density;
  std::function<void(double, const NoiseStream&, BatchRef)> sample;
  std::function<Scales(const Vector&, double)> scales;
  std::vector<double> times;
};

double LogDensityAt(const Model& m, const Vector& x, double t) {
  RowVector logp(1);
  m.log_density(x, RowVector::Constant(1, t), logp);
  return logp(0);
}

Vector ScoreAt(const Model& m, const Vector& x, double t) {
  Batch s(x.size(), 1);
  m.score->Evaluate(x, RowVector::Constant(1, t), s);
  return s.col(0);
}

// The exactly representable step: (x + h) − x.
double RepresentableStep(double x, double h) {
  volatile double shifted = x + h;
  return shifted - x;
}

// Central difference along e_i (coordinate derivative) of a scalar function of x, with its
// derived tolerance (truncation with the estimated third derivative, plus rounding R/h).
struct Difference {
  double value;
  double tolerance;
};

Difference CoordinateDifference(const std::function<double(const Vector&)>& g, const Vector& x,
                                int i, double rounding) {
  const double scale = std::max(1.0, std::abs(x(i)));
  const double h = RepresentableStep(x(i), std::cbrt(kEps) * scale);
  const double big_h = RepresentableStep(x(i), std::pow(kEps, 0.2) * scale);
  auto at = [&](double offset) {
    Vector y = x;
    y(i) += offset;
    return g(y);
  };
  const double value = (at(h) - at(-h)) / (2.0 * h);
  const double third = (at(2 * big_h) - 2.0 * at(big_h) + 2.0 * at(-big_h) - at(-2 * big_h)) /
                       (2.0 * big_h * big_h * big_h);
  const double m3 = 2.0 * std::abs(third) + 3.0 * rounding / (big_h * big_h * big_h);
  return {value, h * h / 6.0 * m3 + rounding / h};
}

class ScoreSuite : public ::testing::TestWithParam<std::string> {};

// ---- The models ----------------------------------------------------------------------------

GaussianMixture TestMixture(int d) {
  Vector w(3);
  w << 0.3, 0.5, 0.2;
  std::vector<Vector> means;
  std::vector<Matrix> covs;
  for (int k = 0; k < 3; ++k) {
    Vector mu = Vector::LinSpaced(d, -1.0, 1.0) * (k - 1.0) * 1.5;
    mu(0) += 0.5 * k;
    means.push_back(mu);
    Matrix c = Matrix::Identity(d, d) * (0.3 + 0.2 * k);
    for (int i = 0; i + 1 < d; ++i) c(i, i + 1) = c(i + 1, i) = 0.08 * (k + 1);
    covs.push_back(c);
  }
  return GaussianMixture(w, means, covs);
}

// Scales of a Gaussian mixture p_t at x, from its marginal (independent dense solves). Rounding
// in component k's logit T_k = |log w_k| + ½ q_k + ½ |log det C_k| + (d/2) log 2π reaches log p and
// the score only through its responsibility r_k (log p = log Σ exp(logit_k) moves by Σ r_k δ_k,
// and s = Σ r_k s_k by Σ r_k δ_k (s_k − s)), so
//   Φ = |log p| + Σ_k r_k T_k,   S = Σ_k r_k (‖s_k‖∞ + T_k ‖s_k − s‖∞),
//   ‖∇² log p‖ ≤ Σ_k r_k (‖s_k‖² + ‖C_k⁻¹‖) + ‖s‖².
Scales MixtureScales(const GaussianMixture& p, const Vector& x) {
  const int d = p.dim();
  const int num = p.num_components();
  std::vector<Vector> sk(num);
  Vector logits(num), terms(num), precision_norm(num);
  for (int k = 0; k < num; ++k) {
    const Eigen::LDLT<Matrix> ldlt(p.cov(k));
    const Vector diff = x - p.mean(k);
    sk[k] = -ldlt.solve(diff);
    const double q = -diff.dot(sk[k]);
    const double log_norm = 0.5 * d * std::log(2.0 * std::numbers::pi);
    logits(k) = std::log(p.weight(k)) - 0.5 * q - 0.5 * p.log_det(k) - log_norm;
    terms(k) = std::abs(std::log(p.weight(k))) + 0.5 * q + 0.5 * std::abs(p.log_det(k)) + log_norm;
    precision_norm(k) =
        1.0 /
        Eigen::SelfAdjointEigenSolver<Matrix>(p.cov(k), Eigen::EigenvaluesOnly).eigenvalues()(0);
  }
  const double peak = logits.maxCoeff();
  const double logp = peak + std::log((logits.array() - peak).exp().sum());
  const Vector r = (logits.array() - logp).exp();
  Vector s = Vector::Zero(d);
  for (int k = 0; k < num; ++k) s += r(k) * sk[k];
  Scales out{std::abs(logp), 0.0, s.squaredNorm()};
  for (int k = 0; k < num; ++k) {
    out.phi += r(k) * terms(k);
    out.score +=
        r(k) * (sk[k].cwiseAbs().maxCoeff() + terms(k) * (sk[k] - s).cwiseAbs().maxCoeff());
    out.hess += r(k) * (sk[k].squaredNorm() + precision_norm(k));
  }
  return out;
}

Model MakeMixtureModel(const std::string& name) {
  Model m;
  m.name = name;
  const int d = name == "vp_7d" ? 7 : 2;
  const ScalarAffineSde* scalar = nullptr;
  if (name == "ve_exact" || name == "ve_reference") {
    VeSde::Options options;  // the paper's σmin = 0.01, σmax = 50
    options.kernel = name == "ve_exact" ? VeKernel::kExact : VeKernel::kReference;
    auto sde = std::make_unique<VeSde>(d, options);
    scalar = sde.get();
    m.sde = std::move(sde);
  } else if (name == "vp" || name == "vp_7d") {
    auto sde = std::make_unique<VpSde>(d);
    scalar = sde.get();
    m.sde = std::move(sde);
  } else if (name == "subvp") {
    auto sde = std::make_unique<SubVpSde>(d);
    scalar = sde.get();
    m.sde = std::move(sde);
  }
  std::shared_ptr<GaussianMixtureScore> score;
  if (scalar != nullptr) {
    score = std::make_shared<GaussianMixtureScore>(TestMixture(d), *scalar);
  } else {
    Matrix f(2, 2);
    f << -1.0, 0.5, 0.0, -2.0;
    Vector c(2);
    c << 0.3, -0.1;
    auto sde = std::make_unique<LinearSde>(LinearSde::Options{f, c,
                                                              [](double t) {
                                                                Matrix g(2, 3);
                                                                g << 1.0 + 0.5 * std::sin(2.0 * t),
                                                                    0.3 * t, 0.2, 0.1,
                                                                    0.8 + 0.2 * std::cos(t),
                                                                    0.4 * t * t;
                                                                return g;
                                                              },
                                                              1.0});
    score = std::make_shared<GaussianMixtureScore>(TestMixture(2), *sde);
    m.sde = std::move(sde);
  }
  m.log_density = [score](ConstBatchRef x, ConstRowVectorRef t, RowVectorRef logp) {
    score->LogDensity(x, t, logp);
  };
  m.sample = [score](double t, const NoiseStream& noise, BatchRef x) {
    score->SampleMarginal(t, noise, 0, x);
  };
  m.scales = [score](const Vector& x, double t) { return MixtureScales(score->Marginal(t), x); };
  // Non-owning alias: the model owns the score through m.score.
  m.score = std::make_unique<GaussianMixtureScore>(*score);
  m.times = {0.0, 0.05, 0.3, 0.7, 1.0};
  return m;
}

Model MakeLogNormalModel() {
  Model m;
  m.name = "gbm";
  GbmSde::Options options;
  options.mu = Vector(3);
  options.mu << 0.5, -0.3, 0.1;
  options.sigma = Vector(3);
  options.sigma << 0.4, 0.25, 0.6;
  options.t_final = 1.0;
  auto sde = std::make_unique<GbmSde>(options);
  Vector m0(3), s0(3);
  m0 << 0.0, 0.5, -0.4;
  s0 << 0.3, 0.2, 0.25;
  auto ref = std::make_shared<LogNormalReference>(m0, s0, *sde);
  m.sde = std::move(sde);
  m.log_density = [ref](ConstBatchRef x, ConstRowVectorRef t, RowVectorRef logp) {
    ref->LogDensity(x, t, logp);
  };
  m.sample = [ref](double t, const NoiseStream& noise, BatchRef x) {
    ref->SampleMarginal(t, noise, 0, x);
  };
  m.scales = [ref](const Vector& x, double t) {
    const Vector mt = ref->LogMean(t);
    const Vector vt = ref->LogVariance(t);
    RowVector logp(1);
    ref->LogDensity(x, RowVector::Constant(1, t), logp);
    double phi = std::abs(logp(0));
    double score = 0.0;
    double hess = 0.0;
    for (int i = 0; i < x.size(); ++i) {
      const double lx = std::log(x(i));
      const double z = lx - mt(i);
      phi += std::abs(lx) + 0.5 * std::abs(std::log(2.0 * std::numbers::pi * vt(i))) +
             0.5 * z * z / vt(i);
      const double terms = (std::abs(lx) + std::abs(mt(i)) + std::abs(z)) / vt(i);
      score = std::max(score, (1.0 + terms) / x(i));
      hess = std::max(hess, (1.0 + terms + 1.0 / vt(i)) / (x(i) * x(i)));
    }
    return Scales{phi, score, hess};
  };
  m.score = std::make_unique<LogNormalReference>(*ref);
  m.times = {0.0, 0.05, 0.3, 0.7, 1.0};
  return m;
}

Model MakeModel(const std::string& name) {
  return name == "gbm" ? MakeLogNormalModel() : MakeMixtureModel(name);
}

// Points drawn from p_t itself (typical points, including the regions between components where
// the responsibilities change fastest).
Batch PointsAt(const Model& m, double t, int count, uint64_t seed) {
  Batch x(m.sde->dim(), count);
  m.sample(t, NoiseStream(seed, Stream::kData), x);
  return x;
}

// ---- Finite-difference checks ----------------------------------------------------------------

TEST_P(ScoreSuite, ScoreMatchesFiniteDifferencesOfLogDensity) {
  const Model m = MakeModel(GetParam());
  const int d = m.sde->dim();
  const double eps_f = 16.0 * (d + 1) * kEps;
  double worst_ratio = 0.0;
  double worst_sharpness = 0.0;
  for (double t : m.times) {
    const Batch x = PointsAt(m, t, kPointsPerTime, 100);
    for (int j = 0; j < kPointsPerTime; ++j) {
      const Vector xj = x.col(j);
      const Vector s = ScoreAt(m, xj, t);
      const Scales sc = m.scales(xj, t);
      for (int i = 0; i < d; ++i) {
        const Difference fd = CoordinateDifference(
            [&](const Vector& y) { return LogDensityAt(m, y, t); }, xj, i, eps_f * sc.phi);
        const double tol = fd.tolerance + eps_f * sc.score;
        const double error = std::abs(s(i) - fd.value);
        EXPECT_LE(error, tol) << m.name << " t = " << t << " point " << j << " coordinate " << i
                              << ": analytic " << s(i) << " vs FD " << fd.value;
        EXPECT_LE(tol, kSharpness * std::max(1.0, std::abs(s(i))))
            << m.name << ": derived tolerance not sharp at t = " << t;
        worst_ratio = std::max(worst_ratio, error / tol);
        worst_sharpness = std::max(worst_sharpness, tol / std::max(1.0, std::abs(s(i))));
      }
    }
  }
  std::printf("  %-12s score: max error/tolerance %.3f, max relative tolerance %.2e\n",
              m.name.c_str(), worst_ratio, worst_sharpness);
}

TEST_P(ScoreSuite, DivergenceMatchesTraceOfFiniteDifferenceJacobian) {
  const Model m = MakeModel(GetParam());
  ASSERT_TRUE(m.score->HasDivergence());
  const int d = m.sde->dim();
  const double eps_f = 16.0 * (d + 1) * kEps;
  double worst_ratio = 0.0;
  for (double t : m.times) {
    const Batch x = PointsAt(m, t, kPointsPerTime, 200);
    RowVector div(kPointsPerTime);
    m.score->Divergence(x, RowVector::Constant(kPointsPerTime, t), div);
    for (int j = 0; j < kPointsPerTime; ++j) {
      const Vector xj = x.col(j);
      const Scales sc = m.scales(xj, t);
      double trace = 0.0;
      double tol = eps_f * sc.hess * d;  // the analytic divergence's own rounding
      for (int i = 0; i < d; ++i) {
        const Difference fd = CoordinateDifference(
            [&](const Vector& y) { return ScoreAt(m, y, t)(i); }, xj, i, eps_f * sc.score);
        trace += fd.value;
        tol += fd.tolerance;
      }
      const double error = std::abs(div(j) - trace);
      EXPECT_LE(error, tol) << m.name << " t = " << t << " point " << j << ": analytic " << div(j)
                            << " vs FD " << trace;
      EXPECT_LE(tol, kSharpness * std::max(1.0, std::abs(div(j)))) << m.name << " t = " << t;
      worst_ratio = std::max(worst_ratio, error / tol);
    }
  }
  std::printf("  %-12s divergence: max error/tolerance %.3f\n", m.name.c_str(), worst_ratio);
}

TEST_P(ScoreSuite, JvpMatchesDirectionalFiniteDifferences) {
  const Model m = MakeModel(GetParam());
  ASSERT_TRUE(m.score->HasJvp());
  const int d = m.sde->dim();
  const double eps_f = 16.0 * (d + 1) * kEps;
  double worst_ratio = 0.0;
  for (double t : m.times) {
    const Batch x = PointsAt(m, t, kPointsPerTime, 300);
    Batch directions(d, kPointsPerTime);
    NoiseStream(301, Stream::kUser).FillNormal(0, 0, 0, directions);
    directions.colwise().normalize();
    for (int j = 0; j < kPointsPerTime; ++j) {
      const Vector xj = x.col(j);
      const Scales sc = m.scales(xj, t);
      const double scale = std::max(1.0, xj.cwiseAbs().maxCoeff());
      const double h = std::cbrt(kEps) * scale;
      const double big_h = std::pow(kEps, 0.2) * scale;
      const Vector u = directions.col(j);
      auto score_at = [&](double offset) { return ScoreAt(m, xj + offset * u, t); };
      // The exact direction between the two evaluated points.
      const Vector plus = xj + h * u;
      const Vector minus = xj - h * u;
      const Vector v = (plus - minus) / (2.0 * h);
      const Vector fd = (ScoreAt(m, plus, t) - ScoreAt(m, minus, t)) / (2.0 * h);
      const Vector third = (score_at(2 * big_h) - 2.0 * score_at(big_h) + 2.0 * score_at(-big_h) -
                            score_at(-2 * big_h)) /
                           (2.0 * big_h * big_h * big_h);
      Batch s(d, 1), jv(d, 1);
      m.score->EvaluateWithJvp(xj, RowVector::Constant(1, t), v, s, jv);
      const double rounding = eps_f * sc.score;
      for (int i = 0; i < d; ++i) {
        // The third difference used slightly perturbed directions; its rounding term and the
        // factor 2 cover that (relative 1e-10).
        const double m3 = 2.0 * std::abs(third(i)) + 3.0 * rounding / (big_h * big_h * big_h);
        const double tol = h * h / 6.0 * m3 + rounding / h + eps_f * sc.hess * v.norm();
        const double error = std::abs(jv(i, 0) - fd(i));
        EXPECT_LE(error, tol) << m.name << " t = " << t << " point " << j << " coordinate " << i
                              << ": analytic " << jv(i, 0) << " vs FD " << fd(i);
        EXPECT_LE(tol, kSharpness * std::max(1.0, std::abs(jv(i, 0)))) << m.name << " t = " << t;
        worst_ratio = std::max(worst_ratio, error / tol);
      }
      EXPECT_LE((s.col(0) - ScoreAt(m, xj, t)).norm(), 0.0);
    }
  }
  std::printf("  %-12s jvp: max error/tolerance %.3f\n", m.name.c_str(), worst_ratio);
}

// E[∇·s] = −E‖s‖² for x ~ p_t (integrate ∇·(p s) = Δp over R^d; valid for every score here):
// the sample mean of ‖s‖² + ∇·s is within 5 standard errors of 0.
TEST_P(ScoreSuite, DivergenceIdentityHoldsInExpectation) {
  const Model m = MakeModel(GetParam());
  const int d = m.sde->dim();
  for (double t : {0.3, 1.0}) {
    const Batch x = PointsAt(m, t, kMonteCarloSamples, 400);
    const RowVector times = RowVector::Constant(kMonteCarloSamples, t);
    Batch s(d, kMonteCarloSamples);
    RowVector div(kMonteCarloSamples);
    m.score->Evaluate(x, times, s);
    m.score->Divergence(x, times, div);
    const Eigen::ArrayXd values = (s.colwise().squaredNorm() + div).transpose().array();
    const double mean = values.mean();
    const double se =
        std::sqrt((values - mean).square().sum() / (values.size() - 1.0) / values.size());
    EXPECT_NEAR(mean, 0.0, kStandardErrors * se) << m.name << " t = " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ScoreSuite,
                         ::testing::Values("ve_exact", "ve_reference", "vp", "vp_7d", "subvp",
                                           "linear", "gbm"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// ---- Closed-form E‖s‖² vs Monte Carlo --------------------------------------------------------

// Single Gaussians (tr C_t⁻¹) under each linear SDE and the log-normal's closed form, against
// the sample mean of ‖s‖² over exact draws from p_t, within 5 standard errors.
TEST(ExpectedSquaredNorm, MatchesMonteCarlo) {
  Vector mu(2);
  mu << 1.0, -0.5;
  Matrix cov(2, 2);
  cov << 1.0, 0.3, 0.3, 0.5;
  const GaussianMixture gaussian = GaussianMixture::Gaussian(mu, cov);
  const VpSde vp(2);
  const SubVpSde subvp(2);
  VeSde::Options ve_options;
  ve_options.kernel = VeKernel::kReference;
  const VeSde ve(2, ve_options);
  const Model linear_model = MakeMixtureModel("linear");
  const LinearSde& linear = static_cast<const LinearSde&>(*linear_model.sde);
  std::vector<std::pair<std::string, std::unique_ptr<ScoreModel>>> scores;
  scores.emplace_back("vp", std::make_unique<GaussianMixtureScore>(gaussian, vp));
  scores.emplace_back("subvp", std::make_unique<GaussianMixtureScore>(gaussian, subvp));
  scores.emplace_back("ve_reference", std::make_unique<GaussianMixtureScore>(gaussian, ve));
  scores.emplace_back("linear", std::make_unique<GaussianMixtureScore>(gaussian, linear));
  const Model gbm = MakeLogNormalModel();
  for (double t : {0.0, 0.1, 0.5, 1.0}) {
    for (const auto& [name, score] : scores) {
      const auto* reference = static_cast<const GaussianMixtureScore*>(score.get());
      Batch x(2, kMonteCarloSamples);
      reference->SampleMarginal(t, NoiseStream(500, Stream::kData), 0, x);
      Batch s(2, kMonteCarloSamples);
      score->Evaluate(x, RowVector::Constant(kMonteCarloSamples, t), s);
      const Eigen::ArrayXd norms = s.colwise().squaredNorm().transpose().array();
      const double mean = norms.mean();
      const double se =
          std::sqrt((norms - mean).square().sum() / (norms.size() - 1.0) / norms.size());
      const double expected = *score->ExpectedSquaredNorm(t);
      EXPECT_NEAR(mean, expected, kStandardErrors * se) << name << " t = " << t;
    }
    Batch x(3, kMonteCarloSamples);
    gbm.sample(t, NoiseStream(501, Stream::kData), x);
    Batch s(3, kMonteCarloSamples);
    gbm.score->Evaluate(x, RowVector::Constant(kMonteCarloSamples, t), s);
    const Eigen::ArrayXd norms = s.colwise().squaredNorm().transpose().array();
    const double mean = norms.mean();
    const double se =
        std::sqrt((norms - mean).square().sum() / (norms.size() - 1.0) / norms.size());
    EXPECT_NEAR(mean, *gbm.score->ExpectedSquaredNorm(t), kStandardErrors * se) << "gbm t = " << t;
  }
}

}  // namespace
}  // namespace scoresde
