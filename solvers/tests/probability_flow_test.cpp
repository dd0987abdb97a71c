#include "scoresde/solvers/probability_flow.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/callback_sde.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

// y' = F(y, t) column by column, from a function of one column.
class FunctionSystem : public BatchOdeSystem {
 public:
  using Function = std::function<void(const Vector& y, double t, Eigen::Ref<Vector> dy)>;
  FunctionSystem(int dim, Function f) : dim_(dim), f_(std::move(f)) {}
  int state_dim() const override { return dim_; }
  void Evaluate(ConstBatchRef y, ConstRowVectorRef t, std::span<const int64_t>,
                BatchRef dy) const override {
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      Vector column = dy.col(j);
      f_(y.col(j), t(j), column);
      dy.col(j) = column;
    }
  }

 private:
  int dim_;
  Function f_;
};

// Row 0: y' = −k y; row 1: k' = 0. Each sample carries its own rate, so samples need different
// step sequences; y(t) = y0 exp(−k (t − t0)).
FunctionSystem DecaySystem() {
  return FunctionSystem(2, [](const Vector& y, double, Eigen::Ref<Vector> dy) {
    dy(0) = -y(1) * y(0);
    dy(1) = 0.0;
  });
}

Batch DecayStart(int n) {
  Batch y(2, n);
  for (int j = 0; j < n; ++j) {
    y(0, j) = 1.0 + 0.1 * j;
    y(1, j) = 0.5 + 0.37 * j;  // rates 0.5 ... 
  }
  return y;
}

const std::vector<OdeMethod> kAllMethods = {OdeMethod::kEuler,  OdeMethod::kHeun,
                                            OdeMethod::kRk4,    OdeMethod::kDopri5,
                                            OdeMethod::kCashKarp54, OdeMethod::kFehlberg78};

TEST(OdeOptions, DefaultsAreValid) { EXPECT_NO_THROW(OdeOptions{}.Validate()); }

TEST(OdeOptions, RejectsEachBadOption) {
  const auto expect_rejected = [](const std::function<void(OdeOptions*)>& change,
                                  const char* name) {
    OdeOptions options;
    change(&options);
    try {
      options.Validate();
      ADD_FAILURE() << "accepted a bad " << name;
    } catch (const InvalidArgument& e) {
      EXPECT_THAT(e.what(), HasSubstr(name));
    }
  };
  expect_rejected([](OdeOptions* o) { o->rtol = 0.0; }, "rtol");
  expect_rejected([](OdeOptions* o) { o->rtol = NAN; }, "rtol");
  expect_rejected([](OdeOptions* o) { o->atol = -1.0; }, "atol");
  expect_rejected([](OdeOptions* o) { o->initial_step = -1.0; }, "initial_step");
  expect_rejected([](OdeOptions* o) { o->initial_step = INFINITY; }, "initial_step");
  expect_rejected([](OdeOptions* o) { o->max_step = -0.5; }, "max_step");
  expect_rejected([](OdeOptions* o) { o->max_steps = 0; }, "max_steps");
  expect_rejected([](OdeOptions* o) { o->num_steps = 0; }, "num_steps");
  expect_rejected([](OdeOptions* o) { o->num_threads = 0; }, "num_threads");
  expect_rejected([](OdeOptions* o) { o->chunk_size = 0; }, "chunk_size");
}

TEST(OdeMethod, NamesRoundTrip) {
  for (OdeMethod method : kAllMethods) EXPECT_EQ(ParseOdeMethod(ToString(method)), method);
  EXPECT_EQ(ParseOdeMethod("rk45"), OdeMethod::kDopri5);
  try {
    ParseOdeMethod("rk23", "--method");
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("--method"));
    EXPECT_THAT(e.what(), HasSubstr("rk23"));
  }
  EXPECT_EQ(EvaluationsPerStep(OdeMethod::kFehlberg78), 13);
  EXPECT_TRUE(IsAdaptive(OdeMethod::kCashKarp54));
  EXPECT_FALSE(IsAdaptive(OdeMethod::kRk4));
}

