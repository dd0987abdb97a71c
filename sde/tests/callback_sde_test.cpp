#include "scoresde/sde/callback_sde.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "test_sdes.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

CallbackSde::Functions DiagonalFunctions() {
  const testing::DiagonalFunctor functor{3};
  CallbackSde::Functions functions;
  functions.drift = [functor](ConstBatchRef x, double t, BatchRef f) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) functor.Drift(x.col(j).data(), t, f.col(j).data());
  };
  functions.diagonal_diffusion = [functor](ConstBatchRef x, double t, BatchRef g) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      functor.Diffusion(x.col(j).data(), t, g.col(j).data());
    }
  };
  return functions;
}

TEST(CallbackSde, FallsBackToFiniteDifferences) {
  const CallbackSde sde(3, 3, NoiseType::kDiagonal, 1.0, DiagonalFunctions());
  const Batch x = Batch::Random(3, 4);
  Batch div(3, 4);
  sde.DivergenceOfGGt(x, 0.25, div);
  for (int j = 0; j < 4; ++j) {
    // Same O(ε^(2/3)) finite-difference bound as sde_test.cpp.
    EXPECT_LT((div.col(j) - testing::DiagonalFunctor{3}.AnalyticDivergence(x.col(j), 0.25))
                  .cwiseAbs()
                  .maxCoeff(),
              1e-8);
  }
  EXPECT_FALSE(sde.HasDiffusionDerivative());
}

TEST(CallbackSde, UsesTheAnalyticDivergenceWhenGiven) {
  auto functions = DiagonalFunctions();
  functions.divergence_of_ggt = [](ConstBatchRef, double, BatchRef div) { div.setConstant(7.0); };
  const CallbackSde sde(3, 3, NoiseType::kDiagonal, 1.0, functions);
  Batch x = Batch::Zero(3, 2), div(3, 2);
  sde.DivergenceOfGGt(x, 0.0, div);
  EXPECT_TRUE((div.array() == 7.0).all());
}

TEST(CallbackSde, ScalarAndGeneralNoise) {
  CallbackSde::Functions scalar;
  scalar.drift = [](ConstBatchRef x, double, BatchRef f) { f = -x; };
  scalar.scalar_diffusion = [](double t) { return 1.0 + t; };
  const CallbackSde s(2, 2, NoiseType::kScalar, 1.0, scalar);
  EXPECT_EQ(s.ScalarDiffusion(0.5), 1.5);
  EXPECT_TRUE(s.HasDiffusionDerivative());
  Batch x = Batch::Random(2, 2), div(2, 2);
  s.DivergenceOfGGt(x, 0.5, div);
  EXPECT_TRUE(div.isZero(0.0));

  CallbackSde::Functions general;
  general.drift = [](ConstBatchRef y, double, BatchRef f) { f = y; };
  general.diffusion_matrix = [](ConstVectorRef y, double, MatrixRef g) {
    g.setZero();
    g(0, 0) = y(0);
    g(1, 2) = 1.0;
  };
  const CallbackSde gen(2, 3, NoiseType::kGeneral, 1.0, general);
  Matrix g(2, 3);
  gen.DiffusionMatrix(x.col(0), 0.0, g);
  EXPECT_EQ(g(0, 0), x(0, 0));
  // (GGᵀ)_00 = x0², so (∇·GGᵀ)_0 = 2x0.
  gen.DivergenceOfGGt(x, 0.0, div);
  EXPECT_NEAR(div(0, 1), 2 * x(0, 1), 1e-8);
  EXPECT_NEAR(div(1, 1), 0.0, 1e-8);
}

TEST(CallbackSde, MissingFunctionsAreNamed) {
  CallbackSde::Functions functions;
  EXPECT_THAT([&] { CallbackSde(2, 2, NoiseType::kScalar, 1.0, functions); },
              ThrowsMessage<InvalidArgument>(HasSubstr("functions.drift")));
  functions.drift = [](ConstBatchRef x, double, BatchRef f) { f = x; };
  EXPECT_THAT([&] { CallbackSde(2, 2, NoiseType::kDiagonal, 1.0, functions); },
              ThrowsMessage<InvalidArgument>(HasSubstr("functions.diagonal_diffusion")));
  EXPECT_THAT([&] { CallbackSde(2, 3, NoiseType::kDiagonal, 1.0, functions); },
              ThrowsMessage<InvalidArgument>(HasSubstr("noise_dim = 3")));
  EXPECT_THAT([&] { CallbackSde(2, 2, NoiseType::kGeneral, 0.0, functions); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t_final = 0")));
}

}  // namespace
}  // namespace scoresde
