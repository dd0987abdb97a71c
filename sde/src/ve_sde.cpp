#include "scoresde/sde/ve_sde.hpp"

#include <algorithm>
#include <cmath>

#include "scoresde/sde/check.hpp"

namespace scoresde {

void VeSde::Options::Validate() const {
  constexpr const char* kWhere = "VeSde::Options";
  Require(std::isfinite(sigma_min) && sigma_min > 0.0, kWhere, "sigma_min", sigma_min,
          "finite and > 0");
  Require(std::isfinite(sigma_max) && sigma_max > sigma_min, kWhere, "sigma_max", sigma_max,
          "finite and > sigma_min (" + FormatValue(sigma_min) + ")");
  Require(std::isfinite(t_final) && t_final > 0.0, kWhere, "t_final", t_final, "finite and > 0");
}

VeSde::VeSde(int dim, Options options)
    : ScalarAffineSde("VeSde", dim, options.t_final),
      options_(options),
      log_ratio_(std::log(options.sigma_max / options.sigma_min)) {
  options_.Validate();
}

double VeSde::Sigma(double t) const {
  return options_.sigma_min * std::exp(log_ratio_ * t / options_.t_final);
}

double VeSde::ScalarDiffusion(double t) const {
  // d[σ²]/dt = σ² · 2 ln(σmax/σmin)/T.
  return Sigma(t) * std::sqrt(2.0 * log_ratio_ / options_.t_final);
}

double VeSde::MarginalStd(double t) const {
  if (options_.kernel == VeKernel::kReference) return Sigma(t);
  // σ(t)² − σmin² = σmin² (e^{2 ln(σmax/σmin) t/T} − 1), with expm1 for accuracy near t = 0.
  return options_.sigma_min * std::sqrt(std::expm1(2.0 * log_ratio_ * t / options_.t_final));
}

DiscreteCoefficients VeSde::Discretize(double t, double dt) const {
  const double sigma = Sigma(t);
  // The chain starts where the kernel does: at σmin for the exact kernel (variance σ(t)² − σmin²
  // after the chain), and at 0 for the reference kernel, whose first step adds σ(t_1)² as the
  // paper's code does (σ_{−1} = 0).
  double previous = Sigma(std::max(t - dt, 0.0));
  if (options_.kernel == VeKernel::kReference && t - dt <= 0.0) previous = 0.0;
  return {0.0, std::sqrt(sigma * sigma - previous * previous)};
}

}  // namespace scoresde
