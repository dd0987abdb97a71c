// Internal: the log-density, score, divergence and Hessian–vector product of a Gaussian mixture,
// shared by GaussianMixture (components held as Cholesky factors) and GaussianMixtureScore's
// scalar-affine path (components held as eigendecompositions scaled to each column's time).
//
// With N_k = N(x; μ_k, C_k), p = Σ_k w_k N_k, s_k = ∇ log N_k = −C_k⁻¹(x − μ_k) and
// r_k = w_k N_k / p:
//   ∇p   = Σ_k w_k N_k s_k                        ⇒  s = ∇ log p = Σ_k r_k s_k
//   ∇²p  = Σ_k w_k N_k (s_k s_kᵀ − C_k⁻¹)          (∇ s_k = −C_k⁻¹)
//   ∇² log p = ∇²p / p − s sᵀ = Σ_k r_k (s_k s_kᵀ − C_k⁻¹) − s sᵀ,
// so the divergence (its trace) is Σ_k r_k (‖s_k‖² − tr C_k⁻¹) − ‖s‖² and the Hessian–vector
// product is Σ_k r_k (s_k (s_kᵀ v) − C_k⁻¹ v) − s (sᵀ v).
//
// Columns are evaluated kLanes at a time, one column per SIMD lane: a LaneBlock holds kLanes
// columns with each row's lanes contiguous, and every operation is element-wise across lanes, so
// a column goes through the same instructions whichever lane it lands in. The sums inside a
// column run in a fixed order, and a short last block is padded with copies of its last column.
// A column's bits therefore do not depend on the other columns of the call — the library promises
// the same bits for any thread count or batch chunking (Eigen's blocked matrix kernels and its
// alignment-dependent reductions would break that). Fixed-size lane arrays also make Eigen use its
// vectorized exp and log for every lane, never the scalar library function for some of them.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include <Eigen/Core>

#include "scoresde/sde/batch.hpp"

namespace scoresde::internal {

inline constexpr int kLanes = 8;
using Lanes = Eigen::Array<double, 1, kLanes>;
using LaneBlock = Eigen::Array<double, Eigen::Dynamic, kLanes, Eigen::RowMajor>;

// log w (−∞ for a zero weight).
inline double LogWeight(double weight) {
  return weight > 0.0 ? std::log(weight) : -std::numeric_limits<double>::infinity();
}

// −(d/2) log 2π, the dimension's part of a Gaussian's log normalizer.
inline double LogNormalizerOfDim(Eigen::Index dim) {
  return -0.5 * static_cast<double>(dim) * std::log(2.0 * std::numbers::pi);
}

// Σ_i b.row(i) ⊙ c.row(i): one inner product per lane.
inline Lanes LaneDot(const LaneBlock& b, const LaneBlock& c) {
  Lanes sum = b.row(0) * c.row(0);
  for (Eigen::Index i = 1; i < b.rows(); ++i) sum += b.row(i) * c.row(i);
  return sum;
}

// *out = M a, lane by lane: a sum of M's columns scaled by a's rows.
template <typename M>
void LaneProduct(const M& m, const LaneBlock& a, LaneBlock* out) {
  out->setZero();
  for (Eigen::Index l = 0; l < m.cols(); ++l) {
    for (Eigen::Index i = 0; i < m.rows(); ++i) out->row(i) += m(i, l) * a.row(l);
  }
}

// A component given by its Cholesky factor C = L Lᵀ; the same for every column.
struct CholeskyComponent {
  const Vector* mean;
  const Matrix* chol;
  double log_normalizer;  // log w − ½ log det C − (d/2) log 2π
  double trace_precision;

  // Returns log_normalizer − ½ (x − μ)ᵀ C⁻¹ (x − μ); if score is non-null, *score = −C⁻¹(x − μ).
  // y is scratch.
  Lanes Logit(const LaneBlock& x, LaneBlock* y, LaneBlock* score) const {
    const Matrix& l = *chol;
    const Eigen::Index d = l.rows();
    for (Eigen::Index i = 0; i < d; ++i) {  // y = L⁻¹ (x − μ)
      Lanes acc = x.row(i) - (*mean)(i);
      for (Eigen::Index m = 0; m < i; ++m) acc -= l(i, m) * y->row(m);
      y->row(i) = acc / l(i, i);
    }
    if (score != nullptr) SolveTransposed(*y, score, -1.0);
    return log_normalizer - 0.5 * LaneDot(*y, *y);
  }
  // *out = C⁻¹ v.
  void Precision(const LaneBlock& v, LaneBlock* out, LaneBlock* scratch) const {
    const Matrix& l = *chol;
    for (Eigen::Index i = 0; i < l.rows(); ++i) {
      Lanes acc = v.row(i);
      for (Eigen::Index m = 0; m < i; ++m) acc -= l(i, m) * scratch->row(m);
      scratch->row(i) = acc / l(i, i);
    }
    SolveTransposed(*scratch, out, 1.0);
  }
  Lanes TracePrecision() const { return Lanes::Constant(trace_precision); }

