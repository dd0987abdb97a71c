// Batched Runge–Kutta integration with Boost.Odeint, and the probability-flow ODE on top of it.
// This is the only translation unit that includes Odeint (it compiles slowly).
#include "scoresde/solvers/probability_flow.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include <boost/array.hpp>
#include <boost/fusion/include/make_vector.hpp>
#include <boost/numeric/odeint/algebra/default_operations.hpp>
#include <boost/numeric/odeint/algebra/vector_space_algebra.hpp>
// eigen.hpp would also pull in eigen_algebra_dispatcher.hpp, which does not compile with Boost
// 1.74; the algebra is named explicitly below, so the dispatcher is not needed.
#include <boost/numeric/odeint/external/eigen/eigen_algebra.hpp>
#include <boost/numeric/odeint/external/eigen/eigen_resize.hpp>
#include <boost/numeric/odeint/stepper/controlled_runge_kutta.hpp>
#include <boost/numeric/odeint/stepper/euler.hpp>
#include <boost/numeric/odeint/stepper/explicit_generic_rk.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta4.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_cash_karp54.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_dopri5.hpp>
#include <boost/numeric/odeint/stepper/runge_kutta_fehlberg78.hpp>
#include <boost/numeric/odeint/util/odeint_error.hpp>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/reverse.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"

namespace scoresde {

std::string_view ToString(OdeMethod method) {
  switch (method) {
    case OdeMethod::kEuler: return "euler";
    case OdeMethod::kHeun: return "heun";
    case OdeMethod::kRk4: return "rk4";
    case OdeMethod::kDopri5: return "dopri5";
    case OdeMethod::kCashKarp54: return "cash-karp";
    case OdeMethod::kFehlberg78: return "fehlberg78";
  }
  return "unknown";
}

OdeMethod ParseOdeMethod(std::string_view name, std::string_view where) {
  if (name == "euler") return OdeMethod::kEuler;
  if (name == "heun") return OdeMethod::kHeun;
  if (name == "rk4") return OdeMethod::kRk4;
  if (name == "dopri5" || name == "rk45") return OdeMethod::kDopri5;
  if (name == "cash-karp") return OdeMethod::kCashKarp54;
  if (name == "fehlberg78") return OdeMethod::kFehlberg78;
  Require(false, where, "method", "'" + std::string(name) + "'",
          "one of euler, heun, rk4, dopri5 (rk45), cash-karp, fehlberg78");
  return OdeMethod::kDopri5;
}

bool IsAdaptive(OdeMethod method) {
  return method == OdeMethod::kDopri5 || method == OdeMethod::kCashKarp54 ||
         method == OdeMethod::kFehlberg78;
}

int MethodOrder(OdeMethod method) {
  switch (method) {
    case OdeMethod::kEuler: return 1;
    case OdeMethod::kHeun: return 2;
    case OdeMethod::kRk4: return 4;
    case OdeMethod::kDopri5: return 5;
    case OdeMethod::kCashKarp54: return 5;
    case OdeMethod::kFehlberg78: return 7;
  }
  return 0;
}

int EvaluationsPerStep(OdeMethod method) {
  switch (method) {
    case OdeMethod::kEuler: return 1;
    case OdeMethod::kHeun: return 2;
    case OdeMethod::kRk4: return 4;
    case OdeMethod::kDopri5: return 6;
    case OdeMethod::kCashKarp54: return 6;
    case OdeMethod::kFehlberg78: return 13;
  }
  return 0;
}

std::string_view ToString(StepControl control) {
  return control == StepControl::kPerSample ? "per-sample" : "shared";
}

void OdeOptions::Validate() const {
  constexpr const char* where = "OdeOptions";
  RequirePositive(where, "rtol", rtol);
  RequirePositive(where, "atol", atol);
  Require(std::isfinite(initial_step) && initial_step >= 0.0, where, "initial_step", initial_step,
          ">= 0 and finite (0 selects it automatically)");
  Require(std::isfinite(max_step) && max_step >= 0.0, where, "max_step", max_step,
          ">= 0 and finite (0 means no limit)");
  Require(max_steps >= 1, where, "max_steps", max_steps, ">= 1");
  Require(num_steps >= 1, where, "num_steps", num_steps, ">= 1");
  Require(num_threads >= 1, where, "num_threads", num_threads, ">= 1");
  Require(chunk_size >= 1, where, "chunk_size", chunk_size, ">= 1");
}

namespace {

namespace odeint = boost::numeric::odeint;

using State = Eigen::VectorXd;
using Algebra = odeint::vector_space_algebra;
using Operations = odeint::default_operations;
// The stacked state shrinks as samples finish, so temporaries must follow its size.
using Resizer = odeint::always_resizer;

using Euler = odeint::euler<State, double, State, double, Algebra, Operations, Resizer>;
using Rk4 = odeint::runge_kutta4<State, double, State, double, Algebra, Operations, Resizer>;
using Dopri5 =
    odeint::runge_kutta_dopri5<State, double, State, double, Algebra, Operations, Resizer>;
using CashKarp54 =
    odeint::runge_kutta_cash_karp54<State, double, State, double, Algebra, Operations, Resizer>;
using Fehlberg78 =
    odeint::runge_kutta_fehlberg78<State, double, State, double, Algebra, Operations, Resizer>;
using ErrorChecker = odeint::default_error_checker<double, Algebra, Operations>;

// The standard step-size controller (HNW I, II.4, eq. 4.13; scipy's solve_ivp uses the same):
// h_new = h · min(10, max(0.2, 0.9 err^(−1/(q+1)))) with q the order of the error estimate, and no
// growth right after a rejection. Odeint's own adjuster shrinks with err^(−1/(q−1)), never grows a
// step whose err lies in [0.5, 1] and grows by at most 5: more steps for the same error (measured
// against the paper's reference, which uses scipy's controller; docs/probability-flow.md).
struct StepController {
  int error_order;
  double Factor(double err) const {
    constexpr double kSafety = 0.9;
    constexpr double kMinFactor = 0.2;
    constexpr double kMaxFactor = 10.0;
    if (err == 0.0) return kMaxFactor;
    return std::clamp(kSafety * std::pow(err, -1.0 / (error_order + 1)), kMinFactor, kMaxFactor);
  }
  // err > 1 here, so the factor is below 0.9.
  double Rejected(double h_abs, double err) const { return h_abs * Factor(err); }
  double Accepted(double h_abs, double err, bool after_rejection) const {
    const double factor = Factor(err);
    return h_abs * (after_rejection ? std::min(1.0, factor) : factor);
  }
};

// Heun's method (explicit trapezoidal rule): c = (0, 1), a21 = 1, b = (½, ½).
using HeunBase =
    odeint::explicit_generic_rk<2, 2, State, double, State, double, Algebra, Operations, Resizer>;
class Heun : public HeunBase {
 public:
  Heun() : HeunBase(boost::fusion::make_vector(A1()), B(), C()) {}

