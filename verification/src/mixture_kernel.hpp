// Internal: the log-density, score, divergence and Hessian–vector product of a Gaussian mixture,
// shared by GaussianMixture (components held as Cholesky factors) and GaussianMixtureScore's
// scalar-affine path (components held as eigendecompositions scaled to a time t).
//
// With N_k = N(x; μ_k, C_k), p = Σ_k w_k N_k, s_k = ∇ log N_k = −C_k⁻¹(x − μ_k) and
// r_k = w_k N_k / p:
//   ∇p   = Σ_k w_k N_k s_k                        ⇒  s = ∇ log p = Σ_k r_k s_k
//   ∇²p  = Σ_k w_k N_k (s_k s_kᵀ − C_k⁻¹)          (∇ s_k = −C_k⁻¹)
//   ∇² log p = ∇²p / p − s sᵀ = Σ_k r_k (s_k s_kᵀ − C_k⁻¹) − s sᵀ,
// so the divergence (its trace) is Σ_k r_k (‖s_k‖² − tr C_k⁻¹) − ‖s‖² and the Hessian–vector
// product is Σ_k r_k (s_k (s_kᵀ v) − C_k⁻¹ v) − s (sᵀ v).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include <Eigen/Core>

#include "scoresde/sde/batch.hpp"

namespace scoresde::internal {

// Columns per block: bounds the scratch memory at K · d · kMixtureBlock doubles.
inline constexpr Eigen::Index kMixtureBlock = 128;

// log w_k − ½ log det C_k − (d/2) log 2π (−∞ for a zero weight).
inline double LogNormalizer(double weight, double log_det, int dim) {
  const double log_w = weight > 0.0 ? std::log(weight) : -std::numeric_limits<double>::infinity();
  return log_w - 0.5 * log_det - 0.5 * dim * std::log(2.0 * std::numbers::pi);
}

// A component given by its Cholesky factor C = L Lᵀ.
struct CholeskyComponent {
  const Vector* mean;
  const Matrix* chol;
  double log_normalizer;
  double trace_precision;

  const Vector& center() const { return *mean; }

  // q = ‖L⁻¹ D‖² per column; if score is non-null, score = −C⁻¹ D.
  void QuadraticAndScore(const Matrix& centered, RowVector* q, Matrix* score) const {
    Matrix y = chol->triangularView<Eigen::Lower>().solve(centered);
    *q = y.colwise().squaredNorm();
    if (score != nullptr) {
      chol->transpose().triangularView<Eigen::Upper>().solveInPlace(y);
      *score = -y;
    }
  }
  // out = C⁻¹ v.
  void Precision(const Matrix& v, Matrix* out) const {
    *out = chol->triangularView<Eigen::Lower>().solve(v);
    chol->transpose().triangularView<Eigen::Upper>().solveInPlace(*out);
  }
};

// A component C = U diag(1 / inv_var) Uᵀ (U orthogonal).
struct EigenComponent {
  Vector mean;
  const Matrix* eigenvectors;
  Vector inv_var;
  double log_normalizer;
  double trace_precision;

  const Vector& center() const { return mean; }
  void QuadraticAndScore(const Matrix& centered, RowVector* q, Matrix* score) const {
    Matrix y = eigenvectors->transpose() * centered;
    *q = inv_var.transpose() * y.cwiseAbs2();
    if (score != nullptr) *score = -(*eigenvectors * (inv_var.asDiagonal() * y));
  }
  void Precision(const Matrix& v, Matrix* out) const {
    *out = *eigenvectors * (inv_var.asDiagonal() * (eigenvectors->transpose() * v));
  }
};

// Fills the requested outputs (any may be null; v must be given with jv). x is d × B.
template <typename Component>
void EvaluateMixture(const std::vector<Component>& components, const Vector& weights,
                     ConstBatchRef x, const ConstBatchRef* v, RowVectorRef* logp, BatchRef* s,
                     RowVectorRef* div, BatchRef* jv) {
  const int num = static_cast<int>(components.size());
  const Eigen::Index total = x.cols();
  const bool need_score = s != nullptr || div != nullptr || jv != nullptr;
  std::vector<Matrix> component_scores(need_score ? num : 0);
  Matrix logits;
  Matrix resp;
  RowVector q;
  RowVector lse;
  Matrix centered;
  for (Eigen::Index first = 0; first < total; first += kMixtureBlock) {
    const Eigen::Index n = std::min(kMixtureBlock, total - first);
    const auto xb = x.middleCols(first, n);
    logits.resize(num, n);
    for (int k = 0; k < num; ++k) {
      centered = xb.colwise() - components[k].center();
      components[k].QuadraticAndScore(centered, &q, need_score ? &component_scores[k] : nullptr);
      logits.row(k) = components[k].log_normalizer - 0.5 * q.array();
    }
    // Log-sum-exp per column; responsibilities r_k = exp(logit_k − lse).
    lse.resize(n);
    resp.resize(num, n);
    for (Eigen::Index j = 0; j < n; ++j) {
      if (logits.col(j).hasNaN()) {
        lse(j) = std::numeric_limits<double>::quiet_NaN();
        resp.col(j).setConstant(std::numeric_limits<double>::quiet_NaN());
        continue;
      }
      const double peak = logits.col(j).maxCoeff();
      if (peak == -std::numeric_limits<double>::infinity()) {
        // Every component underflowed (x astronomically far away): log p = −∞ and the score
        // falls back to the prior weighting.
        lse(j) = peak;
        resp.col(j) = weights;
        continue;
      }
      const double sum = (logits.col(j).array() - peak).exp().sum();
      lse(j) = peak + std::log(sum);
      resp.col(j) = (logits.col(j).array() - lse(j)).exp();
    }
    if (logp != nullptr) logp->segment(first, n) = lse;
    if (!need_score) continue;

    Matrix score = Matrix::Zero(x.rows(), n);
    for (int k = 0; k < num; ++k) score += component_scores[k] * resp.row(k).asDiagonal();
    if (s != nullptr) s->middleCols(first, n) = score;
    if (div != nullptr) {
      RowVector d = -score.colwise().squaredNorm();
      for (int k = 0; k < num; ++k) {
        d.array() += resp.row(k).array() * (component_scores[k].colwise().squaredNorm().array() -
                                            components[k].trace_precision);
      }
      div->segment(first, n) = d;
    }
    if (jv != nullptr) {
      const Matrix vb = v->middleCols(first, n);
      const RowVector sv = score.cwiseProduct(vb).colwise().sum();
      Matrix out = -(score * sv.asDiagonal());
      Matrix precision_v;
      for (int k = 0; k < num; ++k) {
        const RowVector skv = component_scores[k].cwiseProduct(vb).colwise().sum();
        components[k].Precision(vb, &precision_v);
        out += (component_scores[k] * skv.asDiagonal() - precision_v) * resp.row(k).asDiagonal();
      }
      jv->middleCols(first, n) = out;
    }
  }
}

}  // namespace scoresde::internal
