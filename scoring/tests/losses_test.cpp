#include "scoresde/scoring/losses.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

std::vector<std::shared_ptr<const ScalarAffineSde>> Sdes() {
  VeSde::Options reference;
  reference.kernel = VeKernel::kReference;
  return {std::make_shared<VpSde>(2), std::make_shared<SubVpSde>(2), std::make_shared<VeSde>(2),
          std::make_shared<VeSde>(2, reference)};
}

std::string DescribeFamily(const ScalarAffineSde& sde) {
  return std::to_string(static_cast<int>(sde.family())) + "/" +
         std::to_string(sde.MarginalStd(0.0));
}

MlpConfig Small() {
  MlpConfig c;
  c.width = 8;
  c.depth = 2;
  c.embed_dim = 4;
  return c;
}

TEST(LossOptions, DefaultsAreValid) { EXPECT_NO_THROW(LossOptions{}.Validate()); }

TEST(LossOptions, RejectsBadCombinations) {
  LossOptions o;
  o.importance_sampling = true;  // with σ² weighting
  try {
    o.Validate();
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("importance_sampling"));
  }
  o = LossOptions{};
  o.eps = 0.0;
  EXPECT_THROW(o.Validate(), InvalidArgument);
  o = LossOptions{};
  o.kind = LossKind::kDdpm;
  EXPECT_THROW(ScoreMatchingLoss(std::make_shared<VeSde>(2), Small(), o), InvalidArgument);
  o.kind = LossKind::kNcsn;
  EXPECT_THROW(ScoreMatchingLoss(std::make_shared<VeSde>(2), Small(), o), InvalidArgument);
  EXPECT_THROW(ScoreMatchingLoss(std::make_shared<VpSde>(3), Small(), LossOptions{}),
               InvalidArgument);
  EXPECT_EQ(ParseLossKind("ssm-vr"), LossKind::kSsmVr);
  EXPECT_THROW(ParseLossKind("sm"), InvalidArgument);
  EXPECT_THROW(ParseWeighting("g"), InvalidArgument);
}

// Φ' = g²/σ² (the importance-sampling density's shape): central differences with h = 1e-5 have
// error h²|Φ'''|/6 + ε|Φ|/h ≲ 1e-9 relative here; 1e-6 relative is the check.
TEST(TimeSampler, PotentialDerivativeIsGSquaredOverSigmaSquared) {
  for (const auto& sde : Sdes()) {
    const TimeSampler sampler(*sde, 1e-3, Weighting::kLikelihood, true);
    for (double t : {0.01, 0.1, 0.5, 0.9}) {
      const double h = 1e-5;
      const double fd = (sampler.Potential(t + h) - sampler.Potential(t - h)) / (2 * h);
      const double g = sde->ScalarDiffusion(t), s = sde->MarginalStd(t);
      EXPECT_NEAR(fd, g * g / (s * s), 1e-6 * g * g / (s * s)) << DescribeFamily(*sde) << " " << t;
    }
  }
}

// The importance-sampled estimator has the mean of the uniform one (for any model): compare the
// two Monte-Carlo means of the g²-weighted DSM loss of a fixed network within 5 standard errors of
// their difference (fixed seeds; block sums of 100 examples give the standard errors).
TEST(ScoreMatchingLoss, ImportanceSamplingIsUnbiased) {
  for (const auto& sde : Sdes()) {
    const MlpNetwork<double> net(Small(), 1);
    MlpNetwork<double>::Workspace ws;
    auto estimate = [&](bool importance, uint64_t seed) {
      LossOptions o;
      o.weighting = Weighting::kLikelihood;
      o.importance_sampling = importance;
      o.eps = 1e-3;
      const ScoreMatchingLoss loss(sde, Small(), o);
      const NoiseStream noise(seed, Stream::kTraining);
      const int blocks = 400, n = 100;
      double sum = 0.0, sum2 = 0.0;
      for (int b = 0; b < blocks; ++b) {
        Matrix x0(2, n);
        NoiseStream(seed, Stream::kData).FillNormal(b, 0, 0, x0);
        const double mean = loss.Block<double>(net, x0, 0, n, b, noise, &ws, nullptr) / n;
        sum += mean;
        sum2 += mean * mean;
      }
      const double m = sum / blocks;
      return std::pair<double, double>{m, (sum2 / blocks - m * m) / (blocks - 1)};
    };
    const auto [uniform, var_u] = estimate(false, 1);
    const auto [importance, var_i] = estimate(true, 2);
    EXPECT_LT(std::abs(uniform - importance), 5.0 * std::sqrt(var_u + var_i))
        << DescribeFamily(*sde) << " uniform " << uniform << " importance " << importance;
    // Importance sampling exists to reduce variance: check it does, except for the VE reference
    // kernel, where g²/σ² is constant and the proposal is the uniform law itself.
    if (sde->MarginalStd(0.0) == 0.0 || sde->family() != SdeFamily::kVe) {
      EXPECT_LT(var_i, var_u) << DescribeFamily(*sde);
    }
  }
}

TEST(ScoreMatchingLoss, BlocksAreIndependentOfTheSplit) {
  auto sde = std::make_shared<VpSde>(2);
  for (LossKind kind : {LossKind::kDsm, LossKind::kSsm, LossKind::kEsm, LossKind::kDdpm}) {
    LossOptions o;
    o.kind = kind;
    const ScoreMatchingLoss loss(sde, Small(), o);
    const MlpNetwork<double> net(Small(), 2);
    MlpNetwork<double>::Workspace ws;
    Matrix x0(2, 10);
    NoiseStream(1, Stream::kData).FillNormal(0, 0, 0, x0);
    const NoiseStream noise(5, Stream::kTraining);
    Eigen::VectorXd whole = Eigen::VectorXd::Zero(net.num_parameters());
    Eigen::VectorXd parts = whole;
    const double all = loss.Block(net, x0, 0, 10, 3, noise, &ws, whole.data());
    const double a = loss.Block(net, Matrix(x0.leftCols(4)), 0, 10, 3, noise, &ws, parts.data());
    const double b = loss.Block(net, Matrix(x0.rightCols(6)), 4, 10, 3, noise, &ws, parts.data());
    // Same per-example values, summed in a different order: rounding only.
    EXPECT_NEAR(all, a + b, 1e-12 * std::abs(all)) << ToString(kind);
    EXPECT_LT((whole - parts).norm(), 1e-12 * whole.norm()) << ToString(kind);
  }
}

}  // namespace
}  // namespace scoresde