 private:
  static boost::array<double, 1> A1() { return {{1.0}}; }
  static boost::array<double, 2> B() { return {{0.5, 0.5}}; }
  static boost::array<double, 2> C() { return {{0.0, 1.0}}; }
};

template <class Stepper>
struct StepperTraits {
  static constexpr bool kAdaptive = false;
  static constexpr bool kFsal = false;
  static constexpr int kErrorOrder = 0;
};
template <>
struct StepperTraits<Dopri5> {
  static constexpr bool kAdaptive = true;
  static constexpr bool kFsal = true;
  static constexpr int kErrorOrder = Dopri5::error_order_value;
};
template <>
struct StepperTraits<CashKarp54> {
  static constexpr bool kAdaptive = true;
  static constexpr bool kFsal = false;
  static constexpr int kErrorOrder = CashKarp54::error_order_value;
};
template <>
struct StepperTraits<Fehlberg78> {
  static constexpr bool kAdaptive = true;
  static constexpr bool kFsal = false;
  static constexpr int kErrorOrder = Fehlberg78::error_order_value;
};

// Failure of step-size control: a NumericalFailure that also carries the status.
class ControlFailure : public NumericalFailure {
 public:
  ControlFailure(SolveStatus status, const std::string& message, int64_t step, double t,
                 int64_t sample)
      : NumericalFailure(message, step, t, sample, -1), status_(status) {}
  SolveStatus status() const { return status_; }

 private:
  SolveStatus status_;
};

constexpr const char* kWhere = "IntegrateBatch";

// Samples that share one step sequence: a single column (kPerSample) or the whole batch
// (kSharedStep).
struct Unit {
  Eigen::Index first = 0;  // first column in the chunk
  Eigen::Index cols = 0;
  double t = 0.0;
  double step = 0.0;       // |h| proposed for the next step
  size_t target = 1;       // index in times of the next time to reach
  int64_t steps = 0;
  int64_t accepted = 0;
  int64_t rejected = 0;
  int64_t consecutive_rejections = 0;
  int64_t nfe = 0;
  bool need_derivative = true;
  bool done = false;
  // The step being taken.
  Eigen::Index stacked_first = 0;  // first column in the stacked state
  double h = 0.0;                  // signed
  double t_end = 0.0;              // t + h, or exactly the target when the step lands on it
  bool lands_on_target = false;
};

// Where a chunk's results go: columns [offset, offset + n) of the full outputs.
struct Outputs {
  Batch* y;
  std::vector<Batch>* saved;
  IndexRowVector* nfe;
  IndexRowVector* accepted;
  IndexRowVector* rejected;
  Eigen::Index offset;
};

// Integrates the columns of one chunk. The units' Runge–Kutta steps are taken together: the
// states of the units still integrating are stacked into one Odeint state and each unit's time is
// rescaled, τ ∈ [0, 1] ↦ t + τ h, so that one Odeint step of size 1 is every unit's own step.
template <class Stepper>
class Engine {
  using Traits = StepperTraits<Stepper>;

