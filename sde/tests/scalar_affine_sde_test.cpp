// The VE, VP and sub-VP families: closed forms, the consistency of g(t) with the kernel, the
// discrete chains and the prior, and every invalid option.
#include "scoresde/sde/scalar_affine_sde.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

std::vector<std::shared_ptr<const ScalarAffineSde>> AllFamilies() {
  return {std::make_shared<VeSde>(3), std::make_shared<VeSde>(3, VeSde::Options{
                                                                     .kernel = VeKernel::kReference}),
          std::make_shared<VpSde>(3), std::make_shared<SubVpSde>(3),
          std::make_shared<VpSde>(3, BetaSchedule{.beta_min = 0.5, .beta_max = 4, .t_final = 2})};
}

TEST(VeSde, ClosedForms) {
  const VeSde sde(2, {.sigma_min = 0.01, .sigma_max = 50.0});
  EXPECT_DOUBLE_EQ(sde.Sigma(0.0), 0.01);
  EXPECT_NEAR(sde.Sigma(1.0), 50.0, 1e-12);
  EXPECT_NEAR(sde.Sigma(0.5), std::sqrt(0.01 * 50.0), 1e-12);
  EXPECT_NEAR(sde.MarginalStd(0.5), std::sqrt(0.01 * 50.0 - 1e-4), 1e-12);
  EXPECT_EQ(sde.MarginalStd(0.0), 0.0);
  const VeSde reference(2, {.kernel = VeKernel::kReference});
  EXPECT_DOUBLE_EQ(reference.MarginalStd(0.0), 0.01);
  EXPECT_EQ(sde.PriorStd(), 50.0);
  EXPECT_EQ(sde.MeanCoefficient(0.7), 1.0);
}

TEST(VpSde, ClosedForms) {
  const VpSde sde(2);
  const double integral = 0.1 * 0.5 + 0.5 * 19.9 * 0.25;
  EXPECT_NEAR(sde.MeanCoefficient(0.5), std::exp(-0.5 * integral), 1e-15);
  EXPECT_NEAR(sde.MarginalStd(0.5), std::sqrt(1.0 - std::exp(-integral)), 1e-15);
  EXPECT_NEAR(sde.ScalarDiffusion(0.5), std::sqrt(0.1 + 0.5 * 19.9), 1e-15);
  EXPECT_EQ(sde.PriorStd(), 1.0);
}

TEST(SubVpSde, ClosedFormsAndVarianceBelowVp) {
  const SubVpSde sub(2);
  const VpSde vp(2);
  for (double t : {0.01, 0.3, 1.0}) {
    const double alpha2 = sub.MeanCoefficient(t) * sub.MeanCoefficient(t);
    EXPECT_NEAR(sub.MarginalStd(t), 1.0 - alpha2, 1e-15);
    EXPECT_LT(sub.MarginalStd(t), vp.MarginalStd(t));
  }
}

// The kernel and the SDE describe the same process: α' = a α and (σ²)' = 2a σ² + g².
TEST(ScalarAffineSde, KernelSolvesTheMomentEquations) {
  for (const auto& sde : AllFamilies()) {
    for (double t : {0.05, 0.4, 0.9}) {
      const double h = 1e-5;
      // Central differences: error h²/6·|f'''| ≈ 1e-10·|f'''|; the families' third derivatives
      // are below ~1e3 on these times, so 1e-6 relative leaves a wide margin over rounding
      // (ε/h ≈ 2e-11).
      const double alpha_dot = (sde->MeanCoefficient(t + h) - sde->MeanCoefficient(t - h)) / (2 * h);
      const auto var = [&](double s) { return std::pow(sde->MarginalStd(s), 2); };
      const double var_dot = (var(t + h) - var(t - h)) / (2 * h);
      const double a = sde->DriftCoefficient(t);
      const double g = sde->ScalarDiffusion(t);
      EXPECT_NEAR(alpha_dot, a * sde->MeanCoefficient(t), 1e-6 * (1 + std::abs(alpha_dot)));
      EXPECT_NEAR(var_dot, 2 * a * var(t) + g * g, 1e-6 * (1 + std::abs(var_dot)));
    }
  }
}

