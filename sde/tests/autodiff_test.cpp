#include "scoresde/sde/autodiff.hpp"

#include <cmath>

#include <gtest/gtest.h>

#include "test_sdes.hpp"

namespace scoresde {
namespace {

using testing::DiagonalFunctor;
using testing::GeneralFunctor;

// Jets are exact up to rounding: a few ulp of the terms summed.
constexpr double kAutoDiffTol = 1e-12;

TEST(AutoDiffSde, DiagonalDivergenceIsExact) {
  for (int d : {1, 3, 9, 17}) {  // below, at and above one Jet chunk of 8
    const AutoDiffSde<DiagonalFunctor> sde(DiagonalFunctor{d});
    const Batch x = Batch::Random(d, 4);
    Batch div(d, 4);
    sde.DivergenceOfGGt(x, 0.3, div);
    for (int j = 0; j < 4; ++j) {
      const Vector expected = DiagonalFunctor{d}.AnalyticDivergence(x.col(j), 0.3);
      EXPECT_LT((div.col(j) - expected).cwiseAbs().maxCoeff(), kAutoDiffTol) << "d = " << d;
    }
  }
}

TEST(AutoDiffSde, DiagonalDerivativeAndDiffusion) {
  const AutoDiffSde<DiagonalFunctor> sde(DiagonalFunctor{3});
  const Batch x = Batch::Random(3, 2);
  Batch dg(3, 2), g(3, 2);
  sde.DiagonalDiffusionDerivative(x, 0.5, dg);
  EXPECT_TRUE(dg.isApprox(2.0 * x, kAutoDiffTol));  // d = 3: neighbours differ
  sde.DiagonalDiffusion(x, 0.5, g);
  EXPECT_NEAR(g(1, 1), 0.5 + x(1, 1) * x(1, 1) + 0.05 * x(2, 1), 1e-15);
  EXPECT_TRUE(sde.HasDiffusionDerivative());
}

TEST(AutoDiffSde, GeneralDivergenceAndJacobianAreExact) {
  const AutoDiffSde<GeneralFunctor> sde{GeneralFunctor{}};
  const Batch x = Batch::Random(2, 5);
  Batch div(2, 5);
  sde.DivergenceOfGGt(x, 0.0, div);
  for (int j = 0; j < 5; ++j) {
    EXPECT_LT((div.col(j) - GeneralFunctor::AnalyticDivergence(x.col(j))).cwiseAbs().maxCoeff(),
              kAutoDiffTol);
  }
  std::vector<Matrix> dg;
  sde.DiffusionJacobian(x.col(0), 0.0, &dg);
  ASSERT_EQ(dg.size(), 2u);
  const double x0 = x(0, 0), x1 = x(1, 0);
  Matrix d0(2, 3), d1(2, 3);
  d0 << 1, 0, 0, std::cos(x0), x1, 0;
  d1 << 0, 0, 1, 0, x0, 0;
  EXPECT_TRUE(dg[0].isApprox(d0, kAutoDiffTol));
  EXPECT_TRUE(dg[1].isApprox(d1, kAutoDiffTol));
  Matrix g(2, 3);
  sde.DiffusionMatrix(x.col(0), 0.0, g);
  EXPECT_DOUBLE_EQ(g(1, 1), x0 * x1);
}

struct QuadraticScore {
  int dim() const { return 2; }
  // s = −(1 + t)(x0 + x1², x1 + x0 x1): ∇·s = −(1 + t)(2 + x0), J v by hand below.
  template <typename T>
  void operator()(const T* x, double t, T* s) const {
    s[0] = -(1.0 + t) * (x[0] + x[1] * x[1]);
    s[1] = -(1.0 + t) * (x[1] + x[0] * x[1]);
  }
};

TEST(AutoDiffScore, DivergenceAndJvpAreExact) {
  const AutoDiffScore<QuadraticScore> score{QuadraticScore{}};
  const Batch x = Batch::Random(2, 3);
  const Batch v = Batch::Random(2, 3);
  const RowVector t = RowVector::LinSpaced(3, 0.1, 0.9);
  RowVector div(3);
  score.Divergence(x, t, div);
  Batch s(2, 3), jv(2, 3), s_plain(2, 3);
  score.EvaluateWithJvp(x, t, v, s, jv);
  score.Evaluate(x, t, s_plain);
  EXPECT_EQ(s, s_plain);
  for (int j = 0; j < 3; ++j) {
    const double c = -(1.0 + t(j));
    EXPECT_NEAR(div(j), c * (2.0 + x(0, j)), kAutoDiffTol);
    EXPECT_NEAR(jv(0, j), c * (v(0, j) + 2 * x(1, j) * v(1, j)), kAutoDiffTol);
    EXPECT_NEAR(jv(1, j), c * (x(1, j) * v(0, j) + (1 + x(0, j)) * v(1, j)), kAutoDiffTol);
  }
  EXPECT_TRUE(score.HasDivergence());
  EXPECT_TRUE(score.HasJvp());
}

}  // namespace
}  // namespace scoresde
