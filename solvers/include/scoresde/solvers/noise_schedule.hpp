// The signal-to-noise schedule of a scalar-affine SDE, the coordinates of the fast ODE samplers.
//
// For the VE, VP and sub-VP families x_t = α_t x_0 + σ_t z, and the probability-flow ODE is
//   dx/dt = (d log α_t/dt) x + (g²(t) / (2σ_t)) ε(x, t),   ε = −σ_t ∇ₓ log p_t  (noise prediction),
// with g² = dσ_t²/dt − 2 (d log α_t/dt) σ_t² (Lu et al., "DPM-Solver", NeurIPS 2022, eq. 2.3–2.4).
// In the half-log-SNR λ = log(α_t/σ_t), strictly decreasing in t, its exact solution is
//   x_t = (α_t/α_s) x_s − α_t ∫_{λ_s}^{λ_t} e^{−λ} ε(x_λ, λ) dλ            (Lu et al., eq. 3.4),
// and in the EDM noise level σ̃ = σ_t/α_t = e^{−λ} with x̂ = x/α_t it is
//   dx̂/dσ̃ = (x̂ − D(x̂; σ̃)) / σ̃,   D = x̂ + σ̃² α_t ∇ₓ log p_t(α_t x̂) = (x + σ_t² s)/α_t
// (Karras et al., "Elucidating the design space", NeurIPS 2022, eq. 4 with s(t) = α_t; D is the
// data prediction x̂₀ of Lu et al. 2022b).
#pragma once

#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

class NoiseSchedule {
 public:
  // The SDE is held by reference and must outlive the schedule.
  explicit NoiseSchedule(const ScalarAffineSde& sde) : sde_(sde) {}

  const ScalarAffineSde& sde() const { return sde_; }
  double Alpha(double t) const { return sde_.MeanCoefficient(t); }
  double Sigma(double t) const { return sde_.MarginalStd(t); }
  // λ(t) = log(α_t / σ_t); +∞ where σ_t = 0.
  double Lambda(double t) const;
  // The t ∈ [0, T] with λ(t) = lambda, by bisection to the last bit (λ is strictly decreasing).
  // Throws InvalidArgument unless λ(T) ≤ lambda ≤ λ(0) (within 1e-12 relative, which is clamped)
  // and lambda is not NaN.
  double TimeOfLambda(double lambda) const;
  // σ̃(t) = σ_t / α_t and its inverse.
  double EdmSigma(double t) const { return Sigma(t) / Alpha(t); }
  double TimeOfEdmSigma(double sigma) const;

 private:
  const ScalarAffineSde& sde_;
};

}  // namespace scoresde
