// `scoresde verify sampler-table` (verify_sampler_table.hpp).
//
// Distances. The samplers run from the SDE's prior at T down to ε = 10⁻³ without the final
// denoising step, so their target is p_ε (p_0 convolved with the kernel at ε: for the data here it
// differs from p_0 by O(σ_ε²) ≤ 10⁻⁴ in covariance, below the Monte-Carlo floor of 10⁴ samples).
//   Gaussian data: Fréchet d² between the samples' mean/covariance and the exact mean/covariance of
//   p_ε — exact for Gaussian laws, i.e. the paper's FID with the exact reference statistics.
//   Mixture data: sliced Wasserstein-2 between the samples and n exact draws of p_ε.
// Each (data, SDE) block also reports the Monte-Carlo floor: the same statistic for n exact draws
// of p_ε in place of the sampler's output (mean and sd over kFloorSets independent sets). A
// sampler whose distance is within about two sd of the floor cannot be ranked by the distribution
// distance at that n.
// Per-path errors: the convergence harness's strong errors (E‖X_N − X‖²)^{1/2} against the
// reverse-SDE solution on the same Brownian path (SRA1 on an 8× finer grid), from exact draws of
// p_T (ve/vp-gaussian-reverse, ve/vp-mixture-reverse in verification/convergence.hpp; the same
// data as here).
#include "verify_sampler_table.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"
#include "scoresde/verification/convergence.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde::cli {
namespace {

constexpr const char* kWhere = "scoresde verify sampler-table";
constexpr int kProjections = 200;  // sliced Wasserstein directions
constexpr double kEps = 1e-3;
constexpr int kFloorSets = 8;  // exact sample sets for the Monte-Carlo floor

struct TableFlags {
  std::vector<std::string> data = {"gaussian", "mixture"};
  std::vector<std::string> sdes = {"ve", "vp"};
  std::vector<std::string> predictors = {"reverse-diffusion", "ancestral", "euler-maruyama"};
  int steps = 1000;                                   // N of P1000 / PC1000 (2N for P2000, C2000)
  std::vector<int> small_steps = {10, 20, 50, 100, 200};
  int64_t n = 10000;
  double snr = 0.16;
  uint64_t seed = 0;
  int threads = 1;
  int64_t paths = 1000;  // per-path errors; 0 skips them
  int max_level = 9;     // per-path grids up to 2^max_level steps
  bool json = false;
};

// The data of the convergence harness's reverse problems, so that the per-path rows and the
// distance rows describe the same samplers on the same laws.
GaussianMixture TableData(const std::string& name) {
  Require(name == "gaussian" || name == "mixture", kWhere, "--data", name, "gaussian or mixture");
  return ReverseProblemData(name);
}

std::string Sci(double x) {
  if (!std::isfinite(x)) return "diverged";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2e", x);
  return buffer;
}

// One (data, SDE) block: the exact target and its distance function.
class Block {
 public:
  Block(const std::string& data, const std::string& sde_name, const TableFlags& f)
      : data_(data), flags_(f) {
    SdeFlags sde_flags;
    sde_flags.name = sde_name;
    sde_ = std::dynamic_pointer_cast<const ScalarAffineSde>(MakeSde(sde_flags, 2, kEps).sde);
    Require(sde_ != nullptr, kWhere, "--sde", sde_name, "ve or vp");
    score_ = std::make_unique<GaussianMixtureScore>(TableData(data), *sde_);
    target_ = std::make_unique<GaussianMixture>(score_->Marginal(kEps));
    reference_ = Batch(2, f.n);
    target_->Sample(NoiseStream(f.seed + 101, Stream::kData), 0, reference_);
    // The floor is itself random (one exact set gives one draw of the statistic): its mean and
    // standard deviation over kFloorSets independent exact sets.
    Batch other(2, f.n);
    double sum = 0.0, sum2 = 0.0;
    for (int k = 0; k < kFloorSets; ++k) {
      target_->Sample(NoiseStream(f.seed + 202 + k, Stream::kData), 0, other);
      const double v = Distance(other);
      sum += v;
      sum2 += v * v;
    }
    floor_ = sum / kFloorSets;
    floor_sd_ = std::sqrt(std::max(0.0, (sum2 - kFloorSets * floor_ * floor_) / (kFloorSets - 1)));
  }