 public:
  Engine(const BatchOdeSystem& system, const OdeOptions& options, const std::vector<double>& times,
         const ExecutionContext& context, int64_t first_sample, bool interpolate)
      : system_(system),
        options_(options),
        times_(times),
        context_(context),
        first_sample_(first_sample),
        dim_(system.state_dim()),
        direction_(times.back() > times.front() ? 1.0 : -1.0),
        lo_(std::min(times.front(), times.back())),
        hi_(std::max(times.front(), times.back())),
        interpolate_(interpolate),
        checker_(options.atol, options.rtol),
        controller_{Traits::kErrorOrder} {}

  // y0 holds the chunk's columns (samples offset .. offset + n − 1 of the batch); shared puts them
  // all in one unit.
  void Run(ConstBatchRef y0, bool shared, const Outputs& out) {
    const Eigen::Index n = y0.cols();
    y_ = y0;
    f_.resize(dim_, n);
    offset_ = out.offset;
    units_.clear();
    if (shared) {
      units_.push_back(Unit{0, n});
    } else {
      for (Eigen::Index j = 0; j < n; ++j) units_.push_back(Unit{j, 1});
    }
    for (Unit& u : units_) u.t = times_.front();
    try {
      if constexpr (Traits::kAdaptive) {
        EvaluateAtStart();
        if (options_.initial_step > 0.0) {
          for (Unit& u : units_) u.step = options_.initial_step;
        } else {
          InitialSteps();
        }
        while (AdaptiveIteration(out)) {
        }
      } else {
        RunFixed(out);
      }
    } catch (...) {
      // The counts and last accepted states describe the solve up to the failure.
      WriteOutputs(out);
      throw;
    }
    WriteOutputs(out);
  }

  void WriteOutputs(const Outputs& out) {
    for (const Unit& u : units_) {
      for (Eigen::Index c = u.first; c < u.first + u.cols; ++c) {
        (*out.nfe)(offset_ + c) = u.nfe;
        (*out.accepted)(offset_ + c) = u.accepted;
        (*out.rejected)(offset_ + c) = u.rejected;
      }
    }
    out.y->middleCols(offset_, y_.cols()) = y_;
  }

  // Called by Odeint at each stage: y is the stacked state at rescaled time tau.
  void EvaluateStage(const State& y, State& dy, double tau) {
    const Eigen::Index m = static_cast<Eigen::Index>(stacked_columns_.size());
    stage_times_.resize(m);
    for (Unit* u : active_) {
      const double t = tau == 1.0 ? u->t_end : u->t + tau * u->h;
      stage_times_.segment(u->stacked_first, u->cols).setConstant(std::clamp(t, lo_, hi_));
    }
    const Eigen::Map<const Batch> stacked(y.data(), dim_, m);
    EvaluateColumns(stacked, stage_times_, stacked_samples_, &raw_);
    for (Unit* u : active_) ++u->nfe;
    dy.resize(y.size());
    Eigen::Map<Batch> scaled(dy.data(), dim_, m);
    for (Unit* u : active_) {
      scaled.middleCols(u->stacked_first, u->cols) = u->h * raw_.middleCols(u->stacked_first, u->cols);
    }
  }

 private:
  struct Functor {
    Engine* engine;
    void operator()(const State& y, State& dy, double tau) const {
      engine->EvaluateStage(y, dy, tau);
    }
  };

  int64_t GlobalSample(Eigen::Index chunk_column) const {
    return first_sample_ + offset_ + chunk_column;
  }

  // Evaluates the system on columns (any layout), splitting them over the threads. The stacked
  // sample list gives each column's index in the batch.
  void EvaluateColumns(const Eigen::Map<const Batch>& y, const RowVector& t,
                       const std::vector<int64_t>& samples, Batch* out) {
    const Eigen::Index m = y.cols();
    out->resize(dim_, m);
    context_.ParallelFor(0, m, options_.chunk_size, [&](int64_t begin, int64_t end) {
      const Eigen::Index count = end - begin;
      system_.Evaluate(y.middleCols(begin, count), t.segment(begin, count),
                       std::span<const int64_t>(samples.data() + begin, count),
                       out->middleCols(begin, count));
    });
    const auto bad = FindNonFinite(*out);
    if (bad) {
      // Locate the unit of the offending column for its step count and time.
      const Unit* unit = nullptr;
      for (const Unit* u : evaluated_) {
        if (bad->col >= u->stacked_first && bad->col < u->stacked_first + u->cols) unit = u;
      }
      const int64_t sample = first_sample_ + samples[bad->col];
      const int64_t step = unit != nullptr ? unit->steps : 0;
      std::ostringstream message;
      message << kWhere << ": derivative is " << FormatValue(bad->value) << " at step " << step
              << " (t = " << FormatValue(t(bad->col)) << "), sample " << sample << ", coordinate "
              << bad->row;
      throw NumericalFailure(message.str(), step, t(bad->col), sample, bad->row);
    }
  }

