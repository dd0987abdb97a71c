// End-to-end tests of `scoresde bench` (workload bookkeeping and argument checks; no timings are
// asserted: figures are recorded in docs/, never tested).
#include <cmath>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::RunCli;

TEST(BenchCli, PcCountsTheWorkAndItsNormalFloor) {
  const auto result = RunCli("bench pc --dim 3 --n 20 --steps 50 --threads 2 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["status"], "success");
  EXPECT_EQ(json["nfe"].get<int64_t>(), 2 * 50);         // predictor + corrector per level
  EXPECT_EQ(json["normals"].get<int64_t>(), 2 * 50 * 20 * 3);  // two normals per coordinate
  EXPECT_GT(json["seconds"].get<double>(), 0.0);
  EXPECT_GT(json["normal_floor_seconds"].get<double>(), 0.0);
}

TEST(BenchCli, TrainTimesAllButTheFirstStep) {
  const auto result = RunCli("bench train --width 8 --depth 2 --batch 16 --steps 4 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["steps"].get<int64_t>(), 3);
  EXPECT_TRUE(std::isfinite(json["final_loss"].get<double>()));
}

TEST(BenchCli, RejectsBadArgumentsByName) {
  EXPECT_THAT(RunCli("bench pc --dim 0").err, HasSubstr("--dim = 0"));
  EXPECT_THAT(RunCli("bench train --steps 1").err, HasSubstr("--steps = 1"));
  EXPECT_THAT(RunCli("bench pc --sde gbm").err, HasSubstr("--sde"));
  EXPECT_NE(RunCli("bench").exit_code, 0);  // a workload is required
}

}  // namespace
}  // namespace scoresde
