// End-to-end tests of `scoresde encode` (and --decode).
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "scoresde/scoring/array_io.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::RunCli;
using testing::TempDir;

using testing::kProblems;

nlohmann::json RunJson(const std::string& arguments) {
  return testing::RunCliJson("encode " + arguments);
}

// Bounds: the solves' local tolerance 1e-6 over ≲ 100 steps, amplified by the Gaussian flow's gain
// √(max c / min c) ≤ √(1.1 / 0.4) (eigenvalues of gaussian_2d's covariance are ≈ 0.36 and 1.14):
// ≤ 100 · 1e-6 · (1 + 2 · 5) · 1.7 ≈ 2e-3 per solve.
TEST(EncodeCli, EncodesToTheExactFlowMapAndRoundTrips) {
  const auto json = RunJson("--problem " + kProblems +
                            "gaussian_2d.json --n 50 --round-trip --rtol 1e-6 --atol 1e-6");
  EXPECT_EQ(json["direction"], "encode");
  EXPECT_LE(json["flow_map_error"]["max_abs"].get<double>(), 2e-3);
  EXPECT_LE(json["round_trip_error"]["max_abs"].get<double>(), 4e-3);
  EXPECT_GT(json["nfe"].get<int>(), 0);
}

TEST(EncodeCli, DecodesWithEveryMethod) {
  for (const char* method : {"rk45", "cash-karp", "fehlberg78", "euler", "heun", "rk4",
                             "dpm-solver-1", "dpm-solver-2", "dpm-solver-3", "dpm-solver++2m",
                             "edm-heun"}) {
    const auto json = RunJson("--problem " + kProblems +
                              "gaussian_2d.json --decode --prior exact --n 200 --steps 24 "
                              "--method " + std::string(method));
    EXPECT_EQ(json["direction"], "decode") << method;
    EXPECT_TRUE(json.contains("flow_map_error")) << method;
    EXPECT_TRUE(json.contains("frechet_to_p_eps")) << method;
    EXPECT_GE(json["frechet_floor"].get<double>(), 0.0);
  }
  const auto dpm = RunJson("--problem " + kProblems +
                           "gmm_2d.json --decode --n 10 --method dpm-solver-3 --steps 12");
  EXPECT_EQ(dpm["nfe"], 12);
  const auto denoised = RunJson("--problem " + kProblems +
                                "gaussian_2d.json --decode --n 10 --method edm-heun --steps 10 "
                                "--denoise");
  EXPECT_EQ(denoised["nfe"], 19);  // 2N − 1
  EXPECT_FALSE(denoised.contains("flow_map_error"));
}

TEST(EncodeCli, WritesCodesThatDecodeBack) {
  TempDir dir;
  Batch x(2, 4);
  x << 0.5, 1.0, -0.2, 2.0, 0.0, -1.0, 0.3, -0.4;
  WriteArray(dir / "x.npy", x);
  RunJson("--problem " + kProblems + "gaussian_2d.json --data " + (dir / "x.npy") +
          " --rtol 1e-7 --atol 1e-7 --out " + (dir / "z.npy"));
  RunJson("--problem " + kProblems + "gaussian_2d.json --decode --data " + (dir / "z.npy") +
          " --rtol 1e-7 --atol 1e-7 --out " + (dir / "back.csv"));
  const Batch back = ReadArray(dir / "back.csv");
  EXPECT_LT((back - x).cwiseAbs().maxCoeff(), 1e-4);
}

TEST(EncodeCli, RejectsBadCombinations) {
  const std::string problem = "--problem " + kProblems + "gaussian_2d.json --n 3";
  const auto fast_encode = RunCli("encode " + problem + " --method dpm-solver-2");
  EXPECT_EQ(fast_encode.exit_code, 2);
  EXPECT_THAT(fast_encode.err, HasSubstr("--method"));
  const auto gbm = RunCli("encode --problem " + kProblems +
                          "lognormal_2d.json --sde gbm --n 3 --decode --method dpm-solver-1");
  EXPECT_EQ(gbm.exit_code, 2);
  EXPECT_THAT(gbm.err, HasSubstr("--prior"));
  const auto gbm_fast = RunCli("encode --problem " + kProblems +
                               "lognormal_2d.json --sde gbm --n 3 --decode --prior exact "
                               "--method dpm-solver-1");
  EXPECT_EQ(gbm_fast.exit_code, 2);
  EXPECT_THAT(gbm_fast.err, HasSubstr("--method"));
  const auto denoise = RunCli("encode " + problem + " --denoise");
  EXPECT_EQ(denoise.exit_code, 2);
  EXPECT_THAT(denoise.err, HasSubstr("--denoise"));
  EXPECT_EQ(RunCli("encode " + problem + " --decode --round-trip").exit_code, 2);
  const auto grid = RunCli("encode " + problem + " --decode --method dpm-solver-1 --grid cosine");
  EXPECT_EQ(grid.exit_code, 2);
  EXPECT_THAT(grid.err, HasSubstr("--grid"));
  EXPECT_EQ(RunCli("encode --help").exit_code, 0);
}

TEST(EncodeCli, GbmRoundTrip) {
  const auto json = RunJson("--problem " + kProblems + "lognormal_2d.json --sde gbm --n 20 "
                            "--round-trip --sde-param eps=0");
  EXPECT_LE(json["round_trip_error"]["max_abs"].get<double>(), 1e-3);
}

}  // namespace
}  // namespace scoresde
