// Statistics for comparing samples with references: moments with standard errors, the Fréchet
// distance between Gaussians, sliced Wasserstein-2 and the kernel MMD.
//
//   Fréchet:  d² = ‖m1 − m2‖² + tr(C1 + C2 − 2 (C1^{1/2} C2 C1^{1/2})^{1/2})
//             (Dowson & Landau, J. Multivariate Anal. 12, 1982; the "FID" of Heusel et al. 2017)
//   SW_2:     SW² = E_θ W_2²(θᵀa, θᵀb), θ uniform on the unit sphere (Bonneel et al., J. Math.
//             Imaging Vis. 51, 2015), W_2 in 1-D from the quantile functions
//   MMD²:     E k(a, a') + E k(b, b') − 2 E k(a, b), k(x, y) = exp(−‖x − y‖² / (2 h²)), unbiased
//             U-statistic MMD²_u (Gretton et al., "A Kernel Two-Sample Test", JMLR 13, 2012)
//
// Samples are d × n batches, one sample per column. Every function throws InvalidArgument
// (naming the argument) on mismatched dimensions, fewer than 2 samples, or non-finite values.
#pragma once

#include <cstdint>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

struct MomentEstimate {
  Vector mean;         // d
  Vector mean_stderr;  // d: sqrt(S_ii / n)
  Matrix cov;          // d × d, unbiased (divisor n − 1)
  Matrix cov_stderr;   // d × d: sqrt((m4_ij − m2_ij²) / n)
  int64_t count = 0;   // n
};

// Sample mean and covariance with their standard errors. Two passes (mean, then centred sums) so
// that a large common offset does not cancel catastrophically. The covariance standard error uses
// the sample fourth moments: with D = x − x̄, m2_ij = Σ D_i D_j / n and m4_ij = Σ D_i² D_j² / n,
// Var(ĉ_ij) ≈ (m4_ij − m2_ij²) / n (the delta method; exact to O(1/n²)).
// samples is d × n with n ≥ 2, finite.
MomentEstimate EstimateMoments(ConstBatchRef samples);

// Fréchet (2-Wasserstein) distance squared between N(m1, c1) and N(m2, c2). Both square roots come
// from symmetric eigendecompositions; eigenvalues in [−1e-10 · λ_max, 0) are rounding noise of a
// positive semidefinite matrix (sample covariances of rank < d, the product C1^{1/2} C2 C1^{1/2})
// and are clipped to 0 before the square root. Throws InvalidArgument on mismatched shapes,
// non-finite values, asymmetric matrices (max |C − Cᵀ| > 1e-8 · max |C|) or a clearly negative
// eigenvalue. The result is clipped at 0 (rounding can make an exact 0 slightly negative).
double FrechetDistance(const Vector& m1, const Matrix& c1, const Vector& m2, const Matrix& c2);

// Sliced Wasserstein-2 distance between the empirical laws of a (d × n) and b (d × m):
// sqrt of the mean over num_projections random unit directions of W_2² between the projected
// samples. Direction p is column p of standard normals drawn from NoiseStream(seed, kData) at
// (step 0, substep 0, sample p), normalized. W_2² in 1-D is ∫_0^1 (F_a⁻¹(u) − F_b⁻¹(u))² du for
// the empirical (step) quantile functions, computed exactly by merging their breakpoints i/n and
// j/m (for n = m this is the mean squared difference of the sorted projections), so unequal
// sizes need no interpolation grid. num_projections ≥ 1.
double SlicedWasserstein(ConstBatchRef a, ConstBatchRef b, int num_projections, uint64_t seed);

// Unbiased MMD² with the Gaussian kernel of bandwidth h > 0 (may be slightly negative when the
// laws agree). Cost O((n + m)² d), computed in column blocks with squared distances
// ‖x‖² + ‖y‖² − 2 xᵀy clipped at 0.
double MmdSquared(ConstBatchRef a, ConstBatchRef b, double bandwidth);

// The median of the pairwise Euclidean distances within the pooled sample, computed on at most
// 500 columns of each input taken at evenly spaced indices ⌊i · n / 500⌋ (deterministic). Throws
// InvalidArgument if the median is 0 (the pooled subset is degenerate).
double MedianHeuristicBandwidth(ConstBatchRef a, ConstBatchRef b);

}  // namespace scoresde
