// Exact derivatives of templated user functors by forward-mode automatic differentiation
// (Ceres Solver's Jet dual numbers). This header is the one public header that needs Ceres's
// headers (Debian's libceres-dev); it needs no Ceres library to link.
//
// AutoDiffSde<F> turns a functor
//   struct F {
//     int dim() const; int noise_dim() const; NoiseType noise_type() const; double t_final() const;
//     template <typename T> void Drift(const T* x, double t, T* f) const;       // f: d values
//     template <typename T> void Diffusion(const T* x, double t, T* g) const;   // kScalar: 1 value,
//   };                                  // kDiagonal: d values, kGeneral: d × m column-major
// into an Sde whose ∇·(GGᵀ), ∂G_ii/∂x_i and ∂G/∂x_l are exact. AutoDiffScore<F> turns
//   struct F { int dim() const; template <typename T> void operator()(const T* x, double t, T* s) const; };
// into a ScoreModel with exact divergence and Jacobian–vector products.
// Derivatives are seeded kJetWidth coordinates at a time, so a divergence costs ⌈d/kJetWidth⌉
// functor calls per sample.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include <ceres/jet.h>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/score_model.hpp"
#include "scoresde/sde/sde.hpp"

namespace scoresde {

inline constexpr int kJetWidth = 8;
using Jet = ceres::Jet<double, kJetWidth>;

namespace internal {

// Jets for x with coordinates [first, first + kJetWidth) seeded.
inline void SeedJets(const double* x, int dim, int first, std::vector<Jet>* jets) {
  jets->assign(dim, Jet());
  for (int i = 0; i < dim; ++i) {
    (*jets)[i].a = x[i];
    if (i >= first && i < first + kJetWidth) (*jets)[i].v[i - first] = 1.0;
  }
}

inline int DiffusionSize(NoiseType type, int dim, int noise_dim) {
  switch (type) {
    case NoiseType::kScalar: return 1;
    case NoiseType::kDiagonal: return dim;
    case NoiseType::kGeneral: return dim * noise_dim;
  }
  return 0;
}

}  // namespace internal

template <typename Functor>
class AutoDiffSde final : public Sde {
 public:
  explicit AutoDiffSde(Functor functor) : f_(std::move(functor)) {
    Require(f_.dim() >= 1, "AutoDiffSde", "dim", f_.dim(), ">= 1");
    Require(f_.noise_dim() >= 1, "AutoDiffSde", "noise_dim", f_.noise_dim(), ">= 1");
    Require(f_.noise_type() == NoiseType::kGeneral || f_.noise_dim() == f_.dim(), "AutoDiffSde",
            "noise_dim", f_.noise_dim(), "equal to dim unless the noise is general");
    Require(f_.t_final() > 0.0, "AutoDiffSde", "t_final", f_.t_final(), "> 0");
  }

  const Functor& functor() const { return f_; }
  int dim() const override { return f_.dim(); }
  int noise_dim() const override { return f_.noise_dim(); }
  NoiseType noise_type() const override { return f_.noise_type(); }
  double t_final() const override { return f_.t_final(); }

