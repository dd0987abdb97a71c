// Conditional sampling by replacement: the Score-SDE paper's imputation (inpainting) and
// colorization for any unconditional score model (Song et al., ICLR 2021, appendix I.2 and I.3).
//
// Imputation. Some coordinates Ω of x₀ are observed, x₀[Ω] = y. At level t the known part of x_t
// is distributed as N(α(t) y, σ_t² I) (the forward kernel), so the paper draws one
//   ŷ_t = α(t) y + σ_t z,   z ~ N(0, I),
// per level and samples the unknown coordinates from p_t(x[Ω̄] | x[Ω] = ŷ_t) by running the
// unconditional predictor and corrector updates and resetting x[Ω] ← ŷ_t after each of them
// (appendix I.2, eq. 50). The paper's code redraws ŷ_t after every update; here one draw per
// level is reused by the predictor and all corrector steps of that level, which is the paper's
// equation (the Langevin steps then target p_t(x[Ω̄] | x[Ω] = ŷ_t) for a fixed ŷ_t). Either way
// the method is approximate: p_t(x[Ω̄] | ŷ_t) with an independent ŷ_t is not p_t(x[Ω̄] | y), and
// the sampled posterior is biased (measured against the closed form in
// docs/conditional.md and pinned by verification/suites/conditional_suite.cpp).
//
// Colorization. For images with C channels and P pixels (d = C·P, channel-major layout: coordinate
// c·P + p, as PyTorch's CHW), a C × C orthogonal matrix Q mixes the channels of each pixel,
// z = (Q ⊗ I_P) x. Because Q is orthogonal and the kernel isotropic, z_t | z₀ ~ N(α z₀, σ_t² I)
// again, so replacement applies to the transformed coordinates: the paper observes the gray-scale
// channel (Q's first row (1, …, 1)/√C, so z_gray = √C · mean of the channels) and imputes the
// others. HelmertMatrix(C) is such a Q. Imputation is the case Q = I (no channel_mix).
//
// Observations: `observed` is d × 1 (one observation for every sample) or d × n (column j for
// sample j), NaN where unknown, in the transformed coordinates when a channel mix is given. The
// noise z of sample j at level i comes from NoiseStream(seed, Stream::kGuidance) at (step i,
// substep 0, sample j), so each sample's result depends only on its own index and observation,
// whatever the thread count or chunking.
#pragma once

#include <cstdint>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/pc_sampler.hpp"

namespace scoresde {

// The C × C Helmert matrix: row 0 is (1, …, 1)/√C, row k ≥ 1 is (1, …, 1, −k, 0, …, 0)/√(k(k+1))
// with k ones. Orthogonal; C ≥ 1 (throws InvalidArgument otherwise).
Matrix HelmertMatrix(int channels);

class ReplacementConditioner {
 public:
  struct Options {
    uint64_t seed = 0;  // noise of ŷ_t: NoiseStream(seed, Stream::kGuidance)
    // Q, C × C orthogonal (max |QQᵀ − I| ≤ 1e-10) with C dividing d; empty for imputation.
    Matrix channel_mix;
    // Throws InvalidArgument ("ReplacementConditioner::Options: channel_mix ...") for a
    // non-square, non-finite or non-orthogonal channel_mix.
    void Validate() const;
  };

  // The SDE is held by reference and must outlive this object. Throws InvalidArgument unless the
  // options are valid, observed has d = sde.dim() rows and ≥ 1 column, its entries are finite or
  // NaN, every column observes at least one coordinate, and C divides d.
  ReplacementConditioner(const ScalarAffineSde& sde, Matrix observed, Options options);

  int dim() const { return static_cast<int>(observed_.rows()); }
  int num_observations() const { return static_cast<int>(observed_.cols()); }
  int channels() const { return channels_; }

  // The state hook: x[Ω] ← α(t) y + σ_t z for the level (step, t), in transformed coordinates.
  // x is d × B for samples first_sample, …; throws InvalidArgument if a sample has no observation
  // (observed has n > 1 columns and the sample index is ≥ n).
  void Apply(int64_t step, double t, int64_t first_sample, BatchRef x) const;
  // A PcSampler::StateHook calling Apply; this object must outlive the sampler.
  PcSampler::StateHook Hook() const;
  // Sets the observed (transformed) coordinates to y exactly (the paper's final x_mean).
  void Finalize(int64_t first_sample, BatchRef x) const;

  // z = (Q ⊗ I_P) x and back (x = (Qᵀ ⊗ I_P) z); the identity without a channel mix. d × B.
  void ToTransformed(ConstBatchRef x, BatchRef z) const;
  void FromTransformed(ConstBatchRef z, BatchRef x) const;

 private:
  // x[Ω] ← α y + σ z (with_noise) or y; z from (step, substep 0) of Stream::kGuidance.
  void Replace(int64_t step, double alpha, double sigma, bool with_noise, int64_t first_sample,
               BatchRef x) const;

  const ScalarAffineSde* sde_;
  Matrix observed_;
  Options options_;
  int channels_ = 1;
  int pixels_ = 0;
};

}  // namespace scoresde
