#include "scoresde/sde/context.hpp"

#include <atomic>
#include <stdexcept>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

TEST(ExecutionContext, RejectsZeroThreads) {
  EXPECT_THROW(ExecutionContext(0), InvalidArgument);
}

class ExecutionContextThreads : public ::testing::TestWithParam<int> {};

TEST_P(ExecutionContextThreads, CoversEveryIndexOnceWithBoundedRanges) {
  const ExecutionContext context(GetParam());
  for (int64_t grain : {1, 3, 7, 100}) {
    std::vector<std::atomic<int>> hits(97);
    context.ParallelFor(0, 97, grain, [&](int64_t begin, int64_t end) {
      EXPECT_LE(end - begin, grain);
      for (int64_t i = begin; i < end; ++i) hits[i]++;
    });
    for (const auto& hit : hits) EXPECT_EQ(hit.load(), 1);
  }
}

TEST_P(ExecutionContextThreads, RethrowsTheLowestRangesException) {
  const ExecutionContext context(GetParam());
  try {
    context.ParallelFor(0, 100, 10, [](int64_t begin, int64_t) {
      if (begin >= 30) throw std::runtime_error("range " + std::to_string(begin));
    });
    FAIL() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "range 30");
  }
  // The pool is still usable afterwards.
  std::atomic<int64_t> sum = 0;
  context.ParallelFor(0, 10, 1, [&](int64_t begin, int64_t) { sum += begin; });
  EXPECT_EQ(sum.load(), 45);
}

TEST_P(ExecutionContextThreads, NestedCallsRunInline) {
  const ExecutionContext context(GetParam());
  std::atomic<int> count = 0;
  context.ParallelFor(0, 4, 1, [&](int64_t, int64_t) {
    context.ParallelFor(0, 5, 1, [&](int64_t, int64_t) { count++; });
  });
  EXPECT_EQ(count.load(), 20);
}

TEST_P(ExecutionContextThreads, EmptyRangeDoesNothing) {
  const ExecutionContext context(GetParam());
  bool called = false;
  context.ParallelFor(5, 5, 1, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
  EXPECT_THROW(context.ParallelFor(0, 5, 0, [](int64_t, int64_t) {}), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(All, ExecutionContextThreads, ::testing::Values(1, 2, 7));

}  // namespace
}  // namespace scoresde
