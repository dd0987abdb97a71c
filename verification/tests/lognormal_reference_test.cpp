#include "scoresde/verification/lognormal_reference.hpp"

#include <cmath>
#include <limits>
#include <numbers>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kEps = std::numeric_limits<double>::epsilon();

GbmSde ExampleGbm(int d) {
  GbmSde::Options options;
  options.mu = Vector::LinSpaced(d, 0.5, -0.2);
  options.sigma = Vector::LinSpaced(d, 0.4, 0.7);
  options.t_final = 2.0;
  return GbmSde(options);
}

TEST(LogNormalReference, RejectsBadArguments) {
  const GbmSde gbm = ExampleGbm(2);
  EXPECT_THAT([&] { LogNormalReference(Vector::Zero(3), Vector::Ones(2), gbm); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": m0 has shape 3 x 1")));
  EXPECT_THAT([&] { LogNormalReference(Vector::Zero(2), Vector::Ones(1), gbm); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": s0 has shape 1 x 1")));
  Vector s0(2);
  s0 << 0.3, -1.0;
  EXPECT_THAT(
      [&] { LogNormalReference(Vector::Zero(2), s0, gbm); },
      ThrowsMessage<InvalidArgument>(HasSubstr("LogNormalReference: s0[1] = -1; must be > 0")));
  s0 << 0.0, 1.0;
  EXPECT_THAT([&] { LogNormalReference(Vector::Zero(2), s0, gbm); },
              ThrowsMessage<InvalidArgument>(HasSubstr("s0[0] = 0")));
  s0 << std::numeric_limits<double>::infinity(), 1.0;
  EXPECT_THAT([&] { LogNormalReference(Vector::Zero(2), s0, gbm); },
              ThrowsMessage<InvalidArgument>(HasSubstr("s0[0] = inf")));
  Vector m0 = Vector::Zero(2);
  m0(1) = std::nan("");
  EXPECT_THAT([&] { LogNormalReference(m0, Vector::Ones(2), gbm); },
              ThrowsMessage<InvalidArgument>(HasSubstr("m0(1, 0) = nan")));

  const LogNormalReference ref(Vector::Zero(2), Vector::Ones(2), gbm);
  Batch x = Batch::Ones(2, 2), s(2, 2);
  RowVector t(2);
  t << 0.5, 2.5;
  EXPECT_THAT([&] { ref.Evaluate(x, t, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t[1] = 2.5")));
  EXPECT_THAT([&] { ref.LogMean(-0.1); }, ThrowsMessage<InvalidArgument>(HasSubstr("t = -0.1")));
  EXPECT_THAT([&] { ref.ExpectedSquaredNorm(3.0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t = 3")));
  t << 0.5, 1.0;
  RowVector wrong(3);
  EXPECT_THAT([&] { ref.LogDensity(x, t, wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": logp has shape")));
  EXPECT_THAT([&] { ref.Divergence(x, t, wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": div has shape")));
  Batch x3 = Batch::Ones(3, 2);
  EXPECT_THAT([&] { ref.Evaluate(x3, t, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": x has shape")));
  EXPECT_THAT([&] { ref.EvaluateWithJvp(x, t, x3, s, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": v has shape")));
}

// m_t = m0 + (μ − σ²/2) t, v_t = s0² + σ² t, E X = e^{m + v/2}, Var X = (e^v − 1) e^{2m + v}.
TEST(LogNormalReference, MarginalParameters) {
  const GbmSde gbm = ExampleGbm(3);
  Vector m0(3), s0(3);
  m0 << 0.0, 0.5, -1.0;
  s0 << 0.3, 0.2, 0.5;
  const LogNormalReference ref(m0, s0, gbm);
  const double t = 1.3;
  const Vector mu = gbm.options().mu;
  const Vector sigma = gbm.options().sigma;
  for (int i = 0; i < 3; ++i) {
    const double m = m0(i) + (mu(i) - 0.5 * sigma(i) * sigma(i)) * t;
    const double v = s0(i) * s0(i) + sigma(i) * sigma(i) * t;
    EXPECT_NEAR(ref.LogMean(t)(i), m, 4 * kEps);
    EXPECT_NEAR(ref.LogVariance(t)(i), v, 4 * kEps);
    EXPECT_NEAR(ref.Mean(t)(i), std::exp(m + 0.5 * v), 16 * kEps * std::exp(m + 0.5 * v));
    const double var = (std::exp(v) - 1.0) * std::exp(2 * m + v);
    EXPECT_NEAR(ref.Variance(t)(i), var, 64 * kEps * var);
  }
}

// Hand formulas in 1-D at several points, including x ≤ 0 (density 0, score undefined).
TEST(LogNormalReference, OneDimensionalHandFormulas) {
  const GbmSde gbm(1, 0.3, 0.5);
  const LogNormalReference ref(Vector::Constant(1, 0.2), Vector::Constant(1, 0.4), gbm);
  const double t = 0.6;
  const double m = 0.2 + (0.3 - 0.125) * t;
  const double v = 0.16 + 0.25 * t;
  Batch x(1, 6);
  x << 0.1, 0.5, 1.0, 2.0, 0.0, -1.0;
  const RowVector times = RowVector::Constant(6, t);
  RowVector logp(6), div(6);
  Batch s(1, 6), s2(1, 6), jv(1, 6);
  const Batch dir = Batch::Constant(1, 6, 0.7);
  ref.LogDensity(x, times, logp);
  ref.Evaluate(x, times, s);
  ref.Divergence(x, times, div);
  ref.EvaluateWithJvp(x, times, dir, s2, jv);
  for (int j = 0; j < 4; ++j) {
    const double xj = x(0, j);
    const double z = std::log(xj) - m;
    const double density = std::exp(-z * z / (2 * v)) / (xj * std::sqrt(2 * std::numbers::pi * v));
    EXPECT_NEAR(logp(j), std::log(density), 16 * kEps * std::max(1.0, std::abs(logp(j))));
    const double score = -(1.0 + z / v) / xj;
    EXPECT_NEAR(s(0, j), score, 16 * kEps * std::abs(score) + 16 * kEps);
    EXPECT_EQ(s2(0, j), s(0, j));
    const double ds = (1.0 + (z - 1.0) / v) / (xj * xj);
    EXPECT_NEAR(div(j), ds, 16 * kEps * std::abs(ds) + 16 * kEps / (xj * xj));
    EXPECT_NEAR(jv(0, j), 0.7 * ds, 16 * kEps * std::abs(ds) + 16 * kEps / (xj * xj));
  }
  for (int j = 4; j < 6; ++j) {
    EXPECT_EQ(logp(j), -std::numeric_limits<double>::infinity());
    EXPECT_TRUE(std::isnan(s(0, j)));
    EXPECT_TRUE(std::isnan(div(j)));
    EXPECT_TRUE(std::isnan(jv(0, j)));
  }
}

TEST(LogNormalReference, MixedTimesAndSizes) {
  for (int d : {1, 2, 7}) {
    for (int b : {1, 3, 64}) {
      const GbmSde gbm = ExampleGbm(d);
      const LogNormalReference ref(Vector::LinSpaced(d, -0.5, 0.5), Vector::Constant(d, 0.3), gbm);
      Batch x(d, b);
      ref.SampleMarginal(0.5, NoiseStream(1, Stream::kData), 0, x);
      RowVector t = RowVector::LinSpaced(b, 0.0, 2.0);
      Batch s(d, b);
      RowVector logp(b);
      ref.Evaluate(x, t, s);
      ref.LogDensity(x, t, logp);
      // Column by column with a single time gives the same bits.
      for (int j = 0; j < b; ++j) {
        Batch sj(d, 1);
        RowVector lj(1);
        const RowVector tj = RowVector::Constant(1, t(j));
        ref.Evaluate(x.col(j), tj, sj);
        ref.LogDensity(x.col(j), tj, lj);
        EXPECT_EQ(sj, s.col(j));
        EXPECT_EQ(lj(0), logp(j));
      }
    }
  }
}

// log X_t ~ N(m_t, v_t): sample moments of log x within 5 standard errors (fixed seed).
TEST(LogNormalReference, SampleMarginalMomentsAndChunking) {
  const GbmSde gbm = ExampleGbm(2);
  const LogNormalReference ref(Vector::Zero(2), Vector::Constant(2, 0.3), gbm);
  const double t = 1.5;
  Batch x(2, 20000);
  const NoiseStream noise(9, Stream::kData);
  ref.SampleMarginal(t, noise, 0, x);
  ASSERT_GT(x.minCoeff(), 0.0);
  const MomentEstimate m = EstimateMoments(x.array().log().matrix());
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(m.mean(i), ref.LogMean(t)(i), 5 * m.mean_stderr(i));
    EXPECT_NEAR(m.cov(i, i), ref.LogVariance(t)(i), 5 * m.cov_stderr(i, i));
  }
  EXPECT_NEAR(m.cov(0, 1), 0.0, 5 * m.cov_stderr(0, 1));
  Batch a(2, 10), b(2, 54);
  ref.SampleMarginal(t, noise, 0, a);
  ref.SampleMarginal(t, noise, 10, b);
  EXPECT_EQ(x.leftCols(10), a);
  EXPECT_EQ(x.middleCols(10, 54), b);
}

// Odd dimensions put chunk boundaries at every alignment; the bits must not change.
TEST(LogNormalReference, SampleMarginalBitwiseChunkingInvariant) {
  for (int d : {1, 3, 7}) {
    const GbmSde gbm = ExampleGbm(d);
    const LogNormalReference ref(Vector::Zero(d), Vector::Constant(d, 0.3), gbm);
    const NoiseStream noise(4, Stream::kData);
    Batch all(d, 64);
    ref.SampleMarginal(0.7, noise, 0, all);
    for (int split : {1, 3, 10, 33}) {
      Batch a(d, split), b(d, 64 - split);
      ref.SampleMarginal(0.7, noise, 0, a);
      ref.SampleMarginal(0.7, noise, split, b);
      EXPECT_EQ(all.leftCols(split), a) << "d = " << d << ", split = " << split;
      EXPECT_EQ(all.rightCols(64 - split), b) << "d = " << d << ", split = " << split;
    }
  }
}

TEST(LogNormalReference, ExpectedSquaredNormClosedForm) {
  const GbmSde gbm = ExampleGbm(2);
  Vector m0(2);
  m0 << 0.1, -0.3;
  const LogNormalReference ref(m0, Vector::Constant(2, 0.3), gbm);
  const double t = 0.8;
  const Vector m = ref.LogMean(t);
  const Vector v = ref.LogVariance(t);
  double expected = 0.0;
  for (int i = 0; i < 2; ++i) expected += std::exp(2 * (v(i) - m(i))) * (1 + 1 / v(i));
  EXPECT_NEAR(*ref.ExpectedSquaredNorm(t), expected, 16 * kEps * expected);
  EXPECT_TRUE(ref.HasDivergence());
  EXPECT_TRUE(ref.HasJvp());
}

}  // namespace
}  // namespace scoresde
