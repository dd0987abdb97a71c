// End-to-end tests of `scoresde sample` with a condition: --observe, --condition-method,
// --guidance-scale, class guidance, per-sample observations and the JSON report.
#include <cmath>
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

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

nlohmann::json RunJson(const std::string& arguments) {
  return testing::RunCliJson("sample " + arguments);
}

// exact (the default with --score analytic): the samples' fit to p_ε(x | y) is within Monte-Carlo
// error (mean error in posterior sd: 5/√n plus the 200-step chain bias, ~1e-2 by the suite's
// chain-moment recursion), and the observed coordinate stays at y: its mean within 5 SE + 1e-3 of
// α(ε) y, its spread that of the chain's last steps, O(sqrt(β(ε) h)) = 0.022 (measured 0.034; the
// exact σ_ε is 0.0105), below 3 sqrt(β(ε) h) + σ_ε.
TEST(ConditioningCli, ExactImputationReportsItsFit) {
  TempDir dir;
  WriteText(dir / "obs.csv", "0.8,nan\n");
  const nlohmann::json r =
      RunJson("--problem " + kProblems + "gmm_2d.json --score analytic --observe " +
              (dir / "obs.csv") + " --n 2000 --steps 200 --seed 3 --out " + (dir / "x.npy"));
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["condition_method"], "exact");
  ASSERT_TRUE(r.contains("conditional_fit"));
  const double n = 2000;
  EXPECT_LT(r["conditional_fit"]["mean_error_sd"].get<double>(), 5.0 / std::sqrt(n) + 0.01);
  EXPECT_GT(r["nfe"].get<double>(), 0.0);
  const Batch x = ReadArray(dir / "x.npy");
  ASSERT_EQ(x.rows(), 2);
  ASSERT_EQ(x.cols(), 2000);
  const double mean = x.row(0).mean();
  const double sd = std::sqrt((x.row(0).array() - mean).square().sum() / (n - 1));
  EXPECT_NEAR(mean, 0.8, 5.0 * sd / std::sqrt(n) + 1e-3);
  const double h = (1.0 - 1e-3) / 200, beta_eps = 0.1 + 1e-3 * 19.9;
  EXPECT_LT(sd, 3.0 * std::sqrt(beta_eps * h) + 0.0105);
}

// Every method runs through the command line and reports itself; the approximate ones report a
// finite fit too.
TEST(ConditioningCli, EveryMethodRuns) {
  TempDir dir;
  WriteText(dir / "obs.csv", "0.8,nan\n");
  const std::string common = "--problem " + kProblems + "gmm_2d.json --score analytic --observe " +
                             (dir / "obs.csv") + " --n 256 --steps 100 --out " + (dir / "x.csv");
  for (const std::string method : {"exact", "replacement", "pigdm"}) {
    const nlohmann::json r = RunJson(common + " --condition-method " + method);
    ASSERT_FALSE(r.is_null()) << method;
    EXPECT_EQ(r["condition_method"], method);
    EXPECT_TRUE(std::isfinite(r["conditional_fit"]["frechet"].get<double>())) << method;
  }
  const nlohmann::json smc = RunJson(common + " --condition-method smc --observation-noise 0.1 "
                                     "--particles 32 --predictor euler-maruyama");
  ASSERT_FALSE(smc.is_null());
  EXPECT_EQ(smc["particles"], 32);
  EXPECT_EQ(smc["particle_groups"], 8);
  // PiGDM costs a score and a JVP per call.
  const nlohmann::json pigdm = RunJson(common + " --condition-method pigdm --corrector none");
  const nlohmann::json replacement =
      RunJson(common + " --condition-method replacement --corrector none");
  EXPECT_EQ(pigdm["nfe"].get<int>(), 2 * replacement["nfe"].get<int>());
}