  bool gaussian() const { return data_ == "gaussian"; }
  const char* metric() const { return gaussian() ? "frechet_d2" : "sliced_w2"; }
  double floor() const { return floor_; }
  double floor_sd() const { return floor_sd_; }
  const Sde& sde() const { return *sde_; }
  const ScoreModel& score() const { return *score_; }

  double Distance(ConstBatchRef x) const {
    if (!x.allFinite()) return std::numeric_limits<double>::infinity();
    if (gaussian()) {
      const MomentEstimate m = EstimateMoments(x);
      return FrechetDistance(m.mean, m.cov, target_->mean(0), target_->cov(0));
    }
    return SlicedWasserstein(x, reference_, kProjections, flags_.seed + 303);
  }

 private:
  std::string data_;
  const TableFlags& flags_;
  std::shared_ptr<const ScalarAffineSde> sde_;
  std::unique_ptr<GaussianMixtureScore> score_;
  std::unique_ptr<GaussianMixture> target_;
  Batch reference_;
  double floor_ = 0.0;
  double floor_sd_ = 0.0;
};

struct Row {
  std::string predictor, corrector, status = "ok";
  int steps = 0, corrector_steps = 0;
  int64_t nfe = 0;
  double distance = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0.0;
};

Row RunSampler(const Block& block, const TableFlags& f, const std::string& predictor_name,
               const std::string& corrector_name, int steps) {
  Row row;
  row.predictor = predictor_name;
  row.corrector = corrector_name;
  row.steps = steps;
  row.corrector_steps = corrector_name == "none" ? 0 : 1;
  const auto predictor = MakePredictor(predictor_name);
  const auto corrector = MakeCorrector(corrector_name);
  PcSampler::Options options;
  options.num_steps = steps;
  options.eps = kEps;
  options.corrector_steps = row.corrector_steps;
  options.snr = f.snr;
  options.seed = f.seed;
  options.num_threads = f.threads;
  options.throw_on_failure = false;
  const auto start = std::chrono::steady_clock::now();
  try {
    const PcSampler sampler(block.sde(), block.score(), *predictor, *corrector, options);
    const SampleResult result = sampler.Sample(f.n);
    row.nfe = result.summary.nfe;
    row.distance = result.summary.status == SolveStatus::kSuccess
                       ? block.Distance(result.x)
                       : std::numeric_limits<double>::infinity();
    if (result.summary.status != SolveStatus::kSuccess) row.status = "diverged";
  } catch (const InvalidArgument& e) {
    // E.g. the DDPM chain of VP needs β(t)h < 1: such a step count is not a valid sampler.
    row.status = std::string("not applicable: ") + e.what();
  }
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return row;
}

std::string Cell(const Row& r) {
  if (r.status.rfind("not applicable", 0) == 0) return "n/a";
  return Sci(r.distance);
}

nlohmann::json ToJson(const std::string& data, const std::string& sde, const Block& block,
                      const std::string& table, const Row& r) {
  return {{"data", data},         {"sde", sde},
          {"table", table},       {"predictor", r.predictor},
          {"corrector", r.corrector}, {"steps", r.steps},
          {"corrector_steps", r.corrector_steps}, {"nfe", r.nfe},
          {"metric", block.metric()}, {"distance", std::isfinite(r.distance) ? nlohmann::json(r.distance) : nlohmann::json(nullptr)},
          {"floor", block.floor()}, {"floor_sd", block.floor_sd()}, {"status", r.status},
          {"seconds", r.seconds}};
}

void RunTable(const TableFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  Require(f.steps >= 1, kWhere, "--steps", f.steps, ">= 1");
  Require(f.n >= 2, kWhere, "--n", f.n, ">= 2");
  Require(f.threads >= 1, kWhere, "--threads", f.threads, ">= 1");
  Require(f.snr > 0.0, kWhere, "--snr", f.snr, "> 0");
  Require(f.paths >= 0, kWhere, "--paths", f.paths, ">= 0 (0 skips the per-path errors)");
  // VP starts at 2^5 and the corrected fit needs at least 5 levels there.
  Require(f.max_level >= 9 && f.max_level <= 12, kWhere, "--max-level", f.max_level, "in [9, 12]");
  for (int s : f.small_steps) Require(s >= 1, kWhere, "--small-steps", s, ">= 1");
  for (const std::string& p : f.predictors) MakePredictor(p);

  nlohmann::json rows = nlohmann::json::array();
  int64_t total_nfe = 0;
  std::ostringstream md;
  const std::string big = std::to_string(f.steps), twice = std::to_string(2 * f.steps);
  for (const std::string& data : f.data) {
    for (const std::string& sde : f.sdes) {
      std::cerr << kWhere << ": " << data << " / " << sde << "\n";
      const Block block(data, sde, f);
      md << "\n### " << data << ", " << sde << " SDE — " << block.metric()
         << " to p_eps (Monte-Carlo floor: " << Sci(block.floor()) << " ± " << Sci(block.floor_sd())
         << ", mean ± sd over " << kFloorSets << " exact sets of n)\n\n";
      md << "| predictor | P" << big << " | P" << twice << " | PC" << big << " |\n";
      md << "|---|---|---|---|\n";
      for (const std::string& p : f.predictors) {
        const Row p1 = RunSampler(block, f, p, "none", f.steps);
        const Row p2 = RunSampler(block, f, p, "none", 2 * f.steps);
        const Row pc = RunSampler(block, f, p, "langevin", f.steps);
        md << "| " << p << " | " << Cell(p1) << " | " << Cell(p2) << " | " << Cell(pc) << " |\n";
        for (const Row* r : {&p1, &p2, &pc}) {
          rows.push_back(ToJson(data, sde, block, "main", *r));
          total_nfe += r->nfe;
        }
      }
      const Row c = RunSampler(block, f, "none", "langevin", 2 * f.steps);
      md << "| none (C" << twice << ", Langevin) | | " << Cell(c) << " | |\n";
      rows.push_back(ToJson(data, sde, block, "main", c));
      total_nfe += c.nfe;

      if (!f.small_steps.empty()) {
        md << "\n| small N | ";
        for (int s : f.small_steps) md << "N = " << s << " | ";
        md << "\n|---|";
        for (size_t i = 0; i < f.small_steps.size(); ++i) md << "---|";
        md << "\n";
        for (const std::string& p : f.predictors) {
          for (const char* corrector : {"none", "langevin"}) {
            md << "| " << (std::string(corrector) == "none" ? "P " : "PC ") << p << " | ";
            for (int s : f.small_steps) {
              const Row r = RunSampler(block, f, p, corrector, s);
              md << Cell(r) << " | ";
              rows.push_back(ToJson(data, sde, block, "small", r));
              total_nfe += r.nfe;
            }
            md << "\n";
          }
        }
        md << "| C Langevin | ";
        for (int s : f.small_steps) {
          const Row r = RunSampler(block, f, "none", "langevin", s);
          md << Cell(r) << " | ";
          rows.push_back(ToJson(data, sde, block, "small", r));
          total_nfe += r.nfe;
        }
        md << "\n";
      }
    }
  }

  // Per-path strong errors on the same data, from the convergence harness.
  nlohmann::json path_errors = nlohmann::json::array();
  if (f.paths > 0) {
    md << "\n### Per-path error (E|X_N - X|^2)^(1/2) against the reverse-SDE solution on the same "
          "Brownian path, from exact draws of p_T\n\n";
    bool header = false;
    for (const std::string& data : f.data) {
      for (const std::string& sde : f.sdes) {
        const std::string name = sde + "-" + data + "-reverse";
        std::cerr << kWhere << ": per-path errors, " << name << "\n";
        const ConvergenceProblem problem = StandardConvergenceProblem(name);
        ConvergenceOptions options = problem.recommended;
        // VP's reverse-diffusion and ancestral chains need β_max h < 1 (N > 20): from 2^5 there;
        // VE from 2^3. Weak differences are not reported here: a token path count.
        const int min_level = sde == "vp" ? 5 : 3;
        options.strong = {min_level, f.max_level, f.paths};
        options.weak = {min_level, min_level + 4, 200};
        options.seed = f.seed + 1;
        options.num_threads = f.threads;
        std::vector<std::unique_ptr<Predictor>> owned;
        std::vector<const Predictor*> predictors;
        for (const std::string& p : f.predictors) {
          if (std::find(problem.solvers.begin(), problem.solvers.end(), p) == problem.solvers.end())
            continue;
          owned.push_back(MakePredictor(p));
          predictors.push_back(owned.back().get());
        }
        if (predictors.empty()) continue;
        const std::vector<ConvergenceResult> results =
            RunConvergenceStudies(problem, predictors, options);
        if (!header) {
          md << "| problem | solver | ";
          for (int k = 3; k <= f.max_level; ++k) md << "N = " << (1 << k) << " | ";
          md << "strong order [99% CI] |\n|---|---|";
          for (int k = 3; k <= f.max_level; ++k) md << "---|";
          md << "---|\n";
          header = true;
        }
        for (const ConvergenceResult& r : results) {
          md << "| " << r.problem << " | " << r.solver << " | ";
          nlohmann::json steps = nlohmann::json::array(), errors = nlohmann::json::array(),
                         stderrs = nlohmann::json::array();
          for (int k = 3; k < options.strong.min_level; ++k) md << "n/a | ";
          for (const ConvergenceLevel& l : r.levels) {
            md << Sci(l.strong_error) << " | ";
            steps.push_back(int64_t{1} << l.level);
            errors.push_back(l.strong_error);
            stderrs.push_back(l.strong_stderr);
          }
          char order[64];
          std::snprintf(order, sizeof(order), "%.2f [%.2f, %.2f]", r.strong.order, r.strong.ci_low,
                        r.strong.ci_high);
          md << order << " |\n";
          path_errors.push_back({{"problem", r.problem},
                                 {"solver", r.solver},
                                 {"steps", steps},
                                 {"strong_error", errors},
                                 {"strong_stderr", stderrs},
                                 {"strong_order", r.strong.order},
                                 {"strong_ci", {r.strong.ci_low, r.strong.ci_high}},
                                 {"paths", r.strong_samples}});
          total_nfe += r.nfe;
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (f.json) {
    PrintJson({{"rows", rows},
               {"path_errors", path_errors},
               {"n", f.n},
               {"snr", f.snr},
               {"eps", kEps},
               {"seed", f.seed},
               {"threads", f.threads},
               {"nfe", total_nfe},
               {"seconds", seconds}});
  } else {
    std::cout << "Sampler table: n = " << f.n << " samples per cell, snr = " << f.snr
              << ", eps = " << kEps << ", seed " << f.seed << ", exact scores; "
              << "distances to p_eps (n/a: step count invalid for the chain, "
              << "diverged: non-finite values)\n"
              << md.str();
    char tail[64];
    std::snprintf(tail, sizeof(tail), "\n%.1f s\n", seconds);
    std::cout << tail;
  }
}

}  // namespace

void AddSamplerTableCommand(CLI::App* verify) {
  auto flags = std::make_shared<TableFlags>();
  CLI::App* table = verify->add_subcommand(
      "sampler-table",
      "The paper's Table 1 with exact scores: P/PC/C samplers, VE and VP, exact distances to p_eps, "
      "small-N rows and per-path errors");
  table->add_option("--data", flags->data, "gaussian and/or mixture")->capture_default_str();
  table->add_option("--sde", flags->sdes, "ve and/or vp")->capture_default_str();
  table->add_option("--predictor", flags->predictors, "Predictors compared")->capture_default_str();
  table->add_option("--steps", flags->steps, "N of P<N>/PC<N> (P<2N> and C<2N> use 2N)")
      ->capture_default_str();
  table->add_option("--small-steps", flags->small_steps, "Step counts of the small-N rows")
      ->capture_default_str();
  table->add_option("--n", flags->n, "Samples per cell")->capture_default_str();
  table->add_option("--snr", flags->snr, "Langevin signal-to-noise ratio")->capture_default_str();
  table->add_option("--seed", flags->seed, "Seed")->capture_default_str();
  table->add_option("--threads", flags->threads, "Worker threads")->capture_default_str();
  table->add_option("--paths", flags->paths, "Paths for the per-path errors (0 skips them)")
      ->capture_default_str();
  table->add_option("--max-level", flags->max_level,
                    "Per-path errors on grids up to 2^L steps")->capture_default_str();
  table->add_flag("--json", flags->json, "Print one JSON object");
  table->callback([flags] { RunTable(*flags); });
}

}  // namespace scoresde::cli
