// Linear SDE with a matrix-valued, time-dependent diffusion:
//   dx = (F x + c) dt + G(t) dw,   F d × d, c ∈ R^d, G(t) d × m.
// Gaussians stay Gaussian: for x_0 ~ N(μ_0, Σ_0), dm/dt = F m + c and dΣ/dt = FΣ + ΣFᵀ + G Gᵀ
// (verification/ integrates these for its references). G does not depend on x, so ∇·(GGᵀ) = 0.
#pragma once

#include <functional>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

class LinearSde final : public Sde {
 public:
  struct Options {
    Matrix drift_matrix;                       // F, d × d
    Vector drift_offset;                       // c, d (empty means zero)
    std::function<Matrix(double)> diffusion;   // t ↦ G(t), d × m
    double t_final = 1.0;
  };

  // Checks shapes (G(0) and G(T) are probed), finiteness and t_final > 0.
  explicit LinearSde(Options options);

  const Options& options() const { return options_; }
  // G(t), d × m.
  Matrix DiffusionAt(double t) const;

  int dim() const override { return static_cast<int>(options_.drift_matrix.rows()); }
  int noise_dim() const override { return noise_dim_; }
  NoiseType noise_type() const override { return NoiseType::kGeneral; }
  double t_final() const override { return options_.t_final; }
  void Drift(ConstBatchRef x, double t, BatchRef f) const override;
  void DiffusionMatrix(ConstVectorRef x, double t, MatrixRef g) const override;
  void DiffusionTimes(ConstBatchRef x, double t, ConstBatchRef v, BatchRef out) const override;
  void DiffusionSquaredTimes(ConstBatchRef x, double t, ConstBatchRef v,
                             BatchRef out) const override;
  void DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const override;
  bool HasDiffusionDerivative() const override { return true; }
  void DiffusionJacobian(ConstVectorRef x, double t, std::vector<Matrix>* dg) const override;

 private:
  Options options_;
  int noise_dim_;
};

}  // namespace scoresde
