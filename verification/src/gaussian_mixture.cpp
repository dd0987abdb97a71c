#include "scoresde/verification/gaussian_mixture.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "mixture_kernel.hpp"
#include "scoresde/sde/check.hpp"

namespace scoresde {
namespace {

constexpr const char* kWhere = "GaussianMixture";

std::string Indexed(const char* name, int k) {
  return std::string(name) + "[" + std::to_string(k) + "]";
}

}  // namespace

GaussianMixture::GaussianMixture(Vector weights, std::vector<Vector> means,
                                 std::vector<Matrix> covs)
    : weights_(std::move(weights)), means_(std::move(means)), covs_(std::move(covs)) {
  const int num = static_cast<int>(weights_.size());
  Require(num >= 1, kWhere, "weights.size()", num, ">= 1 (at least one component)");
  Require(static_cast<int64_t>(means_.size()) == num, kWhere, "means.size()",
          static_cast<int64_t>(means_.size()), "equal to weights.size() = " + std::to_string(num));
  Require(static_cast<int64_t>(covs_.size()) == num, kWhere, "covs.size()",
          static_cast<int64_t>(covs_.size()), "equal to weights.size() = " + std::to_string(num));
  dim_ = static_cast<int>(means_[0].size());
  Require(dim_ >= 1, kWhere, "means[0].size()", dim_, ">= 1");
  double sum = 0.0;
  for (int k = 0; k < num; ++k) {
    RequireFinite(kWhere, Indexed("weights", k), weights_(k));
    Require(weights_(k) >= 0.0, kWhere, Indexed("weights", k), weights_(k), ">= 0");
    sum += weights_(k);
    CheckShape(kWhere, Indexed("means", k), means_[k], dim_, 1);
    CheckFinite(kWhere, Indexed("means", k), means_[k]);
    CheckShape(kWhere, Indexed("covs", k), covs_[k], dim_, dim_);
    CheckFinite(kWhere, Indexed("covs", k), covs_[k]);
  }
  // Weights typed by hand or read from a file are exact to ~1e-16 each; 1e-12 per component leaves
  // room for that and rejects anything that is not meant to be a probability vector.
  Require(std::abs(sum - 1.0) <= 1e-12 * num, kWhere, "sum(weights)", sum,
          "1 within 1e-12 * num_components");
  weights_ /= sum;

  chol_.resize(num);
  log_det_.resize(num);
  trace_precision_.resize(num);
  for (int k = 0; k < num; ++k) {
    Matrix& c = covs_[k];
    const double scale = c.cwiseAbs().maxCoeff();
    const double asymmetry = (c - c.transpose()).cwiseAbs().maxCoeff();
    Require(asymmetry <= 1e-10 * scale, kWhere, "max|" + Indexed("covs", k) + " - transpose|",
            asymmetry, "<= 1e-10 * max|covs[k]| (symmetric)");
    c = 0.5 * (c + c.transpose()).eval();
    Eigen::LLT<Matrix> llt(c);
    if (llt.info() != Eigen::Success) {
      // Only on failure: the smallest eigenvalue tells the user how far from definite it is.
      const double min_eig =
          Eigen::SelfAdjointEigenSolver<Matrix>(c, Eigen::EigenvaluesOnly).eigenvalues().minCoeff();
      Require(false, kWhere, "smallest eigenvalue of " + Indexed("covs", k), min_eig,
              "> 0 (positive definite)");
    }
    chol_[k] = llt.matrixL();
    log_det_[k] = 2.0 * chol_[k].diagonal().array().log().sum();
    // tr(Σ⁻¹) = ‖L⁻¹‖_F².
    const Matrix inv_l =
        chol_[k].triangularView<Eigen::Lower>().solve(Matrix::Identity(dim_, dim_));
    trace_precision_[k] = inv_l.squaredNorm();
  }
}

GaussianMixture GaussianMixture::Gaussian(Vector mean, Matrix cov) {
  std::vector<Vector> means;
  means.push_back(std::move(mean));
  std::vector<Matrix> covs;
  covs.push_back(std::move(cov));
  return GaussianMixture(Vector::Ones(1), std::move(means), std::move(covs));
}

void GaussianMixture::Compute(ConstBatchRef x, const ConstBatchRef* v, RowVectorRef* logp,
                              BatchRef* s, RowVectorRef* div, BatchRef* jv) const {
  std::vector<internal::CholeskyComponent> components(num_components());
  for (int k = 0; k < num_components(); ++k) {
    components[k] = {&means_[k], &chol_[k],
                     internal::LogWeight(weights_(k)) - 0.5 * log_det_[k] +
                         internal::LogNormalizerOfDim(dim_),
                     trace_precision_[k]};
  }
  internal::MixtureEvaluator<internal::CholeskyComponent> evaluator(dim_, weights_,
                                                                    {v, logp, s, div, jv});
  for (Eigen::Index first = 0; first < x.cols(); first += internal::kLanes) {
    const auto count = static_cast<int>(std::min<Eigen::Index>(internal::kLanes, x.cols() - first));
    evaluator.Evaluate(components, x, first, count);
  }
}

void GaussianMixture::LogDensity(ConstBatchRef x, RowVectorRef logp) const {
  CheckShape("GaussianMixture::LogDensity", "x", x, dim_, -1);
  CheckShape("GaussianMixture::LogDensity", "logp", logp, 1, x.cols());
  Compute(x, nullptr, &logp, nullptr, nullptr, nullptr);
}

void GaussianMixture::Score(ConstBatchRef x, BatchRef s) const {
  CheckShape("GaussianMixture::Score", "x", x, dim_, -1);
  CheckShape("GaussianMixture::Score", "s", s, dim_, x.cols());
  Compute(x, nullptr, nullptr, &s, nullptr, nullptr);
}

void GaussianMixture::ScoreDivergence(ConstBatchRef x, RowVectorRef div) const {
  CheckShape("GaussianMixture::ScoreDivergence", "x", x, dim_, -1);
  CheckShape("GaussianMixture::ScoreDivergence", "div", div, 1, x.cols());
  Compute(x, nullptr, nullptr, nullptr, &div, nullptr);
}

void GaussianMixture::ScoreJvp(ConstBatchRef x, ConstBatchRef v, BatchRef jv) const {
  CheckShape("GaussianMixture::ScoreJvp", "x", x, dim_, -1);
  CheckShape("GaussianMixture::ScoreJvp", "v", v, dim_, x.cols());
  CheckShape("GaussianMixture::ScoreJvp", "jv", jv, dim_, x.cols());
  Compute(x, &v, nullptr, nullptr, nullptr, &jv);
}

void GaussianMixture::ScoreAndJvp(ConstBatchRef x, ConstBatchRef v, BatchRef s, BatchRef jv) const {
  CheckShape("GaussianMixture::ScoreAndJvp", "x", x, dim_, -1);
  CheckShape("GaussianMixture::ScoreAndJvp", "v", v, dim_, x.cols());
  CheckShape("GaussianMixture::ScoreAndJvp", "s", s, dim_, x.cols());
  CheckShape("GaussianMixture::ScoreAndJvp", "jv", jv, dim_, x.cols());
  Compute(x, &v, nullptr, &s, nullptr, &jv);
}

void GaussianMixture::Sample(const NoiseStream& noise, int64_t first_sample, BatchRef x) const {
  CheckShape("GaussianMixture::Sample", "x", x, dim_, -1);
  Require(first_sample >= 0, "GaussianMixture::Sample", "first_sample", first_sample, ">= 0");
  const Eigen::Index count = x.cols();
  if (count == 0) return;
  const int num = num_components();
  Batch u(1, count);
  noise.FillUniform(0, 0, first_sample, u);
  Batch z(dim_, count);
  noise.FillNormal(0, 1, first_sample, z);
  Vector zj(dim_);
  for (Eigen::Index j = 0; j < count; ++j) {
    // Smallest k with u < w_0 + … + w_k; the last positive-weight component absorbs rounding in
    // the cumulative sum.
    int chosen = -1;
    double cumulative = 0.0;
    for (int k = 0; k < num; ++k) {
      if (weights_(k) <= 0.0) continue;
      chosen = k;
      cumulative += weights_(k);
      if (u(0, j) < cumulative) break;
    }
    // One matrix–vector product per sample on a heap vector, so the bits do not depend on the
    // chunking (see mixture_kernel.hpp).
    zj = z.col(j);
    x.col(j) = means_[chosen] + chol_[chosen].triangularView<Eigen::Lower>() * zj;
  }
}

Vector GaussianMixture::Mean() const {
  Vector m = Vector::Zero(dim_);
  for (int k = 0; k < num_components(); ++k) m += weights_(k) * means_[k];
  return m;
}

Matrix GaussianMixture::Covariance() const {
  const Vector m = Mean();
  Matrix c = Matrix::Zero(dim_, dim_);
  for (int k = 0; k < num_components(); ++k) {
    const Vector dm = means_[k] - m;
    c += weights_(k) * (covs_[k] + dm * dm.transpose());
  }
  return c;
}

GaussianMixture GaussianMixture::Transformed(const Matrix& A, const Vector& b,
                                             const Matrix& Q) const {
  constexpr const char* where = "GaussianMixture::Transformed";
  const Eigen::Index out_dim = A.rows();
  Require(out_dim >= 1, where, "A.rows()", static_cast<int64_t>(out_dim), ">= 1");
  CheckShape(where, "A", A, -1, dim_);
  CheckShape(where, "b", b, out_dim, 1);
  CheckShape(where, "Q", Q, out_dim, out_dim);
  CheckFinite(where, "A", A);
  CheckFinite(where, "b", b);
  CheckFinite(where, "Q", Q);
  const double q_asymmetry = (Q - Q.transpose()).cwiseAbs().maxCoeff();
  Require(q_asymmetry <= 1e-10 * Q.cwiseAbs().maxCoeff(), where, "max|Q - transpose(Q)|",
          q_asymmetry, "<= 1e-10 * max|Q| (symmetric)");
  std::vector<Vector> means(num_components());
  std::vector<Matrix> covs(num_components());
  for (int k = 0; k < num_components(); ++k) {
    means[k] = A * means_[k] + b;
    // A Σ Aᵀ = (A L)(A L)ᵀ is symmetric by construction; symmetrize to remove rounding.
    const Matrix al = A * chol_[k].triangularView<Eigen::Lower>();
    Matrix c = al * al.transpose() + Q;
    covs[k] = 0.5 * (c + c.transpose());
  }
  return GaussianMixture(weights_, std::move(means), std::move(covs));
}

}  // namespace scoresde
