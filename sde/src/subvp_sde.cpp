#include "scoresde/sde/subvp_sde.hpp"

#include <cmath>

namespace scoresde {

SubVpSde::SubVpSde(int dim, Options options)
    : ScalarAffineSde("SubVpSde", dim, options.t_final), options_(options) {
  options_.Validate("SubVpSde::Options");
}

double SubVpSde::ScalarDiffusion(double t) const {
  return std::sqrt(Beta(t) * -std::expm1(-2.0 * options_.Integral(t)));
}

double SubVpSde::MeanCoefficient(double t) const { return std::exp(-0.5 * options_.Integral(t)); }

double SubVpSde::MarginalStd(double t) const { return -std::expm1(-options_.Integral(t)); }

}  // namespace scoresde
