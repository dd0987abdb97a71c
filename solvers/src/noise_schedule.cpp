#include "scoresde/solvers/noise_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "scoresde/sde/check.hpp"

namespace scoresde {

double NoiseSchedule::Lambda(double t) const {
  const double sigma = Sigma(t);
  if (sigma <= 0.0) return std::numeric_limits<double>::infinity();
  return std::log(Alpha(t)) - std::log(sigma);
}

double NoiseSchedule::TimeOfLambda(double lambda) const {
  const double t_final = sde_.t_final();
  const double lambda_max = Lambda(0.0);
  const double lambda_min = Lambda(t_final);
  // Values a rounding error outside the range (e.g. −log(σ_T/α_T) against log α_T − log σ_T)
  // are taken as the end points.
  const double slack = 1e-12 * std::max(1.0, std::abs(lambda));
  Require(!std::isnan(lambda) && lambda >= lambda_min - slack && lambda <= lambda_max + slack,
          "NoiseSchedule::TimeOfLambda", "lambda", lambda,
          "in [lambda(T), lambda(0)] = [" + FormatValue(lambda_min) + ", " +
              FormatValue(lambda_max) + "]");
  if (lambda <= lambda_min) return t_final;
  if (lambda >= lambda_max) return 0.0;
  // λ decreases in t: keep λ(lo) > lambda ≥ λ(hi) and halve until the interval is one ulp.
  double lo = 0.0;
  double hi = t_final;
  for (int iteration = 0; iteration < 2000; ++iteration) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (Lambda(mid) > lambda) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return std::abs(Lambda(lo) - lambda) < std::abs(Lambda(hi) - lambda) ? lo : hi;
}

double NoiseSchedule::TimeOfEdmSigma(double sigma) const {
  Require(sigma > 0.0 && std::isfinite(sigma), "NoiseSchedule::TimeOfEdmSigma", "sigma", sigma,
          "> 0 and finite");
  return TimeOfLambda(-std::log(sigma));
}

}  // namespace scoresde
