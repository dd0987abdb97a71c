#include "scoresde/sde/brownian.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

// Sums of fine increments equal the coarse increment exactly up to rounding, because both come
// from the same tree nodes; the space-time integrals follow the concatenation rule.
TEST(BrownianPath, CoarseIncrementIsTheSumOfFineOnes) {
  const BrownianPath path(3, 11, {.t0 = 0.0, .t1 = 2.0, .max_depth = 20});
  Batch coarse_w(3, 5), coarse_z(3, 5);
  path.Increment(0.5, 1.5, 10, coarse_w, coarse_z);
  Batch w = Batch::Zero(3, 5), z = Batch::Zero(3, 5);
  Batch dw(3, 5), dz(3, 5);
  const int n = 16;
  const double h = 1.0 / n;
  for (int k = 0; k < n; ++k) {
    const double s = 0.5 + k * h;
    path.Increment(s, s + h, 10, dw, dz);
    z += dz + h * (n - k - 1) * dw;  // ∫_s^{1.5}(W − W_s) picks up (1.5 − s − h)·ΔW_k
    w += dw;
  }
  EXPECT_LT((w - coarse_w).cwiseAbs().maxCoeff(), 1e-14);
  EXPECT_LT((z - coarse_z).cwiseAbs().maxCoeff(), 1e-14);
}

TEST(BrownianPath, IncrementsAddOverAdjacentIntervals) {
  const BrownianPath path(2, 5);
  Batch a(2, 4), b(2, 4), c(2, 4);
  path.Increment(0.1, 0.37, 0, a);
  path.Increment(0.37, 0.9, 0, b);
  path.Increment(0.1, 0.9, 0, c);
  EXPECT_LT((a + b - c).cwiseAbs().maxCoeff(), 1e-14);
}

TEST(BrownianPath, SamplesAreIndependentOfTheBatchSplit) {
  const BrownianPath path(4, 99);
  Batch whole(4, 9), part(4, 9);
  path.Increment(0.25, 0.75, 3, whole);
  path.Increment(0.25, 0.75, 3, part.leftCols(4));
  path.Increment(0.25, 0.75, 7, part.rightCols(5));
  EXPECT_EQ(whole, part);
  EXPECT_NE(whole.col(0), whole.col(1));
}

TEST(BrownianPath, ZeroLengthIntervalIsZero) {
  const BrownianPath path(2, 1);
  Batch w(2, 3), z(2, 3);
  path.Increment(0.3, 0.3, 0, w, z);
  EXPECT_TRUE(w.isZero(0.0));
  EXPECT_TRUE(z.isZero(0.0));
}

TEST(BrownianPath, RejectsBadArguments) {
  EXPECT_THROW(BrownianPath(0, 1), InvalidArgument);
  EXPECT_THROW(BrownianPath(1, 1, {.t0 = 1.0, .t1 = 1.0}), InvalidArgument);
  EXPECT_THROW(BrownianPath(1, 1, {.max_depth = 43}), InvalidArgument);
  const BrownianPath path(2, 1);
  Batch w(2, 1), wrong(3, 1);
  EXPECT_THROW(path.Increment(0.5, 0.4, 0, w), InvalidArgument);
  EXPECT_THROW(path.Increment(-0.1, 0.4, 0, w), InvalidArgument);
  EXPECT_THROW(path.Increment(0.1, 1.4, 0, w), InvalidArgument);
  try {
    path.Increment(0.1, 0.4, 0, wrong);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("dw"));
  }
}

}  // namespace
}  // namespace scoresde
