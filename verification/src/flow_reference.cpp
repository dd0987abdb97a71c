#include "scoresde/verification/flow_reference.hpp"

#include <cmath>
#include <numbers>
#include <string>

#include <Eigen/Eigenvalues>

#include "scoresde/sde/check.hpp"

namespace scoresde {
namespace {

// α_t and σ_t² from a transition known to be scalar-affine (A = α I, b = 0, Q = σ² I).
void ScalarKernel(const char* where, const GaussianTransition& kernel, double* alpha,
                  double* variance) {
  const Eigen::Index d = kernel.A.rows();
  *alpha = kernel.A(0, 0);
  *variance = kernel.Q(0, 0);
  const bool scalar = (kernel.A - *alpha * Matrix::Identity(d, d)).cwiseAbs().maxCoeff() == 0.0 &&
                      (kernel.Q - *variance * Matrix::Identity(d, d)).cwiseAbs().maxCoeff() == 0.0 &&
                      kernel.b.cwiseAbs().maxCoeff() == 0.0;
  Require(scalar, where, "score", std::string_view("(a LinearSde score)"),
          "the score of a scalar-affine SDE (VE, VP or sub-VP)");
}

}  // namespace

void GaussianFlowMap(const GaussianMixtureScore& score, double s, double t, ConstBatchRef x_s,
                     BatchRef x_t) {
  constexpr const char* where = "GaussianFlowMap";
  const GaussianMixture& p0 = score.initial();
  Require(p0.num_components() == 1, where, "num_components", p0.num_components(),
          "1 (a Gaussian)");
  CheckShape(where, "x_s", x_s, p0.dim(), -1);
  CheckShape(where, "x_t", x_t, p0.dim(), x_s.cols());
  double alpha_s, var_s, alpha_t, var_t;
  ScalarKernel(where, score.Transition(s), &alpha_s, &var_s);
  ScalarKernel(where, score.Transition(t), &alpha_t, &var_t);
  const Eigen::SelfAdjointEigenSolver<Matrix> eig(p0.cov(0));
  const Matrix& u = eig.eigenvectors();
  const Eigen::ArrayXd lambda = eig.eigenvalues().array();
  const Eigen::ArrayXd c_s = alpha_s * alpha_s * lambda + var_s;
  const Eigen::ArrayXd c_t = alpha_t * alpha_t * lambda + var_t;
  const Vector gain = (c_t / c_s).sqrt().matrix();
  const Vector& mu = p0.mean(0);
  for (Eigen::Index j = 0; j < x_s.cols(); ++j) {
    const Vector y = u.transpose() * (x_s.col(j) - alpha_s * mu);
    x_t.col(j) = alpha_t * mu + u * gain.cwiseProduct(y);
  }
}

void PriorMismatch(const GaussianMixtureScore& score, double t_final, double prior_std,
                   ConstBatchRef x_T, RowVectorRef out) {
  constexpr const char* where = "PriorMismatch";
  RequirePositive(where, "prior_std", prior_std);
  const int d = score.dim();
  CheckShape(where, "x_T", x_T, d, -1);
  CheckShape(where, "out", out, 1, x_T.cols());
  RowVector exact(x_T.cols());
  score.LogDensity(x_T, RowVector::Constant(x_T.cols(), t_final), exact);
  const double log_normalizer = -0.5 * d * std::log(2.0 * std::numbers::pi * prior_std * prior_std);
  for (Eigen::Index j = 0; j < x_T.cols(); ++j) {
    out(j) = log_normalizer - 0.5 * x_T.col(j).squaredNorm() / (prior_std * prior_std) - exact(j);
  }
}

}  // namespace scoresde
