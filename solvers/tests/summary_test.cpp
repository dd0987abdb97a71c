#include "scoresde/solvers/summary.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace scoresde {
namespace {

using ::testing::HasSubstr;

TEST(SolveSummary, StartsNotRun) {
  const SolveSummary summary;
  EXPECT_EQ(summary.status, SolveStatus::kNotRun);
  EXPECT_EQ(summary.message, "not run");
  EXPECT_FALSE(summary.ok());
}

TEST(SolveSummary, RecordsFailuresWithTheirLocation) {
  SolveSummary summary;
  summary.nfe = 12;
  summary.RecordFailure(NumericalFailure("score is nan", 4, 0.25, 9, 1));
  EXPECT_EQ(summary.status, SolveStatus::kNonFinite);
  ASSERT_TRUE(summary.failure.has_value());
  EXPECT_EQ(summary.failure->step, 4);
  EXPECT_EQ(summary.failure->sample, 9);
  EXPECT_EQ(summary.failure->coordinate, 1);
  EXPECT_THAT(summary.BriefReport(), HasSubstr("non-finite value: nfe 12"));
  EXPECT_THAT(summary.BriefReport(), HasSubstr("score is nan"));
}

TEST(SolveSummary, ReportsRejectedSteps) {
  SolveSummary summary;
  summary.status = SolveStatus::kSuccess;
  summary.steps = 10;
  summary.accepted_steps = 8;
  summary.rejected_steps = 2;
  EXPECT_THAT(summary.BriefReport(), HasSubstr("(8 accepted, 2 rejected)"));
  EXPECT_STREQ(ToString(SolveStatus::kMaxStepsReached), "maximum steps reached");
}

}  // namespace
}  // namespace scoresde
