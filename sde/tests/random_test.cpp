#include "scoresde/sde/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::ElementsAre;

// Known-answer vectors of Philox4x32-10 from Random123's kat_vectors file: all-zero and all-one
// counter and key. Stream 0 and 0xffff reach those counters through our layout.
TEST(NoiseStream, PhiloxKnownAnswers) {
  const NoiseStream zeros(0, static_cast<Stream>(0));
  EXPECT_THAT(zeros.Raw(0, 0, 0, 0),
              ElementsAre(0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u));
  const NoiseStream ones(~uint64_t{0}, static_cast<Stream>(0xffff));
  EXPECT_THAT(ones.Raw(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffu),
              ElementsAre(0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu));
}

TEST(NoiseStream, ChunkingDoesNotChangeDraws) {
  const NoiseStream noise(42, Stream::kPredictor);
  for (int d : {1, 2, 7}) {
    Batch whole(d, 64);
    noise.FillNormal(3, 1, 100, whole);
    Batch part(d, 64);
    noise.FillNormal(3, 1, 100, part.leftCols(10));
    noise.FillNormal(3, 1, 110, part.middleCols(10, 1));
    noise.FillNormal(3, 1, 111, part.rightCols(53));
    EXPECT_EQ(whole, part) << "d = " << d;
    // A single column is the same as that column of the batch.
    Batch one(d, 1);
    noise.FillNormal(3, 1, 137, one);
    EXPECT_EQ(one.col(0), whole.col(37));
  }
}

TEST(NoiseStream, EveryCounterFieldChangesTheDraws) {
  Batch base(4, 3), other(4, 3);
  NoiseStream(1, Stream::kPredictor).FillNormal(5, 0, 0, base);
  NoiseStream(2, Stream::kPredictor).FillNormal(5, 0, 0, other);
  EXPECT_NE(base, other);
  NoiseStream(1, Stream::kCorrector).FillNormal(5, 0, 0, other);
  EXPECT_NE(base, other);
  NoiseStream(1, Stream::kPredictor).FillNormal(6, 0, 0, other);
  EXPECT_NE(base, other);
  NoiseStream(1, Stream::kPredictor).FillNormal(5, 1, 0, other);
  EXPECT_NE(base, other);
  NoiseStream(1, Stream::kPredictor).FillNormal(5, 0, 1, other);
  EXPECT_NE(base, other);
  // Columns within one call are different samples.
  EXPECT_NE(base.col(0), base.col(1));
}

// FillNormal is Box–Muller on the Philox words of Raw(): z_{2b} = ρ cos θ, z_{2b+1} = ρ sin θ with
// ρ = √(−2 ln u₁), θ = 2π u₂, u = ((hi·2^32 + lo) >> 11 + ½) 2^-53. The vectorized build uses
// libmvec's log/sin/cos (≤ 4 ulp), so values agree with this scalar evaluation to a few ulp of
// the result's magnitude: 64 ulp of max(1, |z|) leaves room for the error propagated through ρ·cos.
TEST(NoiseStream, NormalsAreBoxMullerOfTheRawWords) {
  const NoiseStream noise(77, Stream::kCorrector);
  for (int d : {1, 2, 3, 7, 16, 64}) {
    Batch z(d, 11);
    noise.FillNormal(5, 2, 40, z);
    for (int j = 0; j < 11; ++j) {
      for (int i = 0; i < d; i += 2) {
        const auto r = noise.Raw(static_cast<uint32_t>(i / 2), 40 + j, 5, 2);
        const auto uniform = [](uint32_t hi, uint32_t lo) {
          const uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
          return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
        };
        const double radius = std::sqrt(-2.0 * std::log(uniform(r[0], r[1])));
        const double angle = 2.0 * 3.14159265358979323846 * uniform(r[2], r[3]);
        const double tol = 64 * std::numeric_limits<double>::epsilon();
        EXPECT_NEAR(z(i, j), radius * std::cos(angle), tol * std::max(1.0, radius));
        if (i + 1 < d) {
          EXPECT_NEAR(z(i + 1, j), radius * std::sin(angle), tol * std::max(1.0, radius));
        }
      }
    }
  }
}

TEST(NoiseStream, UniformsAreOpenAndRademachersAreSigns) {
  const NoiseStream noise(7, Stream::kData);
  Batch u(9, 500), r(300, 7);
  noise.FillUniform(0, 0, 0, u);
  EXPECT_GT(u.minCoeff(), 0.0);
  EXPECT_LT(u.maxCoeff(), 1.0);
  noise.FillRademacher(0, 0, 0, r);
  EXPECT_TRUE((r.array().abs() == 1.0).all());
  EXPECT_GT((r.array() > 0).count(), 0);
  EXPECT_GT((r.array() < 0).count(), 0);
}

TEST(NoiseStream, RejectsCountersOutOfRange) {
  const NoiseStream noise(7, Stream::kData);
  Batch z(2, 2);
  EXPECT_THROW(noise.FillNormal(0, 0, -1, z), InvalidArgument);
  EXPECT_THROW(noise.FillNormal(0, 0, int64_t{1} << 32, z), InvalidArgument);
  EXPECT_THROW(noise.FillNormal(uint64_t{1} << 32, 0, 0, z), InvalidArgument);
  EXPECT_THROW(noise.FillNormal(0, 1u << 16, 0, z), InvalidArgument);
  EXPECT_NO_THROW(noise.FillNormal(0xffffffffu, 0xffffu, (int64_t{1} << 32) - 2, z));
}

}  // namespace
}  // namespace scoresde