  void Drift(ConstBatchRef x, double t, BatchRef f) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) f_.Drift(x.col(j).data(), t, f.col(j).data());
  }

  double ScalarDiffusion(double t) const override {
    if (noise_type() != NoiseType::kScalar) return Sde::ScalarDiffusion(t);
    // g does not depend on x for scalar noise; any point will do.
    std::vector<double> x(dim(), 0.0);
    double g = 0.0;
    f_.Diffusion(x.data(), t, &g);
    return g;
  }

  void DiagonalDiffusion(ConstBatchRef x, double t, BatchRef g) const override {
    if (noise_type() != NoiseType::kDiagonal) return Sde::DiagonalDiffusion(x, t, g);
    for (Eigen::Index j = 0; j < x.cols(); ++j) f_.Diffusion(x.col(j).data(), t, g.col(j).data());
  }

  void DiffusionMatrix(ConstVectorRef x, double t, MatrixRef g) const override {
    if (noise_type() != NoiseType::kGeneral) return Sde::DiffusionMatrix(x, t, g);
    Matrix buffer(dim(), noise_dim());
    f_.Diffusion(x.data(), t, buffer.data());
    g = buffer;
  }

  void DivergenceOfGGt(ConstBatchRef x, double t, BatchRef div) const override {
    const int d = dim();
    if (noise_type() == NoiseType::kScalar) {
      div.setZero();
      return;
    }
    std::vector<Jet> xj;
    std::vector<Jet> g(internal::DiffusionSize(noise_type(), d, noise_dim()));
    for (Eigen::Index col = 0; col < x.cols(); ++col) {
      const double* xc = x.col(col).data();
      for (int i = 0; i < d; ++i) div(i, col) = 0.0;
      for (int first = 0; first < d; first += kJetWidth) {
        internal::SeedJets(xc, d, first, &xj);
        f_.Diffusion(xj.data(), t, g.data());
        const int last = std::min(d, first + kJetWidth);
        if (noise_type() == NoiseType::kDiagonal) {
          // (GGᵀ)_ii = g_i², so the divergence is ∂(g_i²)/∂x_i.
          for (int i = first; i < last; ++i) div(i, col) += (g[i] * g[i]).v[i - first];
        } else {
          const int m = noise_dim();
          for (int i = 0; i < d; ++i) {
            for (int j = first; j < last; ++j) {
              Jet ggt_ij(0.0);
              for (int k = 0; k < m; ++k) ggt_ij += g[i + k * d] * g[j + k * d];
              div(i, col) += ggt_ij.v[j - first];
            }
          }
        }
      }
    }
  }

  bool HasDiffusionDerivative() const override { return true; }

  void DiagonalDiffusionDerivative(ConstBatchRef x, double t, BatchRef dg) const override {
    if (noise_type() != NoiseType::kDiagonal) return Sde::DiagonalDiffusionDerivative(x, t, dg);
    const int d = dim();
    std::vector<Jet> xj;
    std::vector<Jet> g(d);
    for (Eigen::Index col = 0; col < x.cols(); ++col) {
      for (int first = 0; first < d; first += kJetWidth) {
        internal::SeedJets(x.col(col).data(), d, first, &xj);
        f_.Diffusion(xj.data(), t, g.data());
        for (int i = first; i < std::min(d, first + kJetWidth); ++i) dg(i, col) = g[i].v[i - first];
      }
    }
  }

  void DiffusionJacobian(ConstVectorRef x, double t, std::vector<Matrix>* dg) const override {
    if (noise_type() != NoiseType::kGeneral) return Sde::DiffusionJacobian(x, t, dg);
    const int d = dim();
    const int m = noise_dim();
    dg->assign(d, Matrix::Zero(d, m));
    std::vector<Jet> xj;
    std::vector<Jet> g(static_cast<size_t>(d) * m);
    const Vector xc = x;
    for (int first = 0; first < d; first += kJetWidth) {
      internal::SeedJets(xc.data(), d, first, &xj);
      f_.Diffusion(xj.data(), t, g.data());
      for (int l = first; l < std::min(d, first + kJetWidth); ++l) {
        for (int k = 0; k < m; ++k) {
          for (int i = 0; i < d; ++i) (*dg)[l](i, k) = g[i + k * d].v[l - first];
        }
      }
    }
  }

 private:
  Functor f_;
};

template <typename Functor>
class AutoDiffScore final : public ScoreModel {
 public:
  explicit AutoDiffScore(Functor functor) : f_(std::move(functor)) {
    Require(f_.dim() >= 1, "AutoDiffScore", "dim", f_.dim(), ">= 1");
  }

  const Functor& functor() const { return f_; }
  int dim() const override { return f_.dim(); }

  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    for (Eigen::Index j = 0; j < x.cols(); ++j) f_(x.col(j).data(), t(j), s.col(j).data());
  }

  bool HasDivergence() const override { return true; }
  void Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const override {
    const int d = dim();
    std::vector<Jet> xj;
    std::vector<Jet> s(d);
    for (Eigen::Index col = 0; col < x.cols(); ++col) {
      double trace = 0.0;
      for (int first = 0; first < d; first += kJetWidth) {
        internal::SeedJets(x.col(col).data(), d, first, &xj);
        f_(xj.data(), t(col), s.data());
        for (int i = first; i < std::min(d, first + kJetWidth); ++i) trace += s[i].v[i - first];
      }
      div(col) = trace;
    }
  }

  bool HasJvp() const override { return true; }
  void EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                       BatchRef jv) const override {
    using Jet1 = ceres::Jet<double, 1>;
    const int d = dim();
    std::vector<Jet1> xj(d);
    std::vector<Jet1> sj(d);
    for (Eigen::Index col = 0; col < x.cols(); ++col) {
      for (int i = 0; i < d; ++i) {
        xj[i].a = x(i, col);
        xj[i].v[0] = v(i, col);
      }
      f_(xj.data(), t(col), sj.data());
      for (int i = 0; i < d; ++i) {
        s(i, col) = sj[i].a;
        jv(i, col) = sj[i].v[0];
      }
    }
  }

 private:
  Functor f_;
};

}  // namespace scoresde
