#include "scoresde/sde/scalar_affine_sde.hpp"

#include <cmath>
#include <numbers>

#include "scoresde/sde/check.hpp"

namespace scoresde {

ScalarAffineSde::ScalarAffineSde(const char* where, int dim, double t_final)
    : dim_(dim), t_final_(t_final) {
  Require(dim >= 1, where, "dim", dim, ">= 1");
  Require(std::isfinite(t_final) && t_final > 0.0, where, "t_final", t_final, "finite and > 0");
}

DiscreteCoefficients ScalarAffineSde::Discretize(double t, double dt) const {
  return {DriftCoefficient(t) * dt, ScalarDiffusion(t) * std::sqrt(dt)};
}

void ScalarAffineSde::Drift(ConstBatchRef x, double t, BatchRef f) const {
  f = DriftCoefficient(t) * x;
}

void ScalarAffineSde::DiffusionTimes(ConstBatchRef, double t, ConstBatchRef v,
                                     BatchRef out) const {
  out = ScalarDiffusion(t) * v;
}

void ScalarAffineSde::DiffusionSquaredTimes(ConstBatchRef, double t, ConstBatchRef v,
                                            BatchRef out) const {
  const double g = ScalarDiffusion(t);
  out = (g * g) * v;
}

void ScalarAffineSde::DivergenceOfGGt(ConstBatchRef, double, BatchRef div) const {
  div.setZero();  // G does not depend on x.
}

void ScalarAffineSde::SamplePrior(const NoiseStream& noise, int64_t first_sample,
                                  BatchRef x) const {
  CheckShape("ScalarAffineSde::SamplePrior", "x", x, dim_, -1);
  noise.FillNormal(0, 0, first_sample, x);
  x *= PriorStd();
}

void ScalarAffineSde::PriorLogDensity(ConstBatchRef x, RowVectorRef logp) const {
  CheckShape("ScalarAffineSde::PriorLogDensity", "x", x, dim_, -1);
  CheckShape("ScalarAffineSde::PriorLogDensity", "logp", logp, 1, x.cols());
  const double sigma = PriorStd();
  const double log_norm = -0.5 * dim_ * std::log(2.0 * std::numbers::pi * sigma * sigma);
  logp = (log_norm - 0.5 * x.colwise().squaredNorm().array() / (sigma * sigma)).matrix();
}

}  // namespace scoresde
