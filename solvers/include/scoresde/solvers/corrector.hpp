// The corrector interface: score-based MCMC steps that leave p_t invariant (Song et al., ICLR 2021,
// section 4.2, Algorithms 4 and 5), applied at one noise level t after a predictor step.
//
// Langevin:  x ← x + ε s(x, t) + √(2ε) z,  z ~ N(0, I).
// Step size from the signal-to-noise ratio r: the paper's rule ε = 2α (r‖z‖/‖s‖)² uses norms
// averaged over the batch (kBatchAverage, which couples the samples of a batch). Applied per
// sample it would make ε depend on the sample's own state and bias the law (+97% covariance on a
// 5-d Gaussian at r = 0.16), so it is not offered. The default applies the rule in expectation:
//   ε_t = 2α r² E‖z‖² / E_{p_t}‖s‖² = 2α r² d / E_{p_t}‖s‖²,
// one deterministic value per level, so samples stay independent (kExpectation). α is 1 for VE
// and α_i = 1 − β(t)h for VP, as in the paper's code; sub-VP uses the same α_i of its β schedule
// (the paper's code has no α for sub-VP and fails there); other SDEs use α = 1.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/step_problem.hpp"

namespace scoresde {

enum class LangevinStepRule {
  kExpectation,   // ε_t = 2α r² d / E‖s_t‖², independent samples (default)
  kBatchAverage,  // the paper's rule: ε = 2α (r mean‖z‖ / mean‖s‖)² over the batch given
};
std::string_view ToString(LangevinStepRule rule);

// What a corrector knows about the level it corrects at.
struct CorrectorLevel {
  double t = 0.0;    // the level's time
  double h = 0.0;    // the level spacing (> 0), which sets α_i of the VP chain
  double snr = 0.16;
  LangevinStepRule rule = LangevinStepRule::kExpectation;
  // E_{x ~ p_t}‖s(x, t)‖² for the expectation rule (closed form or pilot estimate); NaN if unknown.
  double expected_squared_score_norm = std::numeric_limits<double>::quiet_NaN();
};

class Corrector {
 public:
  virtual ~Corrector() = default;

  // The command-line name ("langevin", "annealed-langevin", "none").
  virtual std::string_view name() const = 0;
  virtual bool Supports(const Sde& sde, std::string* reason = nullptr) const = 0;
  // Score evaluations per corrector step.
  virtual int nfe_per_step() const = 0;
  // Whether Correct needs level.expected_squared_score_norm under this rule.
  virtual bool NeedsExpectedSquaredNorm(LangevinStepRule) const { return false; }

  // One corrector step at level.t on x (d × B; column j is sample first_sample + j), in place.
  // z is drawn from noise at (step, substep). Needs a reverse problem (a score). Preconditions
  // (checked by PcSampler, not here): Supports(*problem.sde), a finite positive
  // expected_squared_score_norm where NeedsExpectedSquaredNorm(level.rule).
  virtual void Correct(const StepProblem& problem, const CorrectorLevel& level, int64_t step,
                       uint32_t substep, const NoiseStream& noise, int64_t first_sample,
                       BatchRef x, StepWorkspace* workspace) const = 0;
};

// α of the step-size rule for a level at time t with spacing h (see above). Throws
// InvalidArgument for VP/sub-VP if β(t)h ≥ 1 (too few levels for the discrete chain).
double LangevinAlpha(const Sde& sde, double t, double h);

}  // namespace scoresde
