#include "scoresde/verification/convergence.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/solvers/sde_integrator.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

std::vector<double> Steps(int k0, int k1) {
  std::vector<double> h;
  for (int k = k0; k <= k1; ++k) h.push_back(std::ldexp(1.0, -k));
  return h;
}

TEST(FitOrder, RecoversAnExactPowerLawWithAZeroWidthInterval) {
  const std::vector<double> h = Steps(2, 8);
  std::vector<double> e;
  for (double step : h) e.push_back(3.0 * std::pow(step, 1.5));
  const Matrix zero = Matrix::Zero(h.size(), h.size());
  for (OrderModel model : {OrderModel::kPowerLaw, OrderModel::kPowerLawWithHalfCorrection,
                           OrderModel::kPowerLawWithCorrection}) {
    const OrderEstimate fit = FitOrder(h, e, zero, 0.99, model);
    EXPECT_NEAR(fit.order, 1.5, 1e-10);
    EXPECT_LT(fit.width(), 1e-8);
  }
}

// The corrected models absorb the next term of the expansion exactly: e = h(1 + 2h) in log form is
// log h + log(1 + 2h) = log h + 2h − 2h² + …, so the weak model recovers p = 1 up to O(h²) while the
// plain power law is biased.
TEST(FitOrder, CorrectionTermRemovesThePreAsymptoticBias) {
  const std::vector<double> h = Steps(3, 8);
  std::vector<double> e;
  for (double step : h) e.push_back(step * (1.0 + 2.0 * step));
  const Matrix zero = Matrix::Zero(h.size(), h.size());
  const OrderEstimate plain = FitOrder(h, e, zero, 0.99, OrderModel::kPowerLaw);
  const OrderEstimate corrected = FitOrder(h, e, zero, 0.99, OrderModel::kPowerLawWithCorrection);
  EXPECT_GT(std::abs(plain.order - 1.0), 0.05);
  EXPECT_LT(std::abs(corrected.order - 1.0), 0.01);
  // The plain fit's residuals show the curvature: its interval is wider.
  EXPECT_GT(plain.stderr_fit, corrected.stderr_fit);
}

// The Monte-Carlo part is wᵀCw: with independent log errors of variance σ² and the plain model,
// Var p̂ = σ² / Σ(x − x̄)².
TEST(FitOrder, MonteCarloVarianceIsPropagated) {
  const std::vector<double> h = Steps(1, 5);
  std::vector<double> e;
  for (double step : h) e.push_back(step);
  const double sigma2 = 0.01;
  const Matrix cov = sigma2 * Matrix::Identity(h.size(), h.size());
  const OrderEstimate fit = FitOrder(h, e, cov, 0.95, OrderModel::kPowerLaw);
  double sxx = 0.0, mean = 0.0;
  for (double step : h) mean += std::log(step) / h.size();
  for (double step : h) sxx += std::pow(std::log(step) - mean, 2);
  EXPECT_NEAR(fit.stderr_mc, std::sqrt(sigma2 / sxx), 1e-12);
  EXPECT_LT(fit.stderr_fit, 1e-12);
  // No lack of fit: the degrees of freedom are those of the Monte-Carlo part (large), so the
  // interval is the normal one, ±1.96 se.
  EXPECT_NEAR(fit.ci_high - fit.order, 1.959964 * fit.stderr_mc, 1e-5);
}

TEST(FitOrder, RejectsBadInput) {
  const Matrix zero3 = Matrix::Zero(3, 3);
  EXPECT_THROW(FitOrder({0.5, 0.25}, {1.0, 0.5}, Matrix::Zero(2, 2), 0.99), InvalidArgument);
  EXPECT_THROW(FitOrder({0.5, 0.25, 0.125}, {1.0, 0.0, 0.3}, zero3, 0.99), InvalidArgument);
  EXPECT_THROW(FitOrder({0.5, 0.25, 0.125}, {1.0, 0.5}, zero3, 0.99), InvalidArgument);
  EXPECT_THROW(FitOrder({0.5, 0.25, 0.125}, {1.0, 0.5, 0.2}, zero3, 1.0), InvalidArgument);
  EXPECT_THROW(FitOrder({0.5, 0.25, 0.125}, {1.0, 0.5, 0.2}, Matrix::Zero(2, 2), 0.9),
               InvalidArgument);
  try {
    FitOrder({0.5, 0.25, 0.125}, {1.0, 0.5, 0.2}, zero3, 0.9, OrderModel::kPowerLawWithCorrection);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("number of points"));
  }
}

TEST(ConvergenceOptions, DefaultsAreValidAndBadValuesNamed) {
  EXPECT_NO_THROW(ConvergenceOptions{}.Validate());
  ConvergenceOptions o;
  o.strong.max_level = o.strong.min_level + 1;
  try {
    o.Validate();
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("strong.max_level"));
  }
  o = {};
  o.weak.num_samples = 3;
  EXPECT_THROW(o.Validate(), InvalidArgument);
  o = {};
  o.confidence = 1.5;
  EXPECT_THROW(o.Validate(), InvalidArgument);
  o = {};
  o.num_threads = 0;
  EXPECT_THROW(o.Validate(), InvalidArgument);
}

