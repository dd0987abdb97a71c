// Closed-form conditionals of Gaussian-mixture data: the ground truth of conditional sampling
// (design.md, sections 2 and 5: "inpainting a Gaussian gives the closed-form Gaussian posterior").
//
// Linear Gaussian measurements. For p_0 = Σ_k w_k N(μ_k, Σ_k) and y = A x₀ + e, e ~ N(0, Σ_y),
// the posterior is again a mixture (Bishop, "Pattern Recognition and Machine Learning", 2006,
// section 2.3.3, per component):
//   S_k  = A Σ_k Aᵀ + Σ_y,   K_k = Σ_k Aᵀ S_k⁻¹,
//   μ'_k = μ_k + K_k (y − A μ_k),
//   Σ'_k = (I − K_k A) Σ_k (I − K_k A)ᵀ + K_k Σ_y K_kᵀ          (Joseph form; = Σ_k − K_k A Σ_k),
//   w'_k ∝ w_k N(y; A μ_k, S_k),                  p(y) = Σ_k w_k N(y; A μ_k, S_k).
// Observing a subset of coordinates is A = rows of the identity. With Σ_y = 0 (noiseless; A of
// full row rank m) every Σ'_k is singular: the posterior lives on the affine subspace {A x = y}.
// With an orthonormal basis [R N] of R^d, R spanning range(Aᵀ) and N its complement null(A),
// x = R v + N u and v = v* = (A R)⁻¹ y exactly, while u has the non-degenerate mixture
// Σ_k w'_k N(Nᵀ μ'_k, Nᵀ Σ'_k N).
//
// Under a VE, VP or sub-VP SDE (x_t | x₀ ~ N(α x₀, σ_t² I)) the conditional law p_t(x | y) is the
// posterior pushed through the kernel: components N(α μ'_k, α² Σ'_k + σ_t² I), weights w'_k. Its
// score is ConditionalScore: for Σ_y ≻ 0 the mixture score of these components; for Σ_y = 0
//   ∇ₓ log p_t(x | y) = N ∇_u log q_t(Nᵀ x) − R (Rᵀ x − α v*)/σ_t²,
// q_t = Σ_k w'_k N(α Nᵀ μ'_k, α² Nᵀ Σ'_k N + σ_t² I) (so σ_t > 0 is needed, t > 0 for VP).
//
// Labels. If component k carries a class label c_k, then p_t(y | x) = Σ_{k: c_k = y} r_k(x, t),
// r_k the responsibilities of p_t, and with s_k the component scores and s = Σ_k r_k s_k,
//   ∇ₓ log p_t(y | x) = Σ_{k: c_k = y} (r_k / Σ_{j: c_j = y} r_j) s_k − s,
// the exact classifier guidance; p_0(x | y) is the sub-mixture of class y with renormalized weights.
//
// Batches are d × B, one sample per column; every value is computed sample by sample, so a
// column's bits do not depend on the batch it is in. Methods are const and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {

class ConditionalReference {
 public:
  // Throws InvalidArgument ("ConditionalReference: <name> = ...") unless A is m × d (m ≥ 1,
  // d = prior.dim()), noise_cov is m × m and either symmetric positive definite or exactly zero
  // (then rank A = m), y has m entries, and everything is finite.
  ConditionalReference(GaussianMixture prior, Matrix A, Matrix noise_cov, Vector y);
  // Observed coordinates: observed has d entries, NaN where unknown; Σ_y = noise_std² I.
  static ConditionalReference FromMasked(GaussianMixture prior, const Vector& observed,
                                         double noise_std);

  int dim() const { return prior_.dim(); }
  int num_components() const { return prior_.num_components(); }
  int num_observations() const { return static_cast<int>(A_.rows()); }
  bool noiseless() const { return noiseless_; }
  const GaussianMixture& prior() const { return prior_; }

  // Posterior weights w'_k, component means μ'_k and covariances Σ'_k (singular if noiseless).
  const Vector& weights() const { return weights_; }
  const Vector& mean(int k) const { return means_[k]; }
  const Matrix& cov(int k) const { return covs_[k]; }
  // Posterior mean and covariance of the whole mixture.
  Vector Mean() const;
  Matrix Covariance() const;
  // log p(y) in nats.
  double log_evidence() const { return log_evidence_; }

