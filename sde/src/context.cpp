#include "scoresde/sde/context.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "scoresde/sde/check.hpp"

namespace scoresde {

// A fixed set of workers that take ranges of one job at a time from a shared counter. The caller
// works too, so num_threads − 1 workers are started.
class ExecutionContext::Pool {
 public:
  explicit Pool(int num_workers) {
    for (int i = 0; i < num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  // True on the pool's own threads, where a nested ParallelFor runs inline.
  static bool InWorker() { return in_worker_; }

  void Run(int64_t begin, int64_t end, int64_t grain,
           const std::function<void(int64_t, int64_t)>& fn) {
    // One job at a time: concurrent callers queue here.
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    in_worker_ = true;
    struct Reset {
      ~Reset() { in_worker_ = false; }
    } reset;
    const int64_t num_ranges = (end - begin + grain - 1) / grain;
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = Job{begin, end, grain, num_ranges, &fn};
    next_range_ = 0;
    finished_ranges_ = 0;
    errors_.assign(static_cast<size_t>(num_ranges), nullptr);
    ++generation_;
    lock.unlock();
    wake_.notify_all();
    Work();
    lock.lock();
    done_.wait(lock, [&] { return finished_ranges_ == job_.num_ranges; });
    job_.fn = nullptr;
    for (auto& error : errors_) {
      if (error) std::rethrow_exception(error);
    }
  }

 private:
  struct Job {
    int64_t begin = 0;
    int64_t end = 0;
    int64_t grain = 1;
    int64_t num_ranges = 0;
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
  };

  void WorkerLoop() {
    in_worker_ = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      lock.unlock();
      Work();
      lock.lock();
    }
  }

  // Takes ranges until none are left.
  void Work() {
    while (true) {
      int64_t range;
      Job job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (job_.fn == nullptr || next_range_ >= job_.num_ranges) return;
        range = next_range_++;
        job = job_;
      }
      const int64_t first = job.begin + range * job.grain;
      const int64_t last = std::min(job.end, first + job.grain);
      std::exception_ptr error;
      try {
        (*job.fn)(first, last);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      errors_[static_cast<size_t>(range)] = error;
      if (++finished_ranges_ == job_.num_ranges) done_.notify_all();
    }
  }

  static thread_local bool in_worker_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  Job job_;
  int64_t next_range_ = 0;
  int64_t finished_ranges_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::vector<std::exception_ptr> errors_;
};

thread_local bool ExecutionContext::Pool::in_worker_ = false;

ExecutionContext::ExecutionContext(int num_threads) : num_threads_(num_threads) {
  Require(num_threads >= 1, "ExecutionContext", "num_threads", num_threads, ">= 1");
  if (num_threads > 1) pool_ = std::make_unique<Pool>(num_threads - 1);
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::ParallelFor(int64_t begin, int64_t end, int64_t grain,
                                   const std::function<void(int64_t, int64_t)>& fn) const {
  Require(grain >= 1, "ExecutionContext::ParallelFor", "grain", grain, ">= 1");
  if (end <= begin) return;
  if (!pool_ || end - begin <= grain || Pool::InWorker()) {
    // Same ranges as the pool would make, so exceptions and work order are the same.
    std::exception_ptr first_error;
    for (int64_t first = begin; first < end; first += grain) {
      try {
        fn(first, std::min(end, first + grain));
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
    }
    if (first_error) std::rethrow_exception(first_error);
    return;
  }
  pool_->Run(begin, end, grain, fn);
}

}  // namespace scoresde
