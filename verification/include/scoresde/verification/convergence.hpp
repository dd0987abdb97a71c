// The convergence-order harness: strong and weak errors of a stepper against step size on SDEs
// whose solution is known path by path, with least-squares order fits and confidence intervals.
//
// Setup (Kloeden & Platen 1992, section 9.6; Higham, SIAM Review 43, 2001). A problem integrates
// from t_start to t_end (forward, or in reverse time with a score) on the nested grids
// h_k = |t_end − t_start| / 2^k, k = min_level … max_level, every grid driven by the same Brownian
// path: counter-based increments (ΔW, ΔZ) on the finest grid, summed for coarser grids
// (BrownianGridNoise; style.md §6), so a coarse step sees exactly the sum of the fine increments
// it covers. (A BrownianPath tree gives the same law but costs O(level) per cell to read.) The
// solution X at t_end comes from the problem's closed form in terms of that path, or from a
// reference solve on the same path with reference_extra_levels more levels.
//
//   strong error  e_k = (E‖X_{h_k} − X‖²)^{1/2}, estimated over n paths;
//                 (strong and weak use separate level ranges and path counts, each on its own
//                 path set: seed for strong, seed + 1 for weak)
//   weak order    from the differences d_k = E[φ(X_{h_k})] − E[φ(X_{h_{k+1}})] of a test function
//                 on the same paths (common random numbers): if E φ(X_h) − E φ(X) = C h^p + o(h^p)
//                 then d_k = C(1 − 2^{−p}) h_k^p + o(h_k^p), so log|d_k| has slope p in log h_k,
//                 with no reference bias and a Monte-Carlo variance of order the strong error²/n
//                 instead of Var φ/n ("Richardson-style differences").
//
// Order fit. y_k = log e_k (or log|d_k|) is regressed on x_k = log h_k by least squares with the
// next term of the error expansion as a third parameter:
//   strong  y = a + p x + c √h   (OrderModel::kPowerLawWithHalfCorrection)
//   weak    y = a + p x + c h    (OrderModel::kPowerLawWithCorrection)
// Mean-square errors expand in powers of h^{1/2} (e(h) = C₁hᵖ + C₂hᵖ⁺¹ᐟ² + …; Milstein &
// Tretyakov, "Stochastic Numerics for Mathematical Physics", 2004, chapter 1) and weak errors in
// powers of h (e(h) = C₁hᵖ + C₂hᵖ⁺¹ + …; Talay & Tubaro, Stoch. Anal. Appl. 8, 1990), so
// log e(h) = log C₁ + p log h + (C₂/C₁) h^{1/2 or 1} + …, and likewise for the differences d_k.
// Without the correction the curvature of the pre-asymptotic range biases p̂ by O(h^{1/2}) or
// O(h), while the Monte-Carlo error of the precise schemes is so small that the interval would
// exclude the true order. p̂ = wᵀy with w the order row of (XᵀX)⁻¹Xᵀ. Its standard error combines
//   (a) the Monte-Carlo error: Cov(y_k, y_l) by the delta method from the per-path values
//       (Cov(D_k, D_l)/(4 n m_k m_l) for m_k = mean D_k, D = ‖X_h − X‖²; Cov(D'_k, D'_l)/(n d_k d_l)
//       for D' = φ(X_{h_k}) − φ(X_{h_{k+1}})), correlated across levels because the paths are
//       shared: Var_MC(p̂) = wᵀ C w;
//   (b) the lack of fit: s² [(XᵀX)⁻¹]_pp with s² = RSS/(K − q), q parameters, which widens the
//       interval when the points do not follow the model;
// se = √(Var_MC + Var_fit), interval p̂ ± t_{ν, (1+c)/2} se with Student's t at confidence c
// (default 99%) and the Welch–Satterthwaite degrees of freedom ν = (v_fit + v_MC)²/(v_fit²/(K − q))
// (the lack of fit is estimated from K − q residual degrees of freedom, the Monte-Carlo part from
// n ≫ K paths). Counting the MC part in both terms makes the interval conservative.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"
#include "scoresde/solvers/noise_source.hpp"
#include "scoresde/solvers/predictor.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {

