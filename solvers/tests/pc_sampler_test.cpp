#include "scoresde/solvers/pc_sampler.hpp"

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "test_problems.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::IsotropicGaussianScore;
using testing::NoNormScore;

TEST(PcSamplerOptions, DefaultsAreValid) { EXPECT_NO_THROW(PcSampler::Options{}.Validate()); }

TEST(PcSamplerOptions, EachBadValueIsNamed) {
  const auto check = [](auto mutate, const std::string& name) {
    PcSampler::Options options;
    mutate(options);
    EXPECT_THAT([&] { options.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr(name)));
  };
  check([](auto& o) { o.num_steps = 0; }, "num_steps");
  check([](auto& o) { o.eps = -1e-3; }, "eps");
  check([](auto& o) { o.eps = NAN; }, "eps");
  check([](auto& o) { o.corrector_steps = -1; }, "corrector_steps");
  check([](auto& o) { o.snr = 0.0; }, "snr");
  check([](auto& o) { o.snr = NAN; }, "snr");
  check([](auto& o) { o.pilot_size = 1; }, "pilot_size");
  check([](auto& o) { o.num_threads = 0; }, "num_threads");
  check([](auto& o) { o.chunk_size = -2; }, "chunk_size");
}

TEST(PcSampler, ConstructionRejectsUnusableCombinations) {
  const VeSde ve(2);
  const SubVpSde subvp(2);
  const GbmSde gbm(2, 0.1, 0.3);
  const VpSde vp(2);
  const IsotropicGaussianScore score(ve, Vector::Zero(2), 1.0);
  const IsotropicGaussianScore subvp_score(subvp, Vector::Zero(2), 1.0);
  const IsotropicGaussianScore wrong_dim(ve, Vector::Zero(3), 1.0);
  const IsotropicGaussianScore vp_score(vp, Vector::Zero(2), 1.0);
  const EulerMaruyamaPredictor em;
  const AncestralPredictor ancestral;
  const LangevinCorrector langevin;
  const AnnealedLangevinCorrector annealed;
  PcSampler::Options options;
  options.num_steps = 10;
  EXPECT_THAT([&] { PcSampler(ve, wrong_dim, em, langevin, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("score dim")));
  EXPECT_THAT([&] { PcSampler(subvp, subvp_score, ancestral, langevin, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("ancestral")));
  EXPECT_THAT([&] { PcSampler(gbm, score, em, annealed, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("annealed")));
  EXPECT_THAT([&] { PcSampler(gbm, score, em, langevin, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("initial_sampler")));
  options.initial_sampler = [](const NoiseStream&, int64_t, BatchRef x) { x.setOnes(); };
  options.denoise = true;
  EXPECT_THAT([&] { PcSampler(gbm, score, em, langevin, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("denoise")));
  options = {};
  options.eps = 1.0;
  EXPECT_THAT([&] { PcSampler(ve, score, em, langevin, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("eps")));
  // The DDPM chain needs β(t)h < 1: 10 VP levels with β_max = 20 do not.
  options = {};
  options.num_steps = 10;
  EXPECT_THAT([&] { PcSampler(vp, vp_score, ReverseDiffusionPredictor(), NoneCorrector(), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("beta")));
  EXPECT_THAT([&] { PcSampler(vp, vp_score, em, langevin, options); }, ThrowsMessage<InvalidArgument>(HasSubstr("beta")));
  EXPECT_NO_THROW(PcSampler(vp, vp_score, em, NoneCorrector(), options));
}

// Sample i is the same bits alone, in a batch of 10,000, on any thread count and chunking, for
// the expectation rule with E‖s‖² in closed form and from the pilot, and for annealed Langevin.
TEST(PcSampler, EverySampleIsIndependentOfItsBatchThreadsAndChunks) {
  const VeSde ve(2);
  const IsotropicGaussianScore closed(ve, Vector::Constant(2, 0.3), 0.9);
  const NoNormScore pilot(closed);
  const ReverseDiffusionPredictor reverse_diffusion;
  const EulerMaruyamaPredictor em;
  const LangevinCorrector langevin;
  const AnnealedLangevinCorrector annealed;
  struct Case {
    const ScoreModel* score;
    const Predictor* predictor;
    const Corrector* corrector;
  };
  for (const Case& c : {Case{&closed, &reverse_diffusion, &langevin},
                        Case{&pilot, &reverse_diffusion, &langevin},
                        Case{&closed, &em, &annealed}}) {
    PcSampler::Options options;
    options.num_steps = 30;
    options.corrector_steps = 2;
    options.pilot_size = 100;
    options.seed = 17;
    const PcSampler big(ve, *c.score, *c.predictor, *c.corrector, options);
    const SampleResult all = big.Sample(10000);
    ASSERT_TRUE(all.summary.ok()) << all.summary.BriefReport();
    for (int threads : {1, 2, 7}) {
      for (int chunk : {1, 13, 0}) {
        options.num_threads = threads;
        options.chunk_size = chunk;
        const PcSampler sampler(ve, *c.score, *c.predictor, *c.corrector, options);
        EXPECT_EQ(sampler.expected_squared_norms(), big.expected_squared_norms());
        Batch some(2, 40);
        sampler.SampleInto(4321, some);
        EXPECT_EQ(some, all.x.middleCols(4321, 40)) << threads << " " << chunk;
        Batch one(2, 1);
        sampler.SampleInto(9999, one);
        EXPECT_EQ(one, all.x.col(9999));
      }
    }
  }
}

// The paper's batch rule couples the samples of a chunk: results depend on the chunk size but not
// on the thread count.
TEST(PcSampler, BatchAverageRuleDependsOnChunksNotThreads) {
  const VeSde ve(2);
  const IsotropicGaussianScore score(ve, Vector::Zero(2), 1.0);
  PcSampler::Options options;
  options.num_steps = 20;
  options.step_rule = LangevinStepRule::kBatchAverage;
  options.chunk_size = 16;
  const ReverseDiffusionPredictor rd;
  const LangevinCorrector langevin;
  const Batch one_thread = PcSampler(ve, score, rd, langevin, options).Sample(100).x;
  options.num_threads = 2;
  EXPECT_EQ(PcSampler(ve, score, rd, langevin, options).Sample(100).x, one_thread);
  options.chunk_size = 32;
  EXPECT_NE(PcSampler(ve, score, rd, langevin, options).Sample(100).x, one_thread);
}

// The pilot's E‖s_t‖² against the closed form d/(α²s0² + σ_t²): each level's estimate averages
// P = 4000 values of ‖s‖², whose relative standard deviation is √(2/d) for Gaussian data
// (‖s‖² · v is χ²_d), so its relative standard error is √(2/(dP)) = 1.6% at d = 2; 5σ = 8%. The
// pilot's samples come from the sampler's own chain started at the exact p_T (initial sampler)
// with 200 reverse-diffusion steps plus one Langevin step per level, whose weak error in the
// variance was measured below 1% here — small against the MC tolerance.
TEST(PcSampler, PilotEstimatesTheExpectedSquaredScoreNorm) {
  const VeSde ve(2);
  const IsotropicGaussianScore closed(ve, Vector::Constant(2, 0.3), 0.9);
  const NoNormScore score(closed);
  PcSampler::Options options;
  options.num_steps = 200;
  options.pilot_size = 4000;
  options.initial_sampler = [&](const NoiseStream& noise, int64_t first, BatchRef x) {
    noise.FillNormal(0, 0, first, x);
    const double t_final = ve.t_final();
    x = (std::sqrt(closed.Variance(t_final)) * x).colwise() +
        closed.MeanCoefficient(t_final) * closed.mean();
  };
  const ReverseDiffusionPredictor rd;
  const LangevinCorrector langevin;
  const PcSampler sampler(ve, score, rd, langevin, options);
  EXPECT_EQ(sampler.pilot_summary().status, SolveStatus::kSuccess);
  ASSERT_EQ(sampler.expected_squared_norms().size(), 200u);
  const double tolerance = 5.0 * std::sqrt(2.0 / (2 * 4000));
  for (int i : {0, 50, 100, 150, 199}) {
    const double exact = *closed.ExpectedSquaredNorm(sampler.Time(i + 1));
    EXPECT_NEAR(sampler.expected_squared_norms()[i] / exact, 1.0, tolerance) << "level " << i;
  }
  // The summary says the pilot ran.
  const SampleResult result = sampler.Sample(3);
  ASSERT_EQ(result.summary.warnings.size(), 1u);
  EXPECT_THAT(result.summary.warnings[0], HasSubstr("pilot"));
}

TEST(PcSampler, SummaryCountsScoreEvaluations) {
  const VeSde ve(2);
  const IsotropicGaussianScore score(ve, Vector::Zero(2), 1.0);
  PcSampler::Options options;
  options.num_steps = 7;
  options.corrector_steps = 3;
  options.denoise = true;
  const SampleResult r =
      PcSampler(ve, score, SrkPredictor(), LangevinCorrector(), options).Sample(5);
  EXPECT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary.nfe, 7 * 2 + 7 * 3 + 1);
  EXPECT_EQ(r.summary.steps, 7);
  EXPECT_GE(r.summary.seconds, 0.0);
  options.corrector_steps = 0;
  options.denoise = false;
  EXPECT_EQ(PcSampler(ve, score, NonePredictor(), LangevinCorrector(), options).Sample(2).summary.nfe,
            0);
}

// The hooks: the initial sampler replaces the prior; the state hook sees every update with the
// step index and level time and may change the state.
TEST(PcSampler, HooksAreCalledAndTheirChangesKept) {
  const VeSde ve(2);
  const IsotropicGaussianScore score(ve, Vector::Zero(2), 1.0);
  PcSampler::Options options;
  options.num_steps = 5;
  options.corrector_steps = 2;
  options.chunk_size = 3;
  options.num_threads = 2;
  std::mutex mutex;
  std::set<int64_t> initial_firsts;
  std::vector<std::pair<int64_t, double>> calls;
  options.initial_sampler = [&](const NoiseStream& noise, int64_t first, BatchRef x) {
    EXPECT_EQ(noise.stream(), Stream::kPrior);
    std::lock_guard<std::mutex> lock(mutex);
    initial_firsts.insert(first);
    x.setConstant(2.0);
  };
  options.state_hook = [&](int64_t step, double t, int64_t first, BatchRef x) {
    x.row(0).setConstant(7.0);  // conditioning by replacement, in miniature
    if (first == 0) {
      std::lock_guard<std::mutex> lock(mutex);
      calls.emplace_back(step, t);
    }
  };
  const EulerMaruyamaPredictor em;
  const LangevinCorrector langevin;
  const PcSampler sampler(ve, score, em, langevin, options);
  const SampleResult r = sampler.Sample(7);
  EXPECT_EQ(initial_firsts, (std::set<int64_t>{0, 3, 6}));
  ASSERT_EQ(calls.size(), 5u * 3u);
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(calls[3 * i + k].first, i);
      EXPECT_DOUBLE_EQ(calls[3 * i + k].second, sampler.Time(i + 1));
    }
  }
  EXPECT_TRUE((r.x.row(0).array() == 7.0).all());
  EXPECT_TRUE((r.x.row(1).array() != 7.0).all());
}

// A score that is NaN for samples ≥ 17 below t = 0.5: the summary names the first step below 0.5,
// the sample and the coordinate; the exception carries the same.
TEST(PcSampler, NonFiniteScoreStopsTheRunWithItsLocation) {
  const VeSde ve(2);
  const IsotropicGaussianScore inner(ve, Vector::Zero(2), 1.0);
  // Samples ≥ 17 start at (0, 10^5), the others at 0. The reverse drift multiplies x by about
  // −0.7 per step here, so |x_2| stays above 10^3 through step 6 for the former and far below it
  // (VE noise of std ≤ σ_max = 50) for the latter.
  class PoisonedScore final : public ScoreModel {
   public:
    explicit PoisonedScore(const ScoreModel& inner) : inner_(&inner) {}
    int dim() const override { return 2; }
    void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
      inner_->Evaluate(x, t, s);
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        if (t(j) < 0.5 && std::abs(x(1, j)) > 1000.0) s(1, j) = NAN;
      }
    }
    std::optional<double> ExpectedSquaredNorm(double t) const override {
      return inner_->ExpectedSquaredNorm(t);
    }

   private:
    const ScoreModel* inner_;
  } poisoned(inner);
  PcSampler::Options options;
  options.num_steps = 10;
  options.eps = 0.0;
  options.throw_on_failure = false;
  options.chunk_size = 4;
  options.initial_sampler = [](const NoiseStream&, int64_t first, BatchRef x) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) x.col(j) << 0.0, (first + j >= 17 ? 1e5 : 0.0);
  };
  const EulerMaruyamaPredictor em;
  const NoneCorrector none;
  for (int threads : {1, 2, 7}) {
    options.num_threads = threads;
    options.throw_on_failure = false;
    const PcSampler sampler(ve, poisoned, em, none, options);
    const SampleResult r = sampler.Sample(30);
    EXPECT_EQ(r.summary.status, SolveStatus::kNonFinite);
    ASSERT_TRUE(r.summary.failure.has_value());
    // Steps start at t_i = 1 − i/10; the first with t < 0.5 is i = 6 (t = 0.4), the score at the
    // start of the step.
    EXPECT_EQ(r.summary.failure->step, 6);
    EXPECT_EQ(r.summary.failure->sample, 17);
    EXPECT_EQ(r.summary.failure->coordinate, 1);
    EXPECT_THAT(r.summary.BriefReport(), HasSubstr("sample 17"));
    options.throw_on_failure = true;
    const PcSampler throwing(ve, poisoned, em, none, options);
    try {
      throwing.Sample(30);
      FAIL();
    } catch (const NumericalFailure& e) {
      EXPECT_EQ(e.step(), 6);
      EXPECT_EQ(e.sample(), 17);
    }
  }
}

