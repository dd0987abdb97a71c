#include "scoresde/sde/gbm_sde.hpp"

#include <cmath>

#include "scoresde/sde/check.hpp"

namespace scoresde {

void GbmSde::Options::Validate() const {
  constexpr const char* kWhere = "GbmSde::Options";
  Require(mu.size() >= 1, kWhere, "mu.size()", static_cast<int64_t>(mu.size()), ">= 1");
  Require(sigma.size() == mu.size(), kWhere, "sigma.size()", static_cast<int64_t>(sigma.size()),
          "equal to mu.size() (" + std::to_string(mu.size()) + ")");
  CheckFinite(kWhere, "mu", mu);
  CheckFinite(kWhere, "sigma", sigma);
  for (Eigen::Index i = 0; i < sigma.size(); ++i) {
    Require(sigma(i) > 0.0, kWhere, "sigma[" + std::to_string(i) + "]", sigma(i), "> 0");
  }
  Require(std::isfinite(t_final) && t_final > 0.0, kWhere, "t_final", t_final, "finite and > 0");
}

GbmSde::GbmSde(Options options) : options_(std::move(options)) { options_.Validate(); }

GbmSde::GbmSde(int dim, double mu, double sigma, double t_final)
    : GbmSde(Options{Vector::Constant(std::max(dim, 0), mu), Vector::Constant(std::max(dim, 0), sigma),
                     t_final}) {}

void GbmSde::Drift(ConstBatchRef x, double, BatchRef f) const {
  f = x.array().colwise() * options_.mu.array();
}

void GbmSde::DiagonalDiffusion(ConstBatchRef x, double, BatchRef g) const {
  g = x.array().colwise() * options_.sigma.array();
}

void GbmSde::DivergenceOfGGt(ConstBatchRef x, double, BatchRef div) const {
  // ∂(σ² x²)/∂x = 2σ² x.
  div = x.array().colwise() * (2.0 * options_.sigma.array().square());
}

void GbmSde::DiagonalDiffusionDerivative(ConstBatchRef x, double, BatchRef dg) const {
  dg = options_.sigma.replicate(1, x.cols());
}

}  // namespace scoresde
