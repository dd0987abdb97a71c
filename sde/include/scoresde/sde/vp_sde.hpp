// Variance-preserving SDE (Song et al., ICLR 2021, eq. 32; continuous DDPM):
//   dx = −½β(t) x dt + sqrt(β(t)) dw,   β(t) = βmin + (t/T)(βmax − βmin),
//   x_t | x_0 ~ N(α x_0, (1 − α²) I),   α(t) = exp(−½∫_0^t β).
// Discrete chain (DDPM): β_i = β(t) dt, x_t = sqrt(1 − β_i) x_{t−dt} + sqrt(β_i) z. Prior N(0, I).
#pragma once

#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

struct BetaSchedule {
  double beta_min = 0.1;
  double beta_max = 20.0;
  double t_final = 1.0;
  void Validate(const char* where) const;  // 0 ≤ beta_min ≤ beta_max, beta_max > 0, t_final > 0
  double Beta(double t) const { return beta_min + (t / t_final) * (beta_max - beta_min); }
  // ∫_0^t β(s) ds.
  double Integral(double t) const {
    return beta_min * t + 0.5 * (beta_max - beta_min) * t * t / t_final;
  }
};

class VpSde final : public ScalarAffineSde {
 public:
  using Options = BetaSchedule;

  VpSde(int dim, Options options);
  explicit VpSde(int dim) : VpSde(dim, Options{}) {}

  const Options& options() const { return options_; }
  double Beta(double t) const { return options_.Beta(t); }

  SdeFamily family() const override { return SdeFamily::kVp; }
  double DriftCoefficient(double t) const override { return -0.5 * Beta(t); }
  double ScalarDiffusion(double t) const override;
  double MeanCoefficient(double t) const override;
  double MarginalStd(double t) const override;
  double PriorStd() const override { return 1.0; }
  DiscreteCoefficients Discretize(double t, double dt) const override;

 private:
  Options options_;
};

}  // namespace scoresde
