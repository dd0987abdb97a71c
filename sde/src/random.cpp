#include "scoresde/sde/random.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <Random123/philox.h>

#include "scoresde/sde/check.hpp"
#include "random_internal.hpp"

// With AVX2 on x86-64 glibc, normals are computed eight Philox blocks at a time and transformed
// with glibc's vector math library (libmvec, linked through libm's AS_NEEDED entry): the same
// counters, words and 53-bit uniforms as the portable path; log/sin/cos agree with the scalar libm
// to a few ulp (libmvec's documented bound is 4 ulp), so the portable and vector builds give
// normals that agree to a few ulp, and each build is bit-reproducible.
#if defined(__AVX2__) && defined(__x86_64__) && defined(__GLIBC__)
#define SCORESDE_SIMD_NORMALS 1
#include <immintrin.h>
extern "C" {
__m256d _ZGVdN4v_log(__m256d x);
__m256d _ZGVdN4v_sin(__m256d x);
__m256d _ZGVdN4v_cos(__m256d x);
}
#else
#define SCORESDE_SIMD_NORMALS 0
#endif

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

#if SCORESDE_SIMD_NORMALS

namespace {

// Philox4x32-10 (Salmon et al. 2011; the rounds of Random123's philox4x32_R) on eight counters at
// once: lane l has counter (c0[l], c1[l], c2[l], c3[l]) and every lane the key (key0, key1).
struct PhiloxLanes {
  __m256i c0, c1, c2, c3;
};

// (hi, lo) 32-bit halves of the eight products a[l]·m.
inline void MulHiLo(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

inline void Philox8(PhiloxLanes* c, uint32_t key0, uint32_t key1) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m256i w0 = _mm256_set1_epi32(static_cast<int>(0x9E3779B9u));
  const __m256i w1 = _mm256_set1_epi32(static_cast<int>(0xBB67AE85u));
  __m256i k0 = _mm256_set1_epi32(static_cast<int>(key0));
  __m256i k1 = _mm256_set1_epi32(static_cast<int>(key1));
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 = _mm256_add_epi32(k0, w0);
      k1 = _mm256_add_epi32(k1, w1);
    }
    __m256i hi0, lo0, hi1, lo1;
    MulHiLo(c->c0, m0, &hi0, &lo0);
    MulHiLo(c->c2, m1, &hi1, &lo1);
    const __m256i next0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c->c1), k0);
    const __m256i next2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c->c3), k1);
    c->c0 = next0;
    c->c1 = lo1;
    c->c2 = next2;
    c->c3 = lo0;
  }
}

// Four uniforms on (0, 1) from words (hi, lo) of four lanes: ((hi·2^32 + lo) >> 11 + ½)·2^-53,
// exactly OpenUniform. hi·2^21 + (lo >> 11) is a 53-bit integer, computed exactly in double.
inline __m256d OpenUniform4(__m128i hi, __m128i lo) {
  const __m128i sign = _mm_set1_epi32(static_cast<int>(0x80000000u));
  const __m256d hi_d = _mm256_add_pd(_mm256_cvtepi32_pd(_mm_xor_si128(hi, sign)),
                                     _mm256_set1_pd(2147483648.0));
  const __m256d lo_d = _mm256_cvtepi32_pd(_mm_srli_epi32(lo, 11));
  const __m256d bits = _mm256_add_pd(_mm256_mul_pd(hi_d, _mm256_set1_pd(2097152.0)), lo_d);
  return _mm256_mul_pd(_mm256_add_pd(bits, _mm256_set1_pd(0.5)), _mm256_set1_pd(0x1.0p-53));
}

