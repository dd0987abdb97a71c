// SDEs with linear drift and scalar, state-independent noise:
//   dx = a(t) x dt + g(t) dw,   x_t | x_0 ~ N(α(t) x_0, σ_t² I),
// the common base of the VE, VP and sub-VP families of Song et al. (ICLR 2021, section 3.4).
// α(t) = exp(∫_0^t a) and σ_t is the family's kernel std; p_T is approximated by the prior
// N(0, PriorStd()² I).
#pragma once

#include <cstdint>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

enum class SdeFamily { kVe, kVp, kSubVp };

// One step of the family's discrete forward chain from t − dt to t:
//   x_t = x_{t−dt} + drift · x_{t−dt} + diffusion · z,   z ~ N(0, I).
// Reverse diffusion runs this chain backwards (Song et al., appendix E).
struct DiscreteCoefficients {
  double drift = 0.0;
  double diffusion = 0.0;
};

class ScalarAffineSde : public Sde {
 public:
  // dim ≥ 1, t_final > 0 (checked; where names the family in messages).
  ScalarAffineSde(const char* where, int dim, double t_final);

  int dim() const final { return dim_; }
  NoiseType noise_type() const final { return NoiseType::kScalar; }
  double t_final() const final { return t_final_; }

  virtual SdeFamily family() const = 0;
  // a(t) in f(x, t) = a(t) x.
  virtual double DriftCoefficient(double t) const = 0;
  // α(t): E[x_t | x_0] = α(t) x_0.
  virtual double MeanCoefficient(double t) const = 0;
  // σ_t: the standard deviation of x_t given x_0 (per coordinate).
  virtual double MarginalStd(double t) const = 0;
  // The prior p_T ≈ N(0, PriorStd()² I).
  virtual double PriorStd() const = 0;
  // The family's discrete chain (NCSN for VE, DDPM for VP); Euler–Maruyama by default.
  virtual DiscreteCoefficients Discretize(double t, double dt) const;

  void Drift(ConstBatchRef x, double t, BatchRef f) const final;
  void DiffusionTimes(ConstBatchRef x, double t, ConstBatchRef v, BatchRef out) const final;
  void DiffusionSquaredTimes(ConstBatchRef x, double t, ConstBatchRef v,
                             BatchRef out) const final;
  void DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const final;

  // x(:, j) ~ N(0, PriorStd()² I) for sample first_sample + j, from stream `noise` at step 0.
  void SamplePrior(const NoiseStream& noise, int64_t first_sample, BatchRef x) const;
  // log N(x; 0, PriorStd()² I) per column.
  void PriorLogDensity(ConstBatchRef x, RowVectorRef logp) const;

 private:
  int dim_;
  double t_final_;
};

}  // namespace scoresde
