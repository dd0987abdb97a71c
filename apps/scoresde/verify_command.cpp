// `scoresde verify`: verification studies from the command line.
//
//   scoresde verify convergence [--only NAME]... [--solver NAME]... [--quick] [--json] ...
//     Runs the convergence-order harness (verification/convergence.hpp) on its standard problems
//     with every solver theory gives orders for, and prints each fitted strong and weak order with
//     its confidence interval and the theoretical order. Exit status 3 when an interval misses
//     its theoretical order (the results are printed first), 2 for invalid arguments.
//   scoresde verify sampler-table ...   (verify_sampler_table.cpp)
//     The analogue of the paper's Table 1 with exact scores (docs/samplers.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/convergence.hpp"
#include "verify_sampler_table.hpp"

namespace scoresde::cli {
namespace {

// Exit status when a study ran but an interval misses its theoretical order.
constexpr int kExitOrderMissed = 3;

struct ConvergenceFlags {
  std::vector<std::string> only;     // problem names; empty: all
  std::vector<std::string> solvers;  // solver names; empty: each problem's list
  bool quick = false;
  int64_t strong_paths = 0;          // 0: the problem's recommended count
  int64_t weak_paths = 0;
  uint64_t seed = 1;
  int threads = 1;
  double confidence = 0.99;
  std::string csv;
  bool json = false;
};

// --quick divides the recommended path counts by this factor. The Monte-Carlo part of each
// interval's half-width grows by its square root (2×): the recommended counts size it to about
// 0.05 (strong) and 0.1 (weak) (convergence_suite.cpp), so quick intervals stay near 0.1 and 0.2,
// still narrower than the spacing of the orders (0.5 strong, 1 weak).
constexpr int64_t kQuickDivisor = 4;

// The default set is the one the convergence suite checks. The reverse-time mixture problems run
// only when named (--only): their per-path errors are heavy-tailed (a few paths switch modes
// between the coarse and the reference solve, errors of O(1) with probability O(h)), so at 1000
// paths the delta-method standard error understates the spread and the fitted strong orders
// wander (measured: reverse diffusion on ve-mixture-reverse 0.55 [0.17, 0.92] at seed 1, while the
// Gaussian reverse problems sit at 1.00 ± 0.04). They are shown, not certified.
bool InDefaultSet(const std::string& name) {
  return name.find("mixture-reverse") == std::string::npos;
}

std::string Fixed(double x, int digits = 2) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, x);
  return buffer;
}

