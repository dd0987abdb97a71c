// Itô SDEs with explicit noise structure:   dx = f(x, t) dt + G(x, t) dw,   t ∈ [0, T],
// x ∈ R^d, w an m-dimensional Wiener process (Song et al., ICLR 2021, eq. 5).
//
// The structure is declared, so solvers use the cheapest form and never build a d × d matrix they
// don't need:
//   kScalar    G = g(t) I            (m = d)
//   kDiagonal  G = diag(g(x, t))     (m = d)
//   kGeneral   G(x, t) is d × m
// The reverse-time SDE and the probability-flow ODE need the row-wise divergence
//   (∇·(GGᵀ))_i = Σ_j ∂(GGᵀ)_ij / ∂x_j,
// which every SDE must provide (it is pure virtual so that nobody drops it by accident).
//
// Thread safety: every method is const and may be called concurrently on disjoint batches.
#pragma once

#include <string_view>
#include <vector>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

enum class NoiseType { kScalar, kDiagonal, kGeneral };
std::string_view ToString(NoiseType type);

class Sde {
 public:
  virtual ~Sde() = default;

  virtual int dim() const = 0;
  // m, the dimension of w; equals dim() unless the noise is general.
  virtual int noise_dim() const { return dim(); }
  virtual NoiseType noise_type() const = 0;
  // T, the end of the time interval.
  virtual double t_final() const = 0;

  // f(x, t): x and f are d × B.
  virtual void Drift(ConstBatchRef x, double t, BatchRef f) const = 0;

  // g(t) for scalar noise; throws InvalidArgument for the other structures.
  virtual double ScalarDiffusion(double t) const;
  // The diagonal of G(x, t), d × B, for scalar and diagonal noise; throws for general noise.
  virtual void DiagonalDiffusion(ConstBatchRef x, double t, BatchRef g) const;
  // G(x, t) of one sample (x has d entries), d × m. Built from the structure by default.
  virtual void DiffusionMatrix(ConstVectorRef x, double t, MatrixRef g) const;

  // out = G(x, t) v; v is m × B, out is d × B.
  virtual void DiffusionTimes(ConstBatchRef x, double t, ConstBatchRef v, BatchRef out) const;
  // out = G Gᵀ(x, t) v; v and out are d × B.
  virtual void DiffusionSquaredTimes(ConstBatchRef x, double t, ConstBatchRef v,
                                     BatchRef out) const;

  // ∇·(GGᵀ)(x, t), d × B.
  virtual void DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const = 0;

  // Derivatives of G with respect to x, needed by Milstein and strong-order-1.5 schemes.
  // Scalar noise always has them (they are zero).
  virtual bool HasDiffusionDerivative() const;
  // Diagonal (or scalar) noise: ∂G_ii/∂x_i, d × B.
  virtual void DiagonalDiffusionDerivative(ConstBatchRef x, double t, BatchRef dg) const;
  // One sample: (*dg)[l] = ∂G/∂x_l (d × m) for l = 0, ..., d − 1.
  virtual void DiffusionJacobian(ConstVectorRef x, double t, std::vector<Matrix>* dg) const;
};

// ∇·(GGᵀ) by central differences of G Gᵀ (two diffusion evaluations per coordinate and sample),
// with step h_j = cbrt(machine epsilon) · max(1, |x_j|), error O(h²). The fallback for SDEs that
// have neither an analytic divergence nor a templated functor for automatic differentiation.
void FiniteDifferenceDivergenceOfGGt(const Sde& sde, ConstBatchRef x, double t, BatchRef div);

}  // namespace scoresde
