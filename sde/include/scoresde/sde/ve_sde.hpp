// Variance-exploding SDE (Song et al., ICLR 2021, eq. 30; continuous NCSN):
//   dx = sqrt(d[σ²(t)]/dt) dw,   σ(t) = σmin (σmax/σmin)^(t/T),
//   g(t) = σ(t) sqrt(2 ln(σmax/σmin) / T).
// The kernel is explicit: kExact gives x_t | x_0 ~ N(x_0, (σ(t)² − σmin²) I), the SDE started at
// the data; kReference gives std σ(t), as the paper's code does (data pre-perturbed by σmin).
// Discrete chain (NCSN): x_t = x_{t−dt} + sqrt(σ(t)² − σ(t−dt)²) z. Prior N(0, σmax² I).
#pragma once

#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

enum class VeKernel { kExact, kReference };

class VeSde final : public ScalarAffineSde {
 public:
  struct Options {
    double sigma_min = 0.01;
    double sigma_max = 50.0;
    double t_final = 1.0;
    VeKernel kernel = VeKernel::kExact;
    void Validate() const;  // 0 < sigma_min < sigma_max, t_final > 0
  };

  VeSde(int dim, Options options);
  explicit VeSde(int dim) : VeSde(dim, Options{}) {}

  const Options& options() const { return options_; }
  // σ(t), the noise scale of the schedule.
  double Sigma(double t) const;

  SdeFamily family() const override { return SdeFamily::kVe; }
  double DriftCoefficient(double) const override { return 0.0; }
  double ScalarDiffusion(double t) const override;
  double MeanCoefficient(double) const override { return 1.0; }
  double MarginalStd(double t) const override;
  double PriorStd() const override { return options_.sigma_max; }
  DiscreteCoefficients Discretize(double t, double dt) const override;

 private:
  Options options_;
  double log_ratio_;  // ln(σmax/σmin)
};

}  // namespace scoresde
