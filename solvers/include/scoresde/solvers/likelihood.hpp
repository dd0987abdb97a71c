// Log-likelihoods through the probability-flow ODE (instantaneous change of variables: Chen et
// al., "Neural ODEs", NeurIPS 2018, theorem 1; Song et al., ICLR 2021, appendix D.2). Along the
// flow dx/dt = f̃(x, t) (probability_flow.hpp) the density obeys d/dt log p_t(x_t) = −∇·f̃, so
//   log p_ε(x) = log p_T(x_T) + Δ(T),   dΔ/dt = ∇·f̃(x_t, t),   Δ(ε) = 0, x_ε = x,
// and the ODE is solved for (x, Δ) together, from t = ε to T.
//
// The divergence. With h = f − ½∇·(GGᵀ) and ∂_i[(GGᵀ)_ij s_j] = (∂_i(GGᵀ)_ij) s_j +
// (GGᵀ)_ij ∂_i s_j (GGᵀ symmetric),
//   ∇·f̃ = [∇·h − ½ (∇·(GGᵀ))ᵀ s] − ½ tr(GGᵀ ∂s/∂x).
// The first bracket (the "SDE part") is in closed form for the VE/VP/sub-VP families (a(t)·d,
// since ∇·(GGᵀ) = 0), LinearSde (tr F) and GbmSde (Σ_i (μ_i − σ_i²) − Σ_i σ_i² x_i s_i). Other
// SDEs do not expose ∂f/∂x, so ∇·h is taken by central differences (step cbrt(ε_mach) max(1,|x_i|),
// error O(h²) ≈ 1e-10 relative; the summary carries a warning).
// The score part −½ tr(GGᵀ ∂s/∂x):
//   kExact       for G = g(t) I and a score with a divergence (analytic references, AutoDiffScore's
//                forward-mode Jets): −½ g² ∇·s; otherwise the trace of the Jacobian from d
//                Jacobian–vector products (ScoreModel::HasJvp, e.g. learned networks), weighted
//                by GGᵀ. A score with neither is rejected.
//   kHutchinson* −½ εᵀ GGᵀ (∂s/∂x) ε with K probes ε (Rademacher ±1 or standard normal; Skilling
//                1989, Hutchinson 1990) held fixed along one solve, drawn from
//                NoiseStream(seed, kHutchinson) at (step 0, substep k, sample): unbiased, each
//                probe integrated in its own Δ_k, so the estimate Δ = mean_k Δ_k comes with the
//                standard error sd_k(Δ_k)/√K (K ≥ 2). Only the score part is estimated: the SDE
//                part is exact, which removes its variance (the reference code of Song et al.
//                estimates the whole trace). Jacobian–vector products come from the score
//                (HasJvp) or, failing that, from central differences of the score along ε
//                (warning).
// Every Δ_k is part of the step-size control (like the reference's solve_ivp on [x, Δ]).
//
// Units: nats; bits per dimension −log p / (d ln 2). For 8-bit data dequantized uniformly,
// y = lo + (hi − lo)(k + u)/256 with k ∈ {0..255} and u ~ U[0, 1)^d, the discrete model's
// −log₂ P(k) ≤ E_u[−log₂ p_y(y)] − d log₂((hi − lo)/256) (Theis, van den Oord & Bethge, ICLR 2016,
// section 3.1), so dequantized bits/dim = −log p_y(y)/(d ln 2) + 8 − log₂(hi − lo): +8 for data
// in [0, 1], +7 for [−1, 1] (the "offset 7 − inverse_scaler(−1)" of Song et al.'s likelihood.py).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/solvers/summary.hpp"

