#include <cmath>
#include <limits>

#include <Eigen/Dense>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kEps = std::numeric_limits<double>::epsilon();

TEST(TransitionOf, ScalarAffineFamilies) {
  const VpSde vp(3);
  const SubVpSde subvp(3);
  const VeSde ve(3);
  for (const ScalarAffineSde* sde :
       {static_cast<const ScalarAffineSde*>(&vp), static_cast<const ScalarAffineSde*>(&subvp),
        static_cast<const ScalarAffineSde*>(&ve)}) {
    for (double t : {0.0, 0.3, 1.0}) {
      const GaussianTransition k = TransitionOf(*sde, t);
      const double alpha = sde->MeanCoefficient(t);
      const double sigma = sde->MarginalStd(t);
      EXPECT_EQ(k.A, alpha * Matrix::Identity(3, 3));
      EXPECT_EQ(k.b, Vector::Zero(3));
      EXPECT_EQ(k.Q, sigma * sigma * Matrix::Identity(3, 3));
    }
  }
  // VP at t = 0 is the identity kernel.
  const GaussianTransition k0 = TransitionOf(vp, 0.0);
  EXPECT_EQ(k0.A, Matrix::Identity(3, 3));
  EXPECT_EQ(k0.Q, Matrix::Zero(3, 3));
}

// The VE kernel choice is visible at t = 0: kExact starts at the data (Q = 0), kReference at the
// data perturbed by σmin (Q = σmin² I).
TEST(TransitionOf, VeKernelsAtTimeZero) {
  VeSde::Options options;
  options.sigma_min = 0.05;
  options.sigma_max = 10.0;
  options.kernel = VeKernel::kExact;
  const VeSde exact(2, options);
  options.kernel = VeKernel::kReference;
  const VeSde reference(2, options);
  EXPECT_EQ(TransitionOf(exact, 0.0).Q, Matrix::Zero(2, 2));
  EXPECT_NEAR(TransitionOf(reference, 0.0).Q(0, 0), 0.05 * 0.05, 4 * kEps * 0.0025);
  EXPECT_EQ(TransitionOf(reference, 0.0).Q(0, 1), 0.0);
  // At t: σ(t)² − σmin² versus σ(t)².
  const double t = 0.4;
  const double sigma_t = 0.05 * std::pow(10.0 / 0.05, t);
  EXPECT_NEAR(TransitionOf(exact, t).Q(1, 1), sigma_t * sigma_t - 0.0025, 1e-13);
  EXPECT_NEAR(TransitionOf(reference, t).Q(1, 1), sigma_t * sigma_t, 1e-13);
}

