// The ∇·(GGᵀ) term of the reverse-time SDE is required (design.md, sections 2 and 5): with
// state-dependent noise, reverse sampling recovers the law of X_0 only with it.
//
// Geometric Brownian motion dX_i = μ_i X_i dt + σ_i X_i dW_i with X_0 ~ LogNormal(m0, s0²):
// X_t ~ LogNormal(m_t, v_t), m_t = m0 + (μ − σ²/2)t, v_t = s0² + σ²t, and ∇·(GGᵀ) = 2σ²x. The
// reverse sampler starts from exact draws of p_T (LogNormalReference::SampleMarginal; GBM has no
// data-independent prior) and integrates to t = 0 with the exact score.
//
// What each variant must give, in y = ln x and reverse time τ = T − t (Itô):
//   with the term   dy = (−μ + σ²/2 − σ²(y − m_t)/v_t) dτ + σ dW:   E y_0 = m0, Var y_0 = s0²;
//   without it      the drift gains −2σ² (the omitted −∇·(GGᵀ)/x), so e = E y − m_t obeys
//                   de/dτ = −2σ² − σ²e/v_t, e(0) = 0. With u = e/v and dv/dτ = −σ²:
//                   du/dτ = −2σ²/v, u(T) = −2 ln(v_T/v_0), so
//                   E y_0 = m0 − 2 s0² ln(1 + σ²T/s0²),  Var y_0 = s0² (the term is linear in x).
// With μ = (0.2, −0.1), σ = (0.5, 0.4), s0 = (0.3, 0.25), T = 1 the predicted shift is (−0.239,
// −0.161): 80 and 64 standard errors at n = 10,000.
//
// Tolerances: 5 standard errors (mean: s/√n; variance: the sample variance's delta-method error)
// plus |b̂|, the discretization bias estimated as the difference between the runs with N and N/2
// steps on the same noise (first-order samplers: b(N) ≈ b(N/2) − b(N)). The failure is shown by
// the omitted-term mean matching the predicted shift within the same tolerance and lying more
// than 10 tolerances from m0.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/lognormal_reference.hpp"

namespace scoresde {
namespace {

constexpr double kSigmas = 5.0;

struct LogMoments {
  Vector mean, mean_se, var, var_se;
};

LogMoments Moments(const Batch& x) {
  const Eigen::ArrayXXd y = x.array().log();
  const double n = static_cast<double>(x.cols());
  LogMoments m;
  m.mean = y.rowwise().mean().matrix();
  const Eigen::ArrayXXd centred = y.colwise() - m.mean.array();
  m.var = (centred.square().rowwise().sum() / (n - 1)).matrix();
  m.mean_se = (m.var.array() / n).sqrt().matrix();
  // Var(s²) ≈ (m4 − s⁴)/n.
  const Eigen::ArrayXd m4 = centred.pow(4).rowwise().mean();
  m.var_se = ((m4 - m.var.array().square()) / n).sqrt().matrix();
  return m;
}

Batch Sample(const GbmSde& gbm, const LogNormalReference& reference, const Predictor& predictor,
             DivergenceTerm term, int steps, int n) {
  PcSampler::Options options;
  options.num_steps = steps;
  options.eps = 0.0;
  options.seed = 3;
  options.num_threads = 2;
  options.divergence_term = term;
  options.initial_sampler = [&reference, &gbm](const NoiseStream& noise, int64_t first,
                                               BatchRef x) {
    reference.SampleMarginal(gbm.t_final(), noise, first, x);
  };
  const NoneCorrector none;
  const SampleResult r = PcSampler(gbm, reference, predictor, none, options).Sample(n);
  EXPECT_TRUE(r.summary.ok()) << r.summary.BriefReport();
  return r.x;
}

TEST(DivergenceTermSuite, GbmRecoversTheLawOfX0OnlyWithTheTerm) {
  GbmSde::Options gbm_options;
  gbm_options.mu = Vector(2);
  gbm_options.mu << 0.2, -0.1;
  gbm_options.sigma = Vector(2);
  gbm_options.sigma << 0.5, 0.4;
  const GbmSde gbm(gbm_options);
  Vector m0(2), s0(2);
  m0 << 0.3, -0.2;
  s0 << 0.3, 0.25;
  const LogNormalReference reference(m0, s0, gbm);
  const Eigen::ArrayXd v0 = s0.array().square();
  const Eigen::ArrayXd shift =
      -2.0 * v0 * (1.0 + gbm_options.sigma.array().square() * gbm.t_final() / v0).log();
  const int n = 10000, steps = 200;
  for (const char* name : {"euler-maruyama", "milstein", "srk", "reverse-diffusion"}) {
    SCOPED_TRACE(name);
    const auto predictor = MakePredictor(name);
    for (DivergenceTerm term : {DivergenceTerm::kInclude, DivergenceTerm::kOmit}) {
      const bool include = term == DivergenceTerm::kInclude;
      SCOPED_TRACE(include ? "with the divergence term" : "without it");
      const LogMoments m = Moments(Sample(gbm, reference, *predictor, term, steps, n));
      const LogMoments half = Moments(Sample(gbm, reference, *predictor, term, steps / 2, n));
      for (int i = 0; i < 2; ++i) {
        const double mean_tol = kSigmas * m.mean_se(i) + std::abs(m.mean(i) - half.mean(i));
        const double var_tol = kSigmas * m.var_se(i) + std::abs(m.var(i) - half.var(i));
        const double expected_mean = include ? m0(i) : m0(i) + shift(i);
        EXPECT_NEAR(m.mean(i), expected_mean, mean_tol) << "E ln X_0[" << i << "]";
        EXPECT_NEAR(m.var(i), v0(i), var_tol) << "Var ln X_0[" << i << "]";
        if (!include) {
          // Demonstrably wrong: far outside the tolerance around the true law.
          EXPECT_GT(std::abs(m.mean(i) - m0(i)), 10.0 * mean_tol) << "coordinate " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace scoresde