namespace scoresde {

enum class DivergenceEstimator { kExact, kHutchinsonRademacher, kHutchinsonGaussian };
std::string_view ToString(DivergenceEstimator estimator);

struct LikelihoodOptions {
  OdeOptions ode;            // rtol = atol = 1e-5 by default, as in the paper
  double eps = 1e-5;         // the data time ε (the paper's likelihood ε)
  DivergenceEstimator divergence = DivergenceEstimator::kExact;
  int num_probes = 1;        // K, Hutchinson only
  uint64_t seed = 0;         // Hutchinson probes
  // Throws InvalidArgument for invalid ode options, eps not finite or < 0, num_probes < 1.
  void Validate() const;
};

// log p_T(x_T) per column: x is d × B, logp has B entries.
using LogDensityFunction = std::function<void(ConstBatchRef x, RowVectorRef logp)>;

struct LikelihoodResult {
  RowVector logp;            // log p_ε(x) in nats (an unbiased estimate with Hutchinson probes)
  RowVector prior_logp;      // log p_T(x_T)
  RowVector delta_logp;      // Δ(T) = ∫_ε^T ∇·f̃ dt (mean over probes)
  RowVector standard_error;  // of logp: 0 for kExact, sd_k(Δ_k)/√K for K ≥ 2, NaN for K = 1
  Batch latent;              // x_T, d × B
  RowVector bits_per_dim;    // −logp / (d ln 2)
  double mean_bits_per_dim = 0.0;
  IndexRowVector nfe;        // right-hand-side evaluations per sample
  SolveSummary summary;
};

class LikelihoodEstimator {
 public:
  // prior: log p_T; empty means the SDE's prior N(0, PriorStd()² I), which exists only for the
  // VE/VP/sub-VP families (ScalarAffineSde). Throws InvalidArgument if dimensions differ, options
  // are invalid, eps ≥ T, no prior is available, or kExact is asked of a score that has neither a
  // divergence (usable for scalar noise only) nor JVPs. sde and score must outlive the estimator.
  LikelihoodEstimator(const Sde& sde, const ScoreModel& score, LikelihoodOptions options = {},
                      LogDensityFunction prior = nullptr);
  ~LikelihoodEstimator();

  const LikelihoodOptions& options() const { return options_; }

  // log p_ε of each column of x (d × B, finite). Probes are keyed by first_sample + column, so a
  // batch split into parts gives the same numbers. Throws InvalidArgument on shapes or
  // non-finite x; NumericalFailure if the solve fails (unless ode.throw_on_failure is false, in
  // which case logp is NaN for every sample and the summary says why).
  LikelihoodResult Compute(ConstBatchRef x, int64_t first_sample = 0) const;

  // ∇·f̃(x(:, j), t(j)) computed as kExact does (requires what kExact requires). x is d × B, t and
  // div have B entries. For tests and diagnostics.
  void DriftDivergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const;

 private:
  class System;
  // Pieces of the augmented right-hand side (see the header comment); x, s, v are d × B.
  void FlowDrift(const Batch& x, ConstRowVectorRef t, const Batch& s, Batch* drift) const;
  void SdePart(const Batch& x, ConstRowVectorRef t, const Batch& s, RowVector* part) const;
  void ExactScorePart(const Batch& x, ConstRowVectorRef t, Batch* s, RowVector* part) const;
  void ScoreJvp(const Batch& x, ConstRowVectorRef t, const Batch& v, Batch* s, Batch* jv) const;

  const Sde& sde_;
  const ScoreModel& score_;
  LikelihoodOptions options_;
  LogDensityFunction prior_;
  std::unique_ptr<ExecutionContext> context_;
};

// −logp / (d ln 2).
double BitsPerDim(double logp_nats, int dim);
// Dequantized bits/dim of 8-bit data scaled to [lo, hi] (see above): −logp/(d ln 2) + 8 −
// log₂(hi − lo). Throws InvalidArgument unless hi > lo.
double DequantizedBitsPerDim(double logp_nats, int dim, double lo, double hi);
// y = lo + (hi − lo)(k + u)/256 with u ~ U(0, 1) from `noise` at (step 0, substep 0, sample
// first_sample + column). k (d × B) must hold integers in [0, 255]; y has its shape. Throws
// InvalidArgument otherwise.
void Dequantize(ConstBatchRef k, double lo, double hi, const NoiseStream& noise,
                int64_t first_sample, BatchRef y);

}  // namespace scoresde