  // Mean and covariance of x_t | y under sde at t ∈ [0, T] (α Mean, α² Covariance + σ_t² I).
  Vector MarginalMean(const ScalarAffineSde& sde, double t) const;
  Matrix MarginalCovariance(const ScalarAffineSde& sde, double t) const;
  // P(uᵀ x_t ≤ c | y) = Σ_k w'_k Φ((c − uᵀ α μ'_k) / sqrt(uᵀ(α² Σ'_k + σ_t² I) u)); u ≠ 0, d
  // entries. Throws InvalidArgument on shapes, u = 0, or a degenerate variance (uᵀ x_t constant).
  double MarginalProbabilityBelow(const ScalarAffineSde& sde, double t, const Vector& u,
                                  double c) const;
  // Exact draws of x_t | y (x is d × B; column j is sample first_sample + j): u from the reduced
  // mixture (GaussianMixture::Sample: step 0, substeps 0 and 1), and for noiseless measurements
  // v = α v* + σ_t z with z from (step 0, substep 2).
  void SampleMarginal(const ScalarAffineSde& sde, double t, const NoiseStream& noise,
                      int64_t first_sample, BatchRef x) const;

 private:
  friend class ConditionalScore;
  // The non-degenerate part pushed to time t: components N(α Nᵀμ'_k, α² NᵀΣ'_kN + σ_t² I);
  // nullopt when every coordinate is determined (m = d, noiseless).
  std::optional<GaussianMixture> ReducedMarginal(double alpha, double sigma) const;
  void CheckTime(const char* where, const ScalarAffineSde& sde, double t) const;

  GaussianMixture prior_;
  Matrix A_;
  Matrix noise_cov_;
  Vector y_;
  bool noiseless_ = false;
  Vector weights_;
  std::vector<Vector> means_;
  std::vector<Matrix> covs_;
  double log_evidence_ = 0.0;
  // Noiseless measurements only: R (d × m), N (d × (d − m)), v* (m) and the reduced posterior.
  Matrix range_basis_;
  Matrix null_basis_;
  Vector v_star_;
  std::optional<GaussianMixture> reduced_;
};

// ∇ₓ log p_t(x | y) of a ConditionalReference under a scalar-affine SDE. Both are held by
// reference and must outlive the score.
class ConditionalScore final : public ScoreModel {
 public:
  // Throws InvalidArgument if sde.dim() != reference.dim().
  ConditionalScore(const ConditionalReference& reference, const ScalarAffineSde& sde);

  int dim() const override { return reference_->dim(); }
  // x, s: d × B; t: B entries in [0, T] (σ_t > 0 for noiseless measurements). Throws
  // InvalidArgument on shapes or times.
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override;
  // One component: E‖s‖² = tr((α² NᵀΣ'N + σ_t² I)⁻¹) + m/σ_t² (the m term only when noiseless);
  // nullopt for K > 1. Throws InvalidArgument unless 0 ≤ t ≤ T.
  std::optional<double> ExpectedSquaredNorm(double t) const override;

 private:
  const ConditionalReference* reference_;
  const ScalarAffineSde* sde_;
};

// Class labels on mixture components and the exact p_t(y | x) and its gradient.
class MixtureLabelLikelihood {
 public:
  // labels[k] ≥ 0 is the class of component k; every class 0 … max must own a component. The SDE
  // is held by reference. Throws InvalidArgument on sizes, negative labels, empty classes or a
  // dimension mismatch.
  MixtureLabelLikelihood(GaussianMixture p0, const ScalarAffineSde& sde, std::vector<int> labels);

  int num_classes() const { return num_classes_; }
  const std::vector<int>& labels() const { return labels_; }
  // p(y) = Σ_{k: c_k = y} w_k.
  double ClassProbability(int label) const;
  // p_0(x | y): the components of class y with weights w_k / p(y).
  GaussianMixture ClassConditional(int label) const;
  // log_prob(j) = log p_t(y | x(:, j)) and grad(:, j) = ∇ₓ log p_t(y | x(:, j)) (formula above).
  // x, grad: d × B; t, log_prob: B entries in [0, T]. Throws InvalidArgument on shapes, times or
  // a label outside [0, num_classes).
  void Evaluate(int label, ConstBatchRef x, ConstRowVectorRef t, RowVectorRef log_prob,
                BatchRef grad) const;

 private:
  void CheckLabel(const char* where, int label) const;

  GaussianMixture p0_;
  const ScalarAffineSde* sde_;
  std::vector<int> labels_;
  int num_classes_ = 0;
};

}  // namespace scoresde
