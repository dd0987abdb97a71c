// Chunked solves shared by PcSampler and SdeIntegrator: fixed ranges of sample indices, each run
// through every step by one thread, with the earliest non-finite value reported deterministically.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "scoresde/sde/context.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::internal {

// max(1, 2^15 / dim): about 256 KiB per d × chunk state buffer, so a chunk's working set stays in
// the L2 cache through all its steps.
int DefaultChunkSize(int dim);

// Stops a chunk at `step` when another chunk has already failed at an earlier step.
using StopCheck = std::function<bool(int64_t step)>;

// Runs fn(first, count, stop) on the chunks [k·chunk, (k+1)·chunk) ∩ [begin, end) over the
// context's threads. A NumericalFailure thrown by fn is recorded; once one is known, chunks stop
// as soon as they pass its step, so the failure with the smallest (step, sample) is found whatever
// the thread count. Returns it, or nullopt. Other exceptions propagate (the lowest chunk's).
std::optional<NumericalFailure> RunChunks(
    const ExecutionContext& context, int64_t begin, int64_t end, int64_t chunk,
    const std::function<void(int64_t first, int64_t count, const StopCheck& stop)>& fn);

}  // namespace scoresde::internal