 private:
  // *out = sign · L⁻ᵀ y.
  void SolveTransposed(const LaneBlock& y, LaneBlock* out, double sign) const {
    const Matrix& l = *chol;
    for (Eigen::Index i = l.rows() - 1; i >= 0; --i) {
      Lanes acc = sign * y.row(i);
      for (Eigen::Index m = i + 1; m < l.rows(); ++m) acc -= l(m, i) * out->row(m);
      out->row(i) = acc / l(i, i);
    }
  }
};

// A component N(α μ₀, U (α² Λ + σ² I) Uᵀ) with U orthogonal, α and σ given per lane (the
// marginal at each column's time of a scalar-affine SDE started from N(μ₀, U Λ Uᵀ)).
struct EigenComponent {
  const Vector* mean0;
  const Matrix* eigenvectors;  // U
  const Vector* eigenvalues;   // Λ
  double log_weight;
  // Per lane, set by SetScales.
  Lanes alpha;
  LaneBlock inv_var;  // 1 / (α² λ_i + σ²)
  Lanes log_normalizer;
  Lanes trace_precision;

  void SetScales(const Lanes& a, const Lanes& sigma) {
    const Eigen::Index d = eigenvalues->size();
    alpha = a;
    inv_var.resize(d, kLanes);
    const Lanes a2 = a.square();
    const Lanes s2 = sigma.square();
    Lanes log_det = Lanes::Zero();
    trace_precision.setZero();
    for (Eigen::Index i = 0; i < d; ++i) {
      const Lanes var = a2 * (*eigenvalues)(i) + s2;
      log_det += var.log();
      inv_var.row(i) = var.inverse();
      trace_precision += inv_var.row(i);
    }
    log_normalizer = log_weight + LogNormalizerOfDim(d) - 0.5 * log_det;
  }

  // Returns log_normalizer − ½ (x − αμ₀)ᵀ C⁻¹ (x − αμ₀); if score is non-null, *score = −C⁻¹(x − αμ₀).
  // y is scratch.
  Lanes Logit(const LaneBlock& x, LaneBlock* y, LaneBlock* score) const {
    const Matrix& u = *eigenvectors;
    const Eigen::Index d = u.rows();
    // y = Uᵀ (x − α μ₀).
    y->setZero();
    for (Eigen::Index l = 0; l < d; ++l) {
      const Lanes diff = x.row(l) - alpha * (*mean0)(l);
      for (Eigen::Index i = 0; i < d; ++i) y->row(i) += u(l, i) * diff;
    }
    const Lanes q = LaneDot(inv_var, y->square());
    if (score != nullptr) {
      *y *= -inv_var;
      LaneProduct(u, *y, score);
    }
    return log_normalizer - 0.5 * q;
  }
  void Precision(const LaneBlock& v, LaneBlock* out, LaneBlock* scratch) const {
    LaneProduct(eigenvectors->transpose(), v, scratch);
    *scratch *= inv_var;
    LaneProduct(*eigenvectors, *scratch, out);
  }
  Lanes TracePrecision() const { return trace_precision; }
};

// Where MixtureEvaluator writes: any output may be null; v is needed for jv.
struct MixtureOutputs {
  const ConstBatchRef* v = nullptr;
  RowVectorRef* logp = nullptr;
  BatchRef* s = nullptr;
  RowVectorRef* div = nullptr;
  BatchRef* jv = nullptr;
};

// Evaluates a mixture kLanes columns at a time. It holds all the scratch, so evaluating a block
// allocates nothing; callers whose components depend on the columns' times set them up between
// blocks.
template <typename Component>
class MixtureEvaluator {
 public:
  MixtureEvaluator(Eigen::Index dim, const Vector& weights, MixtureOutputs outputs)
      : weights_(weights),
        out_(outputs),
        need_score_(outputs.s != nullptr || outputs.div != nullptr || outputs.jv != nullptr),
        component_scores_(need_score_ ? weights.size() : 0, LaneBlock(dim, kLanes)),
        x_(dim, kLanes), y_(dim, kLanes), score_(dim, kLanes),
        logits_(weights.size(), kLanes), resp_(weights.size(), kLanes) {
    if (out_.jv != nullptr) {
      v_.resize(dim, kLanes);
      precision_v_.resize(dim, kLanes);
      sum_.resize(dim, kLanes);
    }
  }