// A Runge–Kutta method of order p integrates y' = q(t) exactly when q is a polynomial of degree
// p − 1 (its quadrature rule has that degree), so only rounding remains: N steps of O(1) values
// leave at most a few ulps per step. This checks every tableau and the per-sample time rescaling.
TEST(IntegrateBatch, QuadratureIsExactUpToTheMethodsDegree) {
  const ExecutionContext context(1);
  for (OdeMethod method : kAllMethods) {
    const int degree = MethodOrder(method) - 1;
    // y' = (k + 1) t^k for k = 0..degree in rows 0..degree: y(t) = y0 + t^(k+1).
    FunctionSystem system(degree + 1, [](const Vector&, double t, Eigen::Ref<Vector> dy) {
      for (Eigen::Index k = 0; k < dy.size(); ++k) {
        dy(k) = (k + 1) * std::pow(t, static_cast<double>(k));
      }
    });
    OdeOptions options;
    options.method = method;
    options.num_steps = 7;
    options.rtol = options.atol = 1e-3;  // loose: steps are long, the answer is still exact
    const Batch y0 = Batch::Zero(degree + 1, 3);
    for (const auto& [t0, t1] : {std::pair{0.0, 1.3}, std::pair{1.3, 0.2}}) {
      const OdeSolution solution = IntegrateBatch(system, y0, t0, t1, options, context);
      ASSERT_TRUE(solution.summary.ok()) << solution.summary.BriefReport();
      for (int k = 0; k <= degree; ++k) {
        const double exact = std::pow(t1, k + 1) - std::pow(t0, k + 1);
        // 64 ulps of the largest term per step, steps ≤ 100.
        const double bound = 64 * std::numeric_limits<double>::epsilon() * 3.0 *
                             std::max<int64_t>(solution.summary.steps, 1);
        EXPECT_NEAR(solution.y(k, 2), exact, bound) << ToString(method) << " row " << k;
      }
    }
  }
}

// y' = −k y is contractive, so the global error is at most the sum of the local errors, and the
// controller keeps each estimated local error below atol + rtol (|y| + h |y'|) ≤ atol + 2 rtol
// here (|y| ≤ 1.7, h |y'| = h k |y| < |y| for accepted steps of these sizes; the estimate bounds
// the error of the embedded lower-order solution, the propagated one is more accurate).
TEST(IntegrateBatch, AdaptiveErrorIsBoundedByTheLocalTolerances) {
  const ExecutionContext context(1);
  const FunctionSystem system = DecaySystem();
  const Batch y0 = DecayStart(8);
  for (OdeMethod method : {OdeMethod::kDopri5, OdeMethod::kCashKarp54, OdeMethod::kFehlberg78}) {
    for (StepControl control : {StepControl::kPerSample, StepControl::kSharedStep}) {
      OdeOptions options;
      options.method = method;
      options.step_control = control;
      options.rtol = options.atol = 1e-8;
      const OdeSolution solution = IntegrateBatch(system, y0, 0.0, 2.0, options, context);
      ASSERT_TRUE(solution.summary.ok());
      for (int j = 0; j < y0.cols(); ++j) {
        const double exact = y0(0, j) * std::exp(-2.0 * y0(1, j));
        const double bound =
            solution.accepted(j) * (options.atol + 2.0 * 1.7 * options.rtol);
        EXPECT_NEAR(solution.y(0, j), exact, bound) << ToString(method) << " sample " << j;
        EXPECT_EQ(solution.y(1, j), y0(1, j));  // k' = 0 exactly
      }
      if (control == StepControl::kPerSample) {
        // Faster decays need more steps: step sequences really are per sample.
        EXPECT_GT(solution.accepted(7), solution.accepted(0)) << ToString(method);
      } else {
        EXPECT_EQ(solution.accepted(7), solution.accepted(0));
        EXPECT_EQ(solution.nfe(3), solution.nfe(0));
      }
      // First-same-as-last: 6 evaluations per Dormand–Prince step plus the start and Hairer's
      // probe; the others evaluate at the start of every accepted step.
      const int64_t tries = solution.accepted(0) + solution.rejected(0);
      const int64_t expected =
          method == OdeMethod::kDopri5
              ? 2 + 6 * tries
              : 1 + solution.accepted(0) + (EvaluationsPerStep(method) - 1) * tries;
      EXPECT_EQ(solution.nfe(0), expected) << ToString(method);
    }
  }
}