struct ConvergenceOptions {
  // Nested grids 2^k steps, k = min_level … max_level (≥ 3 levels), and the number of paths.
  struct Levels {
    int min_level = 0;
    int max_level = 0;
    int64_t num_samples = 0;
  };
  // Strong errors need the solution X (exact, or a reference solve) on every path.
  Levels strong{3, 8, 2000};
  // Weak differences need no reference, but resolving d_k = O(h^p) above its Monte-Carlo error
  // O(e_k/√n) needs many paths on coarse grids (see the suite for the choices).
  Levels weak{2, 7, 40000};
  int reference_extra_levels = 2; // reference solve on 2^(strong.max_level + extra) steps
  uint64_t seed = 1;              // of the Brownian path (Stream::kBrownian) and initial states
  double confidence = 0.99;       // of the order intervals, in (0, 1)
  int num_threads = 1;
  int64_t block_size = 250;       // paths read and integrated together, at most; fewer for deep
                                  // path grids (≤ 2^21 doubles of path per block)
  // Throws InvalidArgument ("ConvergenceOptions: strong.max_level = 3; must be >= ...").
  void Validate() const;
};

// A test problem. Exactly one of exact_solution and reference_predictor is set.
struct ConvergenceProblem {
  std::string name;
  std::shared_ptr<const Sde> sde;
  std::shared_ptr<const ScoreModel> score;  // null: forward SDE; else the reverse-time SDE
  double t_start = 0.0;
  double t_end = 1.0;
  // Initial states of samples first_sample, … (d × B), from noise keyed by sample only.
  std::function<void(int64_t first_sample, BatchRef x)> initial_state;
  // X at t_end given the path (grid covers [min(t), max(t)]) and the initial states; d × B.
  std::function<void(const BrownianGridNoise& path, int64_t first_sample, ConstBatchRef x_start,
                     BatchRef x_end)>
      exact_solution;
  // Levels the path is read below the finest solver grid for exact_solution (a closed form that
  // integrates over the path, like the Ornstein–Uhlenbeck recursion, needs finer cells).
  int exact_extra_levels = 0;
  // Otherwise X is this predictor's solution on the finest path grid.
  std::shared_ptr<const Predictor> reference_predictor;
  // φ per column for the weak order (1 × B).
  std::function<void(ConstBatchRef x, RowVectorRef phi)> test_function;
  std::string test_function_name;
  // Levels and path counts that give intervals narrower than 0.5 (see the suite) in seconds.
  ConvergenceOptions recommended;
  // Predictor names studied on this problem by `scoresde verify convergence`.
  std::vector<std::string> solvers;
  // (strong, weak) orders by predictor name where this problem's structure gives more than the
  // predictor's class guarantee (e.g. linear drift with additive noise), with the reason.
  std::map<std::string, std::pair<double, double>> expected_orders;
  std::string expected_orders_note;
};

struct ConvergenceLevel {
  int level = 0;                  // k
  double h = 0.0;                 // |t_end − t_start| / 2^k
  double strong_error = 0.0;      // (mean ‖X_h − X‖²)^{1/2}
  double strong_stderr = 0.0;     // its delta-method standard error
};

struct WeakLevel {
  int level = 0;                  // k
  double h = 0.0;
  double difference = 0.0;        // mean φ(X_{h_k}) − φ(X_{h_{k+1}})
  double difference_stderr = 0.0;
};

enum class OrderModel {
  kPowerLaw,                    // log e = a + p log h
  kPowerLawWithHalfCorrection,  // log e = a + p log h + c √h   (strong errors)
  kPowerLawWithCorrection,      // log e = a + p log h + c h     (weak differences)
};

