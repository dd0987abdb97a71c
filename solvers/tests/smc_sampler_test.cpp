#include "scoresde/solvers/smc_sampler.hpp"

#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conditional_test_util.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/pigdm_guidance.hpp"
#include "scoresde/solvers/predictors.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::GaussianScore;

LinearMeasurement NoisyFirstCoordinate(int dim) {
  LinearMeasurement m;
  m.A = Matrix::Zero(1, dim);
  m.A(0, 0) = 1.0;
  m.noise_cov = Matrix::Constant(1, 1, 0.09);
  m.y = Vector::Constant(1, 1.2);
  return m;
}

TEST(SmcSamplerOptions, DefaultsAreValid) { EXPECT_NO_THROW(SmcSampler::Options{}.Validate()); }

TEST(SmcSamplerOptions, EachBadValueIsNamed) {
  const auto check = [](auto mutate, const std::string& name) {
    SmcSampler::Options options;
    mutate(options);
    EXPECT_THAT([&] { options.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr(name)));
  };
  check([](auto& o) { o.num_steps = 0; }, "num_steps");
  check([](auto& o) { o.eps = -1.0; }, "eps");
  check([](auto& o) { o.num_particles = 0; }, "num_particles");
  check([](auto& o) { o.ess_threshold = 1.5; }, "ess_threshold");
  check([](auto& o) { o.ess_threshold = NAN; }, "ess_threshold");
  check([](auto& o) { o.proposal_scale = NAN; }, "proposal_scale");
  check([](auto& o) { o.num_threads = 0; }, "num_threads");
}

