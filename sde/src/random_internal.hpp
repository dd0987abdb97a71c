// The counter layout shared by every consumer of Philox draws (CPU streams, Brownian trees, the
// CUDA kernels): key = seed, counter = (block, sample, step, stream << 16 | substep).
#pragma once

#include <array>
#include <cstdint>

#include "scoresde/sde/random.hpp"

namespace scoresde::internal {

struct PhiloxBlock {
  PhiloxBlock(uint64_t seed, Stream stream, uint64_t sample, uint64_t step, uint32_t substep);
  std::array<uint32_t, 4> operator()(uint32_t block) const;

  uint32_t key0;
  uint32_t key1;
  uint32_t sample32;
  uint32_t step32;
  uint32_t tag;
};

}  // namespace scoresde::internal
