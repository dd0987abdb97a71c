// Sub-variance-preserving SDE (Song et al., ICLR 2021, eq. 34):
//   dx = −½β(t) x dt + sqrt(β(t)(1 − e^{−2∫_0^t β})) dw,
//   x_t | x_0 ~ N(α x_0, (1 − α²)² I),   α(t) = exp(−½∫_0^t β).
// Its variance is bounded by the VP SDE's at every t. Discrete chain: Euler–Maruyama. Prior N(0, I).
#pragma once

#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {

class SubVpSde final : public ScalarAffineSde {
 public:
  using Options = BetaSchedule;

  SubVpSde(int dim, Options options);
  explicit SubVpSde(int dim) : SubVpSde(dim, Options{}) {}

  const Options& options() const { return options_; }
  double Beta(double t) const { return options_.Beta(t); }

  SdeFamily family() const override { return SdeFamily::kSubVp; }
  double DriftCoefficient(double t) const override { return -0.5 * Beta(t); }
  double ScalarDiffusion(double t) const override;
  double MeanCoefficient(double t) const override;
  double MarginalStd(double t) const override;
  double PriorStd() const override { return 1.0; }

 private:
  Options options_;
};

}  // namespace scoresde
