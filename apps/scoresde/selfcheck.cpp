#include "selfcheck.hpp"

#include <cmath>
#include <limits>
#include <memory>

#include "scoresde/sde/brownian.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"

namespace scoresde::cli {

namespace {

// The built-in data laws: a correlated 2-D Gaussian and a 3-component 2-D mixture.
GaussianMixture BuiltInMixture() {
  Vector weights(3);
  weights << 0.5, 0.3, 0.2;
  Matrix c0(2, 2), c1(2, 2), c2(2, 2);
  c0 << 0.30, 0.10, 0.10, 0.20;
  c1 << 0.10, 0.00, 0.00, 0.40;
  c2 << 0.25, -0.05, -0.05, 0.15;
  return GaussianMixture(weights, {Vector::Constant(2, -1.0), Vector::Constant(2, 1.5),
                                   (Vector(2) << 2.0, -1.0).finished()},
                         {c0, c1, c2});
}

// max over points and coordinates of |s − ∇log p| / max(1, |s|), the gradient by central
// differences with step h = 1e-5 (error ≈ h²/6·|∂³log p| ≈ 1e-10·|∂³log p|, rounding ε|log p|/h ≈
// 2e-11·|log p|; 1e-6 bounds both for these smooth densities on their bulk).
template <typename Score>
double ScoreVsFiniteDifferences(const Score& score, const Batch& x, double t) {
  const Eigen::Index d = x.rows();
  RowVector times = RowVector::Constant(x.cols(), t);
  Batch s(d, x.cols());
  score.Evaluate(x, times, s);
  double worst = 0.0;
  const double h = 1e-5;
  for (Eigen::Index i = 0; i < d; ++i) {
    Batch plus = x, minus = x;
    plus.row(i).array() += h;
    minus.row(i).array() -= h;
    RowVector lp(x.cols()), lm(x.cols());
    score.LogDensity(plus, times, lp);
    score.LogDensity(minus, times, lm);
    const RowVector fd = (lp - lm) / (2 * h);
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      worst = std::max(worst, std::abs(s(i, j) - fd(j)) / std::max(1.0, std::abs(s(i, j))));
    }
  }
  return worst;
}

// |α' − aα| and |(σ²)' − (2aσ² + g²)| by central differences, relative to their size.
double KernelConsistency(const ScalarAffineSde& sde) {
  double worst = 0.0;
  const double h = 1e-5;
  for (double t : {0.1, 0.5, 0.9}) {
    const double alpha_dot = (sde.MeanCoefficient(t + h) - sde.MeanCoefficient(t - h)) / (2 * h);
    const auto var = [&](double s) { return std::pow(sde.MarginalStd(s), 2); };
    const double var_dot = (var(t + h) - var(t - h)) / (2 * h);
    const double a = sde.DriftCoefficient(t);
    const double g = sde.ScalarDiffusion(t);
    worst = std::max(worst, std::abs(alpha_dot - a * sde.MeanCoefficient(t)) /
                                std::max(1.0, std::abs(alpha_dot)));
    worst = std::max(worst,
                     std::abs(var_dot - (2 * a * var(t) + g * g)) / std::max(1.0, std::abs(var_dot)));
  }
  return worst;
}

}  // namespace

std::vector<SelfCheck> RunReferenceSelfCheck() {
  std::vector<SelfCheck> checks;
  const GaussianMixture mixture = BuiltInMixture();
  Matrix cov(2, 2);
  cov << 1.0, 0.6, 0.6, 0.5;
  const GaussianMixture gaussian = GaussianMixture::Gaussian(Vector::Constant(2, 0.5), cov);

  const VeSde ve(2, {.sigma_min = 0.01, .sigma_max = 10.0});
  const VpSde vp(2);
  const SubVpSde subvp(2);
  const std::pair<const char*, const ScalarAffineSde*> families[] = {
      {"ve", &ve}, {"vp", &vp}, {"subvp", &subvp}};
  Batch x(2, 64);
  NoiseStream(1, Stream::kData).FillNormal(0, 0, 0, x);
  x *= 1.5;
  for (const auto& [name, sde] : families) {
    checks.push_back({std::string("kernel of ") + name + ": alpha' = a alpha, var' = 2a var + g^2",
                      KernelConsistency(*sde), 1e-6});
    for (const auto& [law, p0] : {std::pair{"gaussian", &gaussian}, std::pair{"mixture", &mixture}}) {
      const GaussianMixtureScore score(*p0, *sde);
      double worst = 0.0;
      for (double t : {0.1, 0.5, 0.9}) worst = std::max(worst, ScoreVsFiniteDifferences(score, x, t));
      checks.push_back({std::string("score of ") + law + " under " + name + " vs finite differences",
                        worst, 1e-6});
    }
  }
  const GbmSde gbm(2, 0.1, 0.3);
  const LogNormalReference lognormal(Vector::Constant(2, 0.2), Vector::Constant(2, 0.4), gbm);
  Batch positive = (0.5 * x).array().exp().matrix();
  double worst = 0.0;
  for (double t : {0.1, 0.5, 0.9}) worst = std::max(worst, ScoreVsFiniteDifferences(lognormal, positive, t));
  checks.push_back({"score of lognormal under gbm vs finite differences", worst, 1e-6});

  // 2^20 normals: |mean| and |var − 1| within 5 standard errors (1/√n and √(2/n)).
  Batch z(16, 1 << 16);
  NoiseStream(2, Stream::kData).FillNormal(0, 0, 0, z);
  const double n = static_cast<double>(z.size());
  const double mean = z.mean();
  const double var = (z.array() - mean).square().sum() / (n - 1);
  checks.push_back({"normal stream: |mean| / (5/sqrt(n))", std::abs(mean) / (5.0 / std::sqrt(n)), 1.0});
  checks.push_back({"normal stream: |var - 1| / (5 sqrt(2/n))",
                    std::abs(var - 1.0) / (5.0 * std::sqrt(2.0 / n)), 1.0});

  // Brownian path: Var W(0, 1) = 1 within 5 standard errors, and W(0,½) + W(½,1) = W(0,1).
  const BrownianPath path(1, 3);
  const int64_t m = 20000;
  Batch w(1, m), left(1, m), right(1, m);
  path.Increment(0.0, 1.0, 0, w);
  path.Increment(0.0, 0.5, 0, left);
  path.Increment(0.5, 1.0, 0, right);
  const double wvar = w.squaredNorm() / m;
  checks.push_back({"brownian path: |Var W(1) - 1| / (5 sqrt(2/n))",
                    std::abs(wvar - 1.0) / (5.0 * std::sqrt(2.0 / m)), 1.0});
  checks.push_back({"brownian path: max |W(0,1/2) + W(1/2,1) - W(0,1)|",
                    (left + right - w).cwiseAbs().maxCoeff(), 1e-14});
  return checks;
}

nlohmann::json ToJson(const std::vector<SelfCheck>& checks) {
  nlohmann::json list = nlohmann::json::array();
  bool all = true;
  for (const auto& check : checks) {
    list.push_back({{"check", check.name}, {"value", check.value}, {"tolerance", check.tolerance},
                    {"passed", check.passed()}});
    all = all && check.passed();
  }
  return {{"checks", list}, {"passed", all}};
}

}  // namespace scoresde::cli