  // Evaluates columns first, …, first + count − 1 of x (1 ≤ count ≤ kLanes).
  void Evaluate(const std::vector<Component>& components, ConstBatchRef x, Eigen::Index first,
                int count) {
    Load(x, first, count, &x_);
    const int num = static_cast<int>(components.size());
    for (int k = 0; k < num; ++k) {
      logits_.row(k) =
          components[k].Logit(x_, &y_, need_score_ ? &component_scores_[k] : nullptr);
    }
    const Lanes lse = Responsibilities();
    if (out_.logp != nullptr) {
      for (int c = 0; c < count; ++c) (*out_.logp)(first + c) = lse(c);
    }
    if (!need_score_) return;

    score_.setZero();
    for (int k = 0; k < num; ++k) {
      for (Eigen::Index i = 0; i < score_.rows(); ++i) {
        score_.row(i) += resp_.row(k) * component_scores_[k].row(i);
      }
    }
    if (out_.s != nullptr) Store(score_, first, count, out_.s);
    if (out_.div != nullptr) {
      Lanes value = -LaneDot(score_, score_);
      for (int k = 0; k < num; ++k) {
        value += resp_.row(k) * (LaneDot(component_scores_[k], component_scores_[k]) -
                                 components[k].TracePrecision());
      }
      for (int c = 0; c < count; ++c) (*out_.div)(first + c) = value(c);
    }
    if (out_.jv != nullptr) {
      Load(*out_.v, first, count, &v_);
      const Lanes score_v = LaneDot(score_, v_);
      for (Eigen::Index i = 0; i < sum_.rows(); ++i) sum_.row(i) = -score_v * score_.row(i);
      for (int k = 0; k < num; ++k) {
        components[k].Precision(v_, &precision_v_, &y_);
        const LaneBlock& sk = component_scores_[k];
        const Lanes sk_v = LaneDot(sk, v_);
        for (Eigen::Index i = 0; i < sum_.rows(); ++i) {
          sum_.row(i) += resp_.row(k) * (sk_v * sk.row(i) - precision_v_.row(i));
        }
      }
      Store(sum_, first, count, out_.jv);
    }
  }

 private:
  // Lanes past count repeat the last column, so that they hold ordinary values.
  static void Load(ConstBatchRef x, Eigen::Index first, int count, LaneBlock* block) {
    for (int c = 0; c < kLanes; ++c) block->col(c) = x.col(first + std::min(c, count - 1)).array();
  }
  static void Store(const LaneBlock& block, Eigen::Index first, int count, BatchRef* out) {
    for (int c = 0; c < count; ++c) out->col(first + c) = block.col(c).matrix();
  }

  // Sets resp_ to r_k = exp(logit_k − lse) and returns lse = log Σ_k exp(logit_k), per lane.
  Lanes Responsibilities() {
    const Lanes peak = logits_.colwise().maxCoeff();
    for (Eigen::Index k = 0; k < logits_.rows(); ++k) resp_.row(k) = (logits_.row(k) - peak).exp();
    Lanes total = resp_.row(0);
    for (Eigen::Index k = 1; k < resp_.rows(); ++k) total += resp_.row(k);
    const Lanes inverse_total = total.inverse();
    for (Eigen::Index k = 0; k < resp_.rows(); ++k) resp_.row(k) *= inverse_total;
    Lanes lse = peak + total.log();
    if (!logits_.allFinite()) FixNonFiniteLanes(&lse);
    return lse;
  }

  // The lanes with a non-finite logit, redone one by one (the packet functions' results there
  // are unspecified).
  void FixNonFiniteLanes(Lanes* lse) {
    constexpr double kNegInf = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < kLanes; ++c) {
      const auto logits = logits_.col(c);
      if (logits.allFinite()) continue;
      if (logits.hasNaN()) {
        (*lse)(c) = std::numeric_limits<double>::quiet_NaN();
        resp_.col(c).setConstant((*lse)(c));
        continue;
      }
      // Only −∞ (a zero weight, or x so far away that the component underflowed): its
      // exponential is exactly 0.
      const double peak = logits.maxCoeff();
      if (peak == kNegInf) {
        // Every component underflowed (x astronomically far away): log p = −∞ and the score
        // falls back to the prior weighting.
        (*lse)(c) = kNegInf;
        resp_.col(c) = weights_.array();
        continue;
      }
      double total = 0.0;
      for (Eigen::Index k = 0; k < logits.size(); ++k) {
        resp_(k, c) = logits(k) == kNegInf ? 0.0 : std::exp(logits(k) - peak);
        total += resp_(k, c);
      }
      resp_.col(c) /= total;
      (*lse)(c) = peak + std::log(total);
    }
  }

  const Vector& weights_;
  MixtureOutputs out_;
  bool need_score_;
  std::vector<LaneBlock> component_scores_;
  LaneBlock x_, y_, score_, v_, precision_v_, sum_;
  Eigen::Array<double, Eigen::Dynamic, kLanes, Eigen::RowMajor> logits_, resp_;
};

}  // namespace scoresde::internal
