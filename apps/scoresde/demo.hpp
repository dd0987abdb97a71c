// `scoresde demo`: the library's tour in one command. It trains an MLP score model on a 2-D data
// set, samples it with predictor–corrector, predictor-only, corrector-only and probability-flow
// samplers, computes the held-out negative log-likelihood through the probability flow, runs the
// quick verification checks (the references' self-check, convergence orders from the harness,
// likelihood exactness and NFE against error on a Gaussian whose answers are known in closed
// form), and writes a report folder:
//
//   <out>/report.md         the report, with the figures
//   <out>/report.json       every number of the report
//   <out>/*.csv, *.json     the data behind each figure and table
//   <out>/model.safetensors the trained model (usable with --score in sample and likelihood)
//   <out>/figures/*.png     made by scripts/plot_report.py with matplotlib (copied to <out>)
//
// The sections are functions of the options only (seeded), so a run is reproducible bit for bit
// for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "report.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/verification/problem.hpp"

namespace scoresde::cli {

struct DemoOptions {
  // The data: one of a built-in set (default), a problem file, or an array file.
  std::string dataset = "swiss-roll";
  std::string problem;
  std::string data;
  SdeFlags sde;                    // ve, vp (default) or subvp, with --sde-param
  int64_t train_steps = 6000;      // training length
  int64_t batch = 256;
  int width = 128;
  int depth = 3;
  int steps = 500;                 // N of the SDE samplers (predictor-only runs 2N: equal cost)
  int64_t num_samples = 2000;      // per sampler
  int64_t num_heldout = 2000;      // held-out data for the distances and the likelihood
  int64_t likelihood_points = 500; // held-out points whose log-likelihood is computed
  bool verify = true;              // the verification section
  int threads = 1;
  uint64_t seed = 0;
  std::string out = "reports/demo";
  bool plots = true;               // run the plotting script
  std::string python;              // interpreter for the plots; empty: search (see report.hpp)
  std::string plot_script;         // empty: the source tree's scripts/plot_report.py

  // Throws InvalidArgument naming the first bad field.
  void Validate() const;
};

// Messages for the user (stderr), one line each.
using DemoLog = std::function<void(const std::string& line)>;

// The data of the demo: a training source, held-out points the model never sees, and an
// independent sample of the training law of the same size (for the Monte-Carlo floor of
// distances).
struct DemoData {
  std::shared_ptr<const DataSource> train;
  Batch heldout;
  Batch reference;
  std::string description;
  std::optional<Problem> problem;  // when the data came from a problem file
};
DemoData LoadDemoData(const DemoOptions& options);

// The learned part: training, sampling, held-out likelihood and the score field. Returns the
// section's JSON; writes its files into `folder`.
struct TrainedModel {
  std::shared_ptr<const ScalarAffineSde> sde;
  std::shared_ptr<const ScoreModel> score;
  double sampling_eps = 1e-3;
};
nlohmann::json TrainSection(const DemoOptions& options, const DemoData& data,
                            const ReportFolder& folder, const DemoLog& log, TrainedModel* model);
nlohmann::json SamplingSection(const DemoOptions& options, const DemoData& data,
                               const TrainedModel& model, const ReportFolder& folder,
                               const DemoLog& log);
nlohmann::json LikelihoodSection(const DemoOptions& options, const DemoData& data,
                                 const TrainedModel& model, const ReportFolder& folder,
                                 const DemoLog& log);
nlohmann::json ScoreFieldSection(const DemoOptions& options, const DemoData& data,
                                 const TrainedModel& model, const ReportFolder& folder);

// The verification part (demo_verification.cpp). Each check is {"check", "value", "tolerance",
// "passed"} (value ≤ tolerance passes) inside the section's "checks".
nlohmann::json SelfCheckSection();
nlohmann::json ConvergenceSection(const DemoOptions& options, const ReportFolder& folder,
                                  const DemoLog& log);
nlohmann::json GaussianLikelihoodSection(const DemoOptions& options, const ReportFolder& folder,
                                         const DemoLog& log);
nlohmann::json NfeErrorSection(const DemoOptions& options, const ReportFolder& folder,
                               const DemoLog& log);
// Reverse-time sampling of a log-normal law under GBM (state-dependent diffusion) with and without
// the ∇·(GGᵀ) term of the reverse drift.
nlohmann::json DivergenceTermSection(const DemoOptions& options, const ReportFolder& folder,
                                     const DemoLog& log);

// Runs everything, writes the report (report.md, report.json, figures) and returns the summary
// that `--json` prints. Throws InvalidArgument for bad options or data, Error if a verification
// check fails (after the report is written, so the failure can be read there).
nlohmann::json RunDemo(const DemoOptions& options, const DemoLog& log);

}  // namespace scoresde::cli
