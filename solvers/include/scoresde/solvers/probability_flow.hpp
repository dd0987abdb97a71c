// The probability-flow ODE and the batched ODE integration behind it.
//
// Probability flow (Song et al., ICLR 2021, eq. 13, general G): the deterministic process
//   dx/dt = f̃(x, t) = f(x, t) − ½∇·(GGᵀ)(x, t) − ½ G Gᵀ(x, t) s(x, t),   s ≈ ∇ₓ log p_t,
// has the same marginals p_t as the forward SDE, so integrating it from ε to T encodes data into
// latent codes and from T to ε decodes them (ProbabilityFlow::Encode / Decode).
//
// Integration (Hairer, Nørsett & Wanner, "Solving ODEs I", 2nd ed., chapter II): explicit
// Runge–Kutta methods from Boost.Odeint on Eigen::VectorXd states —
//   fixed step:  Euler (order 1), Heun (2), classical RK4 (4), `num_steps` uniform steps;
//   adaptive:    Dormand–Prince 5(4) (FSAL; continuous extension of order 4 for dense output),
//                Cash–Karp 5(4), Fehlberg 7(8),
// with Odeint's error test: a step is accepted when
//   err = max_i |err_i| / (atol + rtol (|y_i| + |h| |y'_i|)) ≤ 1,
// and the next step is h · min(10, max(0.2, 0.9 err^(−1/(q+1)))), q the order of the error
// estimate, no larger than h right after a rejection (the standard controller, HNW I, II.4).
// The first step is Hairer's starting-step heuristic (HNW I, section II.4; one extra evaluation)
// unless `initial_step` is given.
//
// A batch is adapted in one of two ways (StepControl):
//   kPerSample   (default) every sample has its own step sequence, decided by its own error, so its
//                result does not depend on the other samples, the thread count or the batch split.
//                The samples still advance together: at each Runge–Kutta stage the states of all
//                samples still integrating are evaluated in one call with one time per column
//                (ScoreModel::Evaluate takes a time per column for this). The stage arithmetic is
//                Odeint's on the stacked states, with time rescaled per sample (τ ∈ [0, 1] ↦
//                t_j + τ h_j), which leaves each sample's Runge–Kutta step unchanged: explicit RK
//                methods commute with affine reparametrizations of time.
//   kSharedStep  the whole batch is one Odeint state with one step size, as the reference code of
//                Song et al. does (scipy's RK45 on the flattened batch): the error is a maximum over
//                all samples, so samples are coupled and a batch's results depend on its
//                composition. Only the derivative evaluation is parallel.
// Intermediate output times (IntegrateTimes) are reached by shortening the step that would pass
// them, except for kSharedStep with Dormand–Prince, which interpolates with the method's
// continuous extension (Odeint's calc_state) and shortens only the last step.
//
// Failures: a non-finite derivative, state or error estimate (Odeint would accept a NaN error
// estimate) stops the solve with NumericalFailure locating step, t, sample and coordinate; so do an
// exhausted step budget (status kMaxStepsReached) and a step size that no longer changes t
// (kStepSizeUnderflow). With throw_on_failure = false the summary records the failure instead.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/summary.hpp"

namespace scoresde {

class ScalarAffineSde;

enum class OdeMethod { kEuler, kHeun, kRk4, kDopri5, kCashKarp54, kFehlberg78 };

// "euler", "heun", "rk4", "dopri5", "cash-karp", "fehlberg78".
std::string_view ToString(OdeMethod method);
// Accepts the names above and "rk45" (Dormand–Prince, as scipy's RK45). Throws InvalidArgument
// ("<where>: method = 'x'; must be one of ...").
OdeMethod ParseOdeMethod(std::string_view name, std::string_view where = "ParseOdeMethod");
bool IsAdaptive(OdeMethod method);
// Order of the propagated solution: 1, 2, 4, 5, 5, 7.
int MethodOrder(OdeMethod method);
// Derivative evaluations per step: 1, 2, 4, 6 (first-same-as-last), 6, 13.
int EvaluationsPerStep(OdeMethod method);

enum class StepControl { kPerSample, kSharedStep };
std::string_view ToString(StepControl control);

struct OdeOptions {
  OdeMethod method = OdeMethod::kDopri5;
  double rtol = 1e-5;         // adaptive methods: > 0
  double atol = 1e-5;         // adaptive methods: > 0
  double initial_step = 0.0;  // |h_0|; 0 selects it by Hairer's heuristic (one evaluation)
  double max_step = 0.0;      // largest |h|; 0 means no limit
  int64_t max_steps = 100000; // accepted + rejected steps allowed per sample (per batch if shared)
  int num_steps = 100;        // fixed-step methods: uniform steps over the whole interval
  StepControl step_control = StepControl::kPerSample;
  int num_threads = 1;
  // Samples integrated together by one task; also the largest batch handed to the system.
  int64_t chunk_size = 128;
  bool throw_on_failure = true;

