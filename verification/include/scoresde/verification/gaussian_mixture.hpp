// Gaussian mixtures and their exact evolution under SDEs with Gaussian affine transition kernels:
// the analytic references of the verification suites (design.md, section 2).
//
//   p(x) = Σ_k w_k N(x; μ_k, Σ_k),
//   ∇ log p(x) = Σ_k r_k(x) s_k(x),   s_k(x) = −Σ_k⁻¹ (x − μ_k),   r_k = w_k N_k(x) / p(x).
//
// If x_t | x_0 ~ N(A x_0 + b, Q) (every linear SDE with state-independent noise; Särkkä & Solin,
// "Applied Stochastic Differential Equations", 2019, chapter 6), a mixture stays a mixture with
// the same weights: p_t = Σ_k w_k N(A μ_k + b, A Σ_k Aᵀ + Q). GaussianMixtureScore is therefore the
// exact score ∇ log p_t of data p_0 pushed through the VE, VP, sub-VP (Song et al., ICLR 2021,
// section 3.4) or a general LinearSde, with its divergence and Jacobian–vector products in closed
// form.
//
// Batches are d × B (one sample per column); per-sample values are 1 × B row vectors. Each sample
// is evaluated on its own (matrix–vector kernels), so its bits do not depend on the batch
// chunking or the thread count; every method is const and safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/linear_sde.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"

namespace scoresde {

class GaussianMixture {
 public:
  // K = weights.size() ≥ 1 components in R^d, d = means[0].size() ≥ 1. Throws InvalidArgument
  // ("GaussianMixture: <name> = <value>; must be <constraint>") unless: means and covs have K
  // entries; every mean has d entries and every cov is d × d; all values are finite; weights are
  // ≥ 0 and sum to 1 within 1e-12·K (they are then divided by their sum); each cov is symmetric
  // (max |C − Cᵀ| ≤ 1e-10 · max |C|; the stored cov is ½(C + Cᵀ)) and positive definite (its
  // Cholesky factorization succeeds; the message names the component index).
  GaussianMixture(Vector weights, std::vector<Vector> means, std::vector<Matrix> covs);

  // The single Gaussian N(mean, cov); same checks.
  static GaussianMixture Gaussian(Vector mean, Matrix cov);

  int dim() const { return dim_; }
  int num_components() const { return static_cast<int>(weights_.size()); }
  // k must be in [0, num_components()); not checked.
  double weight(int k) const { return weights_(k); }
  const Vector& weights() const { return weights_; }
  const Vector& mean(int k) const { return means_[k]; }
  const Matrix& cov(int k) const { return covs_[k]; }
  // L_k with Σ_k = L_k L_kᵀ (lower triangular), log det Σ_k and tr(Σ_k⁻¹), computed once.
  const Matrix& cholesky_factor(int k) const { return chol_[k]; }
  double log_det(int k) const { return log_det_[k]; }
  double trace_precision(int k) const { return trace_precision_[k]; }

  // logp(j) = log p(x(:, j)) in nats, by log-sum-exp over components. x is d × B, logp has B
  // entries. Throws InvalidArgument on a shape mismatch. Non-finite x gives non-finite output.
  void LogDensity(ConstBatchRef x, RowVectorRef logp) const;

  // s = ∇ log p(x), d × B. Throws InvalidArgument on a shape mismatch.
  void Score(ConstBatchRef x, BatchRef s) const;

  // div(j) = ∇·∇ log p = tr ∇² log p at x(:, j). Closed form (derived in src/mixture_kernel.hpp):
  //   Σ_k r_k [‖s_k‖² − tr(Σ_k⁻¹)] − ‖s‖².
  // Throws InvalidArgument on a shape mismatch.
  void ScoreDivergence(ConstBatchRef x, RowVectorRef div) const;

  // jv = ∇² log p(x) v column by column, closed form
  //   Σ_k r_k [s_k (s_kᵀ v) − Σ_k⁻¹ v] − s (sᵀ v).
  // x, v, jv are d × B. Throws InvalidArgument on a shape mismatch.
  void ScoreJvp(ConstBatchRef x, ConstBatchRef v, BatchRef jv) const;
  // The score and its Jacobian–vector product in one pass (shapes as above).
  void ScoreAndJvp(ConstBatchRef x, ConstBatchRef v, BatchRef s, BatchRef jv) const;

  // Exact draws: column j is sample first_sample + j. Its component is the first k with
  // u < w_0 + … + w_k, u uniform from (step 0, substep 0); the point is μ_k + L_k z with z standard
  // normal from (step 0, substep 1). Each column depends only on its own sample index, so drawing
  // columns [0, 64) at once equals drawing [0, 10) then [10, 64). x is d × B.
  // Throws InvalidArgument unless x has dim() rows, if first_sample < 0, or if a sample index
  // needs more than 32 bits.
  void Sample(const NoiseStream& noise, int64_t first_sample, BatchRef x) const;

  // E[x] = Σ_k w_k μ_k and Cov[x] = Σ_k w_k [Σ_k + (μ_k − E x)(μ_k − E x)ᵀ] (the centred form
  // avoids cancellation).
  Vector Mean() const;
  Matrix Covariance() const;

  // The law of A x + b + ε with x ~ p and ε ~ N(0, Q) independent: components
  // N(A μ_k + b, A Σ_k Aᵀ + Q), same weights. A is d' × d, b has d' entries, Q is d' × d'
  // symmetric positive semidefinite (A Σ_k Aᵀ + Q must be positive definite). Throws
  // InvalidArgument on shapes, non-finite values, or a singular result.
  GaussianMixture Transformed(const Matrix& A, const Vector& b, const Matrix& Q) const;