  // Stacks the given units' columns of `source` (chunk layout) into `stacked` (a flat vector).
  void Stack(const std::vector<Unit*>& units, const Batch& source, State* stacked) {
    stacked_columns_.clear();
    stacked_samples_.clear();
    Eigen::Index m = 0;
    for (Unit* u : units) {
      u->stacked_first = m;
      m += u->cols;
      for (Eigen::Index c = u->first; c < u->first + u->cols; ++c) {
        stacked_columns_.push_back(c);
        stacked_samples_.push_back(offset_ + c);
      }
    }
    stacked->resize(dim_ * m);
    Eigen::Map<Batch> view(stacked->data(), dim_, m);
    for (Unit* u : units) {
      view.middleCols(u->stacked_first, u->cols) = source.middleCols(u->first, u->cols);
    }
  }

  // f = F(y, t) for the units that need it (at start, and after accepted non-FSAL steps).
  void EvaluateAtStart() {
    std::vector<Unit*> pending;
    for (Unit& u : units_) {
      if (!u.done && u.need_derivative) pending.push_back(&u);
    }
    if (pending.empty()) return;
    Stack(pending, y_, &stacked_in_);
    const Eigen::Index m = static_cast<Eigen::Index>(stacked_columns_.size());
    stage_times_.resize(m);
    for (Unit* u : pending) stage_times_.segment(u->stacked_first, u->cols).setConstant(u->t);
    evaluated_ = pending;
    EvaluateColumns(Eigen::Map<const Batch>(stacked_in_.data(), dim_, m), stage_times_,
                    stacked_samples_, &raw_);
    for (Unit* u : pending) {
      f_.middleCols(u->first, u->cols) = raw_.middleCols(u->stacked_first, u->cols);
      u->need_derivative = false;
      ++u->nfe;
    }
  }

  static double Rms(const Eigen::Ref<const Eigen::ArrayXXd>& a) {
    return std::sqrt(a.square().mean());
  }

  // Hairer's starting step (HNW I, II.4): h0 = 0.01 ‖y0‖/‖f0‖, an explicit Euler step of that
  // size to estimate the second derivative, then h1 = (0.01 / max(‖f0‖, ‖f'‖))^(1/(p+1)), with
  // norms weighted by atol + rtol |y0| (root mean square over the unit) and p the error order.
  void InitialSteps() {
    const double span = std::abs(times_[1] - times_[0]);
    std::vector<Unit*> all;
    for (Unit& u : units_) all.push_back(&u);
    std::vector<double> h0(units_.size());
    std::vector<double> d1(units_.size());
    for (size_t k = 0; k < units_.size(); ++k) {
      const Unit& u = units_[k];
      const Eigen::ArrayXXd scale =
          options_.atol + options_.rtol * y_.middleCols(u.first, u.cols).array().abs();
      const double d0 = Rms(y_.middleCols(u.first, u.cols).array() / scale);
      d1[k] = Rms(f_.middleCols(u.first, u.cols).array() / scale);
      h0[k] = (d0 < 1e-5 || d1[k] < 1e-5) ? 1e-6 : 0.01 * d0 / d1[k];
      h0[k] = std::min(h0[k], span);
    }
    Stack(all, y_, &stacked_in_);
    const Eigen::Index m = static_cast<Eigen::Index>(stacked_columns_.size());
    Eigen::Map<Batch> probe(stacked_in_.data(), dim_, m);
    stage_times_.resize(m);
    for (size_t k = 0; k < units_.size(); ++k) {
      Unit& u = units_[k];
      probe.middleCols(u.stacked_first, u.cols) +=
          (direction_ * h0[k]) * f_.middleCols(u.first, u.cols);
      stage_times_.segment(u.stacked_first, u.cols)
          .setConstant(std::clamp(u.t + direction_ * h0[k], lo_, hi_));
    }
    evaluated_ = all;
    EvaluateColumns(Eigen::Map<const Batch>(stacked_in_.data(), dim_, m), stage_times_,
                    stacked_samples_, &raw_);
    for (size_t k = 0; k < units_.size(); ++k) {
      Unit& u = units_[k];
      ++u.nfe;
      const Eigen::ArrayXXd scale =
          options_.atol + options_.rtol * y_.middleCols(u.first, u.cols).array().abs();
      const double d2 = Rms((raw_.middleCols(u.stacked_first, u.cols) -
                             f_.middleCols(u.first, u.cols)).array() / scale) / h0[k];
      const double dmax = std::max(d1[k], d2);
      const double h1 = dmax <= 1e-15 ? std::max(1e-6, h0[k] * 1e-3)
                                      : std::pow(0.01 / dmax, 1.0 / (Traits::kErrorOrder + 1));
      u.step = std::min(100.0 * h0[k], h1);
      if (options_.max_step > 0.0) u.step = std::min(u.step, options_.max_step);
    }
  }

  // Chooses each active unit's step: its proposal, limited by max_step, shortened to land on its
  // next target (the next output time, or only the last time when interpolating).
  void PlanSteps() {
    for (Unit* u : active_) {
      const size_t target = interpolate_ ? times_.size() - 1 : u->target;
      const double remaining = times_[target] - u->t;
      double step = u->step;
      if (options_.max_step > 0.0) step = std::min(step, options_.max_step);
      u->lands_on_target = std::abs(remaining) <= step;
      if (u->lands_on_target) {
        u->h = remaining;
        u->t_end = times_[target];
      } else {
        u->h = direction_ * step;
        u->t_end = u->t + u->h;
      }
    }
  }