  // Throws InvalidArgument ("OdeOptions: rtol = -1; must be > 0") for non-positive tolerances,
  // negative or non-finite steps, max_steps < 1, num_steps < 1, num_threads < 1, chunk_size < 1.
  void Validate() const;
};

// A batched ODE y' = F(y, t) with one sample per column. Implementations must make column j of the
// result depend only on column j of y and on t(j): that is what makes per-sample results
// independent of batching.
class BatchOdeSystem {
 public:
  virtual ~BatchOdeSystem() = default;
  // Rows of the state.
  virtual int state_dim() const = 0;
  // dy(:, c) = F(y(:, c), t(c)). y and dy are state_dim() × n, t has n entries; samples[c] is the
  // index of column c in the batch passed to IntegrateBatch (for per-sample data such as
  // Hutchinson probes). May be called concurrently on disjoint columns.
  virtual void Evaluate(ConstBatchRef y, ConstRowVectorRef t, std::span<const int64_t> samples,
                        BatchRef dy) const = 0;
};

using IndexRowVector = Eigen::Matrix<int64_t, 1, Eigen::Dynamic>;

struct OdeSolution {
  Batch y;                     // state at the last time, state_dim × B
  std::vector<Batch> saved;    // IntegrateTimes: the state at times[1], ..., times.back()
  SolveSummary summary;        // nfe, accepted and rejected steps: means over samples, rounded
  IndexRowVector nfe;          // derivative evaluations of each sample
  IndexRowVector accepted;     // accepted steps of each sample
  IndexRowVector rejected;     // rejected steps of each sample
};

// Integrates y0 (state_dim × B, finite) from t0 to t1 (finite, t0 ≠ t1, either direction) on the
// threads of `context` (options.num_threads is not used here). Sample indices in messages are
// first_sample + column. Throws InvalidArgument for bad options, shapes, times or non-finite y0;
// NumericalFailure as described above.
OdeSolution IntegrateBatch(const BatchOdeSystem& system, ConstBatchRef y0, double t0, double t1,
                           const OdeOptions& options, const ExecutionContext& context,
                           int64_t first_sample = 0);
// The same with output times: times has ≥ 2 finite, strictly monotone entries; the solution starts
// at times[0] and solution.saved[k − 1] holds the state at times[k]. Fixed-step methods spread
// num_steps over the whole span, each interval between output times getting at least one step.
OdeSolution IntegrateBatchTimes(const BatchOdeSystem& system, ConstBatchRef y0,
                                const std::vector<double>& times, const OdeOptions& options,
                                const ExecutionContext& context, int64_t first_sample = 0);

struct RoundTripResult {
  Batch latent;            // x_T = encode(x)
  Batch decoded;           // decode(x_T)
  RowVector error;         // max_i |decoded_i − x_i| per sample
  SolveSummary encode_summary;
  SolveSummary decode_summary;
};

// The probability-flow ODE of an SDE and a score. Both are held by reference and must outlive the
// flow. Thread safety: const methods may be called concurrently.
class ProbabilityFlow {
 public:
  // Throws InvalidArgument if score.dim() != sde.dim() or the options are invalid.
  ProbabilityFlow(const Sde& sde, const ScoreModel& score, OdeOptions options = {});
  ~ProbabilityFlow();

  const OdeOptions& options() const { return options_; }
  const Sde& sde() const { return sde_; }
  const ScoreModel& score() const { return score_; }

  // f̃(x(:, j), t(j)) into out(:, j); x and out are d × B, t has B entries in [0, T].
  void Drift(ConstBatchRef x, ConstRowVectorRef t, BatchRef out) const;

  // x (d × B) from t0 to t1, both in [0, T], t0 ≠ t1. solution.y is d × B.
  OdeSolution Integrate(ConstBatchRef x, double t0, double t1, int64_t first_sample = 0) const;
  // States at every entry of times (strictly monotone, in [0, T]) after the first.
  OdeSolution IntegrateTimes(ConstBatchRef x, const std::vector<double>& times,
                             int64_t first_sample = 0) const;
  // Latent codes: data at t = eps to t = T, and back.
  OdeSolution Encode(ConstBatchRef x, double eps, int64_t first_sample = 0) const;
  OdeSolution Decode(ConstBatchRef latent, double eps, int64_t first_sample = 0) const;
  // Encode then decode; the error is what the two solves' tolerances allow.
  RoundTripResult RoundTrip(ConstBatchRef x, double eps, int64_t first_sample = 0) const;

 private:
  class System;
  const Sde& sde_;
  const ScoreModel& score_;
  const ScalarAffineSde* affine_ = nullptr;  // the SDE, when it is VE/VP/sub-VP
  OdeOptions options_;
  std::unique_ptr<ExecutionContext> context_;
  std::unique_ptr<System> system_;
};

}  // namespace scoresde
