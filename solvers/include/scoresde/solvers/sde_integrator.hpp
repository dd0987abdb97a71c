// Fixed-step integration of a forward SDE, or of the reverse-time SDE of a score, with any
// predictor, driven by any noise source: the same steppers the samplers use, for convergence
// studies (BrownianNoise: one path at every resolution) and for making data (IidNoise).
//
// N uniform steps from t_start to t_end: t_i = t_start + i (t_end − t_start)/N; step i goes from
// t_i to t_{i+1} with noise key `i`. Forward problems need t_start < t_end, reverse problems
// (a score) t_start > t_end; both within [0, T].
#pragma once

#include <cstdint>
#include <memory>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/solvers/noise_source.hpp"
#include "scoresde/solvers/predictor.hpp"
#include "scoresde/solvers/step_problem.hpp"
#include "scoresde/solvers/summary.hpp"

namespace scoresde {

class SdeIntegrator {
 public:
  struct Options {
    int num_steps = 100;  // N ≥ 1
    int num_threads = 1;  // ≥ 1
    int chunk_size = 0;   // samples per chunk of work; 0 picks max(1, 2^15 / d)
    bool throw_on_failure = true;
    // Throws InvalidArgument ("SdeIntegrator::Options: num_steps = 0; must be >= 1").
    void Validate() const;
  };

  // Throws InvalidArgument for bad options, an invalid problem, a predictor that does not
  // support the SDE or is "none", or times that are not finite, in [0, T] and in the problem's
  // direction. The SDE, score and predictor must outlive the integrator.
  SdeIntegrator(StepProblem problem, const Predictor& predictor, double t_start, double t_end,
                Options options);
  ~SdeIntegrator();
  SdeIntegrator(SdeIntegrator&&) noexcept;
  SdeIntegrator& operator=(SdeIntegrator&&) = delete;

  const Options& options() const { return options_; }

  // Integrates x (d × B: the states at t_start of samples first_sample, …) in place to t_end.
  // Throws InvalidArgument if x has the wrong number of rows or a non-finite entry, or if
  // noise.dim() != sde.noise_dim(). On a non-finite value the run stops and the summary names the
  // earliest one (smallest step, then sample); with throw_on_failure it is thrown as
  // NumericalFailure. summary.nfe counts score evaluations per sample (0 forward).
  SolveSummary Integrate(const NoiseSource& noise, int64_t first_sample, BatchRef x) const;

 private:
  StepProblem problem_;
  const Predictor* predictor_;
  double t_start_;
  double t_end_;
  Options options_;
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace scoresde
