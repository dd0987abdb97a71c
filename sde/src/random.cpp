#include "scoresde/sde/random.hpp"

#include <cmath>
#include <limits>
#include <numbers>

#include <Random123/philox.h>

#include "scoresde/sde/check.hpp"
#include "random_internal.hpp"

namespace scoresde {
namespace internal {

namespace {

constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();

void CheckCounters(const char* where, int64_t first_sample, int64_t count, uint64_t step) {
  Require(first_sample >= 0, where, "first_sample", first_sample, ">= 0");
  Require(static_cast<uint64_t>(first_sample) + static_cast<uint64_t>(count) <= kMax32 + 1, where,
          "last sample index", first_sample + count - 1, "< 2^32");
  Require(step <= kMax32, where, "step", static_cast<int64_t>(step), "< 2^32");
}

}  // namespace

PhiloxBlock::PhiloxBlock(uint64_t seed, Stream stream, uint64_t sample, uint64_t step,
                         uint32_t substep)
    : key0(static_cast<uint32_t>(seed)),
      key1(static_cast<uint32_t>(seed >> 32)),
      sample32(static_cast<uint32_t>(sample)),
      step32(static_cast<uint32_t>(step)),
      tag((static_cast<uint32_t>(stream) << 16) | (substep & 0xffffu)) {}

std::array<uint32_t, 4> PhiloxBlock::operator()(uint32_t block) const {
  r123::Philox4x32 philox;
  const r123::Philox4x32::ctr_type counter = {{block, sample32, step32, tag}};
  const r123::Philox4x32::key_type key = {{key0, key1}};
  const auto r = philox(counter, key);
  return {r[0], r[1], r[2], r[3]};
}

}  // namespace internal

namespace {

// Two 32-bit words → a uniform on (0, 1) with 53 random bits; never 0, so log() is finite.
inline double OpenUniform(uint32_t hi, uint32_t lo) {
  const uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

// The substep must fit the 16 bits it is given in the counter.
void CheckSubstep(const char* where, uint32_t substep) {
  Require(substep <= 0xffffu, where, "substep", static_cast<int64_t>(substep), "< 65536");
}

}  // namespace

void NoiseStream::FillNormal(uint64_t step, uint32_t substep, int64_t first_sample,
                             BatchRef out) const {
  internal::CheckCounters("NoiseStream::FillNormal", first_sample, out.cols(), step);
  CheckSubstep("NoiseStream::FillNormal", substep);
  const Eigen::Index d = out.rows();
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const internal::PhiloxBlock philox(seed_, stream_, first_sample + j, step, substep);
    double* column = out.col(j).data();
    for (Eigen::Index i = 0; i < d; i += 2) {
      const auto r = philox(static_cast<uint32_t>(i / 2));
      // Box–Muller on two 53-bit uniforms.
      const double radius = std::sqrt(-2.0 * std::log(OpenUniform(r[0], r[1])));
      const double angle = 2.0 * std::numbers::pi * OpenUniform(r[2], r[3]);
      column[i] = radius * std::cos(angle);
      if (i + 1 < d) column[i + 1] = radius * std::sin(angle);
    }
  }
}

void NoiseStream::FillUniform(uint64_t step, uint32_t substep, int64_t first_sample,
                              BatchRef out) const {
  internal::CheckCounters("NoiseStream::FillUniform", first_sample, out.cols(), step);
  CheckSubstep("NoiseStream::FillUniform", substep);
  const Eigen::Index d = out.rows();
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const internal::PhiloxBlock philox(seed_, stream_, first_sample + j, step, substep);
    for (Eigen::Index i = 0; i < d; i += 2) {
      const auto r = philox(static_cast<uint32_t>(i / 2));
      out(i, j) = OpenUniform(r[0], r[1]);
      if (i + 1 < d) out(i + 1, j) = OpenUniform(r[2], r[3]);
    }
  }
}

void NoiseStream::FillRademacher(uint64_t step, uint32_t substep, int64_t first_sample,
                                 BatchRef out) const {
  internal::CheckCounters("NoiseStream::FillRademacher", first_sample, out.cols(), step);
  CheckSubstep("NoiseStream::FillRademacher", substep);
  const Eigen::Index d = out.rows();
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const internal::PhiloxBlock philox(seed_, stream_, first_sample + j, step, substep);
    for (Eigen::Index block = 0; block * 128 < d; ++block) {
      const auto r = philox(static_cast<uint32_t>(block));
      for (Eigen::Index bit = 0; bit < 128 && block * 128 + bit < d; ++bit) {
        const uint32_t word = r[bit / 32];
        out(block * 128 + bit, j) = ((word >> (bit % 32)) & 1u) ? 1.0 : -1.0;
      }
    }
  }
}

std::array<uint32_t, 4> NoiseStream::Raw(uint32_t block, uint64_t sample, uint64_t step,
                                         uint32_t substep) const {
  internal::CheckCounters("NoiseStream::Raw", static_cast<int64_t>(sample), 1, step);
  CheckSubstep("NoiseStream::Raw", substep);
  return internal::PhiloxBlock(seed_, stream_, sample, step, substep)(block);
}

}  // namespace scoresde
