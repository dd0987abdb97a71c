#include "scoresde/solvers/replacement.hpp"

#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conditional_test_util.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/predictors.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::GaussianScore;

Matrix Observation(std::initializer_list<double> values) {
  Matrix m(values.size(), 1);
  int i = 0;
  for (double v : values) m(i++, 0) = v;
  return m;
}

TEST(HelmertMatrix, IsOrthogonalWithTheMeanFirst) {
  for (int c : {1, 2, 3, 7}) {
    const Matrix q = HelmertMatrix(c);
    EXPECT_LE((q * q.transpose() - Matrix::Identity(c, c)).cwiseAbs().maxCoeff(), 1e-15);
    for (int i = 0; i < c; ++i) EXPECT_NEAR(q(0, i), 1.0 / std::sqrt(c), 1e-16);
  }
  EXPECT_THAT([] { HelmertMatrix(0); }, ThrowsMessage<InvalidArgument>(HasSubstr("channels")));
}

TEST(ReplacementConditionerOptions, DefaultsAreValidAndMixesMustBeOrthogonal) {
  EXPECT_NO_THROW(ReplacementConditioner::Options{}.Validate());
  ReplacementConditioner::Options options;
  options.channel_mix = Matrix::Ones(3, 3);
  EXPECT_THAT([&] { options.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("channel_mix")));
  options.channel_mix = Matrix::Identity(2, 3);
  EXPECT_THAT([&] { options.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("channel_mix")));
  options.channel_mix = HelmertMatrix(3);
  options.channel_mix(1, 1) = NAN;
  EXPECT_THAT([&] { options.Validate(); }, ThrowsMessage<InvalidArgument>(HasSubstr("channel_mix")));
}

