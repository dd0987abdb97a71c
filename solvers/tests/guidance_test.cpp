#include "scoresde/solvers/guidance.hpp"

#include <cmath>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conditional_test_util.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/solvers/sde_integrator.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::GaussianScore;

// g(x, t) = −t x (a Gaussian "likelihood" N(0, I/t) in x), with log value −½ t ‖x‖².
CallbackGuidance ShrinkGuidance(int dim) {
  return CallbackGuidance(
      dim,
      [](ConstBatchRef x, ConstRowVectorRef t, BatchRef g) {
        for (Eigen::Index j = 0; j < x.cols(); ++j) g.col(j) = -t(j) * x.col(j);
      },
      [](ConstBatchRef x, ConstRowVectorRef t, BatchRef g, RowVectorRef logl) {
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
          g.col(j) = -t(j) * x.col(j);
          logl(j) = -0.5 * t(j) * x.col(j).squaredNorm();
        }
      });
}

// A guidance that must never be called.
CallbackGuidance ForbiddenGuidance(int dim) {
  return CallbackGuidance(dim, [](ConstBatchRef, ConstRowVectorRef, BatchRef) {
    ADD_FAILURE() << "guidance evaluated although the scale is 0";
    throw Error("guidance evaluated");
  });
}

TEST(CallbackGuidance, RejectsBadArguments) {
  EXPECT_THAT([] { CallbackGuidance(0, [](ConstBatchRef, ConstRowVectorRef, BatchRef) {}); }, ThrowsMessage<InvalidArgument>(HasSubstr("dim")));
  EXPECT_THAT([] { CallbackGuidance(2, nullptr); }, ThrowsMessage<InvalidArgument>(HasSubstr("gradient")));
  const CallbackGuidance no_log(2, [](ConstBatchRef, ConstRowVectorRef, BatchRef g) {
    g.setZero();
  });
  EXPECT_FALSE(no_log.HasLogLikelihood());
  Batch x = Batch::Zero(2, 3), g(2, 3);
  RowVector t = RowVector::Ones(3), logl(3);
  EXPECT_THAT([&] { no_log.EvaluateWithLogLikelihood(x, t, x, g, logl); }, ThrowsMessage<InvalidArgument>(HasSubstr("log-likelihood")));
  Batch wrong(3, 3);
  EXPECT_THAT([&] { no_log.Evaluate(x, t, x, wrong); }, ThrowsMessage<InvalidArgument>(HasSubstr("grad")));
}

TEST(GuidedScore, RejectsBadArguments) {
  const VpSde vp(2);
  const GaussianScore score(vp, Vector::Zero(2), Matrix::Identity(2, 2));
  const CallbackGuidance three = ShrinkGuidance(3);
  const CallbackGuidance two = ShrinkGuidance(2);
  EXPECT_THAT([&] { GuidedScore(score, three, 1.0); }, ThrowsMessage<InvalidArgument>(HasSubstr("guidance dim")));
  EXPECT_THAT([&] { GuidedScore(score, two, NAN); }, ThrowsMessage<InvalidArgument>(HasSubstr("scale")));
  EXPECT_THAT([&] { GuidedScore(score, two, INFINITY); }, ThrowsMessage<InvalidArgument>(HasSubstr("scale")));
  const GuidedScore guided(score, two, 1.0);
  Batch x = Batch::Zero(2, 3), s(2, 3), wrong(3, 3);
  EXPECT_THAT([&] { guided.Evaluate(x, RowVector::Ones(2), s); }, ThrowsMessage<InvalidArgument>(HasSubstr("t")));
  EXPECT_THAT([&] { guided.Evaluate(x, RowVector::Ones(3), wrong); }, ThrowsMessage<InvalidArgument>(HasSubstr("s")));
}