// Class guidance with the analytic classifier of the mixture's components: γ = 1 samples the
// component, whose mean the fit compares with.
TEST(ConditioningCli, AnalyticClassGuidance) {
  TempDir dir;
  const nlohmann::json r =
      RunJson("--problem " + kProblems + "gmm_2d.json --score analytic --classifier analytic "
              "--class 2 --n 1000 --steps 200 --out " + (dir / "x.npy"));
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["condition_method"], "guidance");
  EXPECT_EQ(r["class"], 2);
  EXPECT_LT(r["conditional_fit"]["mean_error_sd"].get<double>(), 5.0 / std::sqrt(1000.0) + 0.01);
}

// One observation row per sample: each sample follows its own row.
TEST(ConditioningCli, OneObservationPerSample) {
  TempDir dir;
  WriteText(dir / "obs.csv", "nan,-1.0\n2.0,nan\nnan,0.5\n");
  const nlohmann::json r =
      RunJson("--problem " + kProblems + "gaussian_2d.json --score analytic --observe " +
              (dir / "obs.csv") + " --n 3 --steps 100 --out " + (dir / "x.csv"));
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["observations"], 3);
  EXPECT_EQ(r["observation_groups"], 3);
  EXPECT_FALSE(r.contains("conditional_fit"));
  const Batch x = ReadArray(dir / "x.csv");
  EXPECT_NEAR(x(1, 0), -1.0, 0.1);
  EXPECT_NEAR(x(0, 1), 2.0, 0.1);
  EXPECT_NEAR(x(1, 2), 0.5, 0.1);
}

// Colorization of a 2-pixel, 3-channel "image": the gray level (channel mean) of each pixel is
// observed, and the samples keep it.
TEST(ConditioningCli, Colorization) {
  TempDir dir;
  WriteText(dir / "rgb.json",
            R"({"type": "gaussian", "mean": [0.2, 0.4, 0.5, 0.1, 0.6, 0.3],
                "std": [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]})");
  WriteText(dir / "gray.csv", "0.5,0.2\n");
  const nlohmann::json r =
      RunJson("--problem " + (dir / "rgb.json") + " --score analytic --observe " +
              (dir / "gray.csv") + " --condition-method colorization --channels 3 --n 200 "
              "--steps 100 --out " + (dir / "x.csv"));
  ASSERT_FALSE(r.is_null());
  const Batch x = ReadArray(dir / "x.csv");
  for (int j = 0; j < x.cols(); ++j) {
    EXPECT_NEAR((x(0, j) + x(2, j) + x(4, j)) / 3.0, 0.5, 0.05);
    EXPECT_NEAR((x(1, j) + x(3, j) + x(5, j)) / 3.0, 0.2, 0.05);
  }
}

TEST(ConditioningCli, RejectsBadConditions) {
  TempDir dir;
  WriteText(dir / "obs.csv", "0.8,nan\n");
  WriteText(dir / "three.csv", "0.8,nan,1\n");
  WriteText(dir / "nothing.csv", "nan,nan\n");
  const std::string base = "sample --problem " + kProblems + "gmm_2d.json --score analytic --n 10 "
                           "--steps 10 --out " + (dir / "x.csv") + " ";
  const auto bad_method = RunCli(base + "--observe " + (dir / "obs.csv") +
                                 " --condition-method magic");
  EXPECT_EQ(bad_method.exit_code, 2);
  EXPECT_THAT(bad_method.err, HasSubstr("--condition-method"));
  const auto bad_width = RunCli(base + "--observe " + (dir / "three.csv"));
  EXPECT_EQ(bad_width.exit_code, 2);
  EXPECT_THAT(bad_width.err, HasSubstr("--observe"));
  const auto empty = RunCli(base + "--observe " + (dir / "nothing.csv"));
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("observes nothing"));
  const auto smc_noiseless = RunCli(base + "--observe " + (dir / "obs.csv") +
                                    " --condition-method smc --sde-param eps=0");
  EXPECT_NE(smc_noiseless.exit_code, 0);
  const auto no_class = RunCli(base + "--classifier analytic");
  EXPECT_EQ(no_class.exit_code, 2);
  EXPECT_THAT(no_class.err, HasSubstr("--class"));
  const auto missing = RunCli(base + "--observe " + (dir / "absent.csv"));
  EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace scoresde
