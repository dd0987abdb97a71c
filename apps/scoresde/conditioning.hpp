// Conditional sampling for `scoresde sample` (issue 6; design.md section 2, "Conditional
// generation"): the --observe / --condition-method / --guidance-scale flags and the sampling they
// select, kept apart from sample_command.cpp, which calls AddConditioningFlags when it builds the
// command and SampleConditionally instead of its own sampling when ConditioningRequested.
//
//   --observe FILE            .npy or .csv, one row per sample or one row for all; NaN marks an
//                             unknown coordinate (colorization: P = d/C gray values per row).
//   --condition-method NAME   exact        the closed-form conditional score (Gaussian or mixture
//                                          problem with --score analytic; ground truth)
//                             replacement  the paper's imputation (any score)
//                             colorization replacement in the gray/chroma channels of an orthogonal
//                                          (Helmert) channel mix; --channels C, CHW layout
//                             pigdm        ΠGDM measurement guidance (a score with JVPs)
//                             smc          twisted SMC with the ΠGDM twist (needs
//                                          --observation-noise > 0 or --sde-param eps > 0)
//                             guidance     class guidance (--class with --classifier)
//                             Default: exact with --score analytic and a Gaussian/mixture
//                             problem, replacement otherwise; guidance when only --class is given.
//   --guidance-scale G        γ of pigdm and guidance (default 1); smc's proposal scale.
//   --observation-noise S     σ_y of y = x[Ω] + N(0, σ_y² I) (default 0: noiseless).
//   --class K --classifier M  class guidance: M a classifier .safetensors (classifier.hpp) or
//                             "analytic" (the problem's mixture components are the classes).
//   --particles K             SMC particles per group (default 64).
//   --data-std S              σ_d of ΠGDM's r_t² (default 1).
//   --channels C              colorization channels (default 3).
//
// Samples with different observation rows are run in groups of consecutive equal rows; every
// sample's noise is keyed by its own index, so results do not depend on the grouping.
// Where the problem gives the exact posterior (Gaussian or mixture, one observation row), the
// report includes "conditional_fit": the distance of the samples to p_ε(x | y).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/corrector.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictor.hpp"
#include "scoresde/solvers/summary.hpp"
#include "scoresde/verification/problem.hpp"

namespace scoresde::cli {

struct ConditioningFlags {
  std::string observe;
  std::string method;
  double guidance_scale = 1.0;
  double observation_noise = 0.0;
  int class_label = -1;
  std::string classifier;
  int64_t particles = 64;
  double data_std = 1.0;
  int channels = 3;
};

void AddConditioningFlags(CLI::App* command, ConditioningFlags* flags);
// Whether any conditioning flag was given (an observation, a method or a class).
bool ConditioningRequested(const ConditioningFlags& flags);

// What `scoresde sample` has built: the SDE, the unconditional score, the sampler settings.
struct SamplingSetup {
  std::shared_ptr<const Sde> sde;
  std::shared_ptr<const ScoreModel> score;
  bool analytic = false;             // --score analytic
  const Problem* problem = nullptr;  // --problem, when given
  const Predictor* predictor = nullptr;
  const Corrector* corrector = nullptr;
  PcSampler::Options options;        // steps, eps, seed, threads, snr, ... (state_hook unset)
  bool exact_prior = false;          // --prior exact: start from the exact conditional p_T(x | y)
  int64_t num_samples = 0;
};

struct ConditionalSamples {
  Batch x;               // d × num_samples
  SolveSummary summary;  // nfe counts base-score evaluations per sample (a JVP counts as one)
  nlohmann::json report; // "condition_method", "guidance_scale", "observations", and
                         // "conditional_fit" where a reference exists
};

// Throws InvalidArgument for unusable combinations (naming the flag), NumericalFailure from the
// samplers.
ConditionalSamples SampleConditionally(const ConditioningFlags& flags, const SamplingSetup& setup);

}  // namespace scoresde::cli
