// Execution context: the worker threads a computation may use.
//
// Work on a batch is split into column ranges. Every per-sample computation in the library depends
// only on the sample's own index, never on which thread or range it falls in, so any thread count
// gives the same bits. Reductions run over fixed-size blocks combined in index order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace scoresde {

class ExecutionContext {
 public:
  // num_threads >= 1; throws InvalidArgument otherwise. One thread runs everything inline.
  explicit ExecutionContext(int num_threads = 1);
  ~ExecutionContext();
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint ranges covering [begin, end), each at most `grain` long
  // (grain >= 1), spread over the threads; returns when all are done. The first exception thrown
  // by fn (lowest range) is rethrown here after every range has finished or been skipped.
  void ParallelFor(int64_t begin, int64_t end, int64_t grain,
                   const std::function<void(int64_t, int64_t)>& fn) const;

 private:
  class Pool;
  int num_threads_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace scoresde