TEST(ScalarAffineSde, DiscreteChainsMatchTheirDefinitions) {
  const VeSde ve(1);
  const auto ve_step = ve.Discretize(0.5, 0.1);
  EXPECT_EQ(ve_step.drift, 0.0);
  EXPECT_NEAR(ve_step.diffusion * ve_step.diffusion,
              std::pow(ve.Sigma(0.5), 2) - std::pow(ve.Sigma(0.4), 2), 1e-12);
  // The chain's total variance over a grid from 0 is the kernel's: σ(T)² − σmin² (exact) or σ(T)²
  // (reference, whose chain starts from 0 like the paper's code).
  for (const VeKernel kernel : {VeKernel::kExact, VeKernel::kReference}) {
    const VeSde sde(1, {.kernel = kernel});
    double variance = 0.0;
    for (int i = 1; i <= 10; ++i) variance += std::pow(sde.Discretize(0.1 * i, 0.1).diffusion, 2);
    EXPECT_NEAR(variance, std::pow(sde.MarginalStd(1.0), 2), 1e-9);
  }
  const VpSde vp(1);
  const auto vp_step = vp.Discretize(0.5, 0.001);
  const double beta_i = vp.Beta(0.5) * 0.001;
  EXPECT_NEAR(vp_step.drift, std::sqrt(1 - beta_i) - 1, 1e-15);
  EXPECT_NEAR(vp_step.diffusion, std::sqrt(beta_i), 1e-15);
  EXPECT_THROW(vp.Discretize(1.0, 0.1), InvalidArgument);  // β_i = 2 has no DDPM step
  const SubVpSde sub(1);
  const auto sub_step = sub.Discretize(0.5, 0.01);
  EXPECT_NEAR(sub_step.drift, sub.DriftCoefficient(0.5) * 0.01, 1e-15);
  EXPECT_NEAR(sub_step.diffusion, sub.ScalarDiffusion(0.5) * 0.1, 1e-15);
}

TEST(ScalarAffineSde, DriftDiffusionAndDivergence) {
  for (const auto& sde : AllFamilies()) {
    const Batch x = Batch::Random(3, 5);
    const Batch v = Batch::Random(3, 5);
    Batch out(3, 5);
    sde->Drift(x, 0.3, out);
    EXPECT_TRUE(out.isApprox(sde->DriftCoefficient(0.3) * x) || x.isZero());
    const double g = sde->ScalarDiffusion(0.3);
    sde->DiffusionTimes(x, 0.3, v, out);
    EXPECT_TRUE(out.isApprox(g * v));
    sde->DiffusionSquaredTimes(x, 0.3, v, out);
    EXPECT_TRUE(out.isApprox(g * g * v));
    sde->DivergenceOfGGt(x, 0.3, out);
    EXPECT_TRUE(out.isZero(0.0));
    Batch diag(3, 5);
    sde->DiagonalDiffusion(x, 0.3, diag);
    EXPECT_TRUE((diag.array() == g).all());
    Matrix full(3, 3);
    sde->DiffusionMatrix(x.col(0), 0.3, full);
    EXPECT_TRUE(full.isApprox(g * Matrix::Identity(3, 3)));
    EXPECT_TRUE(sde->HasDiffusionDerivative());
  }
}

TEST(ScalarAffineSde, PriorSamplesAndLogDensity) {
  const VeSde sde(2, {.sigma_max = 3.0});
  Batch x(2, 4);
  sde.SamplePrior(NoiseStream(1, Stream::kPrior), 0, x);
  Batch z(2, 4);
  NoiseStream(1, Stream::kPrior).FillNormal(0, 0, 0, z);
  EXPECT_TRUE(x.isApprox(3.0 * z));
  RowVector logp(4);
  sde.PriorLogDensity(x, logp);
  for (int j = 0; j < 4; ++j) {
    const double expected =
        -std::log(2 * std::numbers::pi * 9.0) - x.col(j).squaredNorm() / 18.0;
    EXPECT_NEAR(logp(j), expected, 1e-12);
  }
  Batch wrong(3, 4);
  EXPECT_THROW(sde.SamplePrior(NoiseStream(1, Stream::kPrior), 0, wrong), InvalidArgument);
}

TEST(ScalarAffineSdeOptions, DefaultsAreValid) {
  EXPECT_NO_THROW(VeSde::Options{}.Validate());
  EXPECT_NO_THROW(BetaSchedule{}.Validate("VpSde::Options"));
}

void ExpectInvalid(const std::function<void()>& make, const std::string& field) {
  try {
    make();
    FAIL() << "no throw for " << field;
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr(field));
  }
}

TEST(ScalarAffineSdeOptions, InvalidParametersNameThemselves) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ExpectInvalid([] { VeSde(2, {.sigma_min = 0.0}); }, "sigma_min = 0");
  ExpectInvalid([] { VeSde(2, {.sigma_min = -1.0}); }, "sigma_min = -1");
  ExpectInvalid([] { VeSde(2, {.sigma_min = 1.0, .sigma_max = 1.0}); }, "sigma_max = 1");
  ExpectInvalid([] { VeSde(2, {.sigma_min = 2.0, .sigma_max = 1.0}); }, "sigma_max = 1");
  ExpectInvalid([&] { VeSde(2, {.sigma_max = nan}); }, "sigma_max = nan");
  ExpectInvalid([] { VeSde(2, {.t_final = 0.0}); }, "t_final = 0");
  ExpectInvalid([] { VeSde(0); }, "dim = 0");
  ExpectInvalid([] { VpSde(2, {.beta_min = 5.0, .beta_max = 1.0}); }, "beta_max = 1");
  ExpectInvalid([] { VpSde(2, {.beta_min = -1.0}); }, "beta_min = -1");
  ExpectInvalid([] { SubVpSde(2, {.beta_min = 0.0, .beta_max = 0.0}); }, "beta_max = 0");
  ExpectInvalid([] { SubVpSde(2, {.t_final = -1.0}); }, "t_final = -1");
}

}  // namespace
}  // namespace scoresde
