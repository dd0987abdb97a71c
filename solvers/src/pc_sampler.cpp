#include "scoresde/solvers/pc_sampler.hpp"

#include <chrono>
#include <cmath>
#include <string>

#include "chunked_solve_internal.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

namespace {

constexpr const char* kWhere = "PcSampler";
// The pilot's counters in Stream::kPilot: the initial sampler uses step 0 with its own substeps
// (0 and 1 for the mixture references), the predictor substeps 2 and 3, corrector step j
// substep 4 + j.
constexpr uint32_t kPilotPredictorSubstep = 2;
constexpr uint32_t kPilotCorrectorSubstep = 4;
constexpr int kMaxCorrectorSteps = 10000;
// Pilot columns per block of work; the E‖s‖² reduction sums blocks in index order.
constexpr int64_t kPilotBlock = 64;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Σ_j ‖s_j‖² in a fixed order.
double SumSquaredNorms(ConstBatchRef s) {
  double total = 0.0;
  for (Eigen::Index j = 0; j < s.cols(); ++j) {
    double squared = 0.0;
    const double* column = s.col(j).data();
    for (Eigen::Index i = 0; i < s.rows(); ++i) squared += column[i] * column[i];
    total += squared;
  }
  return total;
}

}  // namespace

void PcSampler::Options::Validate() const {
  constexpr const char* kOptions = "PcSampler::Options";
  Require(num_steps >= 1, kOptions, "num_steps", num_steps, ">= 1");
  Require(std::isfinite(eps) && eps >= 0.0, kOptions, "eps", eps, "finite and >= 0");
  Require(corrector_steps >= 0 && corrector_steps <= kMaxCorrectorSteps, kOptions,
          "corrector_steps", corrector_steps, "in [0, 10000]");
  Require(std::isfinite(snr) && snr > 0.0, kOptions, "snr", snr, "> 0");
  Require(pilot_size >= 2, kOptions, "pilot_size", pilot_size, ">= 2");
  Require(num_threads >= 1, kOptions, "num_threads", num_threads, ">= 1");
  Require(chunk_size >= 0, kOptions, "chunk_size", chunk_size, ">= 0 (0 picks a default)");
}

PcSampler::PcSampler(const Sde& sde, const ScoreModel& score, const Predictor& predictor,
                     const Corrector& corrector, Options options)
    : sde_(&sde),
      score_(&score),
      predictor_(&predictor),
      corrector_(&corrector),
      options_(std::move(options)) {
  options_.Validate();
  problem_ = StepProblem::Reverse(sde, score, options_.divergence_term);
  problem_.Validate(kWhere);
  const double t_final = sde.t_final();
  Require(options_.eps < t_final, kWhere, "eps", options_.eps,
          "< T (" + FormatValue(t_final) + ")");
  std::string reason;
  if (!predictor.Supports(sde, &reason)) {
    throw InvalidArgument(std::string(kWhere) + ": predictor '" + std::string(predictor.name()) +
                          "' does not support this SDE: " + reason);
  }
  const bool correcting = options_.corrector_steps > 0 && corrector.nfe_per_step() > 0;
  if (correcting && !corrector.Supports(sde, &reason)) {
    throw InvalidArgument(std::string(kWhere) + ": corrector '" + std::string(corrector.name()) +
                          "' does not support this SDE: " + reason);
  }
  const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde);
  if (!options_.initial_sampler && affine == nullptr) {
    throw InvalidArgument(std::string(kWhere) +
                          ": initial_sampler is required for an SDE without a data-independent "
                          "prior (e.g. GBM: draw x_T from the closed-form p_T)");
  }
  if (options_.denoise && affine == nullptr) {
    throw InvalidArgument(std::string(kWhere) +
                          ": denoise needs a VE, VP or sub-VP SDE (Tweedie's formula uses its "
                          "Gaussian kernel)");
  }
  h_ = (t_final - options_.eps) / options_.num_steps;
  predictor.CheckStepSize(sde, options_.eps, t_final, h_);
  if (correcting) LangevinAlpha(sde, t_final, h_);  // throws if the VP α_i would be ≤ 0
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);

  if (correcting && corrector.NeedsExpectedSquaredNorm(options_.step_rule)) {
    expected_squared_norms_.resize(options_.num_steps);
    bool closed_form = true;
    for (int i = 0; i < options_.num_steps && closed_form; ++i) {
      const std::optional<double> value = score.ExpectedSquaredNorm(Time(i + 1));
      if (!value) {
        closed_form = false;
        break;
      }
      Require(std::isfinite(*value) && *value > 0.0, kWhere, "score.ExpectedSquaredNorm(t)",
              *value, "finite and > 0 at t = " + FormatValue(Time(i + 1)));
      expected_squared_norms_[i] = *value;
    }
    if (!closed_form) RunPilot();
  }
}

