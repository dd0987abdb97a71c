#include "scoresde/verification/gaussian_mixture.hpp"

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include <Eigen/Dense>
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

// A well-conditioned SPD matrix of size d (eigenvalues in [0.5, 2]) built deterministically.
Matrix SpdMatrix(int d, uint64_t seed) {
  Batch z(d, d);
  NoiseStream(seed, Stream::kUser).FillNormal(0, 0, 0, z);
  const Eigen::HouseholderQR<Matrix> qr(z);
  const Matrix q = qr.householderQ();
  Vector lambda(d);
  for (int i = 0; i < d; ++i) lambda(i) = d == 1 ? 1.3 : 0.5 + 1.5 * i / (d - 1);
  return q * lambda.asDiagonal() * q.transpose();
}

Batch Points(int d, int b, uint64_t seed, double scale = 1.5) {
  Batch x(d, b);
  NoiseStream(seed, Stream::kUser).FillNormal(1, 0, 0, x);
  return scale * x;
}

GaussianMixture ThreeComponents(int d) {
  Vector w(3);
  w << 0.2, 0.5, 0.3;
  std::vector<Vector> means;
  std::vector<Matrix> covs;
  for (int k = 0; k < 3; ++k) {
    means.push_back(Vector::Constant(d, k - 1.0) + 0.3 * Vector::LinSpaced(d, 0.0, 1.0));
    covs.push_back(SpdMatrix(d, 10 + k) * (0.5 + 0.4 * k));
  }
  return GaussianMixture(w, means, covs);
}

// The 1-D mixture of the hand-formula tests: 0.3 N(−1, 0.5) + 0.7 N(2, 2).
GaussianMixture OneDimensional() {
  Vector w(2);
  w << 0.3, 0.7;
  return GaussianMixture(w, {Vector::Constant(1, -1.0), Vector::Constant(1, 2.0)},
                         {Matrix::Constant(1, 1, 0.5), Matrix::Constant(1, 1, 2.0)});
}

double Normal1d(double x, double mu, double var) {
  return std::exp(-0.5 * (x - mu) * (x - mu) / var) / std::sqrt(2.0 * std::numbers::pi * var);
}

