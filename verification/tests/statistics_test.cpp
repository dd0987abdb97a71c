#include "scoresde/verification/statistics.hpp"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kEps = std::numeric_limits<double>::epsilon();

Batch Normals(int d, int n, uint64_t seed) {
  Batch x(d, n);
  NoiseStream(seed, Stream::kUser).FillNormal(0, 0, 0, x);
  return x;
}

// x = 1, 2, 3, 4: mean 2.5, S = 5/3, m2 = 1.25, m4 = (2·1.5⁴ + 2·0.5⁴)/4 = 2.5625,
// cov_se = sqrt((2.5625 − 1.5625)/4) = 0.5.
TEST(EstimateMoments, HandExample) {
  Batch x(1, 4);
  x << 1.0, 2.0, 3.0, 4.0;
  const MomentEstimate m = EstimateMoments(x);
  EXPECT_EQ(m.count, 4);
  EXPECT_NEAR(m.mean(0), 2.5, 4 * kEps);
  EXPECT_NEAR(m.cov(0, 0), 5.0 / 3.0, 8 * kEps);
  EXPECT_NEAR(m.mean_stderr(0), std::sqrt(5.0 / 12.0), 8 * kEps);
  EXPECT_NEAR(m.cov_stderr(0, 0), 0.5, 8 * kEps);
}

// Two passes: an offset of 1e8 on unit-scale data leaves the covariance accurate (a one-pass
// E[x²] − E[x]² would lose all 16 digits).
TEST(EstimateMoments, LargeOffsetDoesNotCancel) {
  Batch x = Normals(2, 1000, 1);
  const MomentEstimate plain = EstimateMoments(x);
  x.array() += 1e8;
  const MomentEstimate shifted = EstimateMoments(x);
  // Rounding x + 1e8 perturbs each entry by up to ulp(1e8)/2 = 7.5e-9.
  EXPECT_LT((shifted.cov - plain.cov).cwiseAbs().maxCoeff(), 1e-7);
  EXPECT_NEAR(shifted.mean(0) - 1e8, plain.mean(0), 1e-7);
}

TEST(EstimateMoments, Sizes) {
  for (int d : {1, 2, 7}) {
    for (int n : {3, 64}) {
      const Batch x = Normals(d, n, 2);
      const MomentEstimate m = EstimateMoments(x);
      const Vector mean = x.rowwise().mean();
      const Matrix centered = x.colwise() - mean;
      const Matrix cov = centered * centered.transpose() / (n - 1);
      EXPECT_LT((m.mean - mean).norm(), 1e-14);
      EXPECT_LT((m.cov - cov).norm(), 1e-13);
      EXPECT_EQ(m.cov, m.cov.transpose());
      EXPECT_TRUE((m.cov_stderr.array() >= 0).all());
    }
  }
}