  void DoStep() {
    Stack(active_, y_, &stacked_in_);
    const Eigen::Index m = static_cast<Eigen::Index>(stacked_columns_.size());
    dxdt_in_.resize(dim_ * m);
    Eigen::Map<Batch> scaled(dxdt_in_.data(), dim_, m);
    for (Unit* u : active_) {
      scaled.middleCols(u->stacked_first, u->cols) = u->h * f_.middleCols(u->first, u->cols);
    }
    evaluated_ = active_;
    Functor functor{this};
    if constexpr (Traits::kFsal) {
      stepper_.do_step(functor, stacked_in_, dxdt_in_, 0.0, stacked_out_, dxdt_out_, 1.0,
                       error_);
    } else if constexpr (Traits::kAdaptive) {
      stepper_.do_step(functor, stacked_in_, dxdt_in_, 0.0, stacked_out_, 1.0, error_);
    } else {
      stepper_.do_step(functor, stacked_in_, dxdt_in_, 0.0, stacked_out_, 1.0);
    }
  }

  [[noreturn]] void FailNonFinite(const Unit& u, const char* what, const State& v) {
    const Eigen::Map<const Batch> view(v.data(), dim_, v.size() / dim_);
    const auto bad = FindNonFinite(view.middleCols(u.stacked_first, u.cols));
    const Eigen::Index col = bad ? bad->col : 0;
    const int64_t sample = GlobalSample(u.first + col);
    std::ostringstream message;
    message << kWhere << ": " << what << " is " << FormatValue(bad ? bad->value : NAN)
            << " at step " << u.steps << " (t = " << FormatValue(u.t) << "), sample " << sample
            << ", coordinate " << (bad ? bad->row : -1);
    throw NumericalFailure(message.str(), u.steps, u.t, sample, bad ? bad->row : -1);
  }

  // Stores u's state if it has just reached an output time; marks it done at the last one.
  void Arrive(Unit* u, const Outputs& out) {
    if (u->target + 1 < times_.size()) {
      (*out.saved)[u->target - 1].middleCols(offset_ + u->first, u->cols) =
          y_.middleCols(u->first, u->cols);
      ++u->target;
    } else {
      if (!out.saved->empty()) {
        out.saved->back().middleCols(offset_ + u->first, u->cols) =
            y_.middleCols(u->first, u->cols);
      }
      u->done = true;
    }
  }

  // Dense output (kSharedStep with Dormand–Prince): states at the output times passed in the
  // step just accepted, from the method's continuous extension.
  void InterpolateOutputs(Unit* u, const Outputs& out) {
    while (u->target + 1 < times_.size() &&
           direction_ * (times_[u->target] - u->t_end) <= 0.0) {
      const double tau = (times_[u->target] - u->t) / u->h;
      if constexpr (Traits::kFsal) {
        stepper_.calc_state(tau, interpolated_, stacked_in_, dxdt_in_, 0.0, stacked_out_,
                            dxdt_out_, 1.0);
      }
      const Eigen::Map<const Batch> view(interpolated_.data(), dim_, u->cols);
      (*out.saved)[u->target - 1].middleCols(offset_ + u->first, u->cols) = view;
      ++u->target;
    }
  }

  // One step for every active unit; false once all are done.
  bool AdaptiveIteration(const Outputs& out) {
    EvaluateAtStart();
    active_.clear();
    for (Unit& u : units_) {
      if (u.done) continue;
      if (u.steps >= options_.max_steps) {
        std::ostringstream message;
        message << kWhere << ": maximum steps reached (" << options_.max_steps
                << ") at t = " << FormatValue(u.t) << ", sample " << GlobalSample(u.first)
                << "; raise max_steps or loosen rtol/atol";
        throw ControlFailure(SolveStatus::kMaxStepsReached, message.str(), u.steps, u.t,
                             GlobalSample(u.first));
      }
      active_.push_back(&u);
    }
    if (active_.empty()) return false;
    PlanSteps();
    DoStep();
    const Eigen::Map<const Batch> result(stacked_out_.data(), dim_, stacked_out_.size() / dim_);
    for (Unit* u : active_) {
      ++u->steps;
      // Odeint's error norm on this unit's columns alone (contiguous in the stacked state).
      const Eigen::Index begin = dim_ * u->stacked_first;
      const Eigen::Index size = dim_ * u->cols;
      segment_in_ = stacked_in_.segment(begin, size);
      segment_dxdt_ = dxdt_in_.segment(begin, size);
      segment_error_ = error_.segment(begin, size);
      if (!segment_error_.allFinite()) FailNonFinite(*u, "error estimate", error_);
      if (!result.middleCols(u->stacked_first, u->cols).allFinite()) {
        FailNonFinite(*u, "state", stacked_out_);
      }
      const double err = checker_.error(algebra_, segment_in_, segment_dxdt_, segment_error_, 1.0);
      if (!std::isfinite(err)) FailNonFinite(*u, "error estimate", error_);
      const double h_abs = std::abs(u->h);
      if (err > 1.0) {
        ++u->rejected;
        ++u->consecutive_rejections;
        u->step = controller_.Rejected(h_abs, err);
        if (u->t + direction_ * u->step == u->t || u->consecutive_rejections > 500) {
          std::ostringstream message;
          message << kWhere << ": step size underflow at t = " << FormatValue(u->t)
                  << ", sample " << GlobalSample(u->first) << " (step " << u->step << " after "
                  << u->consecutive_rejections << " rejections)";
          throw ControlFailure(SolveStatus::kStepSizeUnderflow, message.str(), u->steps, u->t,
                               GlobalSample(u->first));
        }
        continue;
      }
      ++u->accepted;
      // max_step is applied where the step is planned (PlanSteps).
      const double proposal = controller_.Accepted(h_abs, err, u->consecutive_rejections > 0);
      u->consecutive_rejections = 0;
      // A step shortened to land on an output time does not shrink the next one.
      u->step = u->lands_on_target ? std::max(proposal, u->step) : proposal;
      y_.middleCols(u->first, u->cols) = result.middleCols(u->stacked_first, u->cols);
      if constexpr (Traits::kFsal) {
        // Dormand–Prince's last stage is F at the new state (first same as last).
        f_.middleCols(u->first, u->cols) = raw_.middleCols(u->stacked_first, u->cols);
      } else {
        u->need_derivative = true;
      }
      if (interpolate_) InterpolateOutputs(u, out);
      u->t = u->t_end;
      if (u->lands_on_target) Arrive(u, out);
    }
    return true;
  }