struct OrderEstimate {
  OrderModel model = OrderModel::kPowerLaw;
  double order = 0.0;
  double ci_low = 0.0;
  double ci_high = 0.0;
  double stderr_mc = 0.0;    // Monte-Carlo part of the standard error
  double stderr_fit = 0.0;   // lack-of-fit part
  double degrees_of_freedom = 0.0;
  int points = 0;
  bool Contains(double p) const { return ci_low <= p && p <= ci_high; }
  double width() const { return ci_high - ci_low; }
};

struct ConvergenceResult {
  std::string problem;
  std::string solver;
  std::string noise_type;
  std::vector<ConvergenceLevel> levels;
  std::vector<WeakLevel> weak_levels;
  OrderEstimate strong;
  OrderEstimate weak;
  double expected_strong = 0.0;  // predictor.strong_order(noise type)
  double expected_weak = 0.0;
  double confidence = 0.0;
  int64_t strong_samples = 0;
  int64_t weak_samples = 0;
  int64_t nfe = 0;  // drift (reverse: score) evaluations per path, all levels and the reference
  double seconds = 0.0;  // wall time of the RunConvergenceStudies call that produced it
};

// Least-squares order fit of y_k = log errors_k on log h_k (and h_k for the corrected model) with
// the interval described above. h and errors have K ≥ q + 1 positive finite entries (q = 2 or 3
// parameters); log_error_cov is K × K (the Monte-Carlo covariance of the log errors; zero for
// none). Throws InvalidArgument otherwise.
OrderEstimate FitOrder(const std::vector<double>& h, const std::vector<double>& errors,
                       const Matrix& log_error_cov, double confidence,
                       OrderModel model = OrderModel::kPowerLaw);

// Runs the study for each predictor on the same paths (the paths and the solution X are computed
// once). Throws InvalidArgument if a predictor does not support the SDE, the problem is
// incomplete, or the options are invalid; NumericalFailure if a solve produces a non-finite value
// or a strong error is exactly zero. Bit-identical for any num_threads.
std::vector<ConvergenceResult> RunConvergenceStudies(
    const ConvergenceProblem& problem, const std::vector<const Predictor*>& predictors,
    const ConvergenceOptions& options);
ConvergenceResult RunConvergenceStudy(const ConvergenceProblem& problem, const Predictor& predictor,
                                      const ConvergenceOptions& options);

// The harness's problems:
//   gbm-scalar       dX = μX dt + σX dW, X_T = X_0 exp((μ − σ²/2)T + σW_T)        (diagonal, d = 1)
//   gbm-diagonal     the same per coordinate, d = 3, different μ_i, σ_i             (diagonal)
//   ornstein-uhlenbeck  dX = θ(m − X) dt + σ dW, exact from the fine path (additive, scalar)
//   sinh-diagonal    dX_i = ½a²X_i dt + a√(1 + X_i²) dW_i, X_T = sinh(asinh X_0 + aW_T)  (d = 2)
//   non-commutative  dX₁ = dW₁, dX₂ = X₁ dW₂ (general noise; Milstein without Lévy areas: 0.5)
//   ve-mixture-reverse, vp-mixture-reverse  the reverse-time SDE of a 2-D two-component Gaussian
//                    mixture with its exact score, from exact draws of p_T down to ε = 10⁻³
//                    (additive noise, nonlinear drift); reference: SRA1 on the finest grid
// Test function: φ(x) = ‖x‖² throughout.
std::vector<ConvergenceProblem> StandardConvergenceProblems();
// One of the above by name; throws InvalidArgument listing the names.
ConvergenceProblem StandardConvergenceProblem(const std::string& name);

// The data law p_0 of the reverse-time problems above: "gaussian" (ve/vp-gaussian-reverse) or
// "mixture" (ve/vp-mixture-reverse); throws InvalidArgument naming `name` otherwise.
GaussianMixture ReverseProblemData(const std::string& name);

// CSV with one row per (problem, solver, kind, level): problem,solver,kind,level,h,value,stderr
// with kind "strong" (value = e_k) or "weak" (value = d_k). Written atomically (temporary file and
// rename); throws Error on I/O failure.
void WriteConvergenceCsv(const std::string& path, const std::vector<ConvergenceResult>& results);

}  // namespace scoresde
