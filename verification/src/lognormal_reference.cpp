#include "scoresde/verification/lognormal_reference.hpp"

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <utility>

#include "scoresde/sde/check.hpp"

namespace scoresde {
namespace {

constexpr const char* kWhere = "LogNormalReference";

}  // namespace

LogNormalReference::LogNormalReference(Vector m0, Vector s0, const GbmSde& sde)
    : m0_(std::move(m0)), s0_(std::move(s0)), sde_(&sde) {
  const int d = sde.dim();
  CheckShape(kWhere, "m0", m0_, d, 1);
  CheckShape(kWhere, "s0", s0_, d, 1);
  CheckFinite(kWhere, "m0", m0_);
  for (int i = 0; i < d; ++i) {
    RequirePositive(kWhere, "s0[" + std::to_string(i) + "]", s0_(i));
    RequireFinite(kWhere, "s0[" + std::to_string(i) + "]", s0_(i));
  }
}

void LogNormalReference::CheckTime(const char* where, double t) const {
  Require(std::isfinite(t) && t >= 0.0 && t <= sde_->t_final(), where, "t", t,
          "finite and in [0, T] with T = " + FormatValue(sde_->t_final()));
}

void LogNormalReference::CheckInputs(const char* where, ConstBatchRef x,
                                     ConstRowVectorRef t) const {
  CheckShape(where, "x", x, dim(), -1);
  CheckShape(where, "t", t, 1, x.cols());
  for (Eigen::Index j = 0; j < t.cols(); ++j) {
    const double tj = t(j);
    if (!(std::isfinite(tj) && tj >= 0.0 && tj <= sde_->t_final())) {
      Require(false, where, "t[" + std::to_string(j) + "]", tj,
              "finite and in [0, T] with T = " + FormatValue(sde_->t_final()));
    }
  }
}

Vector LogNormalReference::LogMean(double t) const {
  CheckTime("LogNormalReference::LogMean", t);
  const Vector& mu = sde_->options().mu;
  const Vector& sigma = sde_->options().sigma;
  return m0_.array() + (mu.array() - 0.5 * sigma.array().square()) * t;
}

Vector LogNormalReference::LogVariance(double t) const {
  CheckTime("LogNormalReference::LogVariance", t);
  return s0_.array().square() + sde_->options().sigma.array().square() * t;
}

Vector LogNormalReference::Mean(double t) const {
  return (LogMean(t).array() + 0.5 * LogVariance(t).array()).exp();
}

Vector LogNormalReference::Variance(double t) const {
  const Vector m = LogMean(t);
  const Vector v = LogVariance(t);
  // expm1 keeps e^v − 1 accurate for small v.
  return v.array().unaryExpr([](double a) { return std::expm1(a); }) *
         (2.0 * m.array() + v.array()).exp();
}

void LogNormalReference::LogDensity(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef logp) const {
  constexpr const char* where = "LogNormalReference::LogDensity";
  CheckInputs(where, x, t);
  CheckShape(where, "logp", logp, 1, x.cols());
  const int d = dim();
  Vector m;
  Vector v;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    if (j == 0 || t(j) != t(j - 1)) {
      m = LogMean(t(j));
      v = LogVariance(t(j));
    }
    double sum = 0.0;
    for (int i = 0; i < d; ++i) {
      const double xi = x(i, j);
      if (!(xi > 0.0)) {
        // Zero density outside the positive orthant; NaN stays NaN.
        sum = std::isnan(xi) ? xi : -std::numeric_limits<double>::infinity();
        break;
      }
      const double lx = std::log(xi);
      const double z = lx - m(i);
      sum += -lx - 0.5 * std::log(2.0 * std::numbers::pi * v(i)) - 0.5 * z * z / v(i);
    }
    logp(j) = sum;
  }
}

void LogNormalReference::Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const {
  constexpr const char* where = "LogNormalReference::Evaluate";
  CheckInputs(where, x, t);
  CheckShape(where, "s", s, dim(), x.cols());
  Vector m;
  Vector v;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    if (j == 0 || t(j) != t(j - 1)) {
      m = LogMean(t(j));
      v = LogVariance(t(j));
    }
    for (int i = 0; i < dim(); ++i) {
      const double xi = x(i, j);
      s(i, j) = xi > 0.0 ? -(1.0 + (std::log(xi) - m(i)) / v(i)) / xi
                         : std::numeric_limits<double>::quiet_NaN();
    }
  }
}

void LogNormalReference::Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const {
  constexpr const char* where = "LogNormalReference::Divergence";
  CheckInputs(where, x, t);
  CheckShape(where, "div", div, 1, x.cols());
  Vector m;
  Vector v;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    if (j == 0 || t(j) != t(j - 1)) {
      m = LogMean(t(j));
      v = LogVariance(t(j));
    }
    double sum = 0.0;
    for (int i = 0; i < dim(); ++i) {
      const double xi = x(i, j);
      sum += xi > 0.0 ? (1.0 + (std::log(xi) - m(i) - 1.0) / v(i)) / (xi * xi)
                      : std::numeric_limits<double>::quiet_NaN();
    }
    div(j) = sum;
  }
}

void LogNormalReference::EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v,
                                         BatchRef s, BatchRef jv) const {
  constexpr const char* where = "LogNormalReference::EvaluateWithJvp";
  CheckInputs(where, x, t);
  CheckShape(where, "v", v, dim(), x.cols());
  CheckShape(where, "s", s, dim(), x.cols());
  CheckShape(where, "jv", jv, dim(), x.cols());
  Vector m;
  Vector var;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    if (j == 0 || t(j) != t(j - 1)) {
      m = LogMean(t(j));
      var = LogVariance(t(j));
    }
    for (int i = 0; i < dim(); ++i) {
      const double xi = x(i, j);
      if (!(xi > 0.0)) {
        s(i, j) = jv(i, j) = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      const double z = std::log(xi) - m(i);
      s(i, j) = -(1.0 + z / var(i)) / xi;
      jv(i, j) = (1.0 + (z - 1.0) / var(i)) / (xi * xi) * v(i, j);
    }
  }
}

std::optional<double> LogNormalReference::ExpectedSquaredNorm(double t) const {
  const Vector m = LogMean(t);
  const Vector v = LogVariance(t);
  return ((2.0 * (v - m)).array().exp() * (1.0 + v.array().inverse())).sum();
}

void LogNormalReference::SampleMarginal(double t, const NoiseStream& noise, int64_t first_sample,
                                        BatchRef x) const {
  constexpr const char* where = "LogNormalReference::SampleMarginal";
  CheckShape(where, "x", x, dim(), -1);
  Require(first_sample >= 0, where, "first_sample", first_sample, ">= 0");
  const Vector m = LogMean(t);
  const Vector sd = LogVariance(t).cwiseSqrt();
  noise.FillNormal(0, 0, first_sample, x);
  // Scalar std::exp per entry: Eigen's vectorized exp differs from std::exp in the last bits and
  // is used only on aligned runs, which would make a sample's bits depend on the chunking.
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    for (Eigen::Index i = 0; i < x.rows(); ++i) x(i, j) = std::exp(m(i) + sd(i) * x(i, j));
  }
}

}  // namespace scoresde
