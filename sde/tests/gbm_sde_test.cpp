#include "scoresde/sde/gbm_sde.hpp"

#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

TEST(GbmSde, CoefficientsAndDivergence) {
  Vector mu(2), sigma(2);
  mu << 0.1, -0.3;
  sigma << 0.2, 0.5;
  const GbmSde sde({mu, sigma, 2.0});
  EXPECT_EQ(sde.dim(), 2);
  EXPECT_EQ(sde.noise_type(), NoiseType::kDiagonal);
  EXPECT_EQ(sde.t_final(), 2.0);
  const Batch x = Batch::Random(2, 3).array() + 2.0;
  Batch out(2, 3), fd(2, 3);
  sde.Drift(x, 0.0, out);
  EXPECT_TRUE(out.isApprox(mu.asDiagonal() * x));
  sde.DiagonalDiffusion(x, 0.0, out);
  EXPECT_TRUE(out.isApprox(sigma.asDiagonal() * x));
  sde.DiagonalDiffusionDerivative(x, 0.0, out);
  EXPECT_TRUE(out.isApprox(sigma.replicate(1, 3)));
  sde.DivergenceOfGGt(x, 0.0, out);
  EXPECT_TRUE(out.isApprox(2.0 * sigma.array().square().matrix().asDiagonal() * x));
  // The analytic divergence agrees with central differences (error O(h²) on a quadratic: exact
  // up to rounding, ε^(2/3)·|σ²x²| < 1e-9).
  FiniteDifferenceDivergenceOfGGt(sde, x, 0.0, fd);
  EXPECT_LT((fd - out).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(GbmSde, ScalarConstructorBroadcasts) {
  const GbmSde sde(3, 0.05, 0.4);
  EXPECT_EQ(sde.dim(), 3);
  EXPECT_EQ(sde.options().sigma(2), 0.4);
}

TEST(GbmSde, InvalidOptionsNameThemselves) {
  Vector one(1);
  one << 1.0;
  Vector two = Vector::Ones(2);
  EXPECT_THAT([&] { GbmSde({one, two}); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("sigma.size() = 2")));
  EXPECT_THAT([] { GbmSde(2, 0.1, 0.0); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("sigma[0] = 0")));
  EXPECT_THAT([] { GbmSde(0, 0.1, 0.1); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("mu.size() = 0")));
  EXPECT_THAT([] { GbmSde(1, std::numeric_limits<double>::quiet_NaN(), 0.1); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("mu(0, 0) = nan")));
  EXPECT_THAT([] { GbmSde(1, 0.1, 0.1, 0.0); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("t_final = 0")));
}

}  // namespace
}  // namespace scoresde