PcSampler::~PcSampler() = default;
PcSampler::PcSampler(PcSampler&&) noexcept = default;

double PcSampler::Time(int64_t i) const {
  if (i >= options_.num_steps) return options_.eps;
  return sde_->t_final() - static_cast<double>(i) * h_;
}

int PcSampler::ChunkSize() const {
  return options_.chunk_size > 0 ? options_.chunk_size
                                 : internal::DefaultChunkSize(sde_->dim());
}

void PcSampler::RunPilot() {
  const auto start = std::chrono::steady_clock::now();
  const int d = sde_->dim();
  const int64_t size = options_.pilot_size;
  const int64_t num_blocks = (size + kPilotBlock - 1) / kPilotBlock;
  const NoiseStream pilot(options_.seed, Stream::kPilot);
  const IidNoise predictor_noise(sde_->noise_dim(), pilot, kPilotPredictorSubstep);
  Batch x(d, size);
  std::vector<StepWorkspace> workspaces(num_blocks);
  std::vector<double> partial(num_blocks);
  const auto for_blocks = [&](const std::function<void(int64_t block, int64_t first,
                                                       BatchRef xb)>& fn) {
    context_->ParallelFor(0, num_blocks, 1, [&](int64_t b_begin, int64_t b_end) {
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t first = b * kPilotBlock;
        const int64_t count = std::min(kPilotBlock, size - first);
        fn(b, first, x.middleCols(first, count));
      }
    });
  };
  try {
    for_blocks([&](int64_t, int64_t first, BatchRef xb) {
      if (options_.initial_sampler) {
        options_.initial_sampler(pilot, first, xb);
      } else {
        dynamic_cast<const ScalarAffineSde&>(*sde_).SamplePrior(pilot, first, xb);
      }
      CheckFiniteDuringSolve("PcSampler pilot", "initial state", xb, 0, Time(0), first);
    });
    for (int64_t i = 0; i < options_.num_steps; ++i) {
      const double t = Time(i), t_next = Time(i + 1);
      for_blocks([&](int64_t b, int64_t first, BatchRef xb) {
        StepWorkspace& ws = workspaces[b];
        predictor_->Step(problem_, t, t_next - t, i, predictor_noise, first, xb, &ws);
        CheckFiniteDuringSolve("PcSampler pilot", "state after the predictor", xb, i, t_next,
                               first);
        Batch& s = ws.Scratch(30, d, xb.cols());
        score_->Evaluate(xb, ws.times(xb.cols(), t_next), s);
        partial[b] = SumSquaredNorms(s);
      });
      double total = 0.0;
      for (double value : partial) total += value;
      const double expected = total / static_cast<double>(size);
      if (!(std::isfinite(expected) && expected > 0.0)) {
        throw NumericalFailure("PcSampler pilot: mean squared score norm is " +
                                   FormatValue(expected) + " at step " + std::to_string(i) +
                                   " (t = " + FormatValue(t_next) + ")",
                               i, t_next, -1, -1);
      }
      expected_squared_norms_[i] = expected;
      const CorrectorLevel level{t_next, h_, options_.snr, options_.step_rule, expected};
      for (int j = 0; j < options_.corrector_steps; ++j) {
        for_blocks([&](int64_t b, int64_t first, BatchRef xb) {
          corrector_->Correct(problem_, level, i, kPilotCorrectorSubstep + j, pilot, first, xb,
                              &workspaces[b]);
          CheckFiniteDuringSolve("PcSampler pilot", "state after a corrector step", xb, i,
                                 t_next, first);
        });
      }
    }
    pilot_summary_.status = SolveStatus::kSuccess;
    pilot_summary_.message = "pilot of " + std::to_string(size) + " samples";
  } catch (const NumericalFailure& failure) {
    pilot_summary_.RecordFailure(failure);
    pilot_failure_ = failure;
  }
  pilot_summary_.steps = options_.num_steps;
  pilot_summary_.accepted_steps = options_.num_steps;
  pilot_summary_.nfe = options_.num_steps * (predictor_->nfe_per_step() + 1 +
                                             options_.corrector_steps * corrector_->nfe_per_step());
  pilot_summary_.seconds = Seconds(start);
}

