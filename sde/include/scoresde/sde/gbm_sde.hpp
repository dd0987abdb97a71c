// Geometric Brownian motion per coordinate, a state-dependent (diagonal-noise) reference:
//   dX_i = μ_i X_i dt + σ_i X_i dW_i,   G = diag(σ x),   GGᵀ = diag(σ² x²),   ∇·(GGᵀ) = 2σ² x.
// If X_0 ~ LogNormal(m_0, s_0²) then X_t ~ LogNormal(m_0 + (μ − σ²/2) t, s_0² + σ² t). Reverse-time
// sampling recovers the law of X_0 only with the divergence term (design.md, section 2).
#pragma once

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

class GbmSde final : public Sde {
 public:
  struct Options {
    Vector mu;     // drift rates, one per coordinate
    Vector sigma;  // volatilities, one per coordinate, > 0
    double t_final = 1.0;
    void Validate() const;  // same sizes ≥ 1, finite, sigma > 0, t_final > 0
  };

  explicit GbmSde(Options options);
  // The same μ and σ for every coordinate.
  GbmSde(int dim, double mu, double sigma, double t_final = 1.0);

  const Options& options() const { return options_; }

  int dim() const override { return static_cast<int>(options_.mu.size()); }
  NoiseType noise_type() const override { return NoiseType::kDiagonal; }
  double t_final() const override { return options_.t_final; }
  void Drift(ConstBatchRef x, double t, BatchRef f) const override;
  void DiagonalDiffusion(ConstBatchRef x, double t, BatchRef g) const override;
  void DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const override;
  bool HasDiffusionDerivative() const override { return true; }
  void DiagonalDiffusionDerivative(ConstBatchRef x, double t, BatchRef dg) const override;

 private:
  Options options_;
};

}  // namespace scoresde