TEST(ReplacementConditioner, RejectsBadObservations) {
  const VpSde vp(4);
  const ReplacementConditioner::Options options;
  EXPECT_THAT([&] { ReplacementConditioner(vp, Matrix::Zero(3, 1), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("observed")));
  EXPECT_THAT([&] { ReplacementConditioner(vp, Matrix::Zero(4, 0), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("observed")));
  EXPECT_THAT(
      [&] { ReplacementConditioner(vp, Observation({NAN, NAN, NAN, NAN}), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("observed coordinates")));
  EXPECT_THAT([&] { ReplacementConditioner(vp, Observation({1.0, INFINITY, NAN, NAN}), options); }, ThrowsMessage<InvalidArgument>(HasSubstr("observed(1, 0)")));
  ReplacementConditioner::Options mix;
  mix.channel_mix = HelmertMatrix(3);
  EXPECT_THAT([&] { ReplacementConditioner(vp, Observation({1.0, NAN, NAN, NAN}), mix); }, ThrowsMessage<InvalidArgument>(HasSubstr("channels")));
  // Per-sample observations: sample 2 has none.
  Matrix two(4, 2);
  two << 1.0, 2.0, NAN, NAN, NAN, NAN, NAN, NAN;
  const ReplacementConditioner conditioner(vp, two, options);
  Batch x = Batch::Zero(4, 3);
  EXPECT_THAT([&] { conditioner.Apply(0, 0.5, 0, x); }, ThrowsMessage<InvalidArgument>(HasSubstr("last sample index")));
  EXPECT_THAT([&] { conditioner.Apply(0, 1.5, 0, x.leftCols(2)); }, ThrowsMessage<InvalidArgument>(HasSubstr("t")));
}

// Known coordinates become α(t) y + σ_t z with z the documented draws; the others are untouched.
TEST(ReplacementConditioner, ReplacesKnownCoordinatesByForwardDiffusedObservations) {
  const VpSde vp(4);
  ReplacementConditioner::Options options;
  options.seed = 11;
  Matrix observed(4, 3);
  observed << 1.0, NAN, 0.5,  //
      NAN, 2.0, NAN,          //
      -1.0, NAN, NAN,         //
      NAN, NAN, 3.0;
  const ReplacementConditioner conditioner(vp, observed, options);
  const double t = 0.3;
  const double alpha = vp.MeanCoefficient(t), sigma = vp.MarginalStd(t);
  const Batch before = Batch::Random(4, 3);
  Batch x = before;
  conditioner.Apply(7, t, 0, x);
  Batch z(4, 3);
  NoiseStream(11, Stream::kGuidance).FillNormal(7, 0, 0, z);
  for (int j = 0; j < 3; ++j) {
    for (int i = 0; i < 4; ++i) {
      if (std::isnan(observed(i, j))) {
        EXPECT_EQ(x(i, j), before(i, j));
      } else {
        EXPECT_DOUBLE_EQ(x(i, j), alpha * observed(i, j) + sigma * z(i, j));
      }
    }
  }
  // Chunking does not matter: sample 2 alone gets the same values.
  Batch one = before.col(2);
  conditioner.Apply(7, t, 2, one);
  EXPECT_EQ(one, x.col(2));
  // Finalize sets the exact values.
  conditioner.Finalize(0, x);
  EXPECT_EQ(x(0, 0), 1.0);
  EXPECT_EQ(x(1, 1), 2.0);
  EXPECT_EQ(x(3, 2), 3.0);
  EXPECT_EQ(x(1, 0), before(1, 0));
}

// Colorization: replacement acts on z = (Q ⊗ I_P) x; the transform round-trips and unknown
// transformed channels are preserved.
TEST(ReplacementConditioner, ReplacesInTransformedChannels) {
  const int channels = 3, pixels = 4, d = channels * pixels;
  const VeSde ve(d);
  ReplacementConditioner::Options options;
  options.channel_mix = HelmertMatrix(channels);
  // Observe the gray channel (transformed channel 0) of every pixel.
  Matrix observed = Matrix::Constant(d, 1, NAN);
  for (int p = 0; p < pixels; ++p) observed(p, 0) = 0.1 * p;
  const ReplacementConditioner conditioner(ve, observed, options);
  const Batch x0 = Batch::Random(d, 5);
  Batch z(d, 5), back(d, 5);
  conditioner.ToTransformed(x0, z);
  conditioner.FromTransformed(z, back);
  EXPECT_LE((back - x0).cwiseAbs().maxCoeff(), 1e-15);
  // Gray channel = √C · mean over channels of each pixel.
  for (int p = 0; p < pixels; ++p) {
    const double mean = (x0(p, 0) + x0(pixels + p, 0) + x0(2 * pixels + p, 0)) / 3.0;
    EXPECT_NEAR(z(p, 0), std::sqrt(3.0) * mean, 1e-15);
  }
  Batch x = x0;
  conditioner.Apply(2, 0.6, 0, x);
  Batch zx(d, 5), noise(d, 5);
  conditioner.ToTransformed(x, zx);
  NoiseStream(0, Stream::kGuidance).FillNormal(2, 0, 0, noise);
  const double alpha = ve.MeanCoefficient(0.6), sigma = ve.MarginalStd(0.6);
  for (int j = 0; j < 5; ++j) {
    for (int i = 0; i < d; ++i) {
      const double expected = i < pixels ? alpha * observed(i, 0) + sigma * noise(i, j) : z(i, j);
      EXPECT_NEAR(zx(i, j), expected, 1e-13 * (1.0 + std::abs(expected)));
    }
  }
}

// Through PcSampler's hook: after sampling, the known coordinates hold the last level's draw
// α(ε) y + σ_ε z exactly, and the run is independent of threads and chunking.
TEST(ReplacementConditioner, DrivesThePcSamplerThroughItsHook) {
  const VpSde vp(3);
  const GaussianScore score(vp, Vector::Zero(3), Matrix::Identity(3, 3));
  ReplacementConditioner::Options options;
  options.seed = 5;
  const ReplacementConditioner conditioner(vp, Observation({NAN, 0.8, NAN}), options);
  PcSampler::Options pc;
  pc.num_steps = 40;
  pc.seed = 5;
  pc.state_hook = conditioner.Hook();
  const ReverseDiffusionPredictor rd;
  const LangevinCorrector langevin;
  const SampleResult one = PcSampler(vp, score, rd, langevin, pc).Sample(30);
  ASSERT_TRUE(one.summary.ok());
  Batch z(3, 30);
  NoiseStream(5, Stream::kGuidance).FillNormal(pc.num_steps - 1, 0, 0, z);
  const double eps = pc.eps;
  for (int j = 0; j < 30; ++j) {
    EXPECT_DOUBLE_EQ(one.x(1, j), vp.MeanCoefficient(eps) * 0.8 + vp.MarginalStd(eps) * z(1, j));
  }
  pc.num_threads = 7;
  pc.chunk_size = 4;
  EXPECT_EQ(PcSampler(vp, score, rd, langevin, pc).Sample(30).x, one.x);
}

}  // namespace
}  // namespace scoresde