TEST(StandardConvergenceProblems, AreCompleteAndNamed) {
  const auto problems = StandardConvergenceProblems();
  EXPECT_GE(problems.size(), 8u);
  for (const ConvergenceProblem& p : problems) {
    SCOPED_TRACE(p.name);
    EXPECT_TRUE(p.sde != nullptr);
    EXPECT_TRUE(static_cast<bool>(p.initial_state));
    EXPECT_TRUE(static_cast<bool>(p.test_function));
    EXPECT_NE(static_cast<bool>(p.exact_solution), static_cast<bool>(p.reference_predictor));
    EXPECT_NO_THROW(p.recommended.Validate());
    for (const std::string& solver : p.solvers) EXPECT_TRUE(MakePredictor(solver)->Supports(*p.sde));
  }
  EXPECT_EQ(StandardConvergenceProblem("gbm-scalar").name, "gbm-scalar");
  try {
    StandardConvergenceProblem("nope");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("non-commutative"));
  }
}

TEST(ReverseProblemData, GivesTheLawsOfTheReverseProblemsAndNamesABadName) {
  const GaussianMixture gaussian = ReverseProblemData("gaussian");
  EXPECT_EQ(gaussian.num_components(), 1);
  EXPECT_EQ(gaussian.mean(0), (Vector(2) << 0.5, -1.0).finished());
  const GaussianMixture mixture = ReverseProblemData("mixture");
  EXPECT_EQ(mixture.num_components(), 2);
  EXPECT_EQ(mixture.weights(), (Vector(2) << 0.3, 0.7).finished());
  try {
    ReverseProblemData("nope");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("ReverseProblemData"));
    EXPECT_THAT(e.what(), HasSubstr("nope"));
  }
}

// The exact solutions are the SDE's solutions: Euler–Maruyama on a fine grid of the same path comes
// within its strong error. For GBM at h = 2^-12 the strong error is about 0.5·σ²·x·√(h/2) ≈ 0.003;
// 0.05 is far above it and far below the O(1) differences a wrong formula would give.
TEST(StandardConvergenceProblems, ExactSolutionsMatchFineSolves) {
  for (const char* name : {"gbm-scalar", "gbm-diagonal", "sinh-diagonal",
                                  "ornstein-uhlenbeck"}) {
    SCOPED_TRACE(name);
    const ConvergenceProblem p = StandardConvergenceProblem(name);
    const int level = 12, n = 20;
    const BrownianGridNoise grid(p.sde->noise_dim(), 0.0, 1.0, level,
                                 NoiseStream(5, Stream::kBrownian), 0, n);
    Batch x0(p.sde->dim(), n), exact(p.sde->dim(), n);
    p.initial_state(0, x0);
    p.exact_solution(grid, 0, x0, exact);
    SdeIntegrator::Options o;
    o.num_steps = 1 << level;
    const MilsteinPredictor milstein;
    const SdeIntegrator integrator(StepProblem::Forward(*p.sde), milstein, 0.0, 1.0, o);
    Batch x = x0;
    integrator.Integrate(grid, 0, x);
    EXPECT_LT((x - exact).cwiseAbs().maxCoeff(), 0.05);
  }
}

TEST(RunConvergenceStudy, RejectsUnsupportedSolversAndIncompleteProblems) {
  const ConvergenceProblem gbm = StandardConvergenceProblem("gbm-scalar");
  try {
    RunConvergenceStudy(gbm, Sra1Predictor(), gbm.recommended);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("sra1"));
  }
  ConvergenceProblem broken = gbm;
  broken.test_function = nullptr;
  EXPECT_THROW(RunConvergenceStudy(broken, EulerMaruyamaPredictor(), gbm.recommended),
               InvalidArgument);
  broken = gbm;
  broken.reference_predictor = std::make_shared<MilsteinPredictor>();
  EXPECT_THROW(RunConvergenceStudy(broken, EulerMaruyamaPredictor(), gbm.recommended),
               InvalidArgument);
}

// Small study: bit-identical for 1 and 3 threads, errors decrease with h, CSV has every level.
TEST(RunConvergenceStudy, IsThreadInvariantAndWritesCsv) {
  const ConvergenceProblem p = StandardConvergenceProblem("gbm-scalar");
  ConvergenceOptions o;
  o.strong = {2, 5, 200};
  o.weak = {1, 5, 300};
  o.block_size = 64;
  const EulerMaruyamaPredictor em;
  const ConvergenceResult one = RunConvergenceStudy(p, em, o);
  o.num_threads = 3;
  const ConvergenceResult three = RunConvergenceStudy(p, em, o);
  ASSERT_EQ(one.levels.size(), 4u);
  ASSERT_EQ(one.weak_levels.size(), 4u);
  for (size_t k = 0; k < one.levels.size(); ++k) {
    EXPECT_EQ(one.levels[k].strong_error, three.levels[k].strong_error);
    EXPECT_EQ(one.weak_levels[k].difference, three.weak_levels[k].difference);
    if (k > 0) {
      EXPECT_LT(one.levels[k].strong_error, one.levels[k - 1].strong_error);
    }
  }
  EXPECT_EQ(one.strong.order, three.strong.order);
  EXPECT_EQ(one.expected_strong, 0.5);
  EXPECT_EQ(one.nfe, (4 + 8 + 16 + 32) + (2 + 4 + 8 + 16 + 32));
  const std::string path =
      (std::filesystem::temp_directory_path() / "scoresde_convergence_test.csv").string();
  WriteConvergenceCsv(path, {one});
  std::ifstream in(path);
  std::string line;
  int rows = 0;
  std::getline(in, line);
  EXPECT_EQ(line, "problem,solver,kind,level,h,value,stderr");
  while (std::getline(in, line)) {
    EXPECT_THAT(line, HasSubstr("gbm-scalar,euler-maruyama,"));
    ++rows;
  }
  EXPECT_EQ(rows, 8);
  std::filesystem::remove(path);
  EXPECT_THROW(WriteConvergenceCsv("/nonexistent-dir/x.csv", {one}), Error);
}

}  // namespace
}  // namespace scoresde
