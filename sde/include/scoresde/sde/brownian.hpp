// A virtual Brownian path: W(s, t) on any interval, consistent across resolutions, with no stored
// history (a Brownian tree on counter-based draws, after Gaines & Lyons 1997 and Li et al. 2020).
//
// The path of each sample is an m-dimensional Wiener process on [t0, t1]. Nodes of a dyadic tree
// carry the increment W and the space-time Lévy area H = (1/h)∫(W_u − W_a − (u−a)/h·W) du of
// their interval; a node is split into halves by the exact conditional law
//   W_left = W/2 + 3H/2 + sqrt(h)/4 · Z1,   H_left = (H − (W_left − W_right)/4)  ± sqrt(h/12)/2 · Z2,
// with Z1, Z2 drawn from the node's own counter. Any interval whose ends lie on the grid of
// spacing (t1 − t0)/2^max_depth is a union of tree nodes and is returned exactly; other times are
// rounded to that grid. A coarse solve and a fine solve therefore see the same path, and the
// integral ∫_s^t (W_u − W_s) du needed by strong-order-1.5 schemes comes with it.
#pragma once

#include <cstdint>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

class BrownianPath {
 public:
  struct Options {
    double t0 = 0.0;
    double t1 = 1.0;
    int max_depth = 40;  // grid spacing (t1 − t0)/2^max_depth; 1 ≤ max_depth ≤ 42
    Stream stream = Stream::kBrownian;
    void Validate() const;  // throws InvalidArgument
  };

  // dim ≥ 1 is m, the dimension of W. Throws InvalidArgument on bad options.
  BrownianPath(int dim, uint64_t seed, Options options);
  BrownianPath(int dim, uint64_t seed) : BrownianPath(dim, seed, Options{}) {}

  int dim() const { return dim_; }
  const Options& options() const { return options_; }

  // dw(:, j) = W(t) − W(s) for sample first_sample + j; t0 ≤ s ≤ t ≤ t1, dw has dim() rows.
  void Increment(double s, double t, int64_t first_sample, BatchRef dw) const;
  // Also dz(:, j) = ∫_s^t (W(u) − W(s)) du.
  void Increment(double s, double t, int64_t first_sample, BatchRef dw, BatchRef dz) const;

 private:
  void IncrementImpl(double s, double t, int64_t first_sample, BatchRef dw, BatchRef* dz) const;
  int dim_;
  uint64_t seed_;
  Options options_;
};

}  // namespace scoresde