TEST(TransitionOf, RejectsTimesOutsideInterval) {
  const VpSde vp(2);
  EXPECT_THAT([&] { TransitionOf(vp, -0.1); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t = -0.1")));
  EXPECT_THAT([&] { TransitionOf(vp, 1.5); }, ThrowsMessage<InvalidArgument>(HasSubstr("t = 1.5")));
  EXPECT_THAT([&] { TransitionOf(vp, std::nan("")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t = nan")));
  LinearSde::Options options{Matrix::Zero(1, 1), Vector(),
                             [](double) { return Matrix::Ones(1, 1); }, 2.0};
  const LinearSde linear(options);
  EXPECT_THAT([&] { TransitionOf(linear, 2.5); },
              ThrowsMessage<InvalidArgument>(HasSubstr("t = 2.5")));
  EXPECT_NO_THROW(TransitionOf(linear, 2.0));
}

// Constant F with eigendecomposition F = V D V⁻¹ and constant G: with P = V⁻¹ G Gᵀ V⁻ᵀ,
//   A = V e^{Dt} V⁻¹,  b = V diag((e^{d_i t} − 1)/d_i) V⁻¹ c,
//   Q = V [P_ij (e^{(d_i + d_j) t} − 1)/(d_i + d_j)] Vᵀ.
// The RKF78 solution at tolerance 1e-12 must agree to ~1e-11 (the documented error level).
TEST(TransitionOf, LinearSdeConstantCoefficientsClosedForm) {
  Matrix f(2, 2);
  f << -1.0, 0.5, 0.0, -2.0;
  Vector c(2);
  c << 0.3, -0.1;
  Matrix g(2, 3);
  g << 1.0, 0.2, -0.4, 0.1, 0.8, 0.3;
  const LinearSde sde({f, c, [g](double) { return g; }, 2.0});
  Matrix v(2, 2);
  v << 1.0, -0.5, 0.0, 1.0;  // eigenvectors of f for −1 and −2
  Vector d(2);
  d << -1.0, -2.0;
  const Matrix v_inv = v.inverse();
  ASSERT_LT((v * d.asDiagonal() * v_inv - f).norm(), 1e-15);
  const Matrix p = v_inv * g * g.transpose() * v_inv.transpose();
  for (double t : {0.25, 1.0, 2.0}) {
    const GaussianTransition k = TransitionOf(sde, t);
    const Vector e = (d * t).array().exp();
    const Matrix a = v * e.asDiagonal() * v_inv;
    const Vector b = v * ((e.array() - 1.0) / d.array()).matrix().asDiagonal() * v_inv * c;
    Matrix inner(2, 2);
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        inner(i, j) = p(i, j) * std::expm1((d(i) + d(j)) * t) / (d(i) + d(j));
      }
    }
    const Matrix q = v * inner * v.transpose();
    EXPECT_LT((k.A - a).cwiseAbs().maxCoeff(), 1e-11) << "t = " << t;
    EXPECT_LT((k.b - b).cwiseAbs().maxCoeff(), 1e-11) << "t = " << t;
    EXPECT_LT((k.Q - q).cwiseAbs().maxCoeff(), 1e-11) << "t = " << t;
    EXPECT_EQ(k.Q, k.Q.transpose());
  }
  const GaussianTransition k0 = TransitionOf(sde, 0.0);
  EXPECT_EQ(k0.A, Matrix::Identity(2, 2));
  EXPECT_EQ(k0.Q, Matrix::Zero(2, 2));
}

// Time-dependent G(t) = (1 + t) G0 with F = 0: Q = ((1 + t)³ − 1)/3 · G0 G0ᵀ, b = c t, A = I.
TEST(TransitionOf, LinearSdeTimeDependentDiffusion) {
  Matrix g0(3, 2);
  g0 << 1.0, 0.0, 0.5, -0.3, 0.2, 0.7;
  Vector c(3);
  c << 1.0, -2.0, 0.5;
  const LinearSde sde(
      {Matrix::Zero(3, 3), c, [g0](double t) { return Matrix((1.0 + t) * g0); }, 1.0});
  const double t = 0.8;
  const GaussianTransition k = TransitionOf(sde, t);
  const Matrix q = (std::pow(1.0 + t, 3) - 1.0) / 3.0 * g0 * g0.transpose();
  EXPECT_LT((k.A - Matrix::Identity(3, 3)).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((k.b - c * t).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((k.Q - q).cwiseAbs().maxCoeff(), 1e-11);
}

TEST(TransitionOf, LinearSdeNonFiniteDiffusionFails) {
  const LinearSde sde(
      {Matrix::Zero(1, 1), Vector(),
       [](double t) { return Matrix::Constant(1, 1, t > 0.5 ? std::nan("") : 1.0); }, 0.4});
  EXPECT_NO_THROW(TransitionOf(sde, 0.4));
  // The SDE's own probe at t_final passes (T = 0.4), so only a G that breaks inside the
  // interval can reach the integrator: build one that is NaN on (0.1, 0.3).
  const LinearSde broken(
      {Matrix::Zero(1, 1), Vector(),
       [](double t) { return Matrix::Constant(1, 1, t > 0.1 && t < 0.3 ? std::nan("") : 1.0); },
       0.4});
  EXPECT_THROW(TransitionOf(broken, 0.4), NumericalFailure);
}

}  // namespace
}  // namespace scoresde