  // Fixed steps: every unit follows the same grid, num_steps spread over the intervals between
  // output times in proportion to their lengths (at least one each).
  void RunFixed(const Outputs& out) {
    const double total = std::abs(times_.back() - times_.front());
    for (size_t k = 1; k < times_.size(); ++k) {
      const double length = times_[k] - times_[k - 1];
      const int64_t count = std::max<int64_t>(
          1, std::llround(options_.num_steps * std::abs(length) / total));
      for (int64_t s = 0; s < count; ++s) {
        const double t_start = s == 0 ? times_[k - 1]
                                      : times_[k - 1] + length * static_cast<double>(s) / count;
        const bool last = s + 1 == count;
        const double t_end =
            last ? times_[k] : times_[k - 1] + length * static_cast<double>(s + 1) / count;
        active_.clear();
        for (Unit& u : units_) {
          u.t = t_start;
          u.need_derivative = true;
          active_.push_back(&u);
        }
        EvaluateAtStart();
        for (Unit* u : active_) {
          u->h = t_end - t_start;
          u->t_end = t_end;
          u->lands_on_target = last;
        }
        DoStep();
        const Eigen::Map<const Batch> result(stacked_out_.data(), dim_,
                                             stacked_out_.size() / dim_);
        for (Unit* u : active_) {
          ++u->steps;
          ++u->accepted;
          if (!result.middleCols(u->stacked_first, u->cols).allFinite()) {
            FailNonFinite(*u, "state", stacked_out_);
          }
          y_.middleCols(u->first, u->cols) = result.middleCols(u->stacked_first, u->cols);
          u->t = t_end;
          if (last) Arrive(u, out);
        }
      }
    }
  }

  const BatchOdeSystem& system_;
  const OdeOptions& options_;
  const std::vector<double>& times_;
  const ExecutionContext& context_;
  const int64_t first_sample_;
  const int dim_;
  const double direction_;
  const double lo_;
  const double hi_;
  const bool interpolate_;
  Eigen::Index offset_ = 0;

  Stepper stepper_;
  Algebra algebra_;
  ErrorChecker checker_;
  StepController controller_;

