#include "scoresde/solvers/exponential_samplers.hpp"

#include <cmath>
#include <limits>
#include <numeric>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gaussian_flow_test_util.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::DiagonalGaussianScore;

Batch Latents() {
  Batch x(2, 5);
  x << 0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.4, -0.6, -1.5, 0.0;
  return x;
}

TEST(NoiseSchedule, TimeOfLambdaInvertsLambda) {
  const VpSde vp(2);
  const SubVpSde subvp(2);
  const VeSde ve(2);
  for (const ScalarAffineSde* sde : std::vector<const ScalarAffineSde*>{&vp, &subvp, &ve}) {
    const NoiseSchedule schedule(*sde);
    for (double t : {1e-4, 1e-3, 0.1, 0.5, 0.999, 1.0}) {
      const double back = schedule.TimeOfLambda(schedule.Lambda(t));
      // Bisection ends within an ulp of the crossing; λ' is bounded away from 0, so t is
      // recovered to a few ulps of λ over λ'.
      EXPECT_NEAR(back, t, 1e-12 * std::max(1.0, t)) << t;
    }
    EXPECT_GT(schedule.Lambda(0.1), schedule.Lambda(0.2));
    EXPECT_THAT([&] { schedule.TimeOfLambda(schedule.Lambda(1.0) - 1.0); },
                ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("lambda")));
  }
}

TEST(MakeTimeGrid, EndsAtTAndEpsWithTheRequestedSpacing) {
  const VpSde sde(2);
  const NoiseSchedule schedule(sde);
  const auto log_snr = MakeTimeGrid(schedule, TimeGrid::kLogSnr, 1e-3, 4);
  ASSERT_EQ(log_snr.size(), 5u);
  EXPECT_EQ(log_snr.front(), 1.0);
  EXPECT_EQ(log_snr.back(), 1e-3);
  const double dl = schedule.Lambda(log_snr[1]) - schedule.Lambda(log_snr[0]);
  for (int i = 1; i < 4; ++i) {
    EXPECT_NEAR(schedule.Lambda(log_snr[i + 1]) - schedule.Lambda(log_snr[i]), dl, 1e-10);
  }
  const auto quadratic = MakeTimeGrid(schedule, TimeGrid::kTimeQuadratic, 0.01, 2);
  EXPECT_NEAR(quadratic[1], std::pow(0.5 * (1.0 + 0.1), 2), 1e-15);
  EXPECT_EQ(ParseTimeGrid("time-uniform"), TimeGrid::kTimeUniform);
  EXPECT_THAT([] { ParseTimeGrid("cosine", "--grid"); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("--grid")));
}

TEST(DpmSolverOptions, DefaultsAreValidAndBadOnesRejected) {
  EXPECT_NO_THROW(DpmSolver::Options{}.Validate());
  DpmSolver::Options options;
  options.order = 4;
  EXPECT_THAT([&] { options.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("order")));
  options = {};
  options.nfe = 2;
  EXPECT_THAT([&] { options.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("nfe")));
  options = {};
  options.eps = 0.0;
  EXPECT_THAT([&] { options.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("eps")));
  EXPECT_NO_THROW(DpmSolverPlusPlus2M::Options{}.Validate());
  DpmSolverPlusPlus2M::Options plus;
  plus.num_steps = 0;
  EXPECT_THAT([&] { plus.Validate(); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("num_steps")));
}

// The paper's order schedules spend exactly the budget N.
TEST(DpmSolver, FastScheduleSpendsTheBudget) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Zero(2), Vector::Ones(2));
  const auto orders = [&](int order, int nfe, DpmSolver::Schedule schedule) {
    DpmSolver::Options options;
    options.order = order;
    options.nfe = nfe;
    options.schedule = schedule;
    return DpmSolver(sde, score, options).orders();
  };
  EXPECT_THAT(orders(3, 12, DpmSolver::Schedule::kFast), ElementsAre(3, 3, 3, 2, 1));
  EXPECT_THAT(orders(3, 10, DpmSolver::Schedule::kFast), ElementsAre(3, 3, 3, 1));
  EXPECT_THAT(orders(3, 11, DpmSolver::Schedule::kFast), ElementsAre(3, 3, 3, 2));
  EXPECT_THAT(orders(2, 5, DpmSolver::Schedule::kFast), ElementsAre(2, 2, 1));
  EXPECT_THAT(orders(1, 3, DpmSolver::Schedule::kFast), ElementsAre(1, 1, 1));
  EXPECT_THAT(orders(3, 11, DpmSolver::Schedule::kFixed), ElementsAre(3, 3, 3));
}

// Order 1 is DDIM: x_t = (α_t/α_s) x_s − σ_t (e^h − 1) ε_s, one step checked by hand.
TEST(DpmSolver, FirstOrderStepIsDdim) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5), Vector::Constant(2, 0.2));
  DpmSolver::Options options;
  options.order = 1;
  options.nfe = 1;
  options.eps = 0.3;
  const DpmSolver solver(sde, score, options);
  const Batch x = Latents();
  const OdeSolution result = solver.Sample(x);
  const NoiseSchedule schedule(sde);
  const RowVector t_row = RowVector::Constant(x.cols(), 1.0);
  Batch s(2, x.cols());
  score.Evaluate(x, t_row, s);
  const double h = schedule.Lambda(0.3) - schedule.Lambda(1.0);
  const Batch decay = (schedule.Alpha(0.3) / schedule.Alpha(1.0)) * x;
  const Batch noise = schedule.Sigma(0.3) * std::expm1(h) * schedule.Sigma(1.0) * s;
  const Batch expected = decay + noise;
  // Both sides evaluate the same two terms with their coefficients in different orders: a few
  // roundings of the terms' magnitudes (α_t/α_s ≈ 50 here, so the terms reach ~10², far above
  // |y|); 8 unit roundings of |decay| + |noise| bounds that, while a wrong coefficient errs by O(1).
  const double bound =
      8 * std::numeric_limits<double>::epsilon() * (decay.cwiseAbs() + noise.cwiseAbs()).maxCoeff();
  EXPECT_LT((result.y - expected).cwiseAbs().maxCoeff(), bound);
  EXPECT_EQ(result.summary.nfe, 1);
}