TEST(EstimateMoments, RejectsBadInput) {
  EXPECT_THAT([] { EstimateMoments(Batch::Zero(2, 1)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("samples.cols() = 1")));
  EXPECT_THAT([] { EstimateMoments(Batch::Zero(0, 5)); },
              ThrowsMessage<InvalidArgument>(HasSubstr("samples.rows() = 0")));
  Batch x = Batch::Zero(2, 5);
  x(1, 3) = std::nan("");
  EXPECT_THAT([&] { EstimateMoments(x); },
              ThrowsMessage<InvalidArgument>(HasSubstr("samples(1, 3) = nan")));
}

TEST(FrechetDistance, ClosedForms) {
  const Vector zero = Vector::Zero(1);
  EXPECT_NEAR(FrechetDistance(zero, Matrix::Ones(1, 1), zero, Matrix::Ones(1, 1)), 0.0, 1e-15);
  // N(0, 1) vs N(1, 4): 1 + (1 − 2)² = 2.
  EXPECT_NEAR(
      FrechetDistance(zero, Matrix::Ones(1, 1), Vector::Ones(1), Matrix::Constant(1, 1, 4.0)), 2.0,
      8 * kEps);
  // Identical full covariances give 0 up to rounding of the eigendecompositions.
  Matrix c(3, 3);
  c << 2.0, 0.5, 0.1, 0.5, 1.0, -0.2, 0.1, -0.2, 0.7;
  const Vector m = Vector::LinSpaced(3, -1.0, 1.0);
  EXPECT_NEAR(FrechetDistance(m, c, m, c), 0.0, 1e-13);
  // Commuting (diagonal) covariances: ‖Δm‖² + Σ (σ1 − σ2)².
  Vector s1(3), s2(3);
  s1 << 1.0, 2.0, 0.5;
  s2 << 0.5, 1.0, 3.0;
  const Matrix c1 = s1.array().square().matrix().asDiagonal();
  const Matrix c2 = s2.array().square().matrix().asDiagonal();
  EXPECT_NEAR(FrechetDistance(m, c1, Vector::Zero(3), c2),
              m.squaredNorm() + (s1 - s2).squaredNorm(), 1e-13);
  // A rank-deficient (semidefinite) covariance is accepted.
  const Matrix singular = Vector::Ones(2) * Vector::Ones(2).transpose();
  EXPECT_NEAR(FrechetDistance(Vector::Zero(2), singular, Vector::Zero(2), singular), 0.0, 1e-7);
}

TEST(FrechetDistance, RejectsBadInput) {
  const Vector m = Vector::Zero(2);
  const Matrix eye = Matrix::Identity(2, 2);
  EXPECT_THAT([&] { FrechetDistance(m, Matrix::Identity(3, 3), m, eye); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": c1 has shape")));
  EXPECT_THAT([&] { FrechetDistance(m, eye, Vector::Zero(3), eye); },
              ThrowsMessage<InvalidArgument>(HasSubstr(": m2 has shape")));
  Matrix nan_cov = eye;
  nan_cov(0, 1) = std::nan("");
  EXPECT_THAT([&] { FrechetDistance(m, eye, m, nan_cov); },
              ThrowsMessage<InvalidArgument>(HasSubstr("c2(0, 1) = nan")));
  Matrix asymmetric = eye;
  asymmetric(0, 1) = 0.5;
  EXPECT_THAT([&] { FrechetDistance(m, asymmetric, m, eye); },
              ThrowsMessage<InvalidArgument>(HasSubstr("max|c1 - transpose|")));
  EXPECT_THAT([&] { FrechetDistance(m, -eye, m, eye); },
              ThrowsMessage<InvalidArgument>(HasSubstr("smallest eigenvalue of c1")));
  EXPECT_THAT([&] { FrechetDistance(m, eye, m, -eye); },
              ThrowsMessage<InvalidArgument>(HasSubstr("c2")));
}

TEST(SlicedWasserstein, IdenticalSamplesGiveZero) {
  const Batch a = Normals(3, 50, 3);
  EXPECT_EQ(SlicedWasserstein(a, a, 20, 1), 0.0);
}

// In 1-D every direction is ±1, so SW_2 = W_2: a shift by c gives |c|, and unequal sizes use
// the exact quantile functions: {0, 1} vs {0, 0.5, 1} differ by 0.5 on u ∈ [1/3, 2/3), so
// W_2² = 0.25 / 3.
TEST(SlicedWasserstein, OneDimensionalClosedForms) {
  const Batch a = Normals(1, 40, 4);
  const Batch b = a.array() + 0.7;
  EXPECT_NEAR(SlicedWasserstein(a, b, 3, 2), 0.7, 1e-14);
  Batch two(1, 2), three(1, 3);
  two << 1.0, 0.0;
  three << 0.5, 1.0, 0.0;
  EXPECT_NEAR(SlicedWasserstein(two, three, 1, 0), std::sqrt(0.25 / 3.0), 1e-15);
  EXPECT_NEAR(SlicedWasserstein(three, two, 1, 0), std::sqrt(0.25 / 3.0), 1e-15);
}

// A shift by c in d = 2: each projection's W_2 is |θ·c| exactly, so SW² is the Monte-Carlo mean
// of ‖c‖² cos²φ over P uniform angles, mean ‖c‖²/2 and standard deviation ‖c‖²/sqrt(8); the
// estimate must lie within 5 standard errors (fixed seed).
TEST(SlicedWasserstein, ShiftInTwoDimensions) {
  const Batch a = Normals(2, 30, 5);
  Vector c(2);
  c << 1.0, -2.0;
  const Batch b = a.colwise() + c;
  const int p = 4000;
  const double sw = SlicedWasserstein(a, b, p, 7);
  const double se = c.squaredNorm() / std::sqrt(8.0) / std::sqrt(static_cast<double>(p));
  EXPECT_NEAR(sw * sw, c.squaredNorm() / 2.0, 5 * se);
  EXPECT_EQ(sw, SlicedWasserstein(a, b, p, 7));  // deterministic
  EXPECT_NE(sw, SlicedWasserstein(a, b, p, 8));
}

