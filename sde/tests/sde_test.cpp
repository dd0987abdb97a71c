// The Sde base: structure-generic products and the finite-difference divergence, checked against
// the hand-derived divergences and the automatic ones.
#include "scoresde/sde/sde.hpp"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "scoresde/sde/autodiff.hpp"
#include "scoresde/sde/error.hpp"
#include "test_sdes.hpp"

namespace scoresde {
namespace {

using testing::DiagonalFunctor;
using testing::GeneralFunctor;

// Central differences with h = ε^(1/3)·max(1, |x|): truncation h²/6·|∂³(GGᵀ)| plus rounding
// ε·|GGᵀ|/h, both ≈ ε^(2/3) ≈ 4e-11 times the size of GGᵀ and its third derivative. For these
// polynomial/trigonometric test fields on |x| ≤ 1 both sizes are below 30 summed over a row (d ≤ 7
// terms), so 1e-8 is a bound with margin, not a tuned value.
constexpr double kFiniteDifferenceTol = 1e-8;

TEST(FiniteDifferenceDivergence, MatchesAnalyticAndAutoDiffForDiagonalNoise) {
  for (int d : {1, 2, 7}) {
    const AutoDiffSde<DiagonalFunctor> sde(DiagonalFunctor{d});
    for (int batch : {1, 3}) {
      const Batch x = Batch::Random(d, batch);
      Batch fd(d, batch), ad(d, batch);
      FiniteDifferenceDivergenceOfGGt(sde, x, 0.4, fd);
      sde.DivergenceOfGGt(x, 0.4, ad);
      EXPECT_LT((fd - ad).cwiseAbs().maxCoeff(), kFiniteDifferenceTol) << "d = " << d;
      for (int j = 0; j < batch; ++j) {
        EXPECT_LT((fd.col(j) - DiagonalFunctor{d}.AnalyticDivergence(x.col(j), 0.4))
                      .cwiseAbs()
                      .maxCoeff(),
                  kFiniteDifferenceTol);
      }
    }
  }
}

TEST(FiniteDifferenceDivergence, MatchesAnalyticForGeneralNoise) {
  const AutoDiffSde<GeneralFunctor> sde{GeneralFunctor{}};
  const Batch x = Batch::Random(2, 64);
  Batch fd(2, 64);
  FiniteDifferenceDivergenceOfGGt(sde, x, 0.0, fd);
  for (int j = 0; j < 64; ++j) {
    EXPECT_LT((fd.col(j) - GeneralFunctor::AnalyticDivergence(x.col(j))).cwiseAbs().maxCoeff(),
              kFiniteDifferenceTol);
  }
}

TEST(Sde, GenericProductsFollowTheStructure) {
  const AutoDiffSde<GeneralFunctor> general{GeneralFunctor{}};
  const Batch x = Batch::Random(2, 3);
  const Batch v3 = Batch::Random(3, 3);
  const Batch v2 = Batch::Random(2, 3);
  Batch out(2, 3);
  general.DiffusionTimes(x, 0.0, v3, out);
  Matrix g(2, 3);
  for (int j = 0; j < 3; ++j) {
    general.DiffusionMatrix(x.col(j), 0.0, g);
    EXPECT_TRUE(out.col(j).isApprox(g * v3.col(j)));
  }
  general.DiffusionSquaredTimes(x, 0.0, v2, out);
  for (int j = 0; j < 3; ++j) {
    general.DiffusionMatrix(x.col(j), 0.0, g);
    EXPECT_TRUE(out.col(j).isApprox(g * g.transpose() * v2.col(j)));
  }
  const AutoDiffSde<DiagonalFunctor> diagonal(DiagonalFunctor{2});
  Batch gd(2, 3);
  diagonal.DiagonalDiffusion(x, 0.2, gd);
  diagonal.DiffusionSquaredTimes(x, 0.2, v2, out);
  EXPECT_TRUE(out.isApprox((gd.array().square() * v2.array()).matrix()));
  Matrix full(2, 2);
  diagonal.DiffusionMatrix(x.col(1), 0.2, full);
  EXPECT_TRUE(full.isApprox(gd.col(1).asDiagonal().toDenseMatrix()));
}

TEST(Sde, WrongStructureQueriesThrow) {
  const AutoDiffSde<GeneralFunctor> general{GeneralFunctor{}};
  Batch x = Batch::Random(2, 1), g(2, 1);
  EXPECT_THROW(general.ScalarDiffusion(0.0), InvalidArgument);
  EXPECT_THROW(general.DiagonalDiffusion(x, 0.0, g), InvalidArgument);
  EXPECT_THROW(general.DiagonalDiffusionDerivative(x, 0.0, g), InvalidArgument);
  EXPECT_EQ(ToString(NoiseType::kGeneral), "general");
  EXPECT_EQ(ToString(NoiseType::kDiagonal), "diagonal");
  EXPECT_EQ(ToString(NoiseType::kScalar), "scalar");
}

}  // namespace
}  // namespace scoresde