// Tweedie's step: the denoised output is (x + σ_ε² s(x, ε))/α(ε) of the undenoised one.
TEST(PcSampler, DenoiseAppliesTweediesFormula) {
  const VpSde vp(2);
  const IsotropicGaussianScore score(vp, Vector::Constant(2, 0.5), 0.7);
  PcSampler::Options options;
  options.num_steps = 50;
  options.eps = 0.05;
  const EulerMaruyamaPredictor em;
  const LangevinCorrector langevin;
  const Batch raw = PcSampler(vp, score, em, langevin, options).Sample(20).x;
  options.denoise = true;
  const Batch denoised = PcSampler(vp, score, em, langevin, options).Sample(20).x;
  Batch s(2, 20);
  score.Evaluate(raw, RowVector::Constant(20, 0.05), s);
  const double sigma = vp.MarginalStd(0.05), alpha = vp.MeanCoefficient(0.05);
  EXPECT_TRUE(denoised.isApprox((raw + sigma * sigma * s) / alpha, 1e-14));
}

// Sub-VP with Langevin and annealed Langevin (the reference code fails there) runs and stays
// finite; GBM needs and uses the initial sampler.
TEST(PcSampler, CorrectorsRunOnSubVpAndGbm) {
  const SubVpSde subvp(2);
  const IsotropicGaussianScore score(subvp, Vector::Zero(2), 1.0);
  PcSampler::Options options;
  options.num_steps = 100;
  for (const char* corrector : {"langevin", "annealed-langevin"}) {
    const auto c = MakeCorrector(corrector);
    const SampleResult r = PcSampler(subvp, score, ReverseDiffusionPredictor(), *c, options).Sample(50);
    EXPECT_TRUE(r.summary.ok()) << corrector;
    EXPECT_TRUE(r.x.allFinite()) << corrector;
  }
}

}  // namespace
}  // namespace scoresde
