#include "scoresde/sde/vp_sde.hpp"

#include <cmath>

#include "scoresde/sde/check.hpp"

namespace scoresde {

void BetaSchedule::Validate(const char* where) const {
  Require(std::isfinite(beta_min) && beta_min >= 0.0, where, "beta_min", beta_min,
          "finite and >= 0");
  Require(std::isfinite(beta_max) && beta_max >= beta_min && beta_max > 0.0, where, "beta_max",
          beta_max, "finite, > 0 and >= beta_min (" + FormatValue(beta_min) + ")");
  Require(std::isfinite(t_final) && t_final > 0.0, where, "t_final", t_final, "finite and > 0");
}

VpSde::VpSde(int dim, Options options)
    : ScalarAffineSde("VpSde", dim, options.t_final), options_(options) {
  options_.Validate("VpSde::Options");
}

double VpSde::ScalarDiffusion(double t) const { return std::sqrt(Beta(t)); }

double VpSde::MeanCoefficient(double t) const { return std::exp(-0.5 * options_.Integral(t)); }

double VpSde::MarginalStd(double t) const {
  // 1 − α² = 1 − e^{−∫β}, with expm1 for accuracy near t = 0.
  return std::sqrt(-std::expm1(-options_.Integral(t)));
}

DiscreteCoefficients VpSde::Discretize(double t, double dt) const {
  // DDPM: β_i = β(t) dt, x_t = sqrt(1 − β_i) x_{t−dt} + sqrt(β_i) z.
  const double beta_i = Beta(t) * dt;
  Require(beta_i < 1.0, "VpSde::Discretize", "beta(t) * dt", beta_i,
          "< 1 for the DDPM chain (use more steps)");
  return {std::sqrt(1.0 - beta_i) - 1.0, std::sqrt(beta_i)};
}

}  // namespace scoresde
