// End-to-end tests of `scoresde verify` (verify_command.cpp, verify_sampler_table.cpp): the JSON
// form of design.md section 4, the exit status, the CSV file, argument errors, and a tiny sampler
// table. Sizes are small (seconds); the orders' correctness at full size is the convergence suite's.
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

namespace scoresde {
namespace {

using ::scoresde::testing::RunCli;
using ::scoresde::testing::TempDir;
using ::testing::HasSubstr;

// GBM (Euler–Maruyama 0.5/1, Milstein 1/1, SRIW1 1.5/1) with a quarter of the recommended paths:
// the intervals are about twice as wide as the suite's, which keeps them well inside the 0.5 and 1
// spacing of the orders (verify_command.cpp, kQuickDivisor).
TEST(VerifyConvergenceCli, JsonHasTheDesignFormAndContainsTheOrders) {
  const TempDir dir;
  const auto r = RunCli("verify convergence --only gbm-scalar --quick --threads 2 --json --csv " +
                        dir / "c.csv");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("nfe"));
  ASSERT_TRUE(j.contains("seconds"));
  EXPECT_TRUE(j.at("all_contained").get<bool>());
  const auto& results = j.at("results");
  ASSERT_EQ(results.size(), 3u);
  std::set<std::string> solvers;
  for (const auto& x : results) {
    EXPECT_EQ(x.at("sde"), "gbm-scalar");
    solvers.insert(x.at("solver").get<std::string>());
    for (const char* kind : {"strong", "weak"}) {
      const double order = x.at(std::string(kind) + "_order");
      const auto& ci = x.at(std::string(kind) + "_ci");
      ASSERT_EQ(ci.size(), 2u);
      EXPECT_LE(ci[0].get<double>(), order);
      EXPECT_GE(ci[1].get<double>(), order);
      const double expected = x.at("expected_" + std::string(kind));
      EXPECT_TRUE(ci[0].get<double>() <= expected && expected <= ci[1].get<double>())
          << x.dump();
      EXPECT_TRUE(x.at(std::string(kind) + "_contains_expected").get<bool>());
    }
  }
  EXPECT_EQ(solvers, (std::set<std::string>{"euler-maruyama", "milstein", "sriw1"}));
  // Expected orders are the theory's: EM strong 0.5 on multiplicative noise, Milstein 1, SRIW1 1.5.
  for (const auto& x : results) {
    const std::string s = x.at("solver");
    const double expected = x.at("expected_strong");
    EXPECT_DOUBLE_EQ(expected, s == "euler-maruyama" ? 0.5 : (s == "milstein" ? 1.0 : 1.5)) << s;
  }
  std::ifstream csv(dir / "c.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "problem,solver,kind,level,h,value,stderr");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_GT(lines, 3 * 6);  // 3 solvers, ≥ 6 strong levels each, plus weak levels
}

// Same seed, different thread counts: identical numbers (the harness is thread-invariant).
TEST(VerifyConvergenceCli, ThreadInvariantAndSolverFilter) {
  const std::string args = "verify convergence --only non-commutative --solver milstein "
                           "--strong-paths 200 --weak-paths 2000 --json --threads ";
  const auto one = RunCli(args + "1");
  const auto two = RunCli(args + "2");
  ASSERT_NE(one.exit_code, 2) << one.err;
  const nlohmann::json a = nlohmann::json::parse(one.out), b = nlohmann::json::parse(two.out);
  ASSERT_EQ(a.at("results").size(), 1u);
  EXPECT_EQ(a.at("results")[0].at("solver"), "milstein");
  EXPECT_EQ(a.at("results")[0].at("strong_order"), b.at("results")[0].at("strong_order"));
  EXPECT_EQ(a.at("results")[0].at("weak_ci"), b.at("results")[0].at("weak_ci"));
  // Milstein without Lévy areas on non-commutative noise: expected (and declared) strong order 0.5.
  EXPECT_DOUBLE_EQ(a.at("results")[0].at("expected_strong").get<double>(), 0.5);
}

// An interval that cannot contain its order: at confidence 10⁻⁹ the interval has width ~10⁻⁹ and
// misses the theoretical order (the fitted order is a random variable, not the order itself), so
// the command reports the miss with exit status 3 after printing the results.
TEST(VerifyConvergenceCli, ExitStatusThreeWhenAnIntervalMisses) {
  const auto r = RunCli("verify convergence --only gbm-scalar --solver euler-maruyama "
                        "--strong-paths 200 --weak-paths 2000 --confidence 1e-9");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.out, HasSubstr("euler-maruyama"));
  EXPECT_THAT(r.out, HasSubstr("NO"));
  EXPECT_THAT(r.err, HasSubstr("misses its theoretical order"));
}

TEST(VerifyConvergenceCli, RejectsBadArguments) {
  auto r = RunCli("verify convergence --only no-such-problem");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no-such-problem"));
  r = RunCli("verify convergence --only gbm-scalar --solver no-such-solver");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no-such-solver"));
  r = RunCli("verify convergence --only gbm-scalar --threads 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--threads"));
  r = RunCli("verify convergence --confidence 1.5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--confidence"));
  r = RunCli("verify convergence --only ornstein-uhlenbeck --solver ancestral");
  EXPECT_EQ(r.exit_code, 2);  // no selected problem studies that solver
  EXPECT_THAT(r.err, HasSubstr("--solver"));
  r = RunCli("verify");
  EXPECT_NE(r.exit_code, 0);  // a study must be named
}

// A tiny sampler table: every requested cell is present, finite, and the N = 8 reverse-diffusion
// sampler is farther from p_eps than the 2N = 128 one on the Gaussian (its O(1/N) bias, ~10⁻¹ in
// Fréchet d² at N = 8, dwarfs the Monte-Carlo floor ~ tr(C)/n ≈ 1.5·10⁻³ at n = 1000).
TEST(VerifySamplerTableCli, TinyTable) {
  const auto r = RunCli("verify sampler-table --data gaussian --sde ve --predictor reverse-diffusion "
                        "--steps 64 --small-steps 8 --n 1000 --paths 0 --json --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("nfe"));
  ASSERT_TRUE(j.contains("seconds"));
  double small = 0.0, p128 = 0.0;
  int cells = 0;
  for (const auto& row : j.at("rows")) {
    ASSERT_EQ(row.at("status"), "ok") << row.dump();
    ASSERT_TRUE(row.at("distance").is_number()) << row.dump();
    EXPECT_GT(row.at("floor").get<double>(), 0.0);
    EXPECT_EQ(row.at("metric"), "frechet_d2");
    if (row.at("table") == "small" && row.at("corrector") == "none") small = row.at("distance");
    if (row.at("table") == "main" && row.at("steps") == 128 && row.at("corrector") == "none" &&
        row.at("predictor") == "reverse-diffusion") {
      p128 = row.at("distance");
      EXPECT_EQ(row.at("nfe"), 128);
    }
    ++cells;
  }
  EXPECT_EQ(cells, 3 + 1 + 2 + 1);  // P64, P128, PC64; C128; small P8, PC8; C8
  EXPECT_GT(small, p128);
  const auto text = RunCli("verify sampler-table --data mixture --sde vp --predictor ancestral "
                           "--steps 32 --small-steps 10 --n 500 --paths 100");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("sliced_w2"));
  EXPECT_THAT(text.out, HasSubstr("| ancestral | "));
  EXPECT_THAT(text.out, HasSubstr("n/a"));  // the DDPM chain at N = 10 has β h ≥ 1
  EXPECT_THAT(text.out, HasSubstr("vp-mixture-reverse"));
}

}  // namespace
}  // namespace scoresde
