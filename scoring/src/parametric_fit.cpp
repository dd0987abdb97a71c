#include "scoresde/scoring/parametric_fit.hpp"

#include <cmath>
#include <memory>

#include <ceres/ceres.h>
#include <Eigen/Dense>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

void DsmFitOptions::Validate() const {
  Require(std::isfinite(eps) && eps > 0.0 && eps < 1.0, "DsmFitOptions", "eps", eps, "in (0, 1)");
  Require(max_iterations >= 1, "DsmFitOptions", "max_iterations", max_iterations, ">= 1");
  Require(num_threads >= 1, "DsmFitOptions", "num_threads", num_threads, ">= 1");
}

namespace {

// One example's perturbation.
struct Example {
  Vector x;        // α x_0 + σ z
  Vector target;   // −z/σ
  double alpha, sigma, sqrt_weight;
};

std::vector<Example> MakeExamples(const ScalarAffineSde& sde, ConstBatchRef x0,
                                  const DsmFitOptions& options, const char* where) {
  options.Validate();
  Require(x0.cols() >= 1, where, "x0.cols()", static_cast<int64_t>(x0.cols()), ">= 1");
  CheckShape(where, "x0", x0, sde.dim(), -1);
  CheckFinite(where, "x0", x0);
  Require(options.eps < sde.t_final(), where, "eps", options.eps, "< T");
  const int64_t n = x0.cols();
  const int d = sde.dim();
  const NoiseStream noise(options.seed, Stream::kTraining);
  Matrix u(1, n), z(d, n);
  noise.FillUniform(0, 0, 0, u);
  noise.FillNormal(0, 1, 0, z);
  std::vector<Example> examples(n);
  for (int64_t i = 0; i < n; ++i) {
    Example& e = examples[i];
    const double t = options.eps + (sde.t_final() - options.eps) * u(0, i);
    e.alpha = sde.MeanCoefficient(t);
    e.sigma = sde.MarginalStd(t);
    e.x = e.alpha * x0.col(i) + e.sigma * z.col(i);
    e.target = -z.col(i) / e.sigma;
    const double g = sde.ScalarDiffusion(t);
    e.sqrt_weight = options.weighting == Weighting::kSigmaSquared ? e.sigma : g;
  }
  return examples;
}

// r = sqrt(λ) (s_θ(x) − target) for the Gaussian family; parameters[0] = μ, parameters[1] = L.
struct GaussianResidual {
  const Example* e;
  int d;
  template <typename T>
  bool operator()(T const* const* parameters, T* residual) const {
    using MatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
    using VectorT = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    const T* mu = parameters[0];
    const T* packed = parameters[1];
    MatrixT l = MatrixT::Zero(d, d);
    int k = 0;
    for (int r = 0; r < d; ++r) {
      for (int c = 0; c <= r; ++c) l(r, c) = packed[k++];
    }
    MatrixT cov = T(e->alpha * e->alpha) * (l * l.transpose());
    for (int r = 0; r < d; ++r) cov(r, r) += T(e->sigma * e->sigma);
    VectorT diff(d);
    for (int r = 0; r < d; ++r) diff(r) = T(e->x(r)) - T(e->alpha) * mu[r];
    const VectorT s = -cov.llt().solve(diff);
    for (int r = 0; r < d; ++r) residual[r] = T(e->sqrt_weight) * (s(r) - T(e->target(r)));
    return true;
  }
};

// The mixture family with fixed weights and covariances; parameters[k] = μ_k.
struct MixtureResidual {
  const Example* e;
  int d;
  std::vector<double> log_weights;
  std::vector<Matrix> precisions;  // (α² C_k + σ² I)⁻¹ at this example's t
  std::vector<double> log_dets;
  template <typename T>
  bool operator()(T const* const* parameters, T* residual) const {
    using VectorT = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    const int components = static_cast<int>(precisions.size());
    std::vector<VectorT> scores(components);
    std::vector<T> logits(components);
    for (int k = 0; k < components; ++k) {
      VectorT diff(d);
      for (int r = 0; r < d; ++r) diff(r) = T(e->x(r)) - T(e->alpha) * parameters[k][r];
      scores[k] = -(precisions[k].cast<T>() * diff);
      logits[k] = T(log_weights[k] - 0.5 * log_dets[k]) + T(0.5) * diff.dot(scores[k]);
    }
    T largest = logits[0];
    for (int k = 1; k < components; ++k) {
      if (logits[k] > largest) largest = logits[k];
    }
    T total(0.0);
    std::vector<T> rho(components);
    for (int k = 0; k < components; ++k) {
      rho[k] = exp(logits[k] - largest);
      total += rho[k];
    }
    VectorT s = VectorT::Zero(d);
    for (int k = 0; k < components; ++k) s += (rho[k] / total) * scores[k];
    for (int r = 0; r < d; ++r) residual[r] = T(e->sqrt_weight) * (s(r) - T(e->target(r)));
    return true;
  }
};

// Solves, then fills the sandwich covariance from the Jacobian and residuals at the solution.
DsmFitResult SolveAndSandwich(ceres::Problem* problem, const std::vector<double*>& blocks,
                              const std::vector<int>& sizes, int residuals_per_example,
                              const DsmFitOptions& options) {
  ceres::Solver::Options solver;
  solver.max_num_iterations = options.max_iterations;
  solver.linear_solver_type = ceres::DENSE_QR;
  solver.num_threads = options.num_threads;
  solver.function_tolerance = 1e-14;
  solver.gradient_tolerance = 1e-14;
  solver.parameter_tolerance = 1e-14;
  ceres::Solver::Summary summary;
  ceres::Solve(solver, problem, &summary);
  DsmFitResult result;
  result.initial_cost = summary.initial_cost;
  result.final_cost = summary.final_cost;
  result.iterations = static_cast<int>(summary.iterations.size());
  result.converged = summary.termination_type == ceres::CONVERGENCE;
  result.report = summary.BriefReport();

  int p = 0;
  for (int s : sizes) p += s;
  result.parameters.resize(p);
  int offset = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (int k = 0; k < sizes[b]; ++k) result.parameters(offset + k) = blocks[b][k];
    offset += sizes[b];
  }
  ceres::Problem::EvaluateOptions evaluate;
  evaluate.parameter_blocks = blocks;
  std::vector<double> residuals;
  ceres::CRSMatrix crs;
  problem->Evaluate(evaluate, nullptr, &residuals, nullptr, &crs);
  Matrix jacobian = Matrix::Zero(crs.num_rows, crs.num_cols);
  for (int r = 0; r < crs.num_rows; ++r) {
    for (int idx = crs.rows[r]; idx < crs.rows[r + 1]; ++idx) jacobian(r, crs.cols[idx]) = crs.values[idx];
  }
  const Matrix hessian = jacobian.transpose() * jacobian;
  Matrix meat = Matrix::Zero(p, p);
  const int examples = crs.num_rows / residuals_per_example;
  for (int i = 0; i < examples; ++i) {
    const auto ji = jacobian.middleRows(i * residuals_per_example, residuals_per_example);
    const Eigen::Map<const Vector> ri(residuals.data() + i * residuals_per_example,
                                      residuals_per_example);
    const Vector g = ji.transpose() * ri;
    meat += g * g.transpose();
  }
  const Matrix inverse = hessian.completeOrthogonalDecomposition().pseudoInverse();
  result.parameter_covariance = inverse * meat * inverse;
  result.standard_errors = result.parameter_covariance.diagonal().cwiseMax(0.0).cwiseSqrt();
  return result;
}

}  // namespace