TEST(IntegrateBatch, PerSampleResultsDoNotDependOnThreadsOrBatching) {
  const FunctionSystem system = DecaySystem();
  const Batch y0 = DecayStart(23);
  for (OdeMethod method : kAllMethods) {
    OdeOptions options;
    options.method = method;
    options.num_steps = 17;
    options.chunk_size = 128;
    const ExecutionContext one(1);
    const OdeSolution reference = IntegrateBatch(system, y0, 0.1, 1.9, options, one);
    for (int threads : {2, 7}) {
      for (int64_t chunk : {1, 3, 128}) {
        options.chunk_size = chunk;
        const ExecutionContext context(threads);
        const OdeSolution solution = IntegrateBatch(system, y0, 0.1, 1.9, options, context);
        EXPECT_TRUE((solution.y.array() == reference.y.array()).all())
            << ToString(method) << " threads " << threads << " chunk " << chunk;
        EXPECT_EQ(solution.nfe, reference.nfe);
      }
    }
    // Sample 11 alone equals sample 11 in the batch.
    options.chunk_size = 128;
    const OdeSolution alone = IntegrateBatch(system, y0.col(11), 0.1, 1.9, options, one, 11);
    EXPECT_TRUE((alone.y.col(0).array() == reference.y.col(11).array()).all())
        << ToString(method);
  }
}

TEST(IntegrateBatch, IntegratesBackwardsAndThroughOutputTimes) {
  const ExecutionContext context(2);
  const FunctionSystem system = DecaySystem();
  const Batch y0 = DecayStart(4);
  const std::vector<double> times = {1.5, 1.2, 0.7, 0.0};
  for (OdeMethod method : {OdeMethod::kRk4, OdeMethod::kDopri5, OdeMethod::kFehlberg78}) {
    for (StepControl control : {StepControl::kPerSample, StepControl::kSharedStep}) {
      OdeOptions options;
      options.method = method;
      options.step_control = control;
      options.num_steps = 400;
      options.rtol = options.atol = 1e-9;
      const OdeSolution solution = IntegrateBatchTimes(system, y0, times, options, context);
      ASSERT_EQ(solution.saved.size(), 3u);
      for (size_t k = 1; k < times.size(); ++k) {
        for (int j = 0; j < 4; ++j) {
          const double exact = y0(0, j) * std::exp(-y0(1, j) * (times[k] - times[0]));
          // Backwards the solution grows, by at most e^{1.61 · 1.5} ≈ 11 (so |y| ≤ 1.3 · 11 ≈
          // 14.3): every step's local tolerance atol + rtol (|y| + h|y'|) ≤ atol + 2 · 14.3 rtol,
          // amplified by at most 11. RK4's global error for y' = λy is ≈ T λ⁵ h⁴ / 120 |y| ≤
          // 1.5 · 10.5 · (3.75e-3)⁴ / 120 |y| ≈ 2.6e-11 |y|.
          const double bound =
              IsAdaptive(method)
                  ? 11.0 * solution.accepted(j) * (options.atol + 2.0 * 14.3 * options.rtol)
                  : 1e-9 * std::abs(exact);
          EXPECT_NEAR(solution.saved[k - 1](0, j), exact, bound)
              << ToString(method) << " " << ToString(control) << " t = " << times[k];
        }
      }
      EXPECT_TRUE((solution.y.array() == solution.saved.back().array()).all());
    }
  }
}

