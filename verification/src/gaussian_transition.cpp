// TransitionOf: the Gaussian kernels x_t | x_0 of the scalar-affine families (closed form) and of a
// general LinearSde (moment ODEs integrated with Boost.Odeint).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/numeric/odeint/stepper/controlled_runge_kutta.hpp>
#include <boost/numeric/odeint/stepper/controlled_step_result.hpp>
#include <boost/numeric/odeint/stepper/generation.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_fehlberg78.hpp>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {
namespace {

void CheckTransitionTime(const char* where, double t, double t_final) {
  RequireFinite(where, "t", t);
  Require(t >= 0.0 && t <= t_final, where, "t", t, "in [0, T] with T = " + FormatValue(t_final));
}

}  // namespace

GaussianTransition TransitionOf(const ScalarAffineSde& sde, double t) {
  CheckTransitionTime("TransitionOf", t, sde.t_final());
  const int d = sde.dim();
  const double alpha = sde.MeanCoefficient(t);
  const double sigma = sde.MarginalStd(t);
  return {alpha * Matrix::Identity(d, d), Vector::Zero(d), sigma * sigma * Matrix::Identity(d, d)};
}

GaussianTransition TransitionOf(const LinearSde& sde, double t) {
  constexpr const char* where = "TransitionOf(LinearSde)";
  CheckTransitionTime(where, t, sde.t_final());
  const int d = sde.dim();
  const Matrix& f = sde.options().drift_matrix;
  const Vector c =
      sde.options().drift_offset.size() == 0 ? Vector::Zero(d).eval() : sde.options().drift_offset;
  GaussianTransition result{Matrix::Identity(d, d), Vector::Zero(d), Matrix::Zero(d, d)};
  if (t == 0.0) return result;

  // State: A (d² entries), b (d), Q (d²), column-major, in one flat vector. (Odeint with an
  // Eigen::MatrixXd state does not compile with Boost 1.74 and Eigen 3.4.)
  const Eigen::Index dd = static_cast<Eigen::Index>(d) * d;
  using State = std::vector<double>;
  State state(2 * dd + d, 0.0);
  Eigen::Map<Matrix>(state.data(), d, d).setIdentity();
  auto rhs = [&](const State& y, State& dydt, double time) {
    Eigen::Map<const Matrix> a(y.data(), d, d);
    Eigen::Map<const Vector> b(y.data() + dd, d);
    Eigen::Map<const Matrix> q(y.data() + dd + d, d, d);
    Eigen::Map<Matrix> da(dydt.data(), d, d);
    Eigen::Map<Vector> db(dydt.data() + dd, d);
    Eigen::Map<Matrix> dq(dydt.data() + dd + d, d, d);
    const Matrix g = sde.DiffusionAt(time);
    da.noalias() = f * a;
    db.noalias() = f * b;
    db += c;
    const Matrix fq = f * q;
    dq = fq + fq.transpose();
    dq.noalias() += g * g.transpose();
  };

  namespace odeint = boost::numeric::odeint;
  auto stepper = odeint::make_controlled<odeint::runge_kutta_fehlberg78<State>>(1e-12, 1e-12);
  // Our own loop instead of integrate_adaptive: Odeint accepts steps whose error estimate is NaN
  // and has no step limit, so we check both.
  constexpr int64_t kMaxSteps = 1000000;
  constexpr int kMaxConsecutiveRejections = 500;
  double time = 0.0;
  double dt = std::min(t, 1e-3);
  int64_t steps = 0;
  int rejections = 0;
  while (time < t) {
    const bool last = t - time <= dt;
    if (last) dt = t - time;
    if (stepper.try_step(rhs, state, time, dt) == odeint::success) {
      rejections = 0;
      ++steps;
      if (last) time = t;  // land exactly on t despite rounding in time + dt
      for (double value : state) {
        if (!std::isfinite(value)) {
          throw NumericalFailure(std::string(where) + ": moment ODE state is " +
                                     FormatValue(value) + " at t = " + FormatValue(time),
                                 steps, time, -1, -1);
        }
      }
      if (steps > kMaxSteps) {
        throw NumericalFailure(std::string(where) + ": more than " + std::to_string(kMaxSteps) +
                                   " steps to reach t = " + FormatValue(t),
                               steps, time, -1, -1);
      }
    } else {  // try_step left time unchanged and shrank dt
      if (++rejections > kMaxConsecutiveRejections || !(dt > 0.0)) {
        throw NumericalFailure(
            std::string(where) + ": step size underflow at t = " + FormatValue(time), steps, time,
            -1, -1);
      }
    }
  }
  result.A = Eigen::Map<const Matrix>(state.data(), d, d);
  result.b = Eigen::Map<const Vector>(state.data() + dd, d);
  const Matrix q = Eigen::Map<const Matrix>(state.data() + dd + d, d, d);
  result.Q = 0.5 * (q + q.transpose());
  return result;
}

}  // namespace scoresde