TEST(GuidedScore, AddsTheScaledGuidanceToTheScore) {
  const VpSde vp(3);
  Matrix cov(3, 3);
  cov << 2.0, 0.3, 0.0, 0.3, 1.0, -0.2, 0.0, -0.2, 0.5;
  const GaussianScore score(vp, Vector::LinSpaced(3, -1.0, 1.0), cov);
  const CallbackGuidance guidance = ShrinkGuidance(3);
  const Batch x = Batch::Random(3, 5);
  const RowVector t = RowVector::LinSpaced(5, 0.1, 0.9);
  Batch base(3, 5);
  score.Evaluate(x, t, base);
  for (double scale : {1.0, 2.5, -0.5}) {
    const GuidedScore guided(score, guidance, scale);
    Batch s(3, 5);
    guided.Evaluate(x, t, s);
    for (Eigen::Index j = 0; j < 5; ++j) {
      const Vector expected = base.col(j) - scale * t(j) * x.col(j);
      EXPECT_LE((s.col(j) - expected).cwiseAbs().maxCoeff(), 1e-15 * (1.0 + expected.norm()));
    }
    EXPECT_EQ(guided.evaluations_per_call(), 1);
    // With guidance the closed forms of the base model no longer apply.
    EXPECT_FALSE(guided.ExpectedSquaredNorm(0.5).has_value());
    EXPECT_FALSE(guided.HasJvp());
    EXPECT_FALSE(guided.HasDivergence());
    Batch jv(3, 5);
    RowVector div(5);
    EXPECT_THAT([&] { guided.EvaluateWithJvp(x, t, x, s, jv); }, ThrowsMessage<InvalidArgument>(HasSubstr("Jacobian")));
    EXPECT_THAT([&] { guided.Divergence(x, t, div); }, ThrowsMessage<InvalidArgument>(HasSubstr("divergence")));
  }
}

TEST(GuidedScore, ZeroScaleIsTheBaseModelAndNeverCallsTheGuidance) {
  const VpSde vp(2);
  const GaussianScore score(vp, Vector::Ones(2), 0.5 * Matrix::Identity(2, 2));
  const CallbackGuidance forbidden = ForbiddenGuidance(2);
  const GuidedScore guided(score, forbidden, 0.0);
  const Batch x = Batch::Random(2, 4);
  const RowVector t = RowVector::Constant(4, 0.3);
  Batch a(2, 4), b(2, 4), ja(2, 4), jb(2, 4);
  score.Evaluate(x, t, a);
  guided.Evaluate(x, t, b);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(guided.HasJvp());
  score.EvaluateWithJvp(x, t, x, a, ja);
  guided.EvaluateWithJvp(x, t, x, b, jb);
  EXPECT_EQ(ja, jb);
  EXPECT_EQ(guided.ExpectedSquaredNorm(0.3), score.ExpectedSquaredNorm(0.3));
}