TEST(IntegrateBatch, RejectsBadInput) {
  const ExecutionContext context(1);
  const FunctionSystem system = DecaySystem();
  const OdeOptions options;
  const Batch y0 = DecayStart(2);
  const auto expect_invalid = [&](const std::function<void()>& call, const char* name) {
    try {
      call();
      ADD_FAILURE() << "accepted bad " << name;
    } catch (const InvalidArgument& e) {
      EXPECT_THAT(e.what(), HasSubstr(name));
    }
  };
  expect_invalid([&] { IntegrateBatch(system, Batch::Zero(3, 2), 0, 1, options, context); },
                 "y0");
  Batch bad = y0;
  bad(1, 1) = NAN;
  expect_invalid([&] { IntegrateBatch(system, bad, 0, 1, options, context); }, "y0");
  expect_invalid([&] { IntegrateBatch(system, y0, 0.5, 0.5, options, context); }, "t1");
  expect_invalid([&] { IntegrateBatch(system, y0, NAN, 0.5, options, context); }, "t0");
  expect_invalid([&] { IntegrateBatchTimes(system, y0, {0.0, 0.5, 0.3}, options, context); },
                 "times[2]");
  OdeOptions wrong = options;
  wrong.rtol = -1.0;
  expect_invalid([&] { IntegrateBatch(system, y0, 0, 1, wrong, context); }, "rtol");
}

TEST(IntegrateBatch, NonFiniteDerivativeStopsTheSolveWithItsLocation) {
  const ExecutionContext context(1);
  // Sample 2's coordinate 1 becomes NaN once t > 0.5.
  FunctionSystem system(2, [](const Vector& y, double t, Eigen::Ref<Vector> dy) {
    dy(0) = -y(0);
    dy(1) = (t > 0.5 && y(1) > 2.5) ? NAN : 0.0;
  });
  Batch y0(2, 4);
  y0 << 1, 1, 1, 1, 0, 1, 3, 1;
  for (OdeMethod method : {OdeMethod::kRk4, OdeMethod::kDopri5}) {
    OdeOptions options;
    options.method = method;
    try {
      IntegrateBatch(system, y0, 0.0, 1.0, options, context, 100);
      ADD_FAILURE() << "no failure";
    } catch (const NumericalFailure& e) {
      EXPECT_EQ(e.sample(), 102);
      EXPECT_EQ(e.coordinate(), 1);
      EXPECT_GT(e.t(), 0.5);
      EXPECT_THAT(e.what(), HasSubstr("sample 102"));
    }
    options.throw_on_failure = false;
    const OdeSolution solution = IntegrateBatch(system, y0, 0.0, 1.0, options, context, 100);
    EXPECT_EQ(solution.summary.status, SolveStatus::kNonFinite);
    ASSERT_TRUE(solution.summary.failure.has_value());
    EXPECT_EQ(solution.summary.failure->sample, 102);
  }
}

TEST(IntegrateBatch, ReportsExhaustedBudgetAndStepSizeUnderflow) {
  const ExecutionContext context(1);
  const FunctionSystem decay = DecaySystem();
  OdeOptions options;
  options.rtol = options.atol = 1e-12;
  options.max_steps = 5;
  options.throw_on_failure = false;
  const OdeSolution budget = IntegrateBatch(decay, DecayStart(3), 0.0, 5.0, options, context);
  EXPECT_EQ(budget.summary.status, SolveStatus::kMaxStepsReached);
  EXPECT_THAT(budget.summary.message, HasSubstr("max_steps"));

  // y' = 1/(0.5 − t), y = −log(0.5 − t): the error of a step of size h at distance δ from the
  // singularity grows like (h/δ)⁵, so the steps shrink in proportion to δ until they fall below the
  // spacing of doubles near 0.5. Past it the derivative is a large finite value, so that stages
  // straying there are rejected rather than non-finite.
  FunctionSystem jump(1, [](const Vector&, double t, Eigen::Ref<Vector> dy) {
    dy(0) = t < 0.5 ? 1.0 / (0.5 - t) : 1e30;
  });
  options.max_steps = 100000;
  const OdeSolution underflow =
      IntegrateBatch(jump, Batch::Constant(1, 2, 0.0), 0.0, 1.0, options, context);
  EXPECT_EQ(underflow.summary.status, SolveStatus::kStepSizeUnderflow);
  EXPECT_THAT(underflow.summary.message, HasSubstr("underflow"));
  // The summary and the per-sample counts describe the solve up to the failure: y = −log δ has
  // passed 25, so δ < 1.4e-11 (measured: the step underflows at δ = 5.9e-13).
  EXPECT_GT(underflow.nfe(0), 50);
  EXPECT_GT(underflow.y(0, 0), 25.0);
  options.throw_on_failure = true;
  EXPECT_THROW(IntegrateBatch(jump, Batch::Constant(1, 2, 2.0), 0.0, 1.0, options, context),
               NumericalFailure);
}