  std::vector<Unit> units_;
  std::vector<Unit*> active_;
  std::vector<Unit*> evaluated_;  // units whose columns the next evaluation covers
  Batch y_;                       // chunk states, dim × n
  Batch f_;                       // F(y, t) of each unit at its current time (unscaled)
  Batch raw_;                     // the last evaluation, stacked and unscaled
  State stacked_in_, stacked_out_, dxdt_in_, dxdt_out_, error_, interpolated_;
  State segment_in_, segment_dxdt_, segment_error_;
  RowVector stage_times_;
  std::vector<Eigen::Index> stacked_columns_;
  std::vector<int64_t> stacked_samples_;
};

template <class Stepper>
void RunChunks(const BatchOdeSystem& system, ConstBatchRef y0, const std::vector<double>& times,
               const OdeOptions& options, const ExecutionContext& context, int64_t first_sample,
               const Outputs& out) {
  const bool shared = options.step_control == StepControl::kSharedStep;
  const bool interpolate = shared && options.method == OdeMethod::kDopri5;
  if (shared) {
    // One unit: the whole batch is one Odeint state; evaluations are split over the threads.
    Engine<Stepper> engine(system, options, times, context, first_sample, interpolate);
    engine.Run(y0, true, out);
    return;
  }
  context.ParallelFor(0, y0.cols(), options.chunk_size, [&](int64_t begin, int64_t end) {
    Engine<Stepper> engine(system, options, times, context, first_sample, false);
    Outputs chunk = out;
    chunk.offset = begin;
    engine.Run(y0.middleCols(begin, end - begin), false, chunk);
  });
}

void CheckTimes(const std::vector<double>& times) {
  Require(times.size() >= 2, kWhere, "times.size()", static_cast<int64_t>(times.size()), ">= 2");
  for (size_t k = 0; k < times.size(); ++k) {
    RequireFinite(kWhere, "times[" + std::to_string(k) + "]", times[k]);
  }
  const bool increasing = times[1] > times[0];
  for (size_t k = 1; k < times.size(); ++k) {
    const bool ok = increasing ? times[k] > times[k - 1] : times[k] < times[k - 1];
    Require(ok, kWhere, "times[" + std::to_string(k) + "]", times[k],
            "strictly monotone (t0 != t1, no repeated times)");
  }
}

int64_t RoundedMean(const IndexRowVector& v) {
  if (v.size() == 0) return 0;
  return static_cast<int64_t>(std::llround(static_cast<double>(v.sum()) / v.size()));
}

}  // namespace

OdeSolution IntegrateBatchTimes(const BatchOdeSystem& system, ConstBatchRef y0,
                                const std::vector<double>& times, const OdeOptions& options,
                                const ExecutionContext& context, int64_t first_sample) {
  options.Validate();
  CheckTimes(times);
  CheckShape(kWhere, "y0", y0, system.state_dim(), -1);
  CheckFinite(kWhere, "y0", y0);
  Require(first_sample >= 0, kWhere, "first_sample", first_sample, ">= 0");
  const auto start = std::chrono::steady_clock::now();
  const Eigen::Index n = y0.cols();
  OdeSolution solution;
  solution.y = y0;
  solution.saved.assign(times.size() - 1, Batch::Zero(y0.rows(), n));
  solution.nfe = IndexRowVector::Zero(n);
  solution.accepted = IndexRowVector::Zero(n);
  solution.rejected = IndexRowVector::Zero(n);
  const Outputs out{&solution.y, &solution.saved, &solution.nfe, &solution.accepted,
                    &solution.rejected, 0};
  SolveSummary& summary = solution.summary;
  try {
    if (n > 0) {
      switch (options.method) {
        case OdeMethod::kEuler:
          RunChunks<Euler>(system, y0, times, options, context, first_sample, out);
          break;
        case OdeMethod::kHeun:
          RunChunks<Heun>(system, y0, times, options, context, first_sample, out);
          break;
        case OdeMethod::kRk4:
          RunChunks<Rk4>(system, y0, times, options, context, first_sample, out);
          break;
        case OdeMethod::kDopri5:
          RunChunks<Dopri5>(system, y0, times, options, context, first_sample, out);
          break;
        case OdeMethod::kCashKarp54:
          RunChunks<CashKarp54>(system, y0, times, options, context, first_sample, out);
          break;
        case OdeMethod::kFehlberg78:
          RunChunks<Fehlberg78>(system, y0, times, options, context, first_sample, out);
          break;
      }
    }
    summary.status = SolveStatus::kSuccess;
    summary.message = "success";
  } catch (const ControlFailure& failure) {
    summary.RecordFailure(failure);
    summary.status = failure.status();
    if (options.throw_on_failure) throw;
  } catch (const NumericalFailure& failure) {
    summary.RecordFailure(failure);
    if (options.throw_on_failure) throw;
  } catch (const odeint::odeint_error& error) {
    // Odeint's own control failures (no_progress_error, step_adjustment_error); the loops above
    // do their own checks, so this is a safety net.
    const NumericalFailure failure(std::string(kWhere) + ": " + error.what(), -1, 0.0, -1, -1);
    summary.RecordFailure(failure);
    summary.status = SolveStatus::kStepSizeUnderflow;
    if (options.throw_on_failure) throw failure;
  }
  summary.nfe = RoundedMean(solution.nfe);
  summary.accepted_steps = RoundedMean(solution.accepted);
  summary.rejected_steps = RoundedMean(solution.rejected);
  summary.steps = summary.accepted_steps + summary.rejected_steps;
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return solution;
}

OdeSolution IntegrateBatch(const BatchOdeSystem& system, ConstBatchRef y0, double t0, double t1,
                           const OdeOptions& options, const ExecutionContext& context,
                           int64_t first_sample) {
  RequireFinite(kWhere, "t0", t0);
  RequireFinite(kWhere, "t1", t1);
  Require(t0 != t1, kWhere, "t1", t1, "different from t0 = " + FormatValue(t0));
  OdeSolution solution =
      IntegrateBatchTimes(system, y0, {t0, t1}, options, context, first_sample);
  solution.saved.clear();
  return solution;
}

// ---- Probability flow ------------------------------------------------------------------------

class ProbabilityFlow::System final : public BatchOdeSystem {
 public:
  explicit System(const ProbabilityFlow& flow) : flow_(flow) {}
  int state_dim() const override { return flow_.sde_.dim(); }
  void Evaluate(ConstBatchRef y, ConstRowVectorRef t, std::span<const int64_t>,
                BatchRef dy) const override {
    flow_.Drift(y, t, dy);
  }