void PcSampler::RunChunk(int64_t first_sample, BatchRef x,
                         const std::function<bool(int64_t)>& stop) const {
  const NoiseStream prior(options_.seed, Stream::kPrior);
  const NoiseStream corrector_noise(options_.seed, Stream::kCorrector);
  const IidNoise predictor_noise(sde_->noise_dim(), NoiseStream(options_.seed, Stream::kPredictor));
  const bool correcting = options_.corrector_steps > 0 && corrector_->nfe_per_step() > 0;
  StepWorkspace workspace;
  if (options_.initial_sampler) {
    options_.initial_sampler(prior, first_sample, x);
  } else {
    dynamic_cast<const ScalarAffineSde&>(*sde_).SamplePrior(prior, first_sample, x);
  }
  CheckFiniteDuringSolve("PcSampler::Sample", "initial state", x, 0, Time(0), first_sample);
  for (int64_t i = 0; i < options_.num_steps; ++i) {
    if (stop(i)) return;
    const double t = Time(i), t_next = Time(i + 1);
    predictor_->Step(problem_, t, t_next - t, i, predictor_noise, first_sample, x, &workspace);
    CheckFiniteDuringSolve("PcSampler::Sample", "state after the predictor", x, i, t_next,
                           first_sample);
    if (options_.state_hook) options_.state_hook(i, t_next, first_sample, x);
    if (!correcting) continue;
    CorrectorLevel level{t_next, h_, options_.snr, options_.step_rule};
    if (!expected_squared_norms_.empty()) level.expected_squared_score_norm =
        expected_squared_norms_[i];
    for (int j = 0; j < options_.corrector_steps; ++j) {
      corrector_->Correct(problem_, level, i, static_cast<uint32_t>(j), corrector_noise,
                          first_sample, x, &workspace);
      CheckFiniteDuringSolve("PcSampler::Sample", "state after a corrector step", x, i, t_next,
                             first_sample);
      if (options_.state_hook) options_.state_hook(i, t_next, first_sample, x);
    }
  }
  if (options_.denoise) {
    // Tweedie: E[x_0 | x_ε] = (x_ε + σ_ε² s(x_ε, ε)) / α(ε) for x_ε | x_0 ~ N(α x_0, σ² I).
    const auto& affine = dynamic_cast<const ScalarAffineSde&>(*sde_);
    const double eps = options_.eps;
    const double sigma = affine.MarginalStd(eps);
    const double alpha = affine.MeanCoefficient(eps);
    Batch& s = workspace.Scratch(30, x.rows(), x.cols());
    score_->Evaluate(x, workspace.times(x.cols(), eps), s);
    x = (x + (sigma * sigma) * s) / alpha;
    CheckFiniteDuringSolve("PcSampler::Sample", "denoised state", x, options_.num_steps, eps,
                           first_sample);
  }
}

SampleResult PcSampler::Sample(int64_t num_samples) const {
  Require(num_samples >= 1, "PcSampler::Sample", "num_samples", num_samples, ">= 1");
  SampleResult result;
  result.x.resize(sde_->dim(), num_samples);
  result.summary = SampleInto(0, result.x);
  return result;
}

SolveSummary PcSampler::SampleInto(int64_t first_sample, BatchRef x) const {
  const auto start = std::chrono::steady_clock::now();
  CheckShape("PcSampler::SampleInto", "x", x, sde_->dim(), -1);
  Require(x.cols() >= 1, "PcSampler::SampleInto", "x.cols()", static_cast<int64_t>(x.cols()),
          ">= 1");
  Require(first_sample >= 0, "PcSampler::SampleInto", "first_sample", first_sample, ">= 0");
  SolveSummary summary;
  const bool correcting = options_.corrector_steps > 0 && corrector_->nfe_per_step() > 0;
  summary.steps = options_.num_steps;
  summary.nfe = static_cast<int64_t>(options_.num_steps) *
                    (predictor_->nfe_per_step() +
                     (correcting ? options_.corrector_steps * corrector_->nfe_per_step() : 0)) +
                (options_.denoise ? 1 : 0);
  if (pilot_summary_.status != SolveStatus::kNotRun) {
    summary.warnings.push_back("E||s_t||^2 estimated by a pilot of " +
                               std::to_string(options_.pilot_size) + " samples (" +
                               FormatValue(pilot_summary_.seconds) + " s)");
  }
  if (pilot_failure_) {
    summary.RecordFailure(*pilot_failure_);
    summary.seconds = Seconds(start);
    if (options_.throw_on_failure) throw *pilot_failure_;
    return summary;
  }
  const int64_t begin = first_sample, end = first_sample + x.cols();
  const std::optional<NumericalFailure> failure = internal::RunChunks(
      *context_, begin, end, ChunkSize(),
      [&](int64_t first, int64_t count, const internal::StopCheck& stop) {
        RunChunk(first, x.middleCols(first - begin, count), stop);
      });
  summary.seconds = Seconds(start);
  if (failure) {
    summary.RecordFailure(*failure);
    summary.accepted_steps = failure->step();
    if (options_.throw_on_failure) throw *failure;
    return summary;
  }
  summary.status = SolveStatus::kSuccess;
  summary.message = "success";
  summary.accepted_steps = options_.num_steps;
  return summary;
}

}  // namespace scoresde
