#include "scoresde/solvers/sde_integrator.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/callback_sde.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "test_problems.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

TEST(SdeIntegratorOptions, DefaultsAreValid) { EXPECT_NO_THROW(SdeIntegrator::Options{}.Validate()); }

TEST(SdeIntegratorOptions, RejectsBadValues) {
  SdeIntegrator::Options options;
  options.num_steps = 0;
  try {
    options.Validate();
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("num_steps"));
  }
  options = {};
  options.num_threads = 0;
  EXPECT_THROW(options.Validate(), InvalidArgument);
  options = {};
  options.chunk_size = -1;
  EXPECT_THROW(options.Validate(), InvalidArgument);
}

TEST(SdeIntegrator, RejectsBadProblemsAndTimes) {
  const GbmSde gbm(2, 0.1, 0.3);
  const EulerMaruyamaPredictor em;
  const StepProblem forward = StepProblem::Forward(gbm);
  EXPECT_THROW(SdeIntegrator(forward, em, 0.5, 0.2, {}), InvalidArgument);  // wrong direction
  EXPECT_THROW(SdeIntegrator(forward, em, 0.0, 1.5, {}), InvalidArgument);  // beyond T
  EXPECT_THROW(SdeIntegrator(forward, em, NAN, 1.0, {}), InvalidArgument);
  EXPECT_THROW(SdeIntegrator(forward, NonePredictor(), 0.0, 1.0, {}), InvalidArgument);
  EXPECT_THROW(SdeIntegrator(forward, Sra1Predictor(), 0.0, 1.0, {}), InvalidArgument);
  EXPECT_THROW(SdeIntegrator(StepProblem{}, em, 0.0, 1.0, {}), InvalidArgument);
  const SdeIntegrator integrator(forward, em, 0.0, 1.0, {});
  Batch x = Batch::Ones(2, 3), wrong = Batch::Ones(3, 3);
  const IidNoise noise(2, NoiseStream(1, Stream::kPredictor));
  const IidNoise noise3(3, NoiseStream(1, Stream::kPredictor));
  EXPECT_THROW(integrator.Integrate(noise, 0, wrong), InvalidArgument);
  EXPECT_THROW(integrator.Integrate(noise3, 0, x), InvalidArgument);
  x(1, 2) = NAN;
  EXPECT_THROW(integrator.Integrate(noise, 0, x), InvalidArgument);
}

// The integrator is the predictor applied on the grid t_i = t_start + i(t_end − t_start)/N.
TEST(SdeIntegrator, ForwardEulerMaruyamaOnABrownianPathIsTheManualLoop) {
  const GbmSde gbm(2, 0.2, 0.4);
  BrownianPath::Options path_options;
  path_options.max_depth = 10;
  const BrownianPath path(2, 3, path_options);
  const BrownianNoise noise(path);
  SdeIntegrator::Options options;
  options.num_steps = 16;
  const EulerMaruyamaPredictor em;
  const SdeIntegrator integrator(StepProblem::Forward(gbm), em, 0.0, 1.0, options);
  Batch x = Batch::Constant(2, 4, 1.5);
  const SolveSummary summary = integrator.Integrate(noise, 5, x);
  EXPECT_TRUE(summary.ok());
  EXPECT_EQ(summary.steps, 16);
  EXPECT_EQ(summary.nfe, 0);
  Batch y = Batch::Constant(2, 4, 1.5), dw(2, 4);
  for (int i = 0; i < 16; ++i) {
    path.Increment(i / 16.0, (i + 1) / 16.0, 5, dw);
    y.array() += y.array() * (0.2 / 16.0 + 0.4 * dw.array());
  }
  EXPECT_TRUE(x.isApprox(y, 1e-14));
}

