#include "scoresde/solvers/noise_source.hpp"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

// Moments of (ΔW, ΔZ): Var ΔW = h, Var ΔZ = h³/3, Cov = h²/2. Each estimate is a sample mean of
// n i.i.d. products whose variance is known for Gaussians (Var(XY) = σ_X²σ_Y² + Cov²), so the
// tolerance is 5 standard errors with this fixed seed.
TEST(IidNoise, IncrementsHaveTheLawOfWAndItsIntegral) {
  const int n = 200000;
  const double h = 0.3;
  const IidNoise noise(1, NoiseStream(11, Stream::kPredictor));
  Batch dw(1, n), dz(1, n);
  noise.IncrementWithArea(4, 0.5, -h, 0, dw, dz);
  const double vw = h, vz = h * h * h / 3.0, c = h * h / 2.0;
  const double mean_w = dw.mean(), mean_z = dz.mean();
  EXPECT_NEAR(mean_w, 0.0, 5.0 * std::sqrt(vw / n));
  EXPECT_NEAR(mean_z, 0.0, 5.0 * std::sqrt(vz / n));
  EXPECT_NEAR(dw.array().square().mean(), vw, 5.0 * std::sqrt(2.0 * vw * vw / n));
  EXPECT_NEAR(dz.array().square().mean(), vz, 5.0 * std::sqrt(2.0 * vz * vz / n));
  EXPECT_NEAR((dw.array() * dz.array()).mean(), c, 5.0 * std::sqrt((vw * vz + c * c) / n));
}

TEST(IidNoise, IncrementIsTheFirstNormalScaled) {
  const NoiseStream stream(3, Stream::kPredictor);
  const IidNoise noise(3, stream, 5);
  Batch dw(3, 4), z(3, 4), dw2(3, 4), dz(3, 4);
  noise.Increment(7, 1.0, -0.25, 10, dw);
  stream.FillNormal(7, 5, 10, z);
  EXPECT_EQ(dw, (0.5 * z).eval());
  // IncrementWithArea gives the same ΔW.
  noise.IncrementWithArea(7, 1.0, -0.25, 10, dw2, dz);
  EXPECT_EQ(dw, dw2);
}

TEST(IidNoise, RejectsBadArguments) {
  EXPECT_THROW(IidNoise(0, NoiseStream(1, Stream::kPredictor)), InvalidArgument);
  EXPECT_THROW(IidNoise(1, NoiseStream(1, Stream::kPredictor), 0xffff), InvalidArgument);
  const IidNoise noise(2, NoiseStream(1, Stream::kPredictor));
  Batch dw(2, 3), wrong(3, 3);
  EXPECT_THROW(noise.Increment(0, 0.0, 0.0, 0, dw), InvalidArgument);
  EXPECT_THROW(noise.Increment(0, 0.0, NAN, 0, dw), InvalidArgument);
  EXPECT_THROW(noise.Increment(-1, 0.0, 0.1, 0, dw), InvalidArgument);
  try {
    noise.Increment(0, 0.0, 0.1, 0, wrong);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("dw"));
  }
}

TEST(BrownianNoise, ForwardIncrementsAreThePathsAndReverseAreComplementary) {
  BrownianPath::Options options;
  options.max_depth = 10;
  const BrownianPath path(2, 5, options);
  const BrownianNoise noise(path);
  Batch dw(2, 3), dz(2, 3), w_ref(2, 3), z_ref(2, 3);
  noise.IncrementWithArea(0, 0.25, 0.5, 7, dw, dz);
  path.Increment(0.25, 0.75, 7, w_ref, z_ref);
  EXPECT_EQ(dw, w_ref);
  EXPECT_EQ(dz, z_ref);
  // Reverse over the same interval: ΔW is W(0.75) − W(0.25), ΔZ = h ΔW − ∫(W − W(0.25)).
  Batch rw(2, 3), rz(2, 3);
  noise.IncrementWithArea(3, 0.75, -0.5, 7, rw, rz);
  EXPECT_EQ(rw, w_ref);
  EXPECT_TRUE(rz.isApprox(0.5 * w_ref - z_ref, 1e-14));
  // ΔZ of the reversed path, ∫_0^h (W(0.75) − W(0.75 − u)) du, by concatenating two halves of
  // the reverse path: Z[0,h] = Z[0,h/2] + Z[h/2,h] + (h/2) W̄[0,h/2].
  Batch w1(2, 3), z1(2, 3), w2(2, 3), z2(2, 3);
  noise.IncrementWithArea(0, 0.75, -0.25, 7, w1, z1);
  noise.IncrementWithArea(1, 0.5, -0.25, 7, w2, z2);
  EXPECT_TRUE(rz.isApprox(z1 + z2 + 0.25 * w1, 1e-13));
}

