// Predictor–corrector sampling (Song et al., ICLR 2021, Algorithm 1): draw x_T from the prior, then
// for i = 0, …, N − 1 take one predictor step of the reverse-time SDE from t_i to t_{i+1} and M
// corrector steps at t_{i+1}, on the uniform grid t_i = T − i(T − ε)/N. Optionally finish with
// Tweedie's denoising step x ← (x + σ_ε² s(x, ε))/α(ε) (Efron 2011), the posterior mean E[x_0 | x_ε]
// under the Gaussian kernel. Predictor "none" gives corrector-only sampling, corrector "none"
// predictor-only sampling.
//
// Every sample evolves independently: its noise is keyed by (seed, sample index, step, substep)
// — prior from Stream::kPrior, predictor from kPredictor (substeps 0, 1), corrector step j from
// kCorrector (substep j) — and the Langevin expectation rule uses one step size per level. So
// sample i is bit-identical whether drawn alone, in a batch of 10,000, by any thread, in any chunk.
// (The paper's kBatchAverage rule couples the samples of a chunk by design; chunks are fixed
// ranges [k·chunk, (k+1)·chunk) of sample indices, so its results still do not depend on threads.)
//
// E‖s_t‖² for the expectation rule comes from score.ExpectedSquaredNorm(t) when known in closed
// form. Otherwise a pilot estimates it once, at construction: a fixed batch of pilot_size samples
// (noise from Stream::kPilot) runs the same predictor and corrector chain in lockstep; after the
// predictor step to level t_{i+1} the pilot's samples are draws of the sampler's own marginal at
// that level, and the mean of ‖s(x, t_{i+1})‖² over them estimates E‖s‖² there (the paper's
// batch average of the same quantity, but computed once from a batch nobody else's result depends
// on). The pilot's own correctors use that estimate. The estimate is a deterministic function of
// the seed; its relative error is O(pilot_size^{−1/2}) and only perturbs the step size, which the
// Langevin update tolerates (p_t is invariant for every ε in the continuous limit), so the
// samples are neither coupled nor biased by their own states, and the rule is consistent as
// pilot_size grows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/reverse.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/corrector.hpp"
#include "scoresde/solvers/predictor.hpp"
#include "scoresde/solvers/summary.hpp"

namespace scoresde {

struct SampleResult {
  Batch x;  // d × num_samples
  SolveSummary summary;
};

class PcSampler {
 public:
  // Fills x_T (d × B) for samples first_sample, …; noise is NoiseStream(seed, Stream::kPrior) (or
  // kPilot for the pilot). Must depend only on the sample indices and be thread-safe.
  using InitialSampler =
      std::function<void(const NoiseStream& noise, int64_t first_sample, BatchRef x_T)>;
  // Called after every predictor and corrector update with the step index i, the level time
  // t_{i+1} and the updated states (d × B, samples first_sample, …); may modify x. Called
  // concurrently on disjoint chunks when num_threads > 1. Not called for the pilot.
  using StateHook = std::function<void(int64_t step, double t, int64_t first_sample, BatchRef x)>;

  struct Options {
    int num_steps = 1000;      // N ≥ 1
    double eps = 1e-3;         // end time ε, 0 ≤ ε < T
    int corrector_steps = 1;   // M ≥ 0 per level
    double snr = 0.16;         // r > 0
    LangevinStepRule step_rule = LangevinStepRule::kExpectation;
    int pilot_size = 1000;     // ≥ 2; samples in the E‖s_t‖² pilot (used only when needed)
    bool denoise = false;      // Tweedie's final step (scalar-affine SDEs)
    uint64_t seed = 0;
    int num_threads = 1;       // ≥ 1
    // Samples carried together through all steps (and the batch of kBatchAverage); 0 picks
    // max(1, 2^15 / d), about 256 KiB per state buffer.
    int chunk_size = 0;
    bool throw_on_failure = true;
    DivergenceTerm divergence_term = DivergenceTerm::kInclude;
    InitialSampler initial_sampler;  // required unless the SDE is scalar-affine (then its prior)
    StateHook state_hook;
    // Throws InvalidArgument ("PcSampler::Options: snr = -0.1; must be > 0").
    void Validate() const;
  };

  // Checks the options, score.dim() == sde.dim(), predictor.Supports(sde),
  // corrector.Supports(sde), that eps < T, and that an initial sampler is available; throws
  // InvalidArgument naming what is wrong. Runs the pilot if one is needed (a pilot failure is
  // reported by Sample). The SDE, score, predictor and corrector are held by reference and must
  // outlive the sampler.
  PcSampler(const Sde& sde, const ScoreModel& score, const Predictor& predictor,
            const Corrector& corrector, Options options);
  ~PcSampler();
  PcSampler(PcSampler&&) noexcept;
  PcSampler& operator=(PcSampler&&) = delete;

  const Options& options() const { return options_; }
  // t_i = T − i(T − ε)/N for 0 ≤ i ≤ N.
  double Time(int64_t i) const;
  // E‖s_{t_{i+1}}‖² used by the expectation rule at level i + 1 (closed form or pilot); empty when
  // the corrector does not need it.
  const std::vector<double>& expected_squared_norms() const { return expected_squared_norms_; }
  // Cost and outcome of the pilot (status kNotRun when there was none).
  const SolveSummary& pilot_summary() const { return pilot_summary_; }

  // Draws samples 0, …, num_samples − 1 (num_samples ≥ 1). On a non-finite value the run stops
  // and the summary names the earliest one (smallest step, then smallest sample); with
  // throw_on_failure it is thrown as NumericalFailure.
  SampleResult Sample(int64_t num_samples) const;
  // Draws samples first_sample, …, first_sample + x.cols() − 1 into x (d × B): the same values
  // Sample gives them.
  SolveSummary SampleInto(int64_t first_sample, BatchRef x) const;

 private:
  void RunPilot();
  // Runs one chunk through every step; returns normally or throws NumericalFailure.
  void RunChunk(int64_t first_sample, BatchRef x, const std::function<bool(int64_t)>& stop) const;
  int ChunkSize() const;

  const Sde* sde_;
  const ScoreModel* score_;
  const Predictor* predictor_;
  const Corrector* corrector_;
  Options options_;
  StepProblem problem_;
  double h_;
  std::vector<double> expected_squared_norms_;
  SolveSummary pilot_summary_;
  std::optional<NumericalFailure> pilot_failure_;
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace scoresde