 private:
  // One pass, sample by sample; any output pointer may be null (v is needed for jv).
  void Compute(ConstBatchRef x, const ConstBatchRef* v, RowVectorRef* logp, BatchRef* s,
               RowVectorRef* div, BatchRef* jv) const;

  int dim_ = 0;
  Vector weights_;
  std::vector<Vector> means_;
  std::vector<Matrix> covs_;
  std::vector<Matrix> chol_;
  std::vector<double> log_det_;
  std::vector<double> trace_precision_;
};

// x_t | x_0 ~ N(A x_0 + b, Q).
struct GaussianTransition {
  Matrix A;  // d × d
  Vector b;  // d
  Matrix Q;  // d × d, symmetric positive semidefinite
};

// A = α(t) I, b = 0, Q = σ_t² I from sde.MeanCoefficient(t) and sde.MarginalStd(t). For the VE
// SDE with VeKernel::kReference, σ_t = σ(t) ≥ σmin even at t = 0, so p_t is the data convolved with
// N(0, σ(t)² I). Throws InvalidArgument unless 0 ≤ t ≤ T.
GaussianTransition TransitionOf(const ScalarAffineSde& sde, double t);

// For dx = (F x + c) dt + G(t) dw, integrates from 0 to t
//   dA/dt = F A,  A(0) = I;   db/dt = F b + c,  b(0) = 0;   dQ/dt = F Q + Q Fᵀ + G Gᵀ,  Q(0) = 0,
// with Boost.Odeint's Runge–Kutta–Fehlberg 7(8) at absolute and relative tolerance 1e-12 per step
// (the 8th-order solution is propagated). For smooth G and t = O(1) the global error is at the
// 1e-13 level (measured: ≤ 9e-14 in A, b and Q against the closed form for constant F and G up to
// t = 2; the unit tests require 1e-11); Q is symmetrized.
// Throws InvalidArgument unless 0 ≤ t ≤ T, NumericalFailure if the integration produces a
// non-finite value or needs more than 10^6 steps.
GaussianTransition TransitionOf(const LinearSde& sde, double t);

// The exact score of p_t when x_0 ~ p_0 (a GaussianMixture) and x_t | x_0 follows the SDE's
// Gaussian kernel. The SDE is held by reference and must outlive the score.
//
// For a ScalarAffineSde the covariances are eigendecomposed once, Σ_k = U_k Λ_k U_kᵀ, so that
// α²Σ_k + σ_t² I = U_k (α²Λ_k + σ_t²) U_kᵀ needs no factorization per time. For a LinearSde the
// marginal is built (one ODE solve and K Cholesky factorizations) once per run of consecutive
// columns sharing a time. Nothing is cached: every method is const and safe to call concurrently.
class GaussianMixtureScore final : public ScoreModel {
 public:
  // Throws InvalidArgument if p0.dim() != sde.dim().
  GaussianMixtureScore(GaussianMixture p0, const ScalarAffineSde& sde);
  GaussianMixtureScore(GaussianMixture p0, const LinearSde& sde);

  int dim() const override { return p0_.dim(); }
  const GaussianMixture& initial() const { return p0_; }

  // The kernel x_t | x_0 (TransitionOf) and the marginal p_t. Throw InvalidArgument unless
  // 0 ≤ t ≤ T.
  GaussianTransition Transition(double t) const;
  GaussianMixture Marginal(double t) const;

  // logp(j) = log p_t(j)(x(:, j)). x is d × B, t and logp have B entries. Throws InvalidArgument
  // on shapes or a time outside [0, T].
  void LogDensity(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef logp) const;

  // s = ∇ log p_t(x); same shapes and throws as LogDensity (s is d × B).
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override;

  bool HasDivergence() const override { return true; }
  // div(j) = tr ∇² log p_t at x(:, j), closed form (GaussianMixture::ScoreDivergence).
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override;

  bool HasJvp() const override { return true; }
  // s = ∇ log p_t(x) and jv = ∇² log p_t(x) v, closed form; x, v, s, jv are d × B.
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override;

  // For one component, E‖∇ log N(x; m, C)‖² = E[(x − m)ᵀ C⁻² (x − m)] = tr(C⁻¹) with C the
  // marginal covariance; nullopt for K > 1 (no closed form). Throws InvalidArgument unless
  // 0 ≤ t ≤ T.
  std::optional<double> ExpectedSquaredNorm(double t) const override;

  // Exact draws from p_t (GaussianMixture::Sample of Marginal(t); same counters), for starting
  // reverse-time sampling at the true marginal (--prior exact). x is d × B.
  void SampleMarginal(double t, const NoiseStream& noise, int64_t first_sample, BatchRef x) const;

 private:
  void CheckTime(double t) const;
  void CheckInputs(const char* where, ConstBatchRef x, ConstRowVectorRef t) const;
  // Any output pointer may be null (v is needed for jv).
  void Compute(ConstBatchRef x, ConstRowVectorRef t, const ConstBatchRef* v, RowVectorRef* logp,
               BatchRef* s, RowVectorRef* div, BatchRef* jv) const;
  // The linear-SDE path: one GaussianMixture marginal per run of columns sharing a time.
  void ComputeLinear(ConstBatchRef x, ConstRowVectorRef t, const ConstBatchRef* v,
                     RowVectorRef* logp, BatchRef* s, RowVectorRef* div, BatchRef* jv) const;

  GaussianMixture p0_;
  const ScalarAffineSde* scalar_sde_ = nullptr;
  const LinearSde* linear_sde_ = nullptr;
  // Scalar-affine path: Σ_k = U_k diag(λ_k) U_kᵀ.
  std::vector<Matrix> eigenvectors_;
  std::vector<Vector> eigenvalues_;
  Vector log_weights_;
};

}  // namespace scoresde