// Box–Muller on four Philox blocks (words r0..r3 of four lanes): z_even[l] = ρ cos θ,
// z_odd[l] = ρ sin θ with ρ = √(−2 ln u₁), θ = 2π u₂, u₁ from (r0, r1), u₂ from (r2, r3).
inline void BoxMuller4(__m128i r0, __m128i r1, __m128i r2, __m128i r3, __m256d* z_even,
                       __m256d* z_odd) {
  const __m256d u1 = OpenUniform4(r0, r1);
  const __m256d u2 = OpenUniform4(r2, r3);
  const __m256d radius =
      _mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), _ZGVdN4v_log(u1)));
  const __m256d angle = _mm256_mul_pd(_mm256_set1_pd(2.0 * std::numbers::pi), u2);
  *z_even = _mm256_mul_pd(radius, _ZGVdN4v_cos(angle));
  *z_odd = _mm256_mul_pd(radius, _ZGVdN4v_sin(angle));
}

}  // namespace

void NoiseStream::FillNormal(uint64_t step, uint32_t substep, int64_t first_sample,
                             BatchRef out) const {
  internal::CheckCounters("NoiseStream::FillNormal", first_sample, out.cols(), step);
  CheckSubstep("NoiseStream::FillNormal", substep);
  const Eigen::Index d = out.rows();
  const Eigen::Index cols = out.cols();
  if (d == 0 || cols == 0) return;
  // Every (column, block) pair is one Philox counter; eight pairs go through the vector code at a
  // time, taken in column-major order, so each value depends only on its own counter.
  const internal::PhiloxBlock base(seed_, stream_, static_cast<uint64_t>(first_sample), step,
                                   substep);
  const uint32_t blocks_per_column = static_cast<uint32_t>((d + 1) / 2);
  const int64_t total = static_cast<int64_t>(blocks_per_column) * cols;
  alignas(32) uint32_t block_index[8];
  alignas(32) uint32_t sample_index[8];
  alignas(32) double values[16];
  Eigen::Index column = 0;
  uint32_t block = 0;
  for (int64_t k = 0; k < total; k += 8) {
    const int lanes = static_cast<int>(std::min<int64_t>(8, total - k));
    const Eigen::Index first_column = column;
    const uint32_t first_block = block;
    for (int l = 0; l < 8; ++l) {
      block_index[l] = block;
      sample_index[l] = base.sample32 + static_cast<uint32_t>(column);
      if (l < lanes && ++block == blocks_per_column) {
        block = 0;
        ++column;
      }
    }
    PhiloxLanes c;
    c.c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(block_index));
    c.c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(sample_index));
    c.c2 = _mm256_set1_epi32(static_cast<int>(base.step32));
    c.c3 = _mm256_set1_epi32(static_cast<int>(base.tag));
    Philox8(&c, base.key0, base.key1);
    for (int half = 0; half < (lanes > 4 ? 2 : 1); ++half) {
      const auto take = [half](__m256i v) {
        return half == 0 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
      };
      __m256d z_even, z_odd;
      BoxMuller4(take(c.c0), take(c.c1), take(c.c2), take(c.c3), &z_even, &z_odd);
      // Interleave to (even, odd) per block: blocks 4h..4h+3 → values[8h .. 8h+7].
      const __m256d low = _mm256_unpacklo_pd(z_even, z_odd);   // e0 o0 e2 o2
      const __m256d high = _mm256_unpackhi_pd(z_even, z_odd);  // e1 o1 e3 o3
      _mm256_store_pd(values + 8 * half, _mm256_permute2f128_pd(low, high, 0x20));
      _mm256_store_pd(values + 8 * half + 4, _mm256_permute2f128_pd(low, high, 0x31));
    }
    // Scatter: lane l is block first_block + l (wrapping into the next columns).
    if (d % 2 == 0 && first_block + lanes <= blocks_per_column) {
      std::copy(values, values + 2 * lanes, out.col(first_column).data() + 2 * first_block);
      continue;
    }
    Eigen::Index j = first_column;
    uint32_t b = first_block;
    for (int l = 0; l < lanes; ++l) {
      double* target = out.col(j).data();
      const Eigen::Index row = 2 * static_cast<Eigen::Index>(b);
      target[row] = values[2 * l];
      if (row + 1 < d) target[row + 1] = values[2 * l + 1];
      if (++b == blocks_per_column) {
        b = 0;
        ++j;
      }
    }
  }
}

#else  // Portable path: the same counters and transform, one block at a time.

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

#endif  // SCORESDE_SIMD_NORMALS

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