TEST(BrownianGridNoise, AgreesWithThePathAtEveryAlignedResolution) {
  BrownianPath::Options options;
  options.t0 = 0.001;
  options.t1 = 1.0;
  options.max_depth = 12;
  const BrownianPath path(3, 9, options);
  const BrownianNoise direct(path);
  const BrownianGridNoise grid(path, 6, 20, 5);
  const double cell = (options.t1 - options.t0) / 64;
  Batch a(3, 2), az(3, 2), b(3, 2), bz(3, 2);
  for (int size : {1, 4, 16}) {
    for (int start = 0; start + size <= 64; start += size) {
      const double s = options.t0 + start * cell, e = options.t0 + (start + size) * cell;
      grid.IncrementWithArea(0, s, e - s, 22, a, az);
      direct.IncrementWithArea(0, s, e - s, 22, b, bz);
      EXPECT_TRUE(a.isApprox(b, 1e-12)) << s << " " << e;
      EXPECT_TRUE(az.isApprox(bz, 1e-12)) << s << " " << e;
      grid.IncrementWithArea(0, e, s - e, 22, a, az);
      direct.IncrementWithArea(0, e, s - e, 22, b, bz);
      EXPECT_TRUE(az.isApprox(bz, 1e-12)) << s << " " << e;
    }
  }
}

// Generated cells: the finest increments are IidNoise's, coarse ones their sums (with ΔZ by
// concatenation), in both directions.
TEST(BrownianGridNoise, GeneratedCellsAreIidIncrementsSummedToCoarserGrids) {
  const NoiseStream stream(12, Stream::kBrownian);
  const BrownianGridNoise grid(2, 0.0, 2.0, 3, stream, 5, 4);
  const IidNoise iid(2, stream);
  Batch w(2, 4), z(2, 4), a(2, 4), az(2, 4);
  grid.IncrementWithArea(0, 0.75, 0.25, 5, a, az);
  iid.IncrementWithArea(3, 0.75, 0.25, 5, w, z);
  EXPECT_EQ(a, w);
  EXPECT_EQ(az, z);
  // [0.5, 1.0] = cells 2 and 3.
  Batch w2(2, 4), z2(2, 4);
  iid.IncrementWithArea(2, 0.5, 0.25, 5, w2, z2);
  grid.IncrementWithArea(0, 0.5, 0.5, 5, a, az);
  EXPECT_TRUE(a.isApprox(w2 + w, 1e-15));
  EXPECT_TRUE(az.isApprox(z2 + z + 0.25 * w2, 1e-15));
  grid.IncrementWithArea(0, 1.0, -0.5, 5, a, az);
  EXPECT_TRUE(az.isApprox(0.5 * (w2 + w) - (z2 + z + 0.25 * w2), 1e-15));
  EXPECT_THROW(BrownianGridNoise(2, 1.0, 1.0, 3, stream, 0, 1), InvalidArgument);
}

TEST(BrownianGridNoise, RejectsOffGridStepsAndSamplesOutsideTheRange) {
  BrownianPath::Options options;
  options.max_depth = 8;
  const BrownianPath path(1, 1, options);
  const BrownianGridNoise grid(path, 4, 10, 3);
  Batch dw(1, 2);
  EXPECT_THROW(grid.Increment(0, 0.0, 0.1, 10, dw), InvalidArgument);
  EXPECT_NO_THROW(grid.Increment(0, 0.0, 0.125, 10, dw));
  try {
    grid.Increment(0, 0.0, 0.125, 12, dw);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("first_sample"));
  }
  EXPECT_THROW(BrownianGridNoise(path, 9, 0, 1), InvalidArgument);
  EXPECT_THROW(BrownianGridNoise(path, 2, 0, 0), InvalidArgument);
}

}  // namespace
}  // namespace scoresde
