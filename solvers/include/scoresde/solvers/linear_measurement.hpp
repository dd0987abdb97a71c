// Linear measurements with Gaussian noise, the observation model of conditional sampling:
//
//   y = A x₀ + e,   e ~ N(0, Σ_y),   A ∈ R^{m×d},   Σ_y symmetric positive semidefinite,
//   log p(y | x₀) = −½ (y − A x₀)ᵀ Σ_y⁻¹ (y − A x₀) − ½ log det(2π Σ_y)   (Σ_y ≻ 0).
//
// Inpainting and imputation observe a subset of coordinates (A = rows of the identity, Σ_y = σ² I,
// often σ = 0); colorization observes an orthogonal mix of the channels; general linear inverse
// problems (deblurring, compressed sensing) use any A. Observations are given as values with NaN
// where a coordinate is unknown (FromMasked), as on the command line (`--observe FILE`).
#pragma once

#include <string_view>
#include <vector>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

struct LinearMeasurement {
  Matrix A;          // m × d, m ≥ 1
  Matrix noise_cov;  // Σ_y, m × m, symmetric positive semidefinite (all zeros: noiseless)
  Vector y;          // m

  int dim() const { return static_cast<int>(A.cols()); }
  int num_observations() const { return static_cast<int>(A.rows()); }
  // Whether Σ_y is exactly zero.
  bool noiseless() const;

  // Throws InvalidArgument ("<where>: <name> = ...; must be ...") unless: m ≥ 1, d ≥ 1 (d == dim
  // when dim ≥ 0); noise_cov is m × m and y has m entries; every entry is finite; Σ_y is
  // symmetric (max |Σ − Σᵀ| ≤ 1e-12 · max(1, max |Σ|)) and positive semidefinite (smallest
  // eigenvalue ≥ −1e-12 · max(1, largest)); and, when Σ_y is singular, A has full row rank (so
  // that A Σ Aᵀ + Σ_y is invertible for every positive definite prior covariance Σ).
  void Validate(std::string_view where, int dim = -1) const;

  // Observed coordinates: observed has d entries, NaN where unknown (±Inf is rejected). A holds
  // the rows e_iᵀ of the observed coordinates i in increasing order, y their values and
  // Σ_y = noise_std² I. Throws InvalidArgument if no coordinate is observed or noise_std is
  // negative or not finite.
  static LinearMeasurement FromMasked(const Vector& observed, double noise_std);
};

// Indices i with observed(i) not NaN, in increasing order.
std::vector<int> ObservedIndices(const Vector& observed);

}  // namespace scoresde
