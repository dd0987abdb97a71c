// ODE order suite (issue 4, item 5): every fixed-step and exponential integrator converges to the
// exact probability-flow map at its order.
//
// Problem: VP SDE, data N(μ, Σ) in d = 2 with eigenvalues 0.05 and 2 in a rotated basis (the two
// coordinates' flows differ), eight exact draws of p_T decoded from T = 1 to ε = 10⁻³. The flow map
// is known in closed form (flow_reference.hpp), so the error e(h) = max |x_h − Φ(x_T)| has no
// reference bias and no Monte-Carlo noise.
//
// Criterion. For a method of order p the error has the expansion e(h) = C h^p (1 + a h + O(h²))
// (Hairer, Nørsett & Wanner I, section II.8: asymptotic expansion of the global error), so log e
// = log C + p log h + a h + O(h²). A plain line through log e against log h is biased by the a h
// term on any finite range (measured: DPM-Solver-3's local slopes 3.38, 3.29, 3.17, 3.09 on
// h = 1/8 … 1/128 give a plain fit of 3.23 with a lack-of-fit interval [3.03, 3.43]). So the fit
// regresses log e on (1, log h, h) by least squares over K = 6 nested grids h = 1/2^k and takes the
// 99% interval p̂ ± t_{K−3, 0.995} s √((XᵀX)⁻¹)_pp, s² = RSS/(K − 3): the errors are deterministic,
// so the spread of the points about the fitted curve (the O(h²) remainder) is the only
// uncertainty. The interval must contain the method's order p and be narrower than 1, so that it
// separates p from p ± 1 (a test that cannot fail is no test). Each method's first grid is where
// its local slopes (printed) have begun their monotone approach to p; coarser grids are
// pre-asymptotic (RK4 from 8 to 16 steps: slope 2.4; DPM-Solver++(2M) from 8 to 16: 0.3, while
// its multistep history builds up). The finest grids keep errors above 1e-10, far from rounding.
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <Eigen/QR>
#include <gtest/gtest.h>

#include "scoresde/sde/random.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/edm_sampler.hpp"
#include "scoresde/solvers/exponential_samplers.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/flow_reference.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {
namespace {

constexpr double kEps = 1e-3;

class OdeOrderSuite : public ::testing::Test {
 protected:
  OdeOrderSuite()
      : sde_(2),
        score_(GaussianMixture::Gaussian(Eigen::Vector2d(0.5, -0.3), Covariance()), sde_),
        latent_(2, 8),
        exact_(2, 8) {
    score_.SampleMarginal(1.0, NoiseStream(31, Stream::kPrior), 0, latent_);
    GaussianFlowMap(score_, 1.0, kEps, latent_, exact_);
  }

  static Matrix Covariance() {
    const double c = std::cos(0.6), s = std::sin(0.6);
    Matrix u(2, 2);
    u << c, -s, s, c;
    return u * Eigen::Vector2d(0.05, 2.0).asDiagonal() * u.transpose();
  }

  struct Fit {
    double order, low, high;
  };

  // Least squares of log e on (1, log h, h) with the interval described above.
  static Fit FitWithCorrection(const std::vector<double>& h, const std::vector<double>& errors) {
    const int k = static_cast<int>(h.size());
    Matrix x(k, 3);
    Vector y(k);
    for (int i = 0; i < k; ++i) {
      x(i, 0) = 1.0;
      x(i, 1) = std::log(h[i]);
      x(i, 2) = h[i];
      y(i) = std::log(errors[i]);
    }
    const Matrix normal = x.transpose() * x;
    const Vector beta = normal.ldlt().solve(x.transpose() * y);
    const double rss = (y - x * beta).squaredNorm();
    const double s2 = rss / (k - 3);
    const Matrix inverse = normal.inverse();
    // Student t quantiles t_{ν, 0.995} for ν = 1 … 5.
    const double t_quantile[] = {63.657, 9.925, 5.841, 4.604, 4.032};
    const double half = t_quantile[k - 4] * std::sqrt(s2 * inverse(1, 1));
    return {beta(1), beta(1) - half, beta(1) + half};
  }

  // Fits the order of solve(steps) over steps = 2^k, k = first … first + 5, and checks it.
  void ExpectOrder(const std::string& name, double order, int first,
                   const std::function<Batch(int steps)>& solve) {
    std::vector<double> h, errors;
    std::printf("%-18s local slopes", name.c_str());
    for (int k = first; k < first + 6; ++k) {
      const int steps = 1 << k;
      const double error = (solve(steps) - exact_).cwiseAbs().maxCoeff();
      if (!errors.empty()) std::printf(" %5.3f", std::log2(errors.back() / error));
      h.push_back(1.0 / steps);
      errors.push_back(error);
    }
    const Fit fit = FitWithCorrection(h, errors);
    std::printf("  | steps 2^%d..2^%d: order %.4f [%.4f, %.4f], errors %.2g .. %.2g\n", first,
                first + 5, fit.order, fit.low, fit.high, errors.front(), errors.back());
    EXPECT_TRUE(fit.low <= order && order <= fit.high)
        << name << ": fitted " << fit.order << " [" << fit.low << ", " << fit.high
        << "], expected " << order;
    EXPECT_LT(fit.high - fit.low, 1.0) << name;
  }

  const VpSde sde_;
  const GaussianMixtureScore score_;
  Batch latent_;
  Batch exact_;
};

TEST_F(OdeOrderSuite, FixedStepRungeKuttaMethods) {
  const struct {
    OdeMethod method;
    int first;
  } cases[] = {{OdeMethod::kEuler, 5}, {OdeMethod::kHeun, 5}, {OdeMethod::kRk4, 4}};
  for (const auto& c : cases) {
    ExpectOrder(std::string(ToString(c.method)), MethodOrder(c.method), c.first,
                [&](int steps) {
                  OdeOptions options;
                  options.method = c.method;
                  options.num_steps = steps;
                  return ProbabilityFlow(sde_, score_, options).Decode(latent_, kEps).y;
                });
  }
}

TEST_F(OdeOrderSuite, DpmSolverOrders) {
  for (int order : {1, 2, 3}) {
    ExpectOrder("dpm-solver-" + std::to_string(order), order, 3, [&](int steps) {
      DpmSolver::Options options;
      options.order = order;
      options.nfe = order * steps;
      options.schedule = DpmSolver::Schedule::kFixed;
      return DpmSolver(sde_, score_, options).Sample(latent_).y;
    });
  }
}

TEST_F(OdeOrderSuite, DpmSolverPlusPlus2MIsSecondOrder) {
  ExpectOrder("dpm-solver++(2M)", 2, 4, [&](int steps) {
    DpmSolverPlusPlus2M::Options options;
    options.num_steps = steps;
    return DpmSolverPlusPlus2M(sde_, score_, options).Sample(latent_).y;
  });
}

TEST_F(OdeOrderSuite, EdmHeunIsSecondOrder) {
  ExpectOrder("edm-heun", 2, 3, [&](int steps) {
    EdmSampler::Options options;
    options.num_steps = steps + 1;  // N levels are N − 1 steps
    options.eps = kEps;
    options.final_step_to_zero = false;
    return EdmSampler(sde_, score_, options).Sample(latent_).y;
  });
}

}  // namespace
}  // namespace scoresde