GaussianFit FitGaussianByDsm(const ScalarAffineSde& sde, ConstBatchRef x0,
                             const DsmFitOptions& options) {
  constexpr const char* kWhere = "FitGaussianByDsm";
  const std::vector<Example> examples = MakeExamples(sde, x0, options, kWhere);
  const int d = sde.dim();
  const int packed = d * (d + 1) / 2;
  Require(static_cast<int64_t>(x0.cols()) > d + packed, kWhere, "x0.cols()",
          static_cast<int64_t>(x0.cols()), "> the number of parameters d(d+3)/2");
  std::vector<double> mu(d, 0.0), l(packed, 0.0);
  for (int r = 0, k = 0; r < d; ++r) {
    for (int c = 0; c <= r; ++c, ++k) l[k] = r == c ? 1.0 : 0.0;
  }
  ceres::Problem problem;
  for (const Example& e : examples) {
    auto* cost = new ceres::DynamicAutoDiffCostFunction<GaussianResidual, 8>(
        new GaussianResidual{&e, d});
    cost->AddParameterBlock(d);
    cost->AddParameterBlock(packed);
    cost->SetNumResiduals(d);
    problem.AddResidualBlock(cost, nullptr, mu.data(), l.data());
  }
  GaussianFit fit;
  fit.fit = SolveAndSandwich(&problem, {mu.data(), l.data()}, {d, packed}, d, options);
  // LLᵀ is invariant under flipping the sign of a column of L: report the positive-diagonal
  // representative (and flip the parameters and their covariance with it).
  fit.mean = Eigen::Map<const Vector>(mu.data(), d);
  fit.cholesky = Matrix::Zero(d, d);
  for (int r = 0, k = 0; r < d; ++r) {
    for (int c = 0; c <= r; ++c, ++k) fit.cholesky(r, c) = l[k];
  }
  Vector flip = Vector::Ones(d + packed);
  for (int c = 0; c < d; ++c) {
    if (fit.cholesky(c, c) < 0) {
      fit.cholesky.col(c) *= -1.0;
      for (int r = c; r < d; ++r) flip(d + r * (r + 1) / 2 + c) = -1.0;
    }
  }
  fit.fit.parameters = fit.fit.parameters.cwiseProduct(flip);
  fit.fit.parameter_covariance =
      flip.asDiagonal() * fit.fit.parameter_covariance * flip.asDiagonal();
  fit.covariance = fit.cholesky * fit.cholesky.transpose();
  return fit;
}