// E[X_N] of Euler–Maruyama on GBM is x0 (1 + μh)^N exactly (each step multiplies the mean by
// 1 + μh). Its estimate from n paths has standard error sd(X_N)/√n; 5σ with a fixed seed.
TEST(SdeIntegrator, EulerMaruyamaMeanOnGbmIsTheDiscreteClosedForm) {
  const double mu = 0.5, sigma = 0.3, x0 = 1.2;
  const GbmSde gbm(1, mu, sigma);
  SdeIntegrator::Options options;
  options.num_steps = 8;
  options.num_threads = 2;
  const EulerMaruyamaPredictor em;
  const SdeIntegrator integrator(StepProblem::Forward(gbm), em, 0.0, 1.0, options);
  const int n = 100000;
  Batch x = Batch::Constant(1, n, x0);
  integrator.Integrate(IidNoise(1, NoiseStream(6, Stream::kPredictor)), 0, x);
  const double h = 1.0 / 8;
  const double expected = x0 * std::pow(1.0 + mu * h, 8);
  const double second = x0 * x0 * std::pow(std::pow(1.0 + mu * h, 2) + sigma * sigma * h, 8);
  const double sd = std::sqrt(second - expected * expected);
  EXPECT_NEAR(x.mean(), expected, 5.0 * sd / std::sqrt(n));
}

TEST(SdeIntegrator, ThreadsAndChunksGiveTheSameBits) {
  const GbmSde gbm(3, 0.2, 0.4);
  const IidNoise noise(3, NoiseStream(2, Stream::kPredictor));
  const SriW1Predictor sri;
  Batch reference;
  for (int threads : {1, 2, 7}) {
    for (int chunk : {0, 1, 13}) {
      SdeIntegrator::Options options;
      options.num_steps = 20;
      options.num_threads = threads;
      options.chunk_size = chunk;
      const SdeIntegrator integrator(StepProblem::Forward(gbm), sri, 0.0, 1.0, options);
      Batch x = Batch::Ones(3, 50);
      integrator.Integrate(noise, 7, x);
      if (reference.size() == 0) reference = x;
      EXPECT_EQ(x, reference) << threads << " threads, chunk " << chunk;
    }
  }
}

// A drift that turns NaN for samples ≥ 30 once t > 0.5: the earliest failure is reported, by step
// then sample, whatever the threads.
TEST(SdeIntegrator, ReportsTheEarliestNonFiniteValue) {
  CallbackSde::Functions functions;
  functions.scalar_diffusion = [](double) { return 0.1; };
  // Mark samples by their initial value: x(0, j) = sample index; NaN drift for index ≥ 30.
  functions.drift = [](ConstBatchRef x, double t, BatchRef f) {
    f.setZero();
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      if (t >= 0.5 && x(0, j) >= 29.5) f(1, j) = NAN;
    }
  };
  const CallbackSde sde(2, 2, NoiseType::kScalar, 1.0, functions);
  const EulerMaruyamaPredictor em;
  for (int threads : {1, 2, 7}) {
    SdeIntegrator::Options options;
    options.num_steps = 10;
    options.num_threads = threads;
    options.chunk_size = 4;
    options.throw_on_failure = false;
    const SdeIntegrator integrator(StepProblem::Forward(sde), em, 0.0, 1.0, options);
    Batch x(2, 40);
    for (int j = 0; j < 40; ++j) x.col(j) << j, 0.0;
    // No noise and no drift: x(0, j) stays j.
    const testing::ProbeNoise noise(Vector::Zero(2), Vector::Zero(2));
    const SolveSummary summary = integrator.Integrate(noise, 0, x);
    EXPECT_EQ(summary.status, SolveStatus::kNonFinite);
    ASSERT_TRUE(summary.failure.has_value());
    EXPECT_EQ(summary.failure->step, 5);  // the step starting at t = 0.5
    EXPECT_EQ(summary.failure->sample, 30);
    EXPECT_EQ(summary.failure->coordinate, 1);
    EXPECT_THAT(summary.message, HasSubstr("sample 30"));
    options.throw_on_failure = true;
    const SdeIntegrator throwing(StepProblem::Forward(sde), em, 0.0, 1.0, options);
    for (int j = 0; j < 40; ++j) x.col(j) << j, 0.0;
    try {
      throwing.Integrate(noise, 0, x);
      FAIL();
    } catch (const NumericalFailure& e) {
      EXPECT_EQ(e.step(), 5);
      EXPECT_EQ(e.sample(), 30);
    }
  }
}

}  // namespace
}  // namespace scoresde