TEST(SmcSampler, RejectsUnusableCombinations) {
  const VpSde vp(2);
  const GaussianScore score(vp, Vector::Zero(2), Matrix::Identity(2, 2));
  const PigdmGuidance twist(vp, score, NoisyFirstCoordinate(2));
  const EulerMaruyamaPredictor em;
  SmcSampler::Options options;
  options.num_steps = 100;
  const CallbackGuidance no_log(2, [](ConstBatchRef, ConstRowVectorRef, BatchRef g) {
    g.setZero();
  });
  EXPECT_THAT([&] { SmcSampler(vp, score, no_log, em, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("log-likelihood")));
  EXPECT_THAT([&] { SmcSampler(vp, score, twist, SrkPredictor(), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("srk")));
  const VpSde vp3(3);
  EXPECT_THAT([&] { SmcSampler(vp3, score, twist, em, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("score dim")));
  options.eps = 1.0;
  EXPECT_THAT([&] { SmcSampler(vp, score, twist, em, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("eps")));
  options = {};
  options.num_steps = 10;  // the DDPM chain needs β(t) h < 1
  EXPECT_THAT([&] { SmcSampler(vp, score, twist, AncestralPredictor(), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("beta")));
  options.num_steps = 100;
  const SmcSampler sampler(vp, score, twist, em, options);
  EXPECT_THAT([&] { sampler.Sample(0); }, ThrowsMessage<InvalidArgument>(HasSubstr("num_groups")));
  EXPECT_THAT([&] { sampler.Coefficients(100); }, ThrowsMessage<InvalidArgument>(HasSubstr("i")));
}

// A predictor that evaluates the score away from x (a two-stage scheme) is not a Gaussian step
// x' = c₁ x + c₂ s(x) + c₃ ΔW and is caught by the probe even though it makes one evaluation.
class MidpointPredictor final : public Predictor {
 public:
  std::string_view name() const override { return "midpoint"; }
  double strong_order(NoiseType) const override { return 0.5; }
  double weak_order(NoiseType) const override { return 1.0; }
  bool Supports(const Sde&, std::string* = nullptr) const override { return true; }
  int nfe_per_step() const override { return 1; }
  void Step(const StepProblem& problem, double t, double dt, int64_t step,
            const NoiseSource& noise, int64_t first_sample, BatchRef x,
            StepWorkspace* workspace) const override {
    Batch shifted = x.array() + 0.5 * dt;
    Batch s(x.rows(), x.cols()), dw(x.rows(), x.cols());
    problem.score->Evaluate(shifted, workspace->times(x.cols(), t), s);
    noise.Increment(step, t, dt, first_sample, dw);
    x += -dt * s + dw;
  }
};

TEST(SmcSampler, RejectsStepsThatAreNotAffineInTheScore) {
  const VeSde ve(2);
  const GaussianScore score(ve, Vector::Zero(2), Matrix::Identity(2, 2));
  const PigdmGuidance twist(ve, score, NoisyFirstCoordinate(2));
  EXPECT_THAT([&] { SmcSampler(ve, score, twist, MidpointPredictor(), {}); }, ThrowsMessage<InvalidArgument>(HasSubstr("not a Gaussian step")));
}

// The probed coefficients are those of the schemes: Euler–Maruyama on the reverse VP SDE,
// x' = x + dt(−½β x − β s) + √β ΔW with dt = −h, and the DDPM ancestral step
// x' = (x + β_i s)/√(1 − β_i) + √β_i z, β_i = β(t) h, z = ΔW/√h.
TEST(SmcSampler, ProbesTheStepCoefficients) {
  const VpSde vp(2);
  const GaussianScore score(vp, Vector::Zero(2), Matrix::Identity(2, 2));
  const PigdmGuidance twist(vp, score, NoisyFirstCoordinate(2));
  SmcSampler::Options options;
  options.num_steps = 100;
  const EulerMaruyamaPredictor em_step;
  const AncestralPredictor ancestral_step;
  const SmcSampler em(vp, score, twist, em_step, options);
  const SmcSampler ancestral(vp, score, twist, ancestral_step, options);
  for (int i : {0, 37, 99}) {
    const double t = em.Time(i), h = t - em.Time(i + 1), beta = vp.Beta(t);
    const SmcSampler::StepCoefficients c = em.Coefficients(i);
    EXPECT_NEAR(c.c1, 1.0 + 0.5 * beta * h, 1e-14);
    EXPECT_NEAR(c.c2, beta * h, 1e-14);
    EXPECT_NEAR(c.c3, std::sqrt(beta), 1e-14);
    const SmcSampler::StepCoefficients a = ancestral.Coefficients(i);
    const double beta_i = beta * h;
    EXPECT_NEAR(a.c1, 1.0 / std::sqrt(1.0 - beta_i), 1e-14);
    EXPECT_NEAR(a.c2, beta_i / std::sqrt(1.0 - beta_i), 1e-14);
    EXPECT_NEAR(a.c3 * std::sqrt(h), std::sqrt(beta_i), 1e-14);
  }
}

// Groups are the unit of independence: group g is the same bits whatever the thread count and
// however many other groups run; the weights are normalized per group and the final resampled
// draws are particles of their own group.
TEST(SmcSampler, GroupsAreIndependentOfThreadsAndOtherGroups) {
  const VpSde vp(2);
  Matrix cov(2, 2);
  cov << 1.0, 0.5, 0.5, 2.0;
  const GaussianScore score(vp, Vector::Zero(2), cov);
  const PigdmGuidance twist(vp, score, NoisyFirstCoordinate(2));
  SmcSampler::Options options;
  options.num_steps = 60;
  options.num_particles = 50;
  options.seed = 9;
  const SmcResult five = SmcSampler(vp, score, twist, ReverseDiffusionPredictor(), options)
                             .Sample(5);
  ASSERT_TRUE(five.summary.ok()) << five.summary.BriefReport();
  EXPECT_EQ(five.summary.nfe, 61 * 2);
  for (int g = 0; g < 5; ++g) {
    EXPECT_NEAR(five.log_weights.segment(50 * g, 50).array().exp().sum(), 1.0, 1e-12);
    EXPECT_GT(five.final_ess(g), 0.0);
    EXPECT_LE(five.final_ess(g), 1.0 + 1e-12);
    EXPECT_TRUE(std::isfinite(five.log_evidence(g)));
    for (int k = 0; k < 50; ++k) {
      bool found = false;
      for (int l = 0; l < 50 && !found; ++l) {
        found = five.x.col(50 * g + k) == five.particles.col(50 * g + l);
      }
      EXPECT_TRUE(found) << "draw " << k << " of group " << g;
    }
  }
  for (int threads : {1, 2, 7}) {
    options.num_threads = threads;
    const SmcResult three = SmcSampler(vp, score, twist, ReverseDiffusionPredictor(), options)
                                .Sample(3);
    EXPECT_EQ(three.particles, five.particles.leftCols(150)) << threads;
    EXPECT_EQ(three.log_weights, five.log_weights.head(150)) << threads;
    EXPECT_EQ(three.x, five.x.leftCols(150)) << threads;
    EXPECT_EQ(three.log_evidence, five.log_evidence.head(3)) << threads;
  }
}

// ess_threshold = 0 never resamples, 1 resamples at every level (ESS ≤ K always).
TEST(SmcSampler, ResamplesAccordingToTheThreshold) {
  const VeSde ve(2);
  const GaussianScore score(ve, Vector::Zero(2), Matrix::Identity(2, 2));
  const PigdmGuidance twist(ve, score, NoisyFirstCoordinate(2));
  SmcSampler::Options options;
  options.num_steps = 20;
  options.num_particles = 8;
  options.ess_threshold = 0.0;
  const EulerMaruyamaPredictor em;
  EXPECT_EQ(SmcSampler(ve, score, twist, em, options).Sample(2).resamplings(0), 0.0);
  options.ess_threshold = 1.0;
  const SmcResult always = SmcSampler(ve, score, twist, em, options).Sample(2);
  // ESS = K exactly only for exactly equal weights, which the first level's twists are not.
  EXPECT_GE(always.resamplings(0), 1.0);
  EXPECT_LE(always.resamplings(0), 20.0);
}

// A non-finite score stops the run with its location; without throw_on_failure the summary says so.
TEST(SmcSampler, NonFiniteScoreStopsTheRun) {
  const VeSde ve(2);
  const GaussianScore good(ve, Vector::Zero(2), Matrix::Identity(2, 2));
  const PigdmGuidance twist(ve, good, NoisyFirstCoordinate(2));
  const CallbackScore bad(2, [](ConstBatchRef x, ConstRowVectorRef t, BatchRef s) {
    s = -x;
    if (t(0) < 0.5) s(1, x.cols() - 1) = NAN;
  });
  SmcSampler::Options options;
  options.num_steps = 10;
  options.num_particles = 4;
  const EulerMaruyamaPredictor em;
  try {
    SmcSampler(ve, bad, twist, em, options).Sample(3);
    ADD_FAILURE() << "no exception";
  } catch (const NumericalFailure& failure) {
    EXPECT_THAT(failure.what(), HasSubstr("score"));
    EXPECT_EQ(failure.step(), 6);  // t_6 = 1 − 6 (1 − 0.001)/10 < 0.5
  }
  options.throw_on_failure = false;
  const SmcResult result = SmcSampler(ve, bad, twist, em, options).Sample(3);
  EXPECT_EQ(result.summary.status, SolveStatus::kNonFinite);
  ASSERT_TRUE(result.summary.failure.has_value());
  EXPECT_EQ(result.summary.failure->step, 6);
}

}  // namespace
}  // namespace scoresde
