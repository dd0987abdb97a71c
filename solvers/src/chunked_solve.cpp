#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>

#include "chunked_solve_internal.hpp"

namespace scoresde::internal {

int DefaultChunkSize(int dim) { return std::max(1, (1 << 15) / std::max(dim, 1)); }

std::optional<NumericalFailure> RunChunks(
    const ExecutionContext& context, int64_t begin, int64_t end, int64_t chunk,
    const std::function<void(int64_t first, int64_t count, const StopCheck& stop)>& fn) {
  std::mutex mutex;
  std::optional<NumericalFailure> earliest;
  std::atomic<int64_t> earliest_step{std::numeric_limits<int64_t>::max()};
  const StopCheck stop = [&](int64_t step) {
    return step > earliest_step.load(std::memory_order_relaxed);
  };
  const int64_t first_chunk = begin / chunk;
  const int64_t last_chunk = (end + chunk - 1) / chunk;
  context.ParallelFor(first_chunk, last_chunk, 1, [&](int64_t k_begin, int64_t k_end) {
    for (int64_t k = k_begin; k < k_end; ++k) {
      const int64_t first = std::max(begin, k * chunk);
      const int64_t last = std::min(end, (k + 1) * chunk);
      try {
        fn(first, last - first, stop);
      } catch (const NumericalFailure& failure) {
        std::lock_guard<std::mutex> lock(mutex);
        const bool earlier =
            !earliest || failure.step() < earliest->step() ||
            (failure.step() == earliest->step() && failure.sample() < earliest->sample());
        if (earlier) {
          earliest = failure;
          earliest_step.store(failure.step(), std::memory_order_relaxed);
        }
      }
    }
  });
  return earliest;
}

}  // namespace scoresde::internal