TEST(SlicedWasserstein, RejectsBadInput) {
  const Batch a = Normals(2, 10, 1);
  EXPECT_THAT([&] { SlicedWasserstein(a, Normals(3, 10, 1), 5, 0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("b.rows() = 3")));
  EXPECT_THAT([&] { SlicedWasserstein(a, a, 0, 0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("num_projections = 0")));
  EXPECT_THAT([&] { SlicedWasserstein(a, Normals(2, 1, 1), 5, 0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("b.cols() = 1")));
  Batch bad = a;
  bad(0, 0) = std::numeric_limits<double>::infinity();
  EXPECT_THAT([&] { SlicedWasserstein(bad, a, 5, 0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("a(0, 0) = inf")));
}

// Brute-force U-statistic for comparison.
double BruteMmd(const Batch& a, const Batch& b, double h) {
  auto k = [h](const Vector& x, const Vector& y) {
    return std::exp(-(x - y).squaredNorm() / (2 * h * h));
  };
  const int n = static_cast<int>(a.cols());
  const int m = static_cast<int>(b.cols());
  double aa = 0, bb = 0, ab = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      if (i != j) aa += k(a.col(i), a.col(j));
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      if (i != j) bb += k(b.col(i), b.col(j));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) ab += k(a.col(i), b.col(j));
  return aa / (n * (n - 1.0)) + bb / (m * (m - 1.0)) - 2 * ab / (n * m);
}

// Against the brute-force formula, across the 256-column blocks (n = 300).
TEST(MmdSquared, MatchesBruteForce) {
  for (int d : {1, 2, 7}) {
    const Batch a = Normals(d, 300, 10);
    const Batch b = (Normals(d, 53, 11).array() + 0.3).matrix();
    const double h = 1.3;
    // Gram-trick squared distances lose ~ε·‖x‖² absolutely; the kernel sums are O(1) averages.
    EXPECT_NEAR(MmdSquared(a, b, h), BruteMmd(a, b, h), 1e-12);
  }
}

// For identical sets, with S the off-diagonal kernel sum: MMD² = 2S/(n(n−1)) − 2(S + n)/n²,
// which lies in [−2/n, 0].
TEST(MmdSquared, IdenticalSets) {
  const Batch a = Normals(2, 40, 12);
  const double h = 0.8;
  const double value = MmdSquared(a, a, h);
  double off = 0.0;
  for (int i = 0; i < 40; ++i)
    for (int j = 0; j < 40; ++j)
      if (i != j) off += std::exp(-(a.col(i) - a.col(j)).squaredNorm() / (2 * h * h));
  EXPECT_NEAR(value, 2 * off / (40.0 * 39.0) - 2 * (off + 40) / 1600.0, 1e-13);
  EXPECT_LE(value, 0.0);
  EXPECT_GE(value, -2.0 / 40);
}

TEST(MmdSquared, RejectsBadInput) {
  const Batch a = Normals(2, 10, 1);
  EXPECT_THAT([&] { MmdSquared(a, a, 0.0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("bandwidth = 0")));
  EXPECT_THAT([&] { MmdSquared(a, a, std::nan("")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("bandwidth = nan")));
  EXPECT_THAT([&] { MmdSquared(a, Normals(1, 10, 1), 1.0); },
              ThrowsMessage<InvalidArgument>(HasSubstr("b.rows() = 1")));
}

// Pooled {0, 1, 3, 7}: distances 1, 2, 3, 4, 6, 7, median (3 + 4)/2.
TEST(MedianHeuristicBandwidth, HandExample) {
  Batch a(1, 2), b(1, 2);
  a << 0.0, 1.0;
  b << 3.0, 7.0;
  EXPECT_EQ(MedianHeuristicBandwidth(a, b), 3.5);
  // Deterministic on large inputs (subset of 500 per set).
  const Batch big = Normals(3, 2000, 13);
  EXPECT_EQ(MedianHeuristicBandwidth(big, big), MedianHeuristicBandwidth(big, big));
  EXPECT_GT(MedianHeuristicBandwidth(big, big), 0.0);
}

TEST(MedianHeuristicBandwidth, RejectsDegenerateInput) {
  const Batch same = Batch::Ones(2, 5);
  EXPECT_THAT([&] { MedianHeuristicBandwidth(same, same); },
              ThrowsMessage<InvalidArgument>(HasSubstr("median pairwise distance = 0")));
}

}  // namespace
}  // namespace scoresde