// Errors against the exact flow map shrink at the method's order when the step count doubles
// (the rigorous fits are in the ode_order suite): error(K)/error(2K) ≈ 2^k, so log₂ of the ratio
// must round to k (the decision boundary between neighbouring integer orders).
TEST(DpmSolver, EachOrderConvergesAtItsRate) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5), Vector(Eigen::Vector2d(0.05, 2.0)));
  const Batch x = Latents();
  const Batch exact = score.Flow(x, 1.0, 1e-3);
  for (int order : {1, 2, 3}) {
    const auto error = [&](int steps) {
      DpmSolver::Options options;
      options.order = order;
      options.nfe = steps * order;
      options.schedule = DpmSolver::Schedule::kFixed;
      return (DpmSolver(sde, score, options).Sample(x).y - exact).cwiseAbs().maxCoeff();
    };
    const double observed = std::log2(error(16) / error(32));
    EXPECT_NEAR(observed, order, 0.5) << "order " << order;
  }
  DpmSolverPlusPlus2M::Options options;
  const auto error = [&](int steps) {
    options.num_steps = steps;
    return (DpmSolverPlusPlus2M(sde, score, options).Sample(x).y - exact).cwiseAbs().maxCoeff();
  };
  EXPECT_NEAR(std::log2(error(16) / error(32)), 2.0, 0.5);
}

// The same exponential integrator serves VE (α = 1) and sub-VP: third order there too.
TEST(DpmSolver, WorksForVeAndSubVpToo) {
  const VeSde ve(2);
  const SubVpSde subvp(2);
  for (const ScalarAffineSde* sde : std::vector<const ScalarAffineSde*>{&ve, &subvp}) {
    const DiagonalGaussianScore score(*sde, Vector::Constant(2, 0.5),
                                      Vector(Eigen::Vector2d(0.05, 2.0)));
    const NoiseSchedule schedule(*sde);
    const Batch x = Latents() * schedule.Sigma(1.0);
    const Batch exact = score.Flow(x, 1.0, 1e-3);
    const auto error = [&](int steps) {
      DpmSolver::Options options;
      options.nfe = 3 * steps;
      options.schedule = DpmSolver::Schedule::kFixed;
      return (DpmSolver(*sde, score, options).Sample(x).y - exact).cwiseAbs().maxCoeff();
    };
    EXPECT_NEAR(std::log2(error(16) / error(32)), 3.0, 0.5) << (sde == &ve ? "ve" : "subvp");
  }
}

TEST(DpmSolver, ResultsDoNotDependOnThreadsOrChunks) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5), Vector::Constant(2, 0.3));
  DpmSolver::Options options;
  const Batch x = Latents();
  const OdeSolution reference = DpmSolver(sde, score, options).Sample(x);
  options.num_threads = 7;
  options.chunk_size = 2;
  EXPECT_TRUE((DpmSolver(sde, score, options).Sample(x).y.array() == reference.y.array()).all());
  const OdeSolution alone = DpmSolver(sde, score, options).Sample(x.col(3), 3);
  EXPECT_TRUE((alone.y.col(0).array() == reference.y.col(3).array()).all());
}

TEST(DpmSolverPlusPlus2M, DenoiseToZeroAddsTheDataPrediction) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5), Vector::Constant(2, 0.3));
  DpmSolverPlusPlus2M::Options options;
  options.num_steps = 8;
  const OdeSolution plain = DpmSolverPlusPlus2M(sde, score, options).Sample(Latents());
  options.denoise_to_zero = true;
  const OdeSolution denoised = DpmSolverPlusPlus2M(sde, score, options).Sample(Latents());
  EXPECT_EQ(plain.summary.nfe, 8);
  EXPECT_EQ(denoised.summary.nfe, 9);
  const NoiseSchedule schedule(sde);
  Batch s(2, 5);
  score.Evaluate(plain.y, RowVector::Constant(5, 1e-3), s);
  const double sigma = schedule.Sigma(1e-3);
  const Batch expected = (plain.y + sigma * sigma * s) / schedule.Alpha(1e-3);
  EXPECT_LT((denoised.y - expected).cwiseAbs().maxCoeff(), 1e-13);
}

TEST(DpmSolver, NonFiniteScoreIsLocated) {
  const VpSde sde(2);
  CallbackScore score(2, [](ConstBatchRef x, ConstRowVectorRef t, BatchRef s) {
    s = -x;
    if (t(0) < 0.5) s(1, 1) = NAN;
  });
  DpmSolver::Options options;
  try {
    DpmSolver(sde, score, options).Sample(Latents(), 40);
    ADD_FAILURE();
  } catch (const NumericalFailure& e) {
    EXPECT_EQ(e.sample(), 41);
    EXPECT_EQ(e.coordinate(), 1);
    EXPECT_LT(e.t(), 0.5);
  }
}

}  // namespace
}  // namespace scoresde
