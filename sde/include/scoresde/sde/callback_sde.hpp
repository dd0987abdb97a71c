// An SDE given by functions, for users who don't want to subclass Sde. Without an analytic
// ∇·(GGᵀ) it falls back to central finite differences (FiniteDifferenceDivergenceOfGGt); for exact
// derivatives write a templated functor and use AutoDiffSde (autodiff.hpp).
#pragma once

#include <functional>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

class CallbackSde final : public Sde {
 public:
  struct Functions {
    std::function<void(ConstBatchRef x, double t, BatchRef f)> drift;  // required
    // Exactly the one matching the noise type is required:
    std::function<double(double t)> scalar_diffusion;                              // kScalar
    std::function<void(ConstBatchRef x, double t, BatchRef g)> diagonal_diffusion;  // kDiagonal
    std::function<void(ConstVectorRef x, double t, MatrixRef g)> diffusion_matrix;  // kGeneral
    // Optional analytic ∇·(GGᵀ); finite differences otherwise.
    std::function<void(ConstBatchRef x, double t, BatchRef div)> divergence_of_ggt;
  };

  // noise_dim must equal dim unless type is kGeneral. Throws InvalidArgument naming what is wrong.
  CallbackSde(int dim, int noise_dim, NoiseType type, double t_final, Functions functions);

  int dim() const override { return dim_; }
  int noise_dim() const override { return noise_dim_; }
  NoiseType noise_type() const override { return type_; }
  double t_final() const override { return t_final_; }
  void Drift(ConstBatchRef x, double t, BatchRef f) const override;
  double ScalarDiffusion(double t) const override;
  void DiagonalDiffusion(ConstBatchRef x, double t, BatchRef g) const override;
  void DiffusionMatrix(ConstVectorRef x, double t, MatrixRef g) const override;
  void DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const override;
  // True only for scalar noise: callbacks give no ∂G/∂x.
  bool HasDiffusionDerivative() const override { return type_ == NoiseType::kScalar; }

 private:
  int dim_;
  int noise_dim_;
  NoiseType type_;
  double t_final_;
  Functions functions_;
};

}  // namespace scoresde
