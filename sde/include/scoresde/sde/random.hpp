// Counter-based random streams (Philox4x32-10, Salmon et al., SC 2011; Random123).
//
// A draw is a pure function of (seed, stream, sample, step, substep, block): the key is the 64-bit
// seed and the counter is (block, sample, step, stream << 16 | substep). So sample j's noise at a
// given step is the same whatever the thread count, the split of the batch into chunks, or the
// device (the CUDA backend uses the same counters). Normals come from Box–Muller on two 53-bit
// uniforms, two normals per Philox block: block b of a sample gives rows 2b (ρ cos θ) and 2b + 1
// (ρ sin θ), ρ = √(−2 ln u₁), θ = 2π u₂, u₁ from words 0–1 and u₂ from words 2–3. AVX2 builds on
// glibc compute eight blocks at a time and take ln, sin and cos from glibc's vector math library
// (libmvec, ≤ 4 ulp): the same words and uniforms, values within a few ulp of the scalar
// evaluation, bit-identical for a given build whatever the chunking.
#pragma once

#include <array>
#include <cstdint>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

// Purposes of random numbers; each gets its own disjoint counter space.
enum class Stream : uint16_t {
  kPrior = 1,       // initial states drawn from p_T
  kPredictor = 2,   // predictor noise
  kCorrector = 3,   // corrector (Langevin) noise
  kBrownian = 4,    // virtual Brownian paths
  kHutchinson = 5,  // divergence probes
  kTraining = 6,    // loss noise (t, z, projections)
  kShuffle = 7,     // data order
  kInit = 8,        // network initialization
  kData = 9,        // synthetic data sets and reference samples
  kPilot = 10,      // pilot estimates (e.g. E‖s_t‖² for the Langevin step rule)
  kGuidance = 11,   // conditional samplers (SMC resampling, observation noise)
  kUser = 1000,     // first value free for applications
};

class NoiseStream {
 public:
  NoiseStream(uint64_t seed, Stream stream) : seed_(seed), stream_(stream) {}

  uint64_t seed() const { return seed_; }
  Stream stream() const { return stream_; }

  // Column j of out receives rows() standard normals for sample first_sample + j at
  // (step, substep). Throws InvalidArgument if a sample index or step needs more than 32 bits.
  void FillNormal(uint64_t step, uint32_t substep, int64_t first_sample, BatchRef out) const;
  // Uniforms on the open interval (0, 1), 53 bits each.
  void FillUniform(uint64_t step, uint32_t substep, int64_t first_sample, BatchRef out) const;
  // ±1 with probability 1/2 each.
  void FillRademacher(uint64_t step, uint32_t substep, int64_t first_sample, BatchRef out) const;

  // The raw Philox output for one counter block (for tests and the device comparisons).
  std::array<uint32_t, 4> Raw(uint32_t block, uint64_t sample, uint64_t step,
                              uint32_t substep) const;

 private:
  uint64_t seed_;
  Stream stream_;
};

}  // namespace scoresde