TEST(GaussianMixture, RejectsBadArguments) {
  const Matrix eye = Matrix::Identity(2, 2);
  const Vector zero = Vector::Zero(2);
  auto make = [&](Vector w, std::vector<Vector> m, std::vector<Matrix> c) {
    return GaussianMixture(std::move(w), std::move(m), std::move(c));
  };
  Vector w2(2);
  w2 << 0.5, 0.5;
  EXPECT_THAT([&] { make(Vector(0), {}, {}); },
              ThrowsMessage<InvalidArgument>(HasSubstr("weights.size() = 0")));
  EXPECT_THAT(
      [&] {
        make(w2, {zero}, {eye, eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("means.size()")));
  EXPECT_THAT(
      [&] {
        make(w2, {zero, zero}, {eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("covs.size()")));
  EXPECT_THAT(
      [&] {
        make(w2, {zero, Vector::Zero(3)}, {eye, eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("means[1]")));
  EXPECT_THAT(
      [&] {
        make(w2, {zero, zero}, {eye, Matrix::Identity(3, 3)});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("covs[1]")));
  EXPECT_THAT([&] { make(Vector::Ones(1), {Vector(0)}, {Matrix(0, 0)}); },
              ThrowsMessage<InvalidArgument>(HasSubstr("means[0].size() = 0")));
  Vector negative(2);
  negative << 1.2, -0.2;
  EXPECT_THAT(
      [&] {
        make(negative, {zero, zero}, {eye, eye});
      },
      ThrowsMessage<InvalidArgument>(
          HasSubstr("GaussianMixture: weights[1] = -0.2; must be >= 0")));
  Vector short_sum(2);
  short_sum << 0.5, 0.4;
  EXPECT_THAT(
      [&] {
        make(short_sum, {zero, zero}, {eye, eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("sum(weights) = 0.9")));
  Vector nan_weight(2);
  nan_weight << std::nan(""), 0.5;
  EXPECT_THAT(
      [&] {
        make(nan_weight, {zero, zero}, {eye, eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("weights[0]")));
  Vector nan_mean = zero;
  nan_mean(1) = std::nan("");
  EXPECT_THAT(
      [&] {
        make(w2, {zero, nan_mean}, {eye, eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("means[1]")));
  Matrix inf_cov = eye;
  inf_cov(0, 1) = std::numeric_limits<double>::infinity();
  EXPECT_THAT(
      [&] {
        make(w2, {zero, zero}, {inf_cov, eye});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("covs[0]")));
  Matrix asymmetric = eye;
  asymmetric(0, 1) = 0.1;
  EXPECT_THAT(
      [&] {
        make(w2, {zero, zero}, {eye, asymmetric});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("covs[1]")));
  Matrix indefinite(2, 2);
  indefinite << 1.0, 2.0, 2.0, 1.0;  // eigenvalues 3 and −1
  EXPECT_THAT(
      [&] {
        make(w2, {zero, zero}, {eye, indefinite});
      },
      ThrowsMessage<InvalidArgument>(HasSubstr("smallest eigenvalue of covs[1] = -0.99")));
  EXPECT_THAT([&] { GaussianMixture::Gaussian(zero, Matrix::Zero(2, 2)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("covs[0]")));
}

TEST(GaussianMixture, AcceptsWeightsWithinTolerance) {
  Vector w(2);
  w << 0.5, 0.5 + 5e-13;
  const GaussianMixture p(w, {Vector::Zero(1), Vector::Ones(1)},
                          {Matrix::Identity(1, 1), Matrix::Identity(1, 1)});
  EXPECT_NEAR(p.weights().sum(), 1.0, 4 * kEps);
}

TEST(GaussianMixture, MethodsRejectWrongShapes) {
  const GaussianMixture p = ThreeComponents(2);
  Batch x(3, 4), s(2, 4), v(2, 4);
  RowVector logp(4), wrong(3);
  EXPECT_THAT([&] { p.LogDensity(x, logp); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": x has shape 3 x 4")));
  Batch x2 = Batch::Zero(2, 4);
  EXPECT_THAT([&] { p.LogDensity(x2, wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": logp has shape")));
  Batch s_wrong(2, 5);
  EXPECT_THAT([&] { p.Score(x2, s_wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": s has shape")));
  EXPECT_THAT([&] { p.ScoreDivergence(x2, wrong); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": div has shape")));
  Batch v_wrong(2, 3);
  EXPECT_THAT([&] { p.ScoreJvp(x2, v_wrong, s); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": v has shape")));
  EXPECT_THAT([&] { p.Sample(NoiseStream(1, Stream::kData), 0, x); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": x has shape")));
  EXPECT_THAT([&] { p.Sample(NoiseStream(1, Stream::kData), -1, x2); },
              ThrowsMessage<InvalidArgument>(HasSubstr("first_sample")));
}

// Hand formulas for the 1-D mixture; rounding in exp/log/sums is a few ulp of the result.
TEST(GaussianMixture, OneDimensionalMatchesHandFormula) {
  const GaussianMixture p = OneDimensional();
  Batch x(1, 7);
  x << -4.0, -1.0, -0.3, 0.0, 0.7, 2.0, 5.5;
  RowVector logp(7), div(7);
  Batch s(1, 7);
  p.LogDensity(x, logp);
  p.Score(x, s);
  p.ScoreDivergence(x, div);
  for (int j = 0; j < 7; ++j) {
    const double xj = x(0, j);
    const double n1 = 0.3 * Normal1d(xj, -1.0, 0.5);
    const double n2 = 0.7 * Normal1d(xj, 2.0, 2.0);
    const double density = n1 + n2;
    // p' = Σ w N_k s_k, p'' = Σ w N_k (s_k² − 1/σ_k²); (log p)'' = p''/p − (p'/p)².
    const double s1 = -(xj + 1.0) / 0.5;
    const double s2 = -(xj - 2.0) / 2.0;
    const double d1 = n1 * s1 + n2 * s2;
    const double d2 = n1 * (s1 * s1 - 2.0) + n2 * (s2 * s2 - 0.5);
    const double score = d1 / density;
    EXPECT_NEAR(logp(j), std::log(density), 16 * kEps * std::max(1.0, std::abs(logp(j))));
    EXPECT_NEAR(s(0, j), score, 64 * kEps * std::max(1.0, std::abs(score)));
    const double second = d2 / density - score * score;
    EXPECT_NEAR(div(j), second, 256 * kEps * std::max(1.0, score * score + 2.0));
  }
}

TEST(GaussianMixture, FarAwayPointsStayFinite) {
  const GaussianMixture p = OneDimensional();
  Batch x(1, 2);
  x << -1e3, 1e4;
  RowVector logp(2);
  Batch s(1, 2);
  p.LogDensity(x, logp);
  p.Score(x, s);
  EXPECT_TRUE(logp.allFinite());
  EXPECT_TRUE(s.allFinite());
  // Far out, the widest component dominates: s → −(x − 2)/2.
  EXPECT_NEAR(s(0, 1), -(1e4 - 2.0) / 2.0, 1e-9 * 5e3);
}

// Columns are evaluated several at a time; a column whose evaluation is special (non-finite input,
// every component underflowed) must not change the columns evaluated beside it.
TEST(GaussianMixture, SpecialColumnsLeaveTheirNeighboursAlone) {
  Vector w(3);
  w << 0.5, 0.0, 0.5;  // a zero-weight component too
  const GaussianMixture p(w, {Vector::Constant(1, -1.0), Vector::Constant(1, 0.0),
                              Vector::Constant(1, 2.0)},
                          {Matrix::Constant(1, 1, 0.5), Matrix::Constant(1, 1, 1.0),
                           Matrix::Constant(1, 1, 2.0)});
  Batch x(1, 8);
  x << 0.3, std::numeric_limits<double>::quiet_NaN(), -0.7, 1e200, 1.1, -2.0, 0.0, 2.5;
  RowVector logp(8), div(8);
  Batch s(1, 8);
  p.LogDensity(x, logp);
  p.ScoreDivergence(x, div);
  p.Score(x, s);
  for (int j : {0, 2, 4, 5, 6, 7}) {
    RowVector logp1(1), div1(1);
    Batch s1(1, 1);
    const Batch xj = x.col(j);
    p.LogDensity(xj, logp1);
    p.ScoreDivergence(xj, div1);
    p.Score(xj, s1);
    EXPECT_EQ(logp(j), logp1(0)) << "column " << j;
    EXPECT_EQ(div(j), div1(0)) << "column " << j;
    EXPECT_EQ(s(0, j), s1(0, 0)) << "column " << j;
    // The zero-weight component contributes nothing: the two-component formula holds. Both sides
    // are a few dozen roundings of terms of size ≤ 10 (|x| ≤ 2.5, variances ≥ 0.5): 1e-14
    // relative for log p and 1e-13 absolute for the score are ≈ 50 ε times those sizes.
    const double a = 0.5 * Normal1d(x(0, j), -1.0, 0.5);
    const double b = 0.5 * Normal1d(x(0, j), 2.0, 2.0);
    EXPECT_NEAR(logp(j), std::log(a + b), 1e-14 * std::max(1.0, std::abs(logp(j))));
    EXPECT_NEAR(s(0, j), (a * (-(x(0, j) + 1.0) / 0.5) + b * (-(x(0, j) - 2.0) / 2.0)) / (a + b),
                1e-13);
  }
  EXPECT_TRUE(std::isnan(logp(1)));
  EXPECT_TRUE(std::isnan(s(0, 1)));
  // x = 1e200: both components underflow; log p = −∞ and the score is the weights' average.
  EXPECT_EQ(logp(3), -std::numeric_limits<double>::infinity());
  EXPECT_NEAR(s(0, 3), 0.5 * (-(1e200 + 1.0) / 0.5) + 0.5 * (-(1e200 - 2.0) / 2.0), 1e-15 * 1e200);
}

class GaussianMixtureSizes : public ::testing::TestWithParam<std::tuple<int, int>> {};

// One component: s = −Σ⁻¹(x − μ), div = −tr Σ⁻¹, jv = −Σ⁻¹ v, log p the Gaussian log-density.
TEST_P(GaussianMixtureSizes, SingleGaussianClosedForm) {
  const auto [d, b] = GetParam();
  const Matrix cov = SpdMatrix(d, 3);
  const Vector mean = Vector::LinSpaced(d, -1.0, 1.0);
  const GaussianMixture p = GaussianMixture::Gaussian(mean, cov);
  const Batch x = Points(d, b, 4);
  const Batch v = Points(d, b, 5);
  Batch s(d, b), jv(d, b), s2(d, b);
  RowVector logp(b), div(b);
  p.LogDensity(x, logp);
  p.Score(x, s);
  p.ScoreDivergence(x, div);
  p.ScoreAndJvp(x, v, s2, jv);
  const Matrix precision = cov.inverse();
  const Matrix centered = x.colwise() - mean;
  const Batch expected_s = -precision * centered;
  // Relative accuracy of a well-conditioned (κ ≤ 4) d × d solve: a few d·ε.
  const double tol = 64 * d * kEps;
  EXPECT_LE((s - expected_s).norm(), tol * expected_s.norm() + tol);
  EXPECT_LE((s2 - expected_s).norm(), tol * expected_s.norm() + tol);
  EXPECT_LE((jv + precision * v).norm(), tol * (precision * v).norm() + tol);
  for (int j = 0; j < b; ++j) {
    const double quad = centered.col(j).dot(precision * centered.col(j));
    const double expected = -0.5 * quad - 0.5 * std::log(cov.determinant()) -
                            0.5 * d * std::log(2.0 * std::numbers::pi);
    EXPECT_NEAR(logp(j), expected, tol * (quad + d + 1.0));
    EXPECT_NEAR(div(j), -precision.trace(), tol * precision.trace());
  }
  EXPECT_NEAR(p.trace_precision(0), precision.trace(), tol * precision.trace());
  EXPECT_NEAR(p.log_det(0), std::log(cov.determinant()), tol * d);
}

// The mixture against a direct per-column evaluation of its formulas (dense inverses), across
// block boundaries (128 columns) when b = 300.
TEST_P(GaussianMixtureSizes, MixtureMatchesDirectFormulas) {
  const auto [d, b0] = GetParam();
  const int b = b0 == 64 ? 300 : b0;
  const GaussianMixture p = ThreeComponents(d);
  const Batch x = Points(d, b, 6);
  const Batch v = Points(d, b, 7);
  Batch s(d, b), jv(d, b);
  RowVector logp(b), div(b);
  p.LogDensity(x, logp);
  p.ScoreDivergence(x, div);
  p.ScoreAndJvp(x, v, s, jv);
  Batch jv_only(d, b);
  p.ScoreJvp(x, v, jv_only);
  EXPECT_EQ(jv_only, jv);
  for (int j = 0; j < b; ++j) {
    double density = 0.0;
    Vector grad = Vector::Zero(d);
    Matrix hess = Matrix::Zero(d, d);
    for (int k = 0; k < 3; ++k) {
      const Matrix prec = p.cov(k).inverse();
      const Vector diff = x.col(j) - p.mean(k);
      const double nk = p.weight(k) * std::exp(-0.5 * diff.dot(prec * diff)) /
                        std::sqrt(std::pow(2.0 * std::numbers::pi, d) * p.cov(k).determinant());
      const Vector sk = -prec * diff;
      density += nk;
      grad += nk * sk;
      hess += nk * (sk * sk.transpose() - prec);
    }
    const Vector score = grad / density;
    const Matrix h = hess / density - score * score.transpose();
    const double tol = 1e-12;  // dense inverses of κ ≤ 4 matrices, d ≤ 7: ~1e-14 relative
    EXPECT_NEAR(logp(j), std::log(density), tol * std::max(1.0, std::abs(logp(j))));
    EXPECT_LE((s.col(j) - score).norm(), tol * std::max(1.0, score.norm()));
    EXPECT_NEAR(div(j), h.trace(), tol * std::max(1.0, h.norm()) * d);
    EXPECT_LE((jv.col(j) - h * v.col(j)).norm(), tol * std::max(1.0, h.norm() * v.col(j).norm()));
  }
}

// Drawing [0, 64) at once equals drawing [0, 10) then [10, 64).
TEST_P(GaussianMixtureSizes, SampleIsChunkingInvariant) {
  const auto [d, b] = GetParam();
  const GaussianMixture p = ThreeComponents(d);
  const NoiseStream noise(42, Stream::kData);
  Batch all(d, b);
  p.Sample(noise, 0, all);
  const int split = b / 3;
  Batch first(d, split), rest(d, b - split);
  p.Sample(noise, 0, first);
  p.Sample(noise, split, rest);
  EXPECT_EQ(all.leftCols(split), first);
  EXPECT_EQ(all.rightCols(b - split), rest);
}

INSTANTIATE_TEST_SUITE_P(All, GaussianMixtureSizes,
                         ::testing::Combine(::testing::Values(1, 2, 7),
                                            ::testing::Values(1, 3, 64)));

// Bitwise: a column's results do not depend on the other columns in the call (d = 40 is large
// enough for Eigen's blocked kernels, which would differ in the last bits).
TEST(GaussianMixture, BitwiseIndependentOfChunking) {
  for (int d : {1, 2, 7, 40}) {
    const GaussianMixture p = ThreeComponents(d);
    const Batch x = Points(d, 64, 8);
    const Batch v = Points(d, 64, 9);
    Batch s(d, 64), jv(d, 64), samples(d, 64);
    RowVector logp(64), div(64);
    p.LogDensity(x, logp);
    p.ScoreDivergence(x, div);
    p.ScoreAndJvp(x, v, s, jv);
    p.Sample(NoiseStream(1, Stream::kData), 0, samples);
    for (int split : {1, 3, 10, 33}) {
      for (int part = 0; part < 2; ++part) {
        const int first = part == 0 ? 0 : split;
        const int n = part == 0 ? split : 64 - split;
        const Batch xs = x.middleCols(first, n);  // a fresh copy: other alignment
        const Batch vs = v.middleCols(first, n);
        Batch ss(d, n), jvs(d, n), samples_s(d, n);
        RowVector logps(n), divs(n);
        p.LogDensity(xs, logps);
        p.ScoreDivergence(xs, divs);
        p.ScoreAndJvp(xs, vs, ss, jvs);
        p.Sample(NoiseStream(1, Stream::kData), first, samples_s);
        EXPECT_EQ(logps, logp.segment(first, n)) << "d = " << d << ", split = " << split;
        EXPECT_EQ(divs, div.segment(first, n)) << "d = " << d << ", split = " << split;
        EXPECT_EQ(ss, s.middleCols(first, n)) << "d = " << d << ", split = " << split;
        EXPECT_EQ(jvs, jv.middleCols(first, n)) << "d = " << d << ", split = " << split;
        EXPECT_EQ(samples_s, samples.middleCols(first, n)) << "d = " << d << ", split = " << split;
      }
    }
  }
}

TEST(GaussianMixture, SampleChunksOf10And54) {
  const GaussianMixture p = ThreeComponents(2);
  const NoiseStream noise(7, Stream::kData);
  Batch all(2, 64), a(2, 10), b(2, 54);
  p.Sample(noise, 0, all);
  p.Sample(noise, 0, a);
  p.Sample(noise, 10, b);
  EXPECT_EQ(all.leftCols(10), a);
  EXPECT_EQ(all.rightCols(54), b);
}

TEST(GaussianMixture, MeanAndCovarianceClosedForm) {
  const GaussianMixture p = OneDimensional();
  const double mean = 0.3 * -1.0 + 0.7 * 2.0;
  const double second = 0.3 * (0.5 + 1.0) + 0.7 * (2.0 + 4.0);
  EXPECT_NEAR(p.Mean()(0), mean, 4 * kEps);
  EXPECT_NEAR(p.Covariance()(0, 0), second - mean * mean, 16 * kEps);
}

// Sample moments agree with Mean() and Covariance() within 5 standard errors (fixed seed;
// 5σ two-sided is exceeded with probability 6e-7 per entry).
TEST(GaussianMixture, SampleMomentsMatchClosedForm) {
  const GaussianMixture p = ThreeComponents(3);
  Batch x(3, 40000);
  p.Sample(NoiseStream(11, Stream::kData), 0, x);
  const MomentEstimate m = EstimateMoments(x);
  const Vector mean = p.Mean();
  const Matrix cov = p.Covariance();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(m.mean(i), mean(i), 5 * m.mean_stderr(i));
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(m.cov(i, j), cov(i, j), 5 * m.cov_stderr(i, j));
  }
}

TEST(GaussianMixture, ZeroWeightComponentIsNeverDrawn) {
  Vector w(2);
  w << 0.0, 1.0;
  const GaussianMixture p(w, {Vector::Constant(1, -100.0), Vector::Zero(1)},
                          {Matrix::Identity(1, 1), Matrix::Identity(1, 1)});
  Batch x(1, 1000);
  p.Sample(NoiseStream(3, Stream::kData), 0, x);
  EXPECT_GT(x.minCoeff(), -50.0);
  RowVector logp(1);
  Batch s(1, 1);
  const Batch at = Batch::Constant(1, 1, -100.0);
  p.LogDensity(at, logp);
  p.Score(at, s);
  EXPECT_NEAR(logp(0), -0.5 * 1e4 - 0.5 * std::log(2.0 * std::numbers::pi), 1e-9);
  EXPECT_NEAR(s(0, 0), 100.0, 1e-12);
}

TEST(GaussianMixture, TransformedMatchesComponentFormula) {
  const GaussianMixture p = ThreeComponents(2);
  Matrix a(1, 2);
  a << 0.5, -1.5;
  const Vector b = Vector::Constant(1, 0.25);
  const Matrix q = Matrix::Constant(1, 1, 0.1);
  const GaussianMixture out = p.Transformed(a, b, q);
  ASSERT_EQ(out.dim(), 1);
  ASSERT_EQ(out.num_components(), 3);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(out.weight(k), p.weight(k));
    EXPECT_NEAR(out.mean(k)(0), a.row(0).dot(p.mean(k)) + 0.25, 1e-14);
    const Vector at = a.row(0).transpose();
    EXPECT_NEAR(out.cov(k)(0, 0), at.dot(p.cov(k) * at) + 0.1, 1e-14);
  }
  EXPECT_THAT([&] { p.Transformed(Matrix::Identity(2, 3), Vector::Zero(2), Matrix::Zero(2, 2)); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": A has shape")));
  EXPECT_THAT([&] { p.Transformed(a, Vector::Zero(2), q); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": b has shape")));
  Matrix asymmetric(2, 2);
  asymmetric << 1.0, 0.5, 0.0, 1.0;
  EXPECT_THAT([&] { p.Transformed(Matrix::Identity(2, 2), Vector::Zero(2), asymmetric); },
              ThrowsMessage<InvalidArgument>(HasSubstr("max|Q - transpose(Q)|")));
  // Projecting onto nothing but a null direction with Q = 0 is singular.
  EXPECT_THAT([&] { p.Transformed(Matrix::Zero(1, 2), Vector::Zero(1), Matrix::Zero(1, 1)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("covs[0]")));
}

}  // namespace
}  // namespace scoresde
