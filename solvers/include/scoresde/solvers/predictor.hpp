// The predictor interface: one step of an SDE discretization, forward or in reverse time.
//
// A predictor advances a batch from t to t + dt (see step_problem.hpp for the two directions) and
// declares what it needs and what it achieves, as data: its strong and weak orders per noise
// structure, whether it needs ΔZ = ∫(W − W_τ) (strong-order-1.5 schemes), score evaluations per
// step, and Supports(sde), which PcSampler and SdeIntegrator check at construction.
//
// Steps are usable on their own (conditional samplers build on them): a step works on any column
// range of a batch, and first_sample names the range's first sample so that its noise is the same
// whatever the chunking.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/noise_source.hpp"
#include "scoresde/solvers/step_problem.hpp"

namespace scoresde {

class Predictor {
 public:
  virtual ~Predictor() = default;

  // The name used on the command line ("euler-maruyama", "milstein", ...).
  virtual std::string_view name() const = 0;

  // Orders of convergence guaranteed for each noise structure (kScalar is additive noise g(t)I);
  // 0 where the predictor does not apply. Special structure can do better (e.g. Milstein has
  // strong order 1 for commutative general noise); the declared value is the guarantee.
  virtual double strong_order(NoiseType type) const = 0;
  virtual double weak_order(NoiseType type) const = 0;

  // Whether the predictor can step this SDE; if not and reason is non-null, *reason says why.
  virtual bool Supports(const Sde& sde, std::string* reason = nullptr) const = 0;
  // Whether Step draws ΔZ (IncrementWithArea) in addition to ΔW.
  virtual bool needs_area() const { return false; }
  // Score evaluations per step when integrating the reverse-time SDE.
  virtual int nfe_per_step() const = 0;
  // Throws InvalidArgument if steps of size h > 0 with upper end in [t_low, t_high] are not
  // possible on this SDE (e.g. the DDPM chain needs β(t)h < 1). Called by the samplers before
  // any work; the default accepts every step.
  virtual void CheckStepSize(const Sde& sde, double t_low, double t_high, double h) const;

  // Advances x (d × B; column j is sample first_sample + j) from t to t + dt in place. `step`
  // keys the noise (noise.Increment(step, t, dt, ...)). Preconditions (checked by the samplers,
  // not here): Supports(*problem.sde), dt ≠ 0 with the direction of the problem, noise.dim() ==
  // sde.noise_dim(). Non-finite values are not checked here either; callers check the state.
  virtual void Step(const StepProblem& problem, double t, double dt, int64_t step,
                    const NoiseSource& noise, int64_t first_sample, BatchRef x,
                    StepWorkspace* workspace) const = 0;
};

}  // namespace scoresde