TEST(IntegrateBatch, MaxStepBoundsEveryStep) {
  const ExecutionContext context(1);
  const FunctionSystem decay = DecaySystem();
  OdeOptions options;
  options.max_step = 0.01;
  const OdeSolution solution = IntegrateBatch(decay, DecayStart(2), 0.0, 1.0, options, context);
  EXPECT_GE(solution.accepted(0), 100);
  options.max_step = 0.0;
  const OdeSolution free = IntegrateBatch(decay, DecayStart(2), 0.0, 1.0, options, context);
  EXPECT_LT(free.accepted(0), 100);
}

// VP SDE with Gaussian data N(0, v I): the score is −x/c_t with c_t = α² v + σ_t², and the flow
// is x_t = x_s sqrt(c_t / c_s) (each coordinate scales with its marginal standard deviation).
TEST(ProbabilityFlow, EncodesAndDecodesGaussianDataExactly) {
  const int d = 3;
  const double v = 0.3;
  const VpSde sde(d);
  CallbackScore score(d, [&](ConstBatchRef x, ConstRowVectorRef t, BatchRef s) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const double a = sde.MeanCoefficient(t(j));
      const double sigma = sde.MarginalStd(t(j));
      s.col(j) = -x.col(j) / (a * a * v + sigma * sigma);
    }
  });
  const auto c = [&](double t) {
    const double a = sde.MeanCoefficient(t);
    const double sigma = sde.MarginalStd(t);
    return a * a * v + sigma * sigma;
  };
  OdeOptions options;
  options.rtol = options.atol = 1e-9;
  options.num_threads = 2;
  const ProbabilityFlow flow(sde, score, options);
  Batch x(d, 5);
  x << 0.1, -0.5, 0.9, 0.2, -1.1, 0.4, 0.0, -0.3, 0.7, 0.5, -0.2, 0.6, 1.2, -0.8, 0.05;
  const double eps = 1e-3;
  const OdeSolution latent = flow.Encode(x, eps);
  const Batch exact = x * std::sqrt(c(1.0) / c(eps));
  // Growth factor sqrt(c_T / c_ε) ≈ 1.8; local tolerance ~1e-9 per step over ≲ 100 steps.
  EXPECT_LT((latent.y - exact).cwiseAbs().maxCoeff(), 1e-6);
  const RoundTripResult round_trip = flow.RoundTrip(x, eps);
  EXPECT_LT(round_trip.error.maxCoeff(), 1e-6);
  EXPECT_TRUE(round_trip.encode_summary.ok());
}

TEST(ProbabilityFlow, RejectsMismatchedScoreAndTimesOutsideTheSde) {
  const VpSde sde(2);
  CallbackScore score(3, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; });
  EXPECT_THROW(ProbabilityFlow(sde, score), InvalidArgument);
  CallbackScore score2(2, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; });
  const ProbabilityFlow flow(sde, score2);
  try {
    flow.Integrate(Batch::Zero(2, 1), 0.0, 1.5);
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("times[1]"));
  }
  EXPECT_THROW(flow.Encode(Batch::Zero(2, 1), -1.0), InvalidArgument);
}

// GBM (state-dependent diagonal noise): the flow drift includes −½∇·(GGᵀ) = −σ² x.
TEST(ProbabilityFlow, DriftIncludesTheDivergenceOfGGt) {
  const GbmSde sde(2, 0.1, 0.5);
  CallbackScore score(2, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; });
  const ProbabilityFlow flow(sde, score);
  Batch x(2, 2);
  x << 1.0, 2.0, 0.5, 1.5;
  RowVector t(2);
  t << 0.3, 0.7;
  Batch out(2, 2);
  flow.Drift(x, t, out);
  // f − ½(2σ² x) − ½σ² x² s = μx − σ² x + ½σ² x³.
  const Batch expected =
      (0.1 * x.array() - 0.25 * x.array() + 0.5 * 0.25 * x.array().cube()).matrix();
  EXPECT_LT((out - expected).cwiseAbs().maxCoeff(), 1e-15);
}

}  // namespace
}  // namespace scoresde