// γ = 0 reduces every sampler to the unconditional one, bit for bit: every predictor with every
// corrector and step rule in PcSampler (on VP, and on GBM for the diagonal-noise schemes), the
// fixed-step SDE integrator, and the probability-flow ODE with fixed and adaptive steps.
TEST(GuidedScore, ZeroScaleReproducesEverySamplerBitForBit) {
  const VpSde vp(2);
  const GbmSde gbm(2, 0.1, 0.4);
  const GaussianScore vp_score(vp, Vector::Constant(2, 0.4), 0.7 * Matrix::Identity(2, 2));
  // A state-dependent score for GBM (any score will do for an identity check).
  const CallbackScore gbm_score(2, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) {
    s = -x.array() / (1.0 + x.array().square());
  });
  const CallbackGuidance forbidden = ForbiddenGuidance(2);
  struct Case {
    const ScalarAffineSde* affine;
    const Sde* sde;
    const ScoreModel* score;
  };
  int compared = 0;
  for (const Case& c : {Case{&vp, &vp, &vp_score}, Case{nullptr, &gbm, &gbm_score}}) {
    const GuidedScore guided(*c.score, forbidden, 0.0);
    for (const std::string& p : PredictorNames()) {
      const std::unique_ptr<Predictor> predictor = MakePredictor(p);
      if (!predictor->Supports(*c.sde)) continue;
      for (const std::string& q : CorrectorNames()) {
        const std::unique_ptr<Corrector> corrector = MakeCorrector(q);
        if (!corrector->Supports(*c.sde)) continue;
        for (LangevinStepRule rule :
             {LangevinStepRule::kExpectation, LangevinStepRule::kBatchAverage}) {
          PcSampler::Options options;
          options.num_steps = 50;
          options.corrector_steps = 1;
          options.step_rule = rule;
          options.pilot_size = 16;
          options.seed = 3;
          options.num_threads = 2;
          if (c.affine == nullptr) {
            options.eps = 0.0;
            options.initial_sampler = [](const NoiseStream& noise, int64_t first, BatchRef x) {
              noise.FillNormal(0, 0, first, x);
              x = (0.2 * x.array()).exp();
            };
          }
          const SampleResult plain =
              PcSampler(*c.sde, *c.score, *predictor, *corrector, options).Sample(20);
          const SampleResult with =
              PcSampler(*c.sde, guided, *predictor, *corrector, options).Sample(20);
          ASSERT_TRUE(plain.summary.ok()) << p << " " << q;
          EXPECT_EQ(plain.x, with.x) << p << " + " << q << " rule " << ToString(rule);
          ++compared;
        }
      }
      // The integrator of the reverse-time SDE with this predictor.
      if (p == "none") continue;
      SdeIntegrator::Options integrator_options;
      integrator_options.num_steps = 40;
      const double t_end = c.affine != nullptr ? 1e-3 : 0.0;
      const IidNoise noise(2, NoiseStream(5, Stream::kPredictor));
      Batch x0 = Batch::Constant(2, 6, 0.8);
      Batch xa = x0, xb = x0;
      SdeIntegrator(StepProblem::Reverse(*c.sde, *c.score), *predictor, 1.0, t_end,
                    integrator_options)
          .Integrate(noise, 0, xa);
      SdeIntegrator(StepProblem::Reverse(*c.sde, guided), *predictor, 1.0, t_end,
                    integrator_options)
          .Integrate(noise, 0, xb);
      EXPECT_EQ(xa, xb) << "integrator " << p;
    }
  }
  EXPECT_GE(compared, 20);
  // Probability flow, fixed and adaptive.
  const GuidedScore guided(vp_score, forbidden, 0.0);
  for (OdeMethod method : {OdeMethod::kEuler, OdeMethod::kRk4, OdeMethod::kDopri5}) {
    OdeOptions options;
    options.method = method;
    options.num_steps = 30;
    const Batch x = Batch::Random(2, 7);
    const OdeSolution a = ProbabilityFlow(vp, vp_score, options).Decode(x, 1e-3);
    const OdeSolution b = ProbabilityFlow(vp, guided, options).Decode(x, 1e-3);
    EXPECT_EQ(a.y, b.y) << ToString(method);
    EXPECT_EQ(a.summary.nfe, b.summary.nfe);
  }
}

// With the exact ∇ log p_t(y | x) and γ = 1 the guided score is the exact conditional score; here
// for p_0 = N(μ, Σ) and the "likelihood" p_t(y | x) ∝ N(x; 0, I/t) of ShrinkGuidance the
// product p_t(x) e^{−t‖x‖²/2} is Gaussian with precision C_t⁻¹ + t I, whose score is checked.
TEST(GuidedScore, ExactGuidanceGivesTheConditionalScore) {
  const VeSde ve(2);
  Matrix cov(2, 2);
  cov << 1.0, 0.4, 0.4, 2.0;
  const Vector mean(Vector::Constant(2, 0.5));
  const GaussianScore score(ve, mean, cov);
  const CallbackGuidance guidance = ShrinkGuidance(2);
  const GuidedScore guided(score, guidance, 1.0);
  const Batch x = Batch::Random(2, 6);
  const RowVector t = RowVector::LinSpaced(6, 0.2, 1.0);
  Batch s(2, 6);
  guided.Evaluate(x, t, s);
  for (Eigen::Index j = 0; j < 6; ++j) {
    const Matrix precision = score.Covariance(t(j)).inverse();
    const Matrix post_precision = precision + t(j) * Matrix::Identity(2, 2);
    const Vector post_mean = post_precision.inverse() * (precision * score.Mean(t(j)));
    const Vector expected = -post_precision * (x.col(j) - post_mean);
    EXPECT_LE((s.col(j) - expected).norm(), 1e-12 * (1.0 + expected.norm()));
  }
}

}  // namespace
}  // namespace scoresde
