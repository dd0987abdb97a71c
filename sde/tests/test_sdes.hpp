// Small SDEs shared by the sde tests: one templated functor per noise structure, with analytic
// divergences written out by hand so that automatic and finite differences can be checked.
#pragma once

#include <cmath>

#include "scoresde/sde/sde.hpp"

namespace scoresde::testing {

// Diagonal noise g_i(x) = 0.5 + x_i² + 0.1·x_{(i+1) mod d}·t: (GGᵀ)_ii = g_i², so
// (∇·GGᵀ)_i = 2 g_i ∂g_i/∂x_i with ∂g_i/∂x_i = 2x_i (+ 0.1 t when d = 1 and the neighbour is x_i).
struct DiagonalFunctor {
  int d = 3;
  int dim() const { return d; }
  int noise_dim() const { return d; }
  NoiseType noise_type() const { return NoiseType::kDiagonal; }
  double t_final() const { return 1.0; }
  template <typename T>
  void Drift(const T* x, double t, T* f) const {
    for (int i = 0; i < d; ++i) f[i] = -x[i] * (1.0 + t);
  }
  template <typename T>
  void Diffusion(const T* x, double t, T* g) const {
    for (int i = 0; i < d; ++i) g[i] = 0.5 + x[i] * x[i] + 0.1 * x[(i + 1) % d] * t;
  }
  Vector AnalyticDivergence(const Vector& x, double t) const {
    Vector div(d);
    for (int i = 0; i < d; ++i) {
      const double g = 0.5 + x[i] * x[i] + 0.1 * x[(i + 1) % d] * t;
      div[i] = 2.0 * g * (2.0 * x[i] + (d == 1 ? 0.1 * t : 0.0));
    }
    return div;
  }
};

// General noise, d = 2, m = 3: G(x) = [[x0, 1, x1], [sin x0, x0 x1, 2]].
// GGᵀ = [[x0² + 1 + x1², x0 sin x0 + x0 x1 + 2 x1], [·, sin² x0 + x0² x1² + 4]];
// (∇·GGᵀ)_0 = ∂_0(x0² + 1 + x1²) + ∂_1(x0 sin x0 + x0 x1 + 2x1) = 2x0 + x0 + 2,
// (∇·GGᵀ)_1 = ∂_0(x0 sin x0 + x0 x1 + 2x1) + ∂_1(sin² x0 + x0² x1² + 4)
//           = sin x0 + x0 cos x0 + x1 + 2 x0² x1.
struct GeneralFunctor {
  int dim() const { return 2; }
  int noise_dim() const { return 3; }
  NoiseType noise_type() const { return NoiseType::kGeneral; }
  double t_final() const { return 1.0; }
  template <typename T>
  void Drift(const T* x, double, T* f) const {
    f[0] = x[1];
    f[1] = -x[0];
  }
  template <typename T>
  void Diffusion(const T* x, double, T* g) const {
    using std::sin;
    // Column-major 2 × 3.
    g[0] = x[0];
    g[1] = sin(x[0]);
    g[2] = T(1.0);
    g[3] = x[0] * x[1];
    g[4] = x[1];
    g[5] = T(2.0);
  }
  static Vector AnalyticDivergence(const Vector& x) {
    Vector div(2);
    div[0] = 3.0 * x[0] + 2.0;
    div[1] = std::sin(x[0]) + x[0] * std::cos(x[0]) + x[1] + 2.0 * x[0] * x[0] * x[1];
    return div;
  }
};

}  // namespace scoresde::testing
