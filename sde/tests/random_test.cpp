#include "scoresde/sde/random.hpp"

#include <cstdint>

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
