#include "scoresde/sde/sde.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "scoresde/sde/check.hpp"

namespace scoresde {

std::string_view ToString(NoiseType type) {
  switch (type) {
    case NoiseType::kScalar: return "scalar";
    case NoiseType::kDiagonal: return "diagonal";
    case NoiseType::kGeneral: return "general";
  }
  return "unknown";
}

namespace {

[[noreturn]] void ThrowWrongStructure(const Sde& sde, const char* method) {
  throw InvalidArgument(std::string("Sde::") + method + ": not available for " +
                        std::string(ToString(sde.noise_type())) + " noise");
}

}  // namespace

double Sde::ScalarDiffusion(double) const { ThrowWrongStructure(*this, "ScalarDiffusion"); }

void Sde::DiagonalDiffusion(ConstBatchRef, double t, BatchRef g) const {
  if (noise_type() != NoiseType::kScalar) ThrowWrongStructure(*this, "DiagonalDiffusion");
  g.setConstant(ScalarDiffusion(t));
}

void Sde::DiffusionMatrix(ConstVectorRef x, double t, MatrixRef g) const {
  switch (noise_type()) {
    case NoiseType::kScalar:
      g.setZero();
      g.diagonal().setConstant(ScalarDiffusion(t));
      return;
    case NoiseType::kDiagonal: {
      Batch diagonal(dim(), 1);
      DiagonalDiffusion(x, t, diagonal);
      g.setZero();
      g.diagonal() = diagonal.col(0);
      return;
    }
    case NoiseType::kGeneral:
      ThrowWrongStructure(*this, "DiffusionMatrix (general noise must override it)");
  }
}

void Sde::DiffusionTimes(ConstBatchRef x, double t, ConstBatchRef v, BatchRef out) const {
  switch (noise_type()) {
    case NoiseType::kScalar:
      out = ScalarDiffusion(t) * v;
      return;
    case NoiseType::kDiagonal:
      DiagonalDiffusion(x, t, out);
      out.array() *= v.array();
      return;
    case NoiseType::kGeneral: {
      Matrix g(dim(), noise_dim());
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        DiffusionMatrix(x.col(j), t, g);
        out.col(j).noalias() = g * v.col(j);
      }
      return;
    }
  }
}

void Sde::DiffusionSquaredTimes(ConstBatchRef x, double t, ConstBatchRef v, BatchRef out) const {
  switch (noise_type()) {
    case NoiseType::kScalar: {
      const double g = ScalarDiffusion(t);
      out = (g * g) * v;
      return;
    }
    case NoiseType::kDiagonal:
      DiagonalDiffusion(x, t, out);
      out.array() = out.array().square() * v.array();
      return;
    case NoiseType::kGeneral: {
      Matrix g(dim(), noise_dim());
      Vector gtv(noise_dim());
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        DiffusionMatrix(x.col(j), t, g);
        gtv.noalias() = g.transpose() * v.col(j);
        out.col(j).noalias() = g * gtv;
      }
      return;
    }
  }
}

bool Sde::HasDiffusionDerivative() const { return noise_type() == NoiseType::kScalar; }

void Sde::DiagonalDiffusionDerivative(ConstBatchRef, double, BatchRef dg) const {
  if (noise_type() != NoiseType::kScalar) {
    ThrowWrongStructure(*this, "DiagonalDiffusionDerivative (this SDE provides no dG/dx)");
  }
  dg.setZero();
}

void Sde::DiffusionJacobian(ConstVectorRef, double, std::vector<Matrix>* dg) const {
  if (noise_type() != NoiseType::kScalar) {
    ThrowWrongStructure(*this, "DiffusionJacobian (this SDE provides no dG/dx)");
  }
  dg->assign(dim(), Matrix::Zero(dim(), noise_dim()));
}

void FiniteDifferenceDivergenceOfGGt(const Sde& sde, ConstBatchRef x, double t, BatchRef div) {
  const int d = sde.dim();
  CheckShape("FiniteDifferenceDivergenceOfGGt", "x", x, d, -1);
  CheckShape("FiniteDifferenceDivergenceOfGGt", "div", div, d, x.cols());
  if (sde.noise_type() == NoiseType::kScalar) {
    div.setZero();
    return;
  }
  // Central differences: truncation error h²/6 |∂³(GGᵀ)|, rounding error ε|GGᵀ|/h; balanced by
  // h ∝ ε^(1/3).
  const double base_step = std::cbrt(std::numeric_limits<double>::epsilon());
  if (sde.noise_type() == NoiseType::kDiagonal) {
    Batch plus(d, 1), minus(d, 1), g_plus(d, 1), g_minus(d, 1);
    for (Eigen::Index col = 0; col < x.cols(); ++col) {
      for (int i = 0; i < d; ++i) {
        // (GGᵀ)_ii = g_i² depends on x through all coordinates, but only ∂/∂x_i enters row i.
        const double h = base_step * std::max(1.0, std::abs(x(i, col)));
        plus = x.col(col);
        minus = x.col(col);
        plus(i, 0) += h;
        minus(i, 0) -= h;
        const double step = plus(i, 0) - minus(i, 0);  // the step actually taken
        sde.DiagonalDiffusion(plus, t, g_plus);
        sde.DiagonalDiffusion(minus, t, g_minus);
        div(i, col) = (g_plus(i, 0) * g_plus(i, 0) - g_minus(i, 0) * g_minus(i, 0)) / step;
      }
    }
    return;
  }
  const int m = sde.noise_dim();
  Vector plus(d), minus(d);
  Matrix g_plus(d, m), g_minus(d, m);
  for (Eigen::Index col = 0; col < x.cols(); ++col) {
    div.col(col).setZero();
    for (int j = 0; j < d; ++j) {
      const double h = base_step * std::max(1.0, std::abs(x(j, col)));
      plus = x.col(col);
      minus = x.col(col);
      plus(j) += h;
      minus(j) -= h;
      const double step = plus(j) - minus(j);
      sde.DiffusionMatrix(plus, t, g_plus);
      sde.DiffusionMatrix(minus, t, g_minus);
      // Column j of GGᵀ at x ± h e_j: (GGᵀ)_{·j} = G G_{j·}ᵀ.
      div.col(col) += (g_plus * g_plus.row(j).transpose() - g_minus * g_minus.row(j).transpose()) /
                      step;
    }
  }
}

}  // namespace scoresde
