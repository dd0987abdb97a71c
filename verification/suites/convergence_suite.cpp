// Convergence orders of every stepper on SDEs with known solutions (verification/convergence.hpp):
// for each problem and solver the fitted strong and weak orders' 99% intervals must contain the
// theoretical orders and exclude the neighbouring ones.
//
// Why "exclude the neighbours": an interval that contains the expected order proves nothing if it
// is wide enough to contain any order. Strong orders of the schemes here are spaced by 1/2
// (0.5, 1, 1.5, 2) and weak orders by 1 (1, 2), so each strong interval must exclude p ± 0.5 and
// each weak interval p ± 1: then the harness can tell a scheme from its neighbour, as it must for
// Milstein on non-commutative noise (0.5, excluding 1). The path counts and levels in each
// problem's `recommended` options size the Monte-Carlo part of the standard error to about 0.05
// for strong and 0.1 for weak orders (se_MC ∝ 1/√n for strong errors and ∝ (strong error / weak
// difference)/√n for weak differences, read off a pilot run), so that with Student's t at 99% the
// half-widths stay below the spacings.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/convergence.hpp"

namespace scoresde {
namespace {

constexpr double kStrongSpacing = 0.5;
constexpr double kWeakSpacing = 1.0;

void CheckProblem(const std::string& name) {
  const ConvergenceProblem problem = StandardConvergenceProblem(name);
  ConvergenceOptions options = problem.recommended;
  options.num_threads = 2;
  std::vector<std::unique_ptr<Predictor>> owned;
  std::vector<const Predictor*> predictors;
  for (const std::string& solver : problem.solvers) {
    owned.push_back(MakePredictor(solver));
    predictors.push_back(owned.back().get());
  }
  const std::vector<ConvergenceResult> results =
      RunConvergenceStudies(problem, predictors, options);
  for (const ConvergenceResult& r : results) {
    SCOPED_TRACE(r.problem + " / " + r.solver);
    const OrderEstimate& s = r.strong;
    const OrderEstimate& w = r.weak;
    ::testing::Test::RecordProperty(r.solver + "_strong",
                   std::to_string(s.order) + " [" + std::to_string(s.ci_low) + ", " +
                       std::to_string(s.ci_high) + "]");
    ::testing::Test::RecordProperty(r.solver + "_weak",
                   std::to_string(w.order) + " [" + std::to_string(w.ci_low) + ", " +
                       std::to_string(w.ci_high) + "]");
    EXPECT_TRUE(s.Contains(r.expected_strong))
        << "strong " << s.order << " [" << s.ci_low << ", " << s.ci_high << "], expected "
        << r.expected_strong;
    EXPECT_FALSE(s.Contains(r.expected_strong - kStrongSpacing)) << "strong interval too wide";
    EXPECT_FALSE(s.Contains(r.expected_strong + kStrongSpacing)) << "strong interval too wide";
    EXPECT_TRUE(w.Contains(r.expected_weak))
        << "weak " << w.order << " [" << w.ci_low << ", " << w.ci_high << "], expected "
        << r.expected_weak;
    EXPECT_FALSE(w.Contains(r.expected_weak - kWeakSpacing)) << "weak interval too wide";
    EXPECT_FALSE(w.Contains(r.expected_weak + kWeakSpacing)) << "weak interval too wide";
  }
}

TEST(ConvergenceSuite, GbmScalar) { CheckProblem("gbm-scalar"); }
TEST(ConvergenceSuite, GbmDiagonal) { CheckProblem("gbm-diagonal"); }
TEST(ConvergenceSuite, OrnsteinUhlenbeck) { CheckProblem("ornstein-uhlenbeck"); }
TEST(ConvergenceSuite, AdditiveNonlinear) { CheckProblem("additive-nonlinear"); }
TEST(ConvergenceSuite, SinhDiagonal) { CheckProblem("sinh-diagonal"); }
// Milstein without Lévy areas drops to strong order 0.5 (its declared order for general noise):
// the interval contains 0.5 and excludes 1, so the harness sees the drop.
TEST(ConvergenceSuite, NonCommutativeNoise) { CheckProblem("non-commutative"); }
TEST(ConvergenceSuite, VeGaussianReverse) { CheckProblem("ve-gaussian-reverse"); }
TEST(ConvergenceSuite, VpGaussianReverse) { CheckProblem("vp-gaussian-reverse"); }

}  // namespace
}  // namespace scoresde