MixtureMeansFit FitMixtureMeansByDsm(const ScalarAffineSde& sde, ConstBatchRef x0,
                                     const Vector& weights, const std::vector<Matrix>& covs,
                                     const std::vector<Vector>& initial_means,
                                     const DsmFitOptions& options) {
  constexpr const char* kWhere = "FitMixtureMeansByDsm";
  const std::vector<Example> examples = MakeExamples(sde, x0, options, kWhere);
  const int d = sde.dim();
  const int components = static_cast<int>(weights.size());
  Require(components >= 1, kWhere, "weights.size()", components, ">= 1");
  Require(static_cast<int>(covs.size()) == components, kWhere, "covs.size()",
          static_cast<int>(covs.size()), "weights.size()");
  Require(static_cast<int>(initial_means.size()) == components, kWhere, "initial_means.size()",
          static_cast<int>(initial_means.size()), "weights.size()");
  Require((weights.array() > 0.0).all() && std::abs(weights.sum() - 1.0) < 1e-12, kWhere,
          "weights", weights.sum(), "positive and summing to 1");
  for (int k = 0; k < components; ++k) {
    CheckShape(kWhere, "covs[k]", covs[k], d, d);
    Require(initial_means[k].size() == d, kWhere, "initial_means[k].size()",
            static_cast<int64_t>(initial_means[k].size()), std::to_string(d));
    Require(covs[k].llt().info() == Eigen::Success, kWhere, "covs[k]", k,
            "symmetric positive definite");
  }
  std::vector<std::vector<double>> means(components);
  for (int k = 0; k < components; ++k) {
    means[k].assign(initial_means[k].data(), initial_means[k].data() + d);
  }
  ceres::Problem problem;
  for (const Example& e : examples) {
    auto* functor = new MixtureResidual{&e, d, {}, {}, {}};
    for (int k = 0; k < components; ++k) {
      Matrix c = e.alpha * e.alpha * covs[k];
      c.diagonal().array() += e.sigma * e.sigma;
      const Eigen::LLT<Matrix> llt(c);
      functor->precisions.push_back(llt.solve(Matrix::Identity(d, d)));
      functor->log_dets.push_back(2.0 * llt.matrixLLT().diagonal().array().log().sum());
      functor->log_weights.push_back(std::log(weights(k)));
    }
    auto* cost = new ceres::DynamicAutoDiffCostFunction<MixtureResidual, 8>(functor);
    std::vector<double*> blocks;
    for (int k = 0; k < components; ++k) {
      cost->AddParameterBlock(d);
      blocks.push_back(means[k].data());
    }
    cost->SetNumResiduals(d);
    problem.AddResidualBlock(cost, nullptr, blocks);
  }
  std::vector<double*> blocks;
  std::vector<int> sizes;
  for (int k = 0; k < components; ++k) {
    blocks.push_back(means[k].data());
    sizes.push_back(d);
  }
  MixtureMeansFit fit;
  fit.fit = SolveAndSandwich(&problem, blocks, sizes, d, options);
  for (int k = 0; k < components; ++k) fit.means.push_back(Eigen::Map<const Vector>(means[k].data(), d));
  return fit;
}

}  // namespace scoresde
