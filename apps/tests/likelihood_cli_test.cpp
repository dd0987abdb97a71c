// End-to-end tests of `scoresde likelihood`.
#include <fstream>
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
  return testing::RunCliJson("likelihood " + arguments);
}

// The acceptance check: per-row log-densities within the stated error of the exact ones
// (1e-3 nats at rtol = atol = 1e-5 with the exact prior; see verification/suites/
// likelihood_suite.cpp).
TEST(LikelihoodCli, MixtureRowsMatchTheExactLogDensity) {
  const auto json = RunJson("--problem " + kProblems + "gmm_2d.json --n 50 --prior exact");
  ASSERT_EQ(json["logp"].size(), 50u);
  ASSERT_EQ(json["exact_logp"].size(), 50u);
  double total = 0.0;
  for (size_t j = 0; j < 50; ++j) {
    total += std::abs(json["logp"][j].get<double>() - json["exact_logp"][j].get<double>());
  }
  EXPECT_LE(total / 50, 1e-3);
  EXPECT_NEAR(json["error"]["mean_abs"].get<double>(), total / 50, 1e-12);
  EXPECT_GT(json["nfe"].get<int>(), 0);
  EXPECT_GE(json["seconds"].get<double>(), 0.0);
  EXPECT_EQ(json["status"], "success");
  EXPECT_TRUE(json.contains("bpd"));
}

// With the standard prior the error is the closed-form mismatch m(x_T) plus the solve's error.
TEST(LikelihoodCli, StandardPriorErrorIsTheMismatch) {
  const auto json = RunJson("--problem " + kProblems + "gaussian_2d.json --n 20");
  EXPECT_EQ(json["prior"], "standard");
  ASSERT_EQ(json["prior_mismatch"].size(), 20u);
  EXPECT_LE(json["error_minus_mismatch"]["mean_abs"].get<double>(), 1e-3);
}

TEST(LikelihoodCli, HutchinsonReportsStandardErrors) {
  const auto json = RunJson("--problem " + kProblems +
                            "gmm_2d.json --n 4 --divergence hutchinson --probes 8 --probe gaussian");
  EXPECT_EQ(json["divergence"], "hutchinson-gaussian");
  ASSERT_EQ(json["standard_error"].size(), 4u);
  for (const auto& se : json["standard_error"]) EXPECT_GT(se.get<double>(), 0.0);
}

TEST(LikelihoodCli, ReadsDataAndWritesLatents) {
  TempDir dir;
  Batch x(2, 3);
  x << 0.1, -1.0, 2.0, 0.4, 0.0, -0.5;
  WriteArray(dir / "rows.csv", x);
  const auto json = RunJson("--problem " + kProblems + "gmm_2d.json --data " + (dir / "rows.csv") +
                            " --out " + (dir / "latent.npy") + " --method fehlberg78 --threads 2");
  EXPECT_EQ(json["n"], 3);
  const Batch latent = ReadArray(dir / "latent.npy");
  EXPECT_EQ(latent.rows(), 2);
  EXPECT_EQ(latent.cols(), 3);
  EXPECT_EQ(json["out"], dir / "latent.npy");
}

TEST(LikelihoodCli, GbmNeedsTheExactPrior) {
  const std::string problem = "--problem " + kProblems + "lognormal_2d.json --sde gbm --n 5";
  const auto refused = RunCli("likelihood " + problem);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("--prior"));
  const auto json = RunJson(problem + " --prior exact");
  EXPECT_LE(json["error"]["mean_abs"].get<double>(), 1e-3);
}

TEST(LikelihoodCli, DequantizesEightBitRows) {
  TempDir dir;
  Batch k(2, 4);
  k << 0, 255, 17, 128, 3, 64, 200, 90;
  WriteArray(dir / "bytes.csv", k);
  const auto json = RunJson("--problem " + kProblems + "gmm_2d.json --data " + (dir / "bytes.csv") +
                            " --dequantize -3 3");
  // bits/dim + 8 − log2(6) per row.
  const double offset = 8.0 - std::log2(6.0);
  EXPECT_NEAR(json["dequantized_bpd"].get<double>(), json["bpd"].get<double>() + offset, 1e-12);
  Batch bad = k;
  bad(0, 0) = 0.5;
  WriteArray(dir / "bad.csv", bad);
  const auto refused = RunCli("likelihood --problem " + kProblems + "gmm_2d.json --data " +
                              (dir / "bad.csv") + " --dequantize 0 1");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("8-bit"));
}

TEST(LikelihoodCli, RejectsBadFlags) {
  const std::string problem = "--problem " + kProblems + "gmm_2d.json --n 3";
  EXPECT_NE(RunCli("likelihood " + problem + " --divergence trace").exit_code, 0);
  const auto method = RunCli("likelihood " + problem + " --method rk23");
  EXPECT_EQ(method.exit_code, 2);
  EXPECT_THAT(method.err, HasSubstr("--method"));
  const auto no_input = RunCli("likelihood");
  EXPECT_EQ(no_input.exit_code, 2);
  EXPECT_THAT(no_input.err, HasSubstr("--problem"));
  EXPECT_NE(RunCli("likelihood " + problem + " --rtol -1").exit_code, 0);
  EXPECT_EQ(RunCli("likelihood --help").exit_code, 0);
}

}  // namespace
}  // namespace scoresde
