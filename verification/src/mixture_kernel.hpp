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

// Every sample is evaluated on its own, with matrix–vector kernels on heap vectors (which have a
// fixed alignment). Eigen's blocked matrix–matrix kernels and its alignment-dependent reductions
// would make a column's last bits depend on which other columns share the call (measured: a
// triangular solve of 128 right-hand sides differs from 128 single solves), and the library
// promises the same bits for any thread count or batch chunking.

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

  // Returns q = (x − μ)ᵀ C⁻¹ (x − μ); if score is non-null, *score = −C⁻¹ (x − μ). diff and y
  // are scratch.
  double QuadraticAndScore(const Vector& x, Vector* /*diff*/, Vector* y, Vector* score) const {
    *y = x - *mean;
    chol->triangularView<Eigen::Lower>().solveInPlace(*y);
    const double q = y->squaredNorm();
    if (score != nullptr) {
      *score = *y;
      chol->transpose().triangularView<Eigen::Upper>().solveInPlace(*score);
      *score = -*score;
    }
    return q;
  }
  // *out = C⁻¹ v.
  void Precision(const Vector& v, Vector* out, Vector* /*scratch*/) const {
    *out = v;
    chol->triangularView<Eigen::Lower>().solveInPlace(*out);
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

  double QuadraticAndScore(const Vector& x, Vector* diff, Vector* y, Vector* score) const {
    *diff = x - mean;
    y->noalias() = eigenvectors->transpose() * *diff;
    const double q = inv_var.dot(y->cwiseAbs2());
    if (score != nullptr) {
      y->array() *= inv_var.array();
      score->noalias() = *eigenvectors * *y;
      *score = -*score;
    }
    return q;
  }
  void Precision(const Vector& v, Vector* out, Vector* scratch) const {
    scratch->noalias() = eigenvectors->transpose() * v;
    scratch->array() *= inv_var.array();
    out->noalias() = *eigenvectors * *scratch;
  }
};

// Fills the requested outputs (any may be null; v must be given with jv). x is d × B.
template <typename Component>
void EvaluateMixture(const std::vector<Component>& components, const Vector& weights,
                     ConstBatchRef x, const ConstBatchRef* v, RowVectorRef* logp, BatchRef* s,
                     RowVectorRef* div, BatchRef* jv) {
  const int num = static_cast<int>(components.size());
  const Eigen::Index d = x.rows();
  const bool need_score = s != nullptr || div != nullptr || jv != nullptr;
  // Scratch, allocated once per call.
  std::vector<Vector> component_scores(need_score ? num : 0, Vector(d));
  Vector xj(d), y(d), scratch(d), score(d), vj(d), precision_v(d), out(d);
  Vector logits(num), resp(num);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    xj = x.col(j);
    for (int k = 0; k < num; ++k) {
      const double q = components[k].QuadraticAndScore(xj, &scratch, &y,
                                                       need_score ? &component_scores[k] : nullptr);
      logits(k) = components[k].log_normalizer - 0.5 * q;
    }
    // Log-sum-exp; responsibilities r_k = exp(logit_k − lse).
    double lse;
    if (logits.hasNaN()) {
      lse = std::numeric_limits<double>::quiet_NaN();
      resp.setConstant(lse);
    } else {
      const double peak = logits.maxCoeff();
      if (peak == -std::numeric_limits<double>::infinity()) {
        // Every component underflowed (x astronomically far away): log p = −∞ and the score
        // falls back to the prior weighting.
        lse = peak;
        resp = weights;
      } else {
        lse = peak + std::log((logits.array() - peak).exp().sum());
        resp = (logits.array() - lse).exp();
      }
    }
    if (logp != nullptr) (*logp)(j) = lse;
    if (!need_score) continue;

    score.setZero();
    for (int k = 0; k < num; ++k) score += resp(k) * component_scores[k];
    if (s != nullptr) s->col(j) = score;
    if (div != nullptr) {
      double value = -score.squaredNorm();
      for (int k = 0; k < num; ++k) {
        value += resp(k) * (component_scores[k].squaredNorm() - components[k].trace_precision);
      }
      (*div)(j) = value;
    }
    if (jv != nullptr) {
      vj = v->col(j);
      out = -score.dot(vj) * score;
      for (int k = 0; k < num; ++k) {
        components[k].Precision(vj, &precision_v, &scratch);
        out += resp(k) * (component_scores[k].dot(vj) * component_scores[k] - precision_v);
      }
      jv->col(j) = out;
    }
  }
}

}  // namespace scoresde::internal
