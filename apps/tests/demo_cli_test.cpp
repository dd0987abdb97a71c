// End-to-end tests of `scoresde demo`: the report folder, its files and figures, reproducibility
// across thread counts, the report without matplotlib, and bad options.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "scoresde/scoring/array_io.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {
namespace {

using ::scoresde::testing::RunCli;
using ::scoresde::testing::TempDir;
using ::testing::HasSubstr;

// Small sizes: the point is the plumbing, not the model's quality (the full demo is run by hand
// and its report is in README.md and docs/figures).
const char* const kSmall =
    " --train-steps 150 --steps 20 --n 200 --heldout 200 --likelihood-points 40";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int CountLines(const std::string& path) {
  const std::string text = Slurp(path);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

bool HaveMatplotlib() {
  return std::system("/usr/bin/python3 -c 'import matplotlib, numpy' >/dev/null 2>&1") == 0;
}

TEST(DemoCli, HelpListsTheOptions) {
  const auto r = RunCli("demo --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--dataset", "--problem", "--data", "--sde", "--train-steps", "--steps",
                           "--threads", "--seed", "--out", "--json", "--no-verify", "--no-plots"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
}

// The whole demo at small sizes, verification included: every file of the report, the JSON
// contract and the checks (which are closed-form and must pass at any size).
TEST(DemoCli, WritesTheReportWithEveryFileAndFigure) {
  TempDir dir;
  const std::string out = dir / "report";
  const auto r = RunCli(std::string("demo --dataset two-moons --threads 2 --json --out ") + out +
                        kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("nfe").get<int64_t>(), 0);
  EXPECT_GT(j.at("seconds").get<double>(), 0.0);
  EXPECT_EQ(j.at("out"), out);
  ASSERT_EQ(j.at("sampling").at("samplers").size(), 5u);
  for (const auto& s : j.at("sampling").at("samplers")) {
    const double w2 = s.at("sliced_w2").get<double>();
    EXPECT_TRUE(std::isfinite(w2) && w2 > 0.0) << s.dump();
    EXPECT_EQ(CountLines(out + "/" + s.at("file").get<std::string>()), 201) << s.dump();
  }
  // Equal cost: predictor-only 2N, PC N levels with one corrector step, corrector-only 2N.
  const auto& samplers = j.at("sampling").at("samplers");
  EXPECT_EQ(samplers[0].at("nfe"), 20);
  EXPECT_EQ(samplers[1].at("nfe"), 40);
  EXPECT_EQ(samplers[2].at("nfe"), 40);
  EXPECT_EQ(samplers[3].at("nfe"), 40);
  EXPECT_TRUE(std::isfinite(j.at("likelihood").at("exact").at("bpd").get<double>()));
  for (const char* file :
       {"report.md", "report.json", "model.safetensors", "training_loss.csv", "data_heldout.csv",
        "likelihood_heldout.csv", "score_field.csv", "convergence.csv", "convergence.json",
        "likelihood_gaussian.csv", "nfe_error.csv", "samples.json", "plot_report.py"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + file)) << file;
  }
  EXPECT_EQ(CountLines(out + "/likelihood_heldout.csv"), 41);
  // The convergence results in design.md's `verify convergence` form.
  const auto conv = nlohmann::json::parse(Slurp(out + "/convergence.json"));
  ASSERT_FALSE(conv.at("results").empty());
  for (const char* key : {"sde", "solver", "strong_order", "strong_ci", "weak_order", "weak_ci",
                          "expected_strong", "expected_weak"}) {
    EXPECT_TRUE(conv.at("results")[0].contains(key)) << key;
  }
  const std::string md = Slurp(out + "/report.md");
  EXPECT_THAT(md, HasSubstr("## 2. Samples"));
  EXPECT_THAT(md, HasSubstr("## 5. Verification against closed forms"));
  EXPECT_THAT(md, ::testing::Not(HasSubstr("FAIL")));
  if (HaveMatplotlib()) {
    EXPECT_TRUE(j.at("figures_drawn").get<bool>()) << j.value("figures_message", "");
    for (const char* figure :
         {"training_loss", "samples", "score_field", "convergence", "nfe_error"}) {
      const std::string png = out + "/figures/" + figure + ".png";
      ASSERT_TRUE(std::filesystem::exists(png)) << png;
      EXPECT_EQ(Slurp(png).substr(1, 3), "PNG") << png;
      EXPECT_THAT(md, HasSubstr(std::string("figures/") + figure + ".png"));
    }
  } else {
    GTEST_LOG_(INFO) << "matplotlib missing: figures not checked";
  }
}

// Same seed, 1 and 2 threads: the same data files, bit for bit (timings aside).
TEST(DemoCli, ResultsDoNotDependOnTheThreadCount) {
  TempDir dir;
  const std::string flags = std::string(" --dataset eight-gaussians --no-verify --no-plots") + kSmall;
  ASSERT_EQ(RunCli("demo --threads 1 --out " + dir / "one" + flags).exit_code, 0);
  ASSERT_EQ(RunCli("demo --threads 2 --out " + dir / "two" + flags).exit_code, 0);
  for (const char* file : {"training_loss.csv", "samples_em.csv", "samples_rd.csv",
                           "samples_pc.csv", "samples_c.csv", "samples_ode.csv",
                           "likelihood_heldout.csv", "score_field.csv", "model.safetensors"}) {
    EXPECT_EQ(Slurp(dir / ("one/" + std::string(file))), Slurp(dir / ("two/" + std::string(file))))
        << file;
  }
}

// Without a Python that has matplotlib the demo still writes the data and the report, and says how
// to get the figures.
TEST(DemoCli, WithoutMatplotlibWritesTheReportAndSaysHowToDrawFigures) {
  TempDir dir;
  const std::string out = dir / "report";
  const auto r = RunCli("demo --no-verify --python /nonexistent/python3 --json --out " + out +
                        kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j.at("figures_drawn").get<bool>());
  EXPECT_THAT(j.at("figures_message").get<std::string>(), HasSubstr("setup.sh demo"));
  EXPECT_THAT(r.err, HasSubstr("setup.sh demo"));
  const std::string md = Slurp(out + "/report.md");
  EXPECT_THAT(md, HasSubstr("The figures were not drawn"));
  EXPECT_THAT(md, HasSubstr("plot_report.py"));
  EXPECT_TRUE(std::filesystem::exists(out + "/samples_pc.csv"));
  EXPECT_TRUE(std::filesystem::exists(out + "/plot_report.py"));
}

// Data from a problem file: the report adds the data law's own bits/dim (the floor a perfect model
// reaches), and from an .npy file.
TEST(DemoCli, TakesProblemFilesAndArrays) {
  TempDir dir;
  const auto r = RunCli(std::string("demo --problem ") + SCORESDE_SOURCE_DIR +
                        "/verification/problems/gmm_2d.json --no-verify --no-plots --json --out " +
                        dir / "gmm" + kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const double floor = j.at("likelihood").at("true_law").at("bpd").get<double>();
  EXPECT_TRUE(std::isfinite(floor));

  Batch x(3, 300);
  NoiseStream(5, Stream::kData).FillNormal(0, 0, 0, x);
  WriteNpy(dir / "rows.npy", x);
  const auto a = RunCli("demo --data " + dir / "rows.npy" +
                        " --no-verify --no-plots --json --out " + dir / "array" + kSmall);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto ja = nlohmann::json::parse(a.out);
  EXPECT_EQ(ja.at("training").at("dim"), 3);
  EXPECT_EQ(ja.at("sampling").at("num_heldout"), 60);  // a fifth of 300
  EXPECT_TRUE(ja.at("score_field").contains("skipped"));
}

TEST(DemoCli, RejectsBadOptions) {
  TempDir dir;
  const std::string out = " --out " + dir / "bad";
  auto r = RunCli("demo --steps 0" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--steps"));
  r = RunCli("demo --train-steps -3" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--train-steps"));
  r = RunCli(std::string("demo --problem ") + SCORESDE_SOURCE_DIR +
             "/verification/problems/lognormal_2d.json" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--problem"));
  r = RunCli(std::string("demo --problem ") + SCORESDE_SOURCE_DIR +
             "/verification/problems/gmm_2d.json --data " + SCORESDE_SOURCE_DIR +
             "/verification/problems/gmm_2d.json" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("at most one of --problem and --data"));
  r = RunCli("demo --sde gbm" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--sde"));
  r = RunCli("demo --dataset moons" + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--dataset"));
}

}  // namespace
}  // namespace scoresde