 private:
  const ProbabilityFlow& flow_;
};

ProbabilityFlow::ProbabilityFlow(const Sde& sde, const ScoreModel& score, OdeOptions options)
    : sde_(sde), score_(score), options_(options) {
  options_.Validate();
  Require(score.dim() == sde.dim(), "ProbabilityFlow", "score.dim()", score.dim(),
          "equal to sde.dim() = " + std::to_string(sde.dim()));
  affine_ = dynamic_cast<const ScalarAffineSde*>(&sde);
  context_ = std::make_unique<ExecutionContext>(options_.num_threads);
  system_ = std::make_unique<System>(*this);
}

ProbabilityFlow::~ProbabilityFlow() = default;

void ProbabilityFlow::Drift(ConstBatchRef x, ConstRowVectorRef t, BatchRef out) const {
  const Eigen::Index n = x.cols();
  Batch s(x.rows(), n);
  score_.Evaluate(x, t, s);
  if (affine_ != nullptr) {
    // VE/VP/sub-VP: f̃ = a(t) x − ½ g(t)² s, the coefficients computed again only when the
    // time changes from one column to the next.
    double a = 0.0;
    double half_g2 = 0.0;
    for (Eigen::Index j = 0; j < n; ++j) {
      if (j == 0 || t(j) != t(j - 1)) {
        const double g = affine_->ScalarDiffusion(t(j));
        a = affine_->DriftCoefficient(t(j));
        half_g2 = 0.5 * g * g;
      }
      // A plain loop: at the small d of the verification problems Eigen's per-expression set-up
      // cost more than the arithmetic (measured: 20 % of a 2-d decode).
      const double* xj = x.col(j).data();
      const double* sj = s.col(j).data();
      double* oj = out.col(j).data();
      for (Eigen::Index i = 0; i < x.rows(); ++i) oj[i] = a * xj[i] - half_g2 * sj[i];
    }
    return;
  }
  DriftScratch scratch;
  // One drift call per run of columns sharing a time (SDE methods take one time per call).
  Eigen::Index first = 0;
  while (first < n) {
    Eigen::Index last = first + 1;
    while (last < n && t(last) == t(first)) ++last;
    DriftFromScore(sde_, DriftKind::kProbabilityFlow, x.middleCols(first, last - first),
                   t(first), s.middleCols(first, last - first),
                   out.middleCols(first, last - first), &scratch);
    first = last;
  }
}

namespace {

void CheckFlowTimes(const Sde& sde, const std::vector<double>& times) {
  for (size_t k = 0; k < times.size(); ++k) {
    Require(std::isfinite(times[k]) && times[k] >= 0.0 && times[k] <= sde.t_final(),
            "ProbabilityFlow", "times[" + std::to_string(k) + "]", times[k],
            "in [0, T] with T = " + FormatValue(sde.t_final()));
  }
}

}  // namespace

OdeSolution ProbabilityFlow::Integrate(ConstBatchRef x, double t0, double t1,
                                       int64_t first_sample) const {
  CheckFlowTimes(sde_, {t0, t1});
  return IntegrateBatch(*system_, x, t0, t1, options_, *context_, first_sample);
}

OdeSolution ProbabilityFlow::IntegrateTimes(ConstBatchRef x, const std::vector<double>& times,
                                            int64_t first_sample) const {
  CheckFlowTimes(sde_, times);
  return IntegrateBatchTimes(*system_, x, times, options_, *context_, first_sample);
}

OdeSolution ProbabilityFlow::Encode(ConstBatchRef x, double eps, int64_t first_sample) const {
  Require(std::isfinite(eps) && eps >= 0.0 && eps < sde_.t_final(), "ProbabilityFlow::Encode",
          "eps", eps, "in [0, T)");
  return Integrate(x, eps, sde_.t_final(), first_sample);
}

OdeSolution ProbabilityFlow::Decode(ConstBatchRef latent, double eps,
                                    int64_t first_sample) const {
  Require(std::isfinite(eps) && eps >= 0.0 && eps < sde_.t_final(), "ProbabilityFlow::Decode",
          "eps", eps, "in [0, T)");
  return Integrate(latent, sde_.t_final(), eps, first_sample);
}

RoundTripResult ProbabilityFlow::RoundTrip(ConstBatchRef x, double eps,
                                           int64_t first_sample) const {
  RoundTripResult result;
  OdeSolution encoded = Encode(x, eps, first_sample);
  result.latent = std::move(encoded.y);
  result.encode_summary = std::move(encoded.summary);
  OdeSolution decoded = Decode(result.latent, eps, first_sample);
  result.decoded = std::move(decoded.y);
  result.decode_summary = std::move(decoded.summary);
  result.error = (result.decoded - x).cwiseAbs().colwise().maxCoeff();
  return result;
}

}  // namespace scoresde
