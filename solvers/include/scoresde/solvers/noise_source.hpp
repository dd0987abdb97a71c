// Where a step's Brownian increments come from.
//
// A step from t to t + dt (either direction, h = |dt|) needs, per sample, the increment ΔW of an
// m-dimensional Wiener process W̄ running in the solve's own time τ (τ increases in both
// directions), and strong-order-1.5 schemes also need
//   ΔZ = ∫_0^h (W̄_{τ+u} − W̄_τ) du = I_(1,0)     (Kloeden & Platen 1992, section 5.8).
// Jointly ΔW ~ N(0, h), ΔZ ~ N(0, h³/3), Cov(ΔW, ΔZ) = h²/2, independent across coordinates.
//
//   IidNoise            i.i.d. per-step draws from a NoiseStream keyed by (sample, step, substep):
//                       ΔW = √h z₁, ΔZ = (h^{3/2}/2)(z₁ + z₂/√3). Sampling uses this.
//   BrownianNoise       increments of one BrownianPath (a virtual Brownian tree), so a coarse and a
//                       fine solve see the same path: convergence studies use this.
//   BrownianGridNoise   a path fixed on a finest grid of 2^level cells for a range of samples, summed
//                       to any coarser aligned grid: read from a BrownianPath, or generated cell by
//                       cell from counter-based draws (i.i.d. (ΔW, ΔZ) per cell with the joint law
//                       above, keyed by (sample, cell)), the construction of style.md §6 and Higham
//                       (SIAM Review 43, 2001). Either way every resolution sees one path.
// For a path W of forward time, the reverse direction uses W̄_u = W(t) − W(t − u), whose increment
// over a step from t down to t − h is W(t) − W(t − h) and whose ΔZ is h·ΔW − ∫_{t−h}^t (W − W(t−h)).
//
// Every method is const and thread-safe; the noise of sample j depends only on j.
#pragma once

#include <cstdint>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/brownian.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

class NoiseSource {
 public:
  virtual ~NoiseSource() = default;

  // m, the number of rows of each increment.
  virtual int dim() const = 0;

  // dw(:, j) = ΔW of sample first_sample + j for step `step` from t to t + dt (dt ≠ 0). dw is m × B.
  virtual void Increment(int64_t step, double t, double dt, int64_t first_sample,
                         BatchRef dw) const = 0;
  // Also dz(:, j) = ΔZ. dw and dz are m × B.
  virtual void IncrementWithArea(int64_t step, double t, double dt, int64_t first_sample,
                                 BatchRef dw, BatchRef dz) const = 0;
};

class IidNoise final : public NoiseSource {
 public:
  // dim ≥ 1. Draws z₁ from (step, first_substep) and z₂ from (step, first_substep + 1) of
  // `stream`; first_substep + 1 must fit the stream's 16-bit substep field.
  IidNoise(int dim, NoiseStream stream, uint32_t first_substep = 0);

  int dim() const override { return dim_; }
  void Increment(int64_t step, double t, double dt, int64_t first_sample,
                 BatchRef dw) const override;
  void IncrementWithArea(int64_t step, double t, double dt, int64_t first_sample, BatchRef dw,
                         BatchRef dz) const override;

 private:
  int dim_;
  NoiseStream stream_;
  uint32_t first_substep_;
};

class BrownianNoise final : public NoiseSource {
 public:
  // The path is held by reference and must outlive this object. Steps must lie in the path's
  // [t0, t1]; times are rounded to its finest grid.
  explicit BrownianNoise(const BrownianPath& path) : path_(&path) {}

  int dim() const override { return path_->dim(); }
  void Increment(int64_t step, double t, double dt, int64_t first_sample,
                 BatchRef dw) const override;
  void IncrementWithArea(int64_t step, double t, double dt, int64_t first_sample, BatchRef dw,
                         BatchRef dz) const override;

 private:
  const BrownianPath* path_;
};

class BrownianGridNoise final : public NoiseSource {
 public:
  // Reads (ΔW, ΔZ) of every cell of the uniform grid of 2^level cells on the path's [t0, t1] for
  // samples [first_sample, first_sample + num_samples): level·2^level tree nodes per sample.
  // Memory: about 4 · m · 2^level · num_samples doubles. 0 ≤ level ≤ path.options().max_depth,
  // num_samples ≥ 1; throws InvalidArgument otherwise.
  BrownianGridNoise(const BrownianPath& path, int level, int64_t first_sample,
                    int64_t num_samples);
  // Generates the cells on [t0, t1] (t0 < t1, finite) from `stream`: cell c of sample j gets
  // z₁, z₂ from (step c, substeps 0 and 1) and (ΔW, ΔZ) = (√c_len z₁, (c_len^{3/2}/2)(z₁ + z₂/√3)).
  // dim ≥ 1, 0 ≤ level ≤ 24, num_samples ≥ 1. Cost O(1) per cell (a tree read is O(level)).
  BrownianGridNoise(int dim, double t0, double t1, int level, const NoiseStream& stream,
                    int64_t first_sample, int64_t num_samples);

  int dim() const override { return dim_; }
  int level() const { return level_; }
  // Steps must start and end on the grid (within 10⁻⁶ of a cell) and cover samples inside the
  // range read; throws InvalidArgument otherwise. A step that is one cell of some level costs a
  // copy; others are summed from O(level) aligned blocks.
  void Increment(int64_t step, double t, double dt, int64_t first_sample,
                 BatchRef dw) const override;
  void IncrementWithArea(int64_t step, double t, double dt, int64_t first_sample, BatchRef dw,
                         BatchRef dz) const override;

 private:
  void Fill(double t, double dt, int64_t first_sample, BatchRef dw, BatchRef* dz) const;
  // Sums the finest cells into every coarser level (pairwise, with ΔZ by concatenation).
  void BuildLevels();

  int dim_;
  int level_;
  double t0_;
  double cell_;  // finest cell length
  int64_t first_sample_;
  int64_t num_samples_;
  // Level ℓ = 0 … level: 2^ℓ cells; cell c of sample j is column c·num_samples + j of w_[ℓ] and
  // z_[ℓ] (m rows), so a step on an aligned grid is one contiguous block.
  std::vector<Matrix> w_;
  std::vector<Matrix> z_;
};

}  // namespace scoresde
