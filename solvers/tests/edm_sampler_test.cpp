#include "scoresde/solvers/edm_sampler.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gaussian_flow_test_util.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::DiagonalGaussianScore;

Batch Latents() {
  Batch x(2, 5);
  x << 0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.4, -0.6, -1.5, 0.0;
  return x;
}

TEST(EdmSamplerOptions, DefaultsAreValidAndBadOnesRejected) {
  EXPECT_NO_THROW(EdmSampler::Options{}.Validate());
  const auto expect_rejected = [](auto change, const char* name) {
    EdmSampler::Options options;
    change(&options);
    EXPECT_THAT([&] { options.Validate(); },
                ::testing::ThrowsMessage<InvalidArgument>(HasSubstr(name)));
  };
  expect_rejected([](EdmSampler::Options* o) { o->num_steps = 1; }, "num_steps");
  expect_rejected([](EdmSampler::Options* o) { o->rho = 0.0; }, "rho");
  expect_rejected([](EdmSampler::Options* o) { o->s_churn = -1.0; }, "s_churn");
  expect_rejected([](EdmSampler::Options* o) { o->s_tmax = -1.0; }, "s_tmax");
  expect_rejected([](EdmSampler::Options* o) { o->sigma_min = NAN; }, "sigma_min");
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Zero(2), Vector::Ones(2));
  EdmSampler::Options options;
  options.sigma_max = 1e6;  // above σ̃(T) ≈ 152
  EXPECT_THAT([&] { EdmSampler(sde, score, options); },
              ::testing::ThrowsMessage<InvalidArgument>(HasSubstr("sigma_max")));
}

// σ̃_i = (σ̃_max^{1/ρ} + i/(N−1)(σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ and σ̃_N = 0.
TEST(EdmSampler, LevelsFollowTheRhoSchedule) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Zero(2), Vector::Ones(2));
  EdmSampler::Options options;
  options.num_steps = 5;
  options.eps = 1e-5;  // σ̃(1e-5) ≈ 1e-3, so the paper's σ̃_min = 0.002 is in range
  options.sigma_min = 0.002;
  options.sigma_max = 80.0;
  const EdmSampler sampler(sde, score, options);
  const auto& sigmas = sampler.sigmas();
  ASSERT_EQ(sigmas.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    const double expected = std::pow(
        std::pow(80.0, 1 / 7.0) + i / 4.0 * (std::pow(0.002, 1 / 7.0) - std::pow(80.0, 1 / 7.0)),
        7.0);
    EXPECT_NEAR(sigmas[i], expected, 1e-13 * expected);
  }
  EXPECT_EQ(sigmas.back(), 0.0);
  EXPECT_EQ(sampler.Sample(Latents()).summary.nfe, 9);  // 2N − 1
}

// Heun is second order: error(N)/error(2N − 1) ≈ 2² with the step count doubling (N levels are
// N − 1 steps), log₂ of the ratio rounds to 2.
TEST(EdmSampler, DeterministicHeunIsSecondOrder) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5),
                                    Vector(Eigen::Vector2d(0.05, 2.0)));
  const Batch x = Latents();
  const Batch exact = score.Flow(x, 1.0, 1e-3);
  const auto error = [&](int steps) {
    EdmSampler::Options options;
    options.num_steps = steps + 1;
    options.final_step_to_zero = false;
    return (EdmSampler(sde, score, options).Sample(x).y - exact).cwiseAbs().maxCoeff();
  };
  EXPECT_NEAR(std::log2(error(32) / error(64)), 2.0, 0.5);
}

// The paper's last step is Euler to σ̃ = 0, i.e. the denoiser at σ̃_min.
TEST(EdmSampler, FinalStepToZeroReturnsTheDenoiser) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5), Vector::Constant(2, 0.3));
  EdmSampler::Options options;
  options.num_steps = 6;
  options.final_step_to_zero = false;
  const OdeSolution at_min = EdmSampler(sde, score, options).Sample(Latents());
  options.final_step_to_zero = true;
  const OdeSolution to_zero = EdmSampler(sde, score, options).Sample(Latents());
  const NoiseSchedule schedule(sde);
  Batch s(2, 5);
  score.Evaluate(at_min.y, RowVector::Constant(5, 1e-3), s);
  const double sigma = schedule.Sigma(1e-3);
  const Batch denoised = (at_min.y + sigma * sigma * s) / schedule.Alpha(1e-3);
  EXPECT_LT((to_zero.y - denoised).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(EdmSampler, ChurnIsReproduciblePerSampleAndChangesTheResult) {
  const VpSde sde(2);
  const DiagonalGaussianScore score(sde, Vector::Constant(2, 0.5), Vector::Constant(2, 0.3));
  EdmSampler::Options options;
  options.s_churn = 40.0;
  options.s_tmin = 0.05;
  options.s_tmax = 50.0;
  options.seed = 3;
  const Batch x = Latents();
  const OdeSolution reference = EdmSampler(sde, score, options).Sample(x);
  options.num_threads = 7;
  options.chunk_size = 1;
  EXPECT_TRUE(
      (EdmSampler(sde, score, options).Sample(x).y.array() == reference.y.array()).all());
  const OdeSolution alone = EdmSampler(sde, score, options).Sample(x.col(2), 2);
  EXPECT_TRUE((alone.y.col(0).array() == reference.y.col(2).array()).all());
  options.s_churn = 0.0;
  EXPECT_GT((EdmSampler(sde, score, options).Sample(x).y - reference.y).cwiseAbs().maxCoeff(),
            1e-3);
}

}  // namespace
}  // namespace scoresde
