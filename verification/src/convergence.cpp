#include "scoresde/verification/convergence.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <utility>
#include <string>

#include <Eigen/LU>
#include <boost/math/distributions/students_t.hpp>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/context.hpp"
#include "scoresde/solvers/sde_integrator.hpp"

namespace scoresde {

void ConvergenceOptions::Validate() const {
  constexpr const char* kWhere = "ConvergenceOptions";
  for (const auto& [name, levels] : {std::pair<std::string, const Levels&>("strong", strong),
                                     std::pair<std::string, const Levels&>("weak", weak)}) {
    Require(levels.min_level >= 0 && levels.min_level <= 20, kWhere, name + ".min_level",
            levels.min_level, "in [0, 20]");
    Require(levels.max_level >= levels.min_level + 2 && levels.max_level <= 20, kWhere,
            name + ".max_level", levels.max_level,
            ">= min_level + 2 (" + std::to_string(levels.min_level + 2) + ") and <= 20");
    Require(levels.num_samples >= 10, kWhere, name + ".num_samples", levels.num_samples, ">= 10");
  }
  Require(weak.max_level >= weak.min_level + 4, kWhere, "weak.max_level", weak.max_level,
          ">= weak.min_level + 4 (four differences for the corrected fit)");
  Require(reference_extra_levels >= 0 && strong.max_level + reference_extra_levels <= 22, kWhere,
          "reference_extra_levels", reference_extra_levels,
          ">= 0 with strong.max_level + reference_extra_levels <= 22");
  Require(std::isfinite(confidence) && confidence > 0.0 && confidence < 1.0, kWhere, "confidence",
          confidence, "in (0, 1)");
  Require(num_threads >= 1, kWhere, "num_threads", num_threads, ">= 1");
  Require(block_size >= 1, kWhere, "block_size", block_size, ">= 1");
}

OrderEstimate FitOrder(const std::vector<double>& h, const std::vector<double>& errors,
                       const Matrix& log_error_cov, double confidence, OrderModel model) {
  constexpr const char* kWhere = "FitOrder";
  const int k = static_cast<int>(h.size());
  const int parameters = model == OrderModel::kPowerLaw ? 2 : 3;
  Require(k >= parameters + 1, kWhere, "number of points", k,
          ">= " + std::to_string(parameters + 1) + " for this model");
  Require(static_cast<int>(errors.size()) == k, kWhere, "errors.size()",
          static_cast<int64_t>(errors.size()), "equal to h.size() (" + std::to_string(k) + ")");
  CheckShape(kWhere, "log_error_cov", log_error_cov, k, k);
  CheckFinite(kWhere, "log_error_cov", log_error_cov);
  Require(std::isfinite(confidence) && confidence > 0.0 && confidence < 1.0, kWhere, "confidence",
          confidence, "in (0, 1)");
  Matrix design(k, parameters);
  Vector y(k);
  for (int i = 0; i < k; ++i) {
    Require(std::isfinite(h[i]) && h[i] > 0.0, kWhere, "h[" + std::to_string(i) + "]", h[i],
            "finite and > 0");
    Require(std::isfinite(errors[i]) && errors[i] > 0.0, kWhere,
            "errors[" + std::to_string(i) + "]", errors[i], "finite and > 0");
    design(i, 0) = 1.0;
    design(i, 1) = std::log(h[i]);
    if (model == OrderModel::kPowerLawWithHalfCorrection) design(i, 2) = std::sqrt(h[i]);
    if (model == OrderModel::kPowerLawWithCorrection) design(i, 2) = h[i];
    y(i) = std::log(errors[i]);
  }
  // Least squares through the normal equations of the small K × (2 or 3) design: the order is
  // p̂ = wᵀy with w the second row of (XᵀX)⁻¹Xᵀ.
  const Matrix gram = design.transpose() * design;
  const Eigen::FullPivLU<Matrix> lu(gram);
  Require(lu.isInvertible(), kWhere, "step sizes", std::string("degenerate"),
          "distinct enough to fit the model");
  const Matrix gram_inverse = lu.inverse();
  const Vector w = (gram_inverse * design.transpose()).row(1).transpose();
  const Vector beta = gram_inverse * (design.transpose() * y);
  OrderEstimate fit;
  fit.points = k;
  fit.model = model;
  fit.order = beta(1);
  const Vector residual = y - design * beta;
  const int residual_dof = k - parameters;
  const double s2 = residual.squaredNorm() / residual_dof;
  fit.stderr_fit = std::sqrt(s2 * gram_inverse(1, 1));
  fit.stderr_mc = std::sqrt(std::max(0.0, w.dot(log_error_cov * w)));
  const double se = std::hypot(fit.stderr_fit, fit.stderr_mc);
  // Welch–Satterthwaite: the lack-of-fit variance is estimated with K − q degrees of freedom, the
  // Monte-Carlo variance from n ≫ K paths (taken as exact), so the combined variance has
  // ν = (v_fit + v_mc)² / (v_fit²/(K − q)) degrees of freedom (≥ K − q; ν = K − q when the fit
  // part dominates).
  const double v_fit = fit.stderr_fit * fit.stderr_fit, v_mc = fit.stderr_mc * fit.stderr_mc;
  const double dof = v_fit > 0.0 ? std::min(1e6, (v_fit + v_mc) * (v_fit + v_mc) /
                                                     (v_fit * v_fit / residual_dof))
                                 : 1e6;
  fit.degrees_of_freedom = dof;
  const boost::math::students_t t_dist(dof);
  const double t = boost::math::quantile(t_dist, 0.5 + 0.5 * confidence);
  fit.ci_low = fit.order - t * se;
  fit.ci_high = fit.order + t * se;
  return fit;
}

namespace {

// Sample covariance (divisor n − 1) of the rows of a K × n matrix, K × K.
Matrix RowCovariance(const Matrix& values) {
  const Vector mean = values.rowwise().mean();
  const Matrix centred = values.colwise() - mean;
  return centred * centred.transpose() / static_cast<double>(values.cols() - 1);
}

}  // namespace

namespace {

// Per-path values of one pass over nested grids for each predictor: row k is level min_level + k.
struct PassValues {
  Matrix squared_error;  // ‖X_h − X‖² (strong pass only)
  Matrix phi;            // φ(X_h)
  int64_t nfe = 0;
};

std::vector<PassValues> RunPass(const ConvergenceProblem& problem,
                                const std::vector<const Predictor*>& predictors,
                                const ConvergenceOptions& options,
                                const ConvergenceOptions::Levels& levels, bool strong,
                                uint64_t seed) {
  const Sde& sde = *problem.sde;
  const StepProblem step_problem =
      problem.score ? StepProblem::Reverse(sde, *problem.score) : StepProblem::Forward(sde);
  const int d = sde.dim();
  const int num_levels = levels.max_level - levels.min_level + 1;
  const bool use_reference = strong && !problem.exact_solution;
  const int extra = use_reference ? options.reference_extra_levels
                                  : (strong ? problem.exact_extra_levels : 0);
  const int path_level = levels.max_level + extra;
  const double t0 = std::min(problem.t_start, problem.t_end);
  const double t1 = std::max(problem.t_start, problem.t_end);
  const NoiseStream path_stream(seed, Stream::kBrownian);
  const size_t num_predictors = predictors.size();

  // Integrators for every predictor and level (and the reference), single-threaded: blocks are
  // the parallel unit, so each path's arithmetic is the same for any thread count.
  const auto make_integrator = [&](const Predictor& p, int level) {
    SdeIntegrator::Options o;
    o.num_steps = 1 << level;
    return SdeIntegrator(step_problem, p, problem.t_start, problem.t_end, o);
  };
  std::vector<std::vector<SdeIntegrator>> integrators(num_predictors);
  for (size_t p = 0; p < num_predictors; ++p) {
    integrators[p].reserve(num_levels);
    for (int l = 0; l < num_levels; ++l) {
      integrators[p].push_back(make_integrator(*predictors[p], levels.min_level + l));
    }
  }
  std::optional<SdeIntegrator> reference;
  if (use_reference) reference.emplace(make_integrator(*problem.reference_predictor, path_level));

  const int64_t n = levels.num_samples;
  std::vector<PassValues> values(num_predictors);
  for (PassValues& v : values) {
    if (strong) v.squared_error.resize(num_levels, n);
    v.phi.resize(num_levels, n);
  }
  // The path of a block takes about 4·m·2^L·block doubles (all levels of ΔW and ΔZ); blocks are
  // capped at 2^21 doubles (16 MiB) so that deep reference grids stay cache- and page-friendly.
  const int64_t block_size = std::clamp<int64_t>(
      (int64_t{1} << 19) / (static_cast<int64_t>(sde.noise_dim()) << path_level), 8,
      options.block_size);
  const int64_t num_blocks = (n + block_size - 1) / block_size;
  const ExecutionContext context(options.num_threads);
  context.ParallelFor(0, num_blocks, 1, [&](int64_t b_begin, int64_t b_end) {
    for (int64_t b = b_begin; b < b_end; ++b) {
      const int64_t first = b * block_size;
      const int64_t count = std::min(block_size, n - first);
      const BrownianGridNoise grid(sde.noise_dim(), t0, t1, path_level, path_stream, first, count);
      Batch x0(d, count), x_ref(d, count), x(d, count);
      RowVector phi(count);
      problem.initial_state(first, x0);
      if (strong) {
        if (problem.exact_solution) {
          problem.exact_solution(grid, first, x0, x_ref);
        } else {
          x_ref = x0;
          reference->Integrate(grid, first, x_ref);
        }
      }
      for (size_t p = 0; p < num_predictors; ++p) {
        for (int l = 0; l < num_levels; ++l) {
          x = x0;
          integrators[p][l].Integrate(grid, first, x);
          if (strong) {
            values[p].squared_error.row(l).segment(first, count) =
                (x - x_ref).colwise().squaredNorm();
          }
          problem.test_function(x, phi);
          values[p].phi.row(l).segment(first, count) = phi;
        }
      }
    }
  });
  for (size_t p = 0; p < num_predictors; ++p) {
    for (int l = 0; l < num_levels; ++l) {
      values[p].nfe += static_cast<int64_t>(predictors[p]->nfe_per_step()) << (levels.min_level + l);
    }
    if (use_reference && p == 0) {
      values[p].nfe += static_cast<int64_t>(problem.reference_predictor->nfe_per_step())
                       << path_level;
    }
  }
  return values;
}

void FillStrong(const PassValues& pass, const ConvergenceOptions& options, double span,
                const std::string& problem, ConvergenceResult* result) {
  // m_k = mean D_k, e_k = √m_k, Cov(log e_k, log e_l) = Cov(D_k, D_l)/(4n m_k m_l).
  const int k_count = static_cast<int>(pass.squared_error.rows());
  const double n = static_cast<double>(pass.squared_error.cols());
  const Vector mean = pass.squared_error.rowwise().mean();
  const Matrix cov = RowCovariance(pass.squared_error);
  std::vector<double> hs(k_count), errors(k_count);
  Matrix log_cov(k_count, k_count);
  for (int k = 0; k < k_count; ++k) {
    if (!(mean(k) > 0.0)) {
      throw NumericalFailure("RunConvergenceStudy: zero strong error of '" + result->solver +
                                 "' on problem '" + problem + "' (exact here; no order to fit)",
                             -1, 0.0, -1, -1);
    }
    hs[k] = std::ldexp(span, -(options.strong.min_level + k));
    errors[k] = std::sqrt(mean(k));
    for (int l = 0; l < k_count; ++l) log_cov(k, l) = cov(k, l) / (4.0 * n * mean(k) * mean(l));
    ConvergenceLevel level;
    level.level = options.strong.min_level + k;
    level.h = hs[k];
    level.strong_error = errors[k];
    level.strong_stderr = std::sqrt(cov(k, k) / n) / (2.0 * errors[k]);
    result->levels.push_back(level);
  }
  result->strong =
      FitOrder(hs, errors, log_cov, options.confidence, OrderModel::kPowerLawWithHalfCorrection);
}

void FillWeak(const PassValues& pass, const ConvergenceOptions& options, double span,
              ConvergenceResult* result) {
  // D'_k = φ(X_{h_k}) − φ(X_{h_{k+1}}), Cov(log|d_k|, log|d_l|) = Cov(D'_k, D'_l)/(n d_k d_l).
  const int k_count = static_cast<int>(pass.phi.rows()) - 1;
  const double n = static_cast<double>(pass.phi.cols());
  const Matrix differences = pass.phi.topRows(k_count) - pass.phi.bottomRows(k_count);
  const Vector mean = differences.rowwise().mean();
  const Matrix cov = RowCovariance(differences);
  std::vector<double> hs(k_count), magnitudes(k_count);
  Matrix log_cov(k_count, k_count);
  bool resolved = true;
  for (int k = 0; k < k_count; ++k) {
    hs[k] = std::ldexp(span, -(options.weak.min_level + k));
    magnitudes[k] = std::abs(mean(k));
    resolved = resolved && magnitudes[k] > 0.0;
    for (int l = 0; l < k_count; ++l) log_cov(k, l) = cov(k, l) / (n * mean(k) * mean(l));
    WeakLevel level;
    level.level = options.weak.min_level + k;
    level.h = hs[k];
    level.difference = mean(k);
    level.difference_stderr = std::sqrt(cov(k, k) / n);
    result->weak_levels.push_back(level);
  }
  if (resolved) {
    result->weak =
        FitOrder(hs, magnitudes, log_cov, options.confidence, OrderModel::kPowerLawWithCorrection);
  } else {
    // A difference is exactly zero (the scheme is exact in weak sense here): no slope.
    result->weak.order = std::numeric_limits<double>::quiet_NaN();
    result->weak.ci_low = -std::numeric_limits<double>::infinity();
    result->weak.ci_high = std::numeric_limits<double>::infinity();
  }
}

}  // namespace

std::vector<ConvergenceResult> RunConvergenceStudies(
    const ConvergenceProblem& problem, const std::vector<const Predictor*>& predictors,
    const ConvergenceOptions& options) {
  constexpr const char* kWhere = "RunConvergenceStudy";
  const auto start = std::chrono::steady_clock::now();
  options.Validate();
  if (!problem.sde) throw InvalidArgument(std::string(kWhere) + ": problem has no SDE");
  if (!problem.initial_state || !problem.test_function) {
    throw InvalidArgument(std::string(kWhere) + ": problem '" + problem.name +
                          "' needs initial_state and test_function");
  }
  if (static_cast<bool>(problem.exact_solution) == static_cast<bool>(problem.reference_predictor)) {
    throw InvalidArgument(std::string(kWhere) + ": problem '" + problem.name +
                          "' needs exactly one of exact_solution and reference_predictor");
  }
  if (predictors.empty()) throw InvalidArgument(std::string(kWhere) + ": no predictors given");
  const Sde& sde = *problem.sde;
  for (const Predictor* predictor : predictors) {
    std::string reason;
    if (predictor == nullptr) throw InvalidArgument(std::string(kWhere) + ": null predictor");
    if (!predictor->Supports(sde, &reason)) {
      throw InvalidArgument(std::string(kWhere) + ": predictor '" +
                            std::string(predictor->name()) + "' does not support problem '" +
                            problem.name + "': " + reason);
    }
  }
  const double span = std::abs(problem.t_end - problem.t_start);
  std::vector<ConvergenceResult> results(predictors.size());
  for (size_t p = 0; p < predictors.size(); ++p) {
    ConvergenceResult& r = results[p];
    const Predictor& predictor = *predictors[p];
    r.problem = problem.name;
    r.solver = std::string(predictor.name());
    r.noise_type = std::string(ToString(sde.noise_type()));
    r.expected_strong = predictor.strong_order(sde.noise_type());
    r.expected_weak = predictor.weak_order(sde.noise_type());
    const auto special = problem.expected_orders.find(r.solver);
    if (special != problem.expected_orders.end()) {
      r.expected_strong = special->second.first;
      r.expected_weak = special->second.second;
    }
    r.confidence = options.confidence;
    r.strong_samples = options.strong.num_samples;
    r.weak_samples = options.weak.num_samples;
  }
  const std::vector<PassValues> strong =
      RunPass(problem, predictors, options, options.strong, true, options.seed);
  const std::vector<PassValues> weak =
      RunPass(problem, predictors, options, options.weak, false, options.seed + 1);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t p = 0; p < predictors.size(); ++p) {
    FillStrong(strong[p], options, span, problem.name, &results[p]);
    FillWeak(weak[p], options, span, &results[p]);
    results[p].nfe = strong[p].nfe + weak[p].nfe;
    results[p].seconds = seconds;
  }
  return results;
}

ConvergenceResult RunConvergenceStudy(const ConvergenceProblem& problem, const Predictor& predictor,
                                      const ConvergenceOptions& options) {
  return RunConvergenceStudies(problem, {&predictor}, options).front();
}

void WriteConvergenceCsv(const std::string& path, const std::vector<ConvergenceResult>& results) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    if (!out) throw Error("WriteConvergenceCsv: cannot open '" + temporary + "' for writing");
    out.precision(17);
    out << "problem,solver,kind,level,h,value,stderr\n";
    for (const ConvergenceResult& r : results) {
      for (const ConvergenceLevel& l : r.levels) {
        out << r.problem << ',' << r.solver << ",strong," << l.level << ',' << l.h << ','
            << l.strong_error << ',' << l.strong_stderr << '\n';
      }
      for (const WeakLevel& l : r.weak_levels) {
        out << r.problem << ',' << r.solver << ",weak," << l.level << ',' << l.h << ','
            << l.difference << ',' << l.difference_stderr << '\n';
      }
    }
    if (!out) throw Error("WriteConvergenceCsv: writing '" + temporary + "' failed");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error("WriteConvergenceCsv: cannot move the CSV to '" + path + "'");
  }
}

}  // namespace scoresde