std::string Interval(const OrderEstimate& e) {
  return Fixed(e.order) + " [" + Fixed(e.ci_low) + ", " + Fixed(e.ci_high) + "]";
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

void RunConvergence(const ConvergenceFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  Require(f.threads >= 1, "scoresde verify convergence", "--threads", f.threads, ">= 1");
  Require(f.strong_paths >= 0, "scoresde verify convergence", "--strong-paths", f.strong_paths,
          ">= 0 (0: recommended)");
  Require(f.weak_paths >= 0, "scoresde verify convergence", "--weak-paths", f.weak_paths,
          ">= 0 (0: recommended)");
  Require(f.confidence > 0.0 && f.confidence < 1.0, "scoresde verify convergence",
          "--confidence", f.confidence, "in (0, 1)");

  std::vector<ConvergenceProblem> problems;
  if (f.only.empty()) {
    for (ConvergenceProblem& p : StandardConvergenceProblems()) {
      if (InDefaultSet(p.name)) problems.push_back(std::move(p));
    }
  } else {
    for (const std::string& name : f.only) problems.push_back(StandardConvergenceProblem(name));
  }
  for (const std::string& solver : f.solvers) MakePredictor(solver);  // rejects unknown names

  std::vector<ConvergenceResult> all;
  for (const ConvergenceProblem& problem : problems) {
    std::vector<std::unique_ptr<Predictor>> owned;
    std::vector<const Predictor*> predictors;
    for (const std::string& solver : problem.solvers) {
      if (!f.solvers.empty() &&
          std::find(f.solvers.begin(), f.solvers.end(), solver) == f.solvers.end()) {
        continue;
      }
      owned.push_back(MakePredictor(solver));
      predictors.push_back(owned.back().get());
    }
    if (predictors.empty()) continue;
    ConvergenceOptions options = problem.recommended;
    if (f.quick) {
      options.strong.num_samples = std::max<int64_t>(50, options.strong.num_samples / kQuickDivisor);
      options.weak.num_samples = std::max<int64_t>(50, options.weak.num_samples / kQuickDivisor);
    }
    if (f.strong_paths > 0) options.strong.num_samples = f.strong_paths;
    if (f.weak_paths > 0) options.weak.num_samples = f.weak_paths;
    options.seed = f.seed;
    options.num_threads = f.threads;
    options.confidence = f.confidence;
    std::cerr << "scoresde verify convergence: " << problem.name << " (" << predictors.size()
              << " solvers, " << options.strong.num_samples << " strong / "
              << options.weak.num_samples << " weak paths)\n";
    const std::vector<ConvergenceResult> results =
        RunConvergenceStudies(problem, predictors, options);
    all.insert(all.end(), results.begin(), results.end());
  }
  Require(!all.empty(), "scoresde verify convergence", "--solver",
          f.solvers.empty() ? std::string("(none)") : f.solvers.front(),
          "a solver studied on one of the selected problems");
  if (!f.csv.empty()) WriteConvergenceCsv(f.csv, all);

  bool all_contained = true;
  int64_t nfe = 0;
  nlohmann::json results = nlohmann::json::array();
  for (const ConvergenceResult& r : all) {
    const bool strong_ok = r.strong.Contains(r.expected_strong);
    const bool weak_ok = r.weak.Contains(r.expected_weak);
    all_contained = all_contained && strong_ok && weak_ok;
    nfe += r.nfe;
    results.push_back(ConvergenceJson(r));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (f.json) {
    nlohmann::json out = {{"results", results},
                          {"all_contained", all_contained},
                          {"confidence", f.confidence},
                          {"seed", f.seed},
                          {"threads", f.threads},
                          {"quick", f.quick},
                          {"nfe", nfe},
                          {"seconds", seconds}};
    if (!f.csv.empty()) out["csv"] = f.csv;
    PrintJson(out);
  } else {
    std::cout << Pad("problem", 22) << Pad("solver", 19) << Pad("noise", 11)
              << Pad("strong order [CI]", 25) << Pad("theory", 8) << Pad("weak order [CI]", 25)
              << Pad("theory", 8) << "contained\n";
    for (const ConvergenceResult& r : all) {
      const bool ok = r.strong.Contains(r.expected_strong) && r.weak.Contains(r.expected_weak);
      std::cout << Pad(r.problem, 22) << Pad(r.solver, 19) << Pad(r.noise_type, 11)
                << Pad(Interval(r.strong), 25) << Pad(Fixed(r.expected_strong, 1), 8)
                << Pad(Interval(r.weak), 25) << Pad(Fixed(r.expected_weak, 1), 8)
                << (ok ? "yes" : "NO") << "\n";
    }
    std::cout << Fixed(100.0 * f.confidence, 0) << "% intervals (Student's t; Monte-Carlo and "
              << "lack-of-fit errors), seed " << f.seed << ", " << f.threads << " thread(s), "
              << Fixed(seconds, 1) << " s" << (f.csv.empty() ? "" : "; errors in " + f.csv)
              << "\n";
  }
  if (!all_contained) {
    std::cerr << "scoresde verify convergence: an interval misses its theoretical order\n";
    throw CLI::RuntimeError(kExitOrderMissed);
  }
}

}  // namespace

void AddVerifyCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand(
      "verify", "Run verification studies (convergence orders, the sampler table)");
  command->require_subcommand(1);

  auto flags = std::make_shared<ConvergenceFlags>();
  CLI::App* convergence = command->add_subcommand(
      "convergence",
      "Strong and weak convergence orders of every solver on SDEs with known solutions "
      "(exit status 3 if an interval misses its theoretical order)");
  std::string names;
  for (const ConvergenceProblem& p : StandardConvergenceProblems()) {
    names += (names.empty() ? "" : ", ") + p.name;
  }
  convergence->add_option("--only", flags->only, "Problems to run (repeatable; default all but the *-mixture-reverse ones, whose "
                          "heavy-tailed per-path errors the intervals do not cover reliably): " +
                              names);
  convergence->add_option("--solver", flags->solvers,
                          "Restrict to these solvers (repeatable; default each problem's list)");
  convergence->add_flag("--quick", flags->quick,
                        "A quarter of the recommended path counts (intervals about 2x wider)");
  convergence->add_option("--strong-paths", flags->strong_paths,
                          "Paths for strong errors (default: each problem's recommended count)");
  convergence->add_option("--weak-paths", flags->weak_paths,
                          "Paths for weak differences (default: each problem's recommended count)");
  convergence->add_option("--seed", flags->seed, "Seed of the Brownian paths")->capture_default_str();
  convergence->add_option("--threads", flags->threads, "Worker threads (results are identical "
                          "for any count)")->capture_default_str();
  convergence->add_option("--confidence", flags->confidence, "Confidence level of the intervals")
      ->capture_default_str();
  convergence->add_option("--csv", flags->csv,
                          "Write the errors per level: problem,solver,kind,level,h,value,stderr");
  convergence->add_flag("--json", flags->json, "Print one JSON object (design.md section 4)");
  convergence->callback([flags] { RunConvergence(*flags); });

  AddSamplerTableCommand(command);
}

}  // namespace scoresde::cli
