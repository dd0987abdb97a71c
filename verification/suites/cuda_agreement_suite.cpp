// Agreement of the CUDA backend with the CPU (docs/gpu.md has the derivations and the figures).
//
// 1. Random streams: device Philox words, uniforms and Rademacher signs equal the CPU's bit for
//    bit; normals agree within 8 ulp.
// 2. Network passes: the CPU float32 MlpNetwork and the device CudaMlp (pedantic FP32) both stay
//    within a rigorous first-order float32 error bound of the exact (double) network with the same
//    float parameters — forward F, tangent Ḟ = J_F u̇, gradients of gᵀF and of gᵀF + ġᵀḞ. The
//    bound is a running error analysis (Wilkinson; Higham, "Accuracy and Stability of Numerical
//    Algorithms", 2nd ed., §3.1 and §3.5) with u = 2⁻²⁴ and γ_k = k u/(1 − k u):
//      GEMM (any summation order, with or without FMA):  |fl(Σ w a) − Σ w â| ≤ γ_K Σ|w||â|,
//      propagated error of inputs:                       |W| e_a,
//      SiLU(ẑ) = ẑ σ(ẑ), σ = 1/(1 + exp(−ẑ)), exp ≤ 2 ulp (≤ 4u): relative error ≤ 7u,
//      |SiLU'| ≤ 1.0998, |SiLU''| ≤ 1/2, |SiLU'''| ≤ 0.3082 (Lipschitz constants of the exact
//      functions; the evaluation errors of SiLU' and SiLU'' are ≤ 10u + 16u|z| and
//      ≤ 24u + 14u|z| in absolute terms),
//    evaluated with the double reference activations (|â| ≤ |a| + e_a), times 1.01 for the
//    neglected second-order terms (each first-order relative term is below 1e-3 here). A device
//    run in TF32 must violate the float32 bound (the check is sharp enough to see TF32).
// 3. Training: 200 DSM steps (and 100 SSM-VR steps) on the device follow the CPU trajectory: the
//    device's deviation from the CPU float64 trajectory stays within 4× the CPU float32 run's own
//    deviation from it (both are float32 perturbations of the same trajectory; the factor 4 was
//    fixed before the first run), for the parameters and the losses.
// 4. The learned score evaluated by CudaSampler equals MlpScore's within the forward bound × |b|.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <vector>

#include <gtest/gtest.h>

#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/losses.hpp"
#include "scoresde/scoring/mlp_score.hpp"
#include "scoresde/scoring/optimizer.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

#define SKIP_WITHOUT_DEVICE()                                                         \
  do {                                                                                \
    const CudaDeviceInfo info = QueryCudaDevice();                                    \
    if (!info.available) GTEST_SKIP() << "needs a CUDA device: " << info.reason;       \
  } while (false)

using MatrixF = Eigen::MatrixXf;
using RowF = Eigen::RowVectorXf;
using VectorF = Eigen::VectorXf;

constexpr double kU = 0x1.0p-24;  // float32 unit roundoff
constexpr double kSiluLipschitz = 1.1;   // sup |SiLU'| = 1.0998…
constexpr double kSilu2 = 0.5;           // sup |SiLU''| = SiLU''(0)
constexpr double kSilu3 = 0.31;          // sup |SiLU'''| = 0.3082…
constexpr double kSecondOrder = 1.01;

double Gamma(double k) { return k * kU / (1.0 - k * kU); }

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double Silu(double z) { return z * Sigmoid(z); }
double Silu1(double z) {
  const double s = Sigmoid(z);
  return s * (1.0 + z * (1.0 - s));
}
double Silu2(double z) {
  const double s = Sigmoid(z);
  return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s));
}

// Exact (double) values of every pass of a float network and rigorous bounds on the error of any
// float32 evaluation that follows the error model above.
class FloatBound {
 public:
  struct Result {
    Matrix output, output_dot;      // exact F, Ḟ
    Matrix output_bound, output_dot_bound;
    Vector grad, grad_bound;        // ∂/∂θ gᵀF
    Vector grad_t, grad_t_bound;    // ∂/∂θ (gᵀF + ġᵀḞ)
  };

  explicit FloatBound(const MlpNetwork<float>& network) : config_(network.config()) {
    const VectorF& p = network.parameters();
    for (int l = 0; l <= config_.depth; ++l) {
      const auto& w = network.layout()[2 * l];
      const auto& b = network.layout()[2 * l + 1];
      Matrix weight(w.shape[0], w.shape[1]);
      for (int o = 0; o < weight.rows(); ++o) {
        for (int i = 0; i < weight.cols(); ++i) {
          weight(o, i) = p[w.offset + int64_t{o} * weight.cols() + i];
        }
      }
      weights_.push_back(weight);
      biases_.push_back(p.segment(b.offset, b.size).cast<double>());
      weight_offsets_.push_back(w.offset);
      bias_offsets_.push_back(b.offset);
    }
    fourier_ = network.fourier_weights().cast<double>();
    num_parameters_ = network.num_parameters();
  }

  Result Compute(const MatrixF& u, const RowF& tau, const MatrixF& u_dot, const MatrixF& g,
                 const MatrixF& g_dot) const {
    const int depth = config_.depth;
    const int d = config_.dim;
    const int half = config_.embed_dim / 2;
    const int width = config_.width;
    const int n = static_cast<int>(u.cols());
    Result r;
    // ---- Forward ----
    std::vector<Matrix> a(depth + 1), e_a(depth + 1), z(depth), e_z(depth);
    a[0].resize(d + 2 * half, n);
    e_a[0] = Matrix::Zero(d + 2 * half, n);
    a[0].topRows(d) = u.cast<double>();
    for (int j = 0; j < n; ++j) {
      for (int k = 0; k < half; ++k) {
        const double phase = 2.0 * std::numbers::pi * fourier_[k] * static_cast<double>(tau[j]);
        a[0](d + k, j) = std::sin(phase);
        a[0](d + half + k, j) = std::cos(phase);
      }
    }
    // The embedding is rounded once to float (computed in double).
    e_a[0].bottomRows(2 * half) = 1.0001 * kU * a[0].bottomRows(2 * half).cwiseAbs();
    for (int l = 0; l < depth; ++l) {
      const Matrix& w = weights_[l];
      const Matrix w_abs = w.cwiseAbs();
      const double k = static_cast<double>(w.cols()) + 1.0;
      z[l] = (w * a[l]).colwise() + biases_[l];
      const Matrix a_abs = a[l].cwiseAbs() + e_a[l];
      e_z[l] = w_abs * e_a[l] +
               Gamma(k) * ((w_abs * a_abs).colwise() + biases_[l].cwiseAbs());
      const Matrix silu = z[l].unaryExpr([](double v) { return Silu(v); });
      const Matrix e_new =
          kSiluLipschitz * e_z[l] + 7.0 * kU * (silu.cwiseAbs() + kSiluLipschitz * e_z[l]);
      if (config_.residual && l >= 1) {
        a[l + 1] = a[l] + silu;
        e_a[l + 1] = e_a[l] + e_new + kU * (a[l + 1].cwiseAbs() + e_a[l] + e_new);
      } else {
        a[l + 1] = silu;
        e_a[l + 1] = e_new;
      }
    }
    const Matrix& w_out = weights_[depth];
    const Matrix w_out_abs = w_out.cwiseAbs();
    const Matrix a_out_abs = a[depth].cwiseAbs() + e_a[depth];
    r.output = (w_out * a[depth]).colwise() + biases_[depth];
    r.output_bound = kSecondOrder * (w_out_abs * e_a[depth] +
                                     Gamma(width + 1.0) * ((w_out_abs * a_out_abs).colwise() +
                                                           biases_[depth].cwiseAbs()));
    // ---- Tangent ----
    std::vector<Matrix> ad(depth + 1), e_ad(depth + 1), zd(depth), e_zd(depth);
    ad[0] = Matrix::Zero(d + 2 * half, n);
    ad[0].topRows(d) = u_dot.cast<double>();
    e_ad[0] = Matrix::Zero(d + 2 * half, n);
    std::vector<Matrix> dz_eval(depth);  // bound on |SiLU'(ẑ) computed − SiLU'(z)|
    for (int l = 0; l < depth; ++l) {
      const Matrix& w = weights_[l];
      const Matrix w_abs = w.cwiseAbs();
      zd[l] = w * ad[l];
      const Matrix ad_abs = ad[l].cwiseAbs() + e_ad[l];
      e_zd[l] = w_abs * e_ad[l] + Gamma(static_cast<double>(w.cols())) * (w_abs * ad_abs);
      const Matrix z_abs = z[l].cwiseAbs() + e_z[l];
      dz_eval[l] = kSilu2 * e_z[l] + (10.0 * kU) * Matrix::Ones(width, n) + 16.0 * kU * z_abs;
      const Matrix d1 = z[l].unaryExpr([](double v) { return Silu1(v); });
      const Matrix zd_abs = zd[l].cwiseAbs() + e_zd[l];
      const Matrix prod = d1.cwiseProduct(zd[l]);
      const Matrix e_prod = d1.cwiseAbs().cwiseProduct(e_zd[l]) +
                            dz_eval[l].cwiseProduct(zd_abs) +
                            kU * (d1.cwiseAbs() + dz_eval[l]).cwiseProduct(zd_abs);
      if (config_.residual && l >= 1) {
        ad[l + 1] = ad[l] + prod;
        e_ad[l + 1] = e_ad[l] + e_prod + kU * (ad[l + 1].cwiseAbs() + e_ad[l] + e_prod);
      } else {
        ad[l + 1] = prod;
        e_ad[l + 1] = e_prod;
      }
    }
    const Matrix ad_out_abs = ad[depth].cwiseAbs() + e_ad[depth];
    r.output_dot = w_out * ad[depth];
    r.output_dot_bound =
        kSecondOrder * (w_out_abs * e_ad[depth] + Gamma(width) * (w_out_abs * ad_out_abs));
    // ---- Reverse passes ----
    const Matrix gd = g.cast<double>(), gdd = g_dot.cast<double>();
    Reverse(a, e_a, z, e_z, ad, e_ad, zd, e_zd, dz_eval, gd, nullptr, &r.grad, &r.grad_bound);
    Reverse(a, e_a, z, e_z, ad, e_ad, zd, e_zd, dz_eval, gd, &gdd, &r.grad_t, &r.grad_t_bound);
    return r;
  }

 private:
  // Gradient (and bound) of Σ gᵀF (+ ġᵀḞ when g_dot is given).
  void Reverse(const std::vector<Matrix>& a, const std::vector<Matrix>& e_a,
               const std::vector<Matrix>& z, const std::vector<Matrix>& e_z,
               const std::vector<Matrix>& ad, const std::vector<Matrix>& e_ad,
               const std::vector<Matrix>& zd, const std::vector<Matrix>& e_zd,
               const std::vector<Matrix>& dz_eval, const Matrix& g, const Matrix* g_dot,
               Vector* grad, Vector* bound) const {
    const int depth = config_.depth;
    const int width = config_.width;
    const int n = static_cast<int>(g.cols());
    const bool tangent = g_dot != nullptr;
    const double gn = Gamma(tangent ? 2.0 * n + 1.0 : static_cast<double>(n));
    grad->setZero(num_parameters_);
    bound->setZero(num_parameters_);
    const auto store = [&](int l, const Matrix& gw, const Matrix& ew, const Vector& gb,
                           const Vector& eb) {
      for (int o = 0; o < gw.rows(); ++o) {
        for (int i = 0; i < gw.cols(); ++i) {
          (*grad)[weight_offsets_[l] + int64_t{o} * gw.cols() + i] = gw(o, i);
          (*bound)[weight_offsets_[l] + int64_t{o} * gw.cols() + i] = kSecondOrder * ew(o, i);
        }
        (*grad)[bias_offsets_[l] + o] = gb[o];
        (*bound)[bias_offsets_[l] + o] = kSecondOrder * eb[o];
      }
    };
    const Matrix g_abs = g.cwiseAbs();
    const Matrix a_abs_out = a[depth].cwiseAbs() + e_a[depth];
    const Matrix& w_out = weights_[depth];
    const Matrix w_out_abs = w_out.cwiseAbs();
    {
      Matrix gw = g * a[depth].transpose();
      Matrix ew = g_abs * e_a[depth].transpose() + gn * (g_abs * a_abs_out.transpose());
      if (tangent) {
        const Matrix gd_abs = g_dot->cwiseAbs();
        const Matrix ad_abs = ad[depth].cwiseAbs() + e_ad[depth];
        gw += *g_dot * ad[depth].transpose();
        ew += gd_abs * e_ad[depth].transpose() + gn * (gd_abs * ad_abs.transpose());
      }
      const Vector gb = g.rowwise().sum();
      const Vector eb = Gamma(n) * g_abs.rowwise().sum();
      store(depth, gw, ew, gb, eb);
    }
    Matrix ga = w_out.transpose() * g;
    Matrix e_ga = Gamma(config_.dim) * (w_out_abs.transpose() * g_abs);
    Matrix gad, e_gad;
    if (tangent) {
      gad = w_out.transpose() * *g_dot;
      e_gad = Gamma(config_.dim) * (w_out_abs.transpose() * g_dot->cwiseAbs());
    }
    for (int l = depth - 1; l >= 0; --l) {
      const Matrix d1 = z[l].unaryExpr([](double v) { return Silu1(v); });
      const Matrix d1_abs = d1.cwiseAbs();
      const Matrix ga_abs = ga.cwiseAbs() + e_ga;
      Matrix gz = ga.cwiseProduct(d1);
      Matrix e_gz = d1_abs.cwiseProduct(e_ga) + dz_eval[l].cwiseProduct(ga_abs) +
                    kU * (d1_abs + dz_eval[l]).cwiseProduct(ga_abs);
      Matrix gzd, e_gzd;
      if (tangent) {
        const Matrix gad_abs = gad.cwiseAbs() + e_gad;
        gzd = gad.cwiseProduct(d1);
        e_gzd = d1_abs.cwiseProduct(e_gad) + dz_eval[l].cwiseProduct(gad_abs) +
                kU * (d1_abs + dz_eval[l]).cwiseProduct(gad_abs);
        const Matrix d2 = z[l].unaryExpr([](double v) { return Silu2(v); });
        const Matrix d2_abs = d2.cwiseAbs();
        const Matrix z_abs = z[l].cwiseAbs() + e_z[l];
        const Matrix d2_eval = kSilu3 * e_z[l] + (24.0 * kU) * Matrix::Ones(width, n) +
                               14.0 * kU * z_abs;
        const Matrix zd_abs = zd[l].cwiseAbs() + e_zd[l];
        const Matrix term = gad.cwiseProduct(d2).cwiseProduct(zd[l]);
        const Matrix e_term =
            d2_abs.cwiseProduct(e_gad.cwiseProduct(zd_abs) + gad.cwiseAbs().cwiseProduct(e_zd[l])) +
            d2_eval.cwiseProduct(gad_abs).cwiseProduct(zd_abs) +
            5.0 * kU * (d2_abs + d2_eval).cwiseProduct(gad_abs).cwiseProduct(zd_abs);
        const Matrix first_abs = gz.cwiseAbs() + e_gz;
        gz += term;
        e_gz += e_term + kU * (first_abs + term.cwiseAbs() + e_term);
      }
      const Matrix gz_abs = gz.cwiseAbs() + e_gz;
      const Matrix a_abs = a[l].cwiseAbs() + e_a[l];
      Matrix gw = gz * a[l].transpose();
      Matrix ew = e_gz * a_abs.transpose() + gz.cwiseAbs() * e_a[l].transpose() +
                  gn * (gz_abs * a_abs.transpose());
      if (tangent) {
        const Matrix gzd_abs = gzd.cwiseAbs() + e_gzd;
        const Matrix ad_abs = ad[l].cwiseAbs() + e_ad[l];
        gw += gzd * ad[l].transpose();
        ew += e_gzd * ad_abs.transpose() + gzd.cwiseAbs() * e_ad[l].transpose() +
              gn * (gzd_abs * ad_abs.transpose());
      }
      const Vector gb = gz.rowwise().sum();
      const Vector eb = e_gz.rowwise().sum() + Gamma(n) * gz_abs.rowwise().sum();
      store(l, gw, ew, gb, eb);
      if (l == 0) break;
      const Matrix& w = weights_[l];
      const Matrix w_abs = w.cwiseAbs();
      const auto propagate = [&](const Matrix& gzx, const Matrix& e_gzx, const Matrix& gzx_abs,
                                 Matrix* gax, Matrix* e_gax) {
        if (config_.residual) {
          const Matrix prev_abs = gax->cwiseAbs() + *e_gax;
          *gax += w.transpose() * gzx;
          *e_gax = *e_gax + w_abs.transpose() * e_gzx +
                   Gamma(width + 1.0) * (w_abs.transpose() * gzx_abs + prev_abs);
        } else {
          *gax = w.transpose() * gzx;
          *e_gax = w_abs.transpose() * e_gzx + Gamma(width) * (w_abs.transpose() * gzx_abs);
        }
      };
      propagate(gz, e_gz, gz_abs, &ga, &e_ga);
      if (tangent) propagate(gzd, e_gzd, gzd.cwiseAbs() + e_gzd, &gad, &e_gad);
    }
  }

  MlpConfig config_;
  std::vector<Matrix> weights_;
  std::vector<Vector> biases_;
  std::vector<int64_t> weight_offsets_, bias_offsets_;
  Vector fourier_;
  int64_t num_parameters_ = 0;
};

// max_k |x_k − ref_k| / bound_k (≤ 1 means within the bound).
template <typename A, typename B, typename C>
double WorstRatio(const A& x, const B& ref, const C& bound) {
  double worst = 0.0;
  for (Eigen::Index k = 0; k < ref.size(); ++k) {
    const double diff = std::abs(static_cast<double>(x.data()[k]) - ref.data()[k]);
    if (!(diff <= bound.data()[k] * 1e300)) return INFINITY;  // NaN guard
    worst = std::max(worst, bound.data()[k] > 0.0 ? diff / bound.data()[k]
                                                  : (diff > 0.0 ? INFINITY : 0.0));
  }
  return worst;
}

struct NetCase {
  MlpConfig config;
  uint64_t seed;
  int n;
};

std::vector<NetCase> NetCases() {
  std::vector<NetCase> cases;
  MlpConfig a;
  a.dim = 2;
  a.width = 64;
  a.depth = 3;
  a.embed_dim = 16;
  cases.push_back({a, 1, 200});
  MlpConfig b;
  b.dim = 5;
  b.width = 130;  // not a multiple of 4: the scalar element-wise path
  b.depth = 2;
  b.embed_dim = 32;
  b.residual = false;
  cases.push_back({b, 2, 257});
  MlpConfig c;
  c.dim = 3;
  c.width = 512;
  c.depth = 4;
  c.embed_dim = 32;
  c.fourier_scale = 16.0;
  cases.push_back({c, 3, 128});
  return cases;
}

struct Inputs {
  MatrixF u, u_dot, g, g_dot;
  RowF tau;
};

Inputs MakeInputs(const MlpConfig& config, int n, uint64_t seed) {
  const NoiseStream noise(seed, Stream::kUser);
  Matrix u(config.dim, n), ud(config.dim, n), g(config.dim, n), gd(config.dim, n), t(1, n);
  noise.FillNormal(0, 0, 0, u);
  noise.FillNormal(0, 1, 0, ud);
  noise.FillNormal(0, 2, 0, g);
  noise.FillNormal(0, 3, 0, gd);
  noise.FillUniform(0, 4, 0, t);
  Inputs in;
  in.u = (2.0 * u).cast<float>();
  in.u_dot = ud.cast<float>();
  in.g = g.cast<float>();
  in.g_dot = gd.cast<float>();
  in.tau = (10.0 * t.array() - 5.0).matrix().cast<float>();  // covers t ∈ [0, 1] and log σ
  return in;
}

// ---- 1. Random streams ---------------------------------------------------------------------------

TEST(CudaAgreement, RandomStreamsEqualTheCpu) {
  SKIP_WITHOUT_DEVICE();
  const NoiseStream noise(0x9e3779b97f4a7c15ull, Stream::kCorrector);
  const int64_t count = 1 << 16;
  const auto words = CudaPhiloxWords(noise, 123456, 7, 1000, count, 2);
  int64_t mismatches = 0;
  for (int64_t k = 0; k < count; ++k) {
    for (int b = 0; b < 2; ++b) mismatches += words[k * 2 + b] != noise.Raw(b, 1000 + k, 123456, 7);
  }
  EXPECT_EQ(mismatches, 0);
  Matrix uniform(9, 20000), signs(200, 500), normal(4, 250000);
  noise.FillUniform(5, 1, 77, uniform);
  noise.FillRademacher(5, 2, 77, signs);
  noise.FillNormal(5, 3, 77, normal);
  EXPECT_EQ(CudaFillUniform(noise, 5, 1, 77, 9, 20000), uniform);
  EXPECT_EQ(CudaFillRademacher(noise, 5, 2, 77, 200, 500), signs);
  const Matrix gpu = CudaFillNormal(noise, 5, 3, 77, 4, 250000);
  double worst_ulp = 0.0;
  int64_t equal = 0;
  for (Eigen::Index k = 0; k < normal.size(); ++k) {
    const double ulp = std::ldexp(1.0, std::ilogb(normal(k)) - 52);
    worst_ulp = std::max(worst_ulp, std::abs(gpu(k) - normal(k)) / ulp);
    equal += gpu(k) == normal(k);
  }
  std::printf("[ figures ] normals: %lld of %lld bit-identical, worst difference %.1f ulp\n",
              static_cast<long long>(equal), static_cast<long long>(normal.size()), worst_ulp);
  EXPECT_LE(worst_ulp, 8.0);
}

// ---- 2. Network passes ---------------------------------------------------------------------------

TEST(CudaAgreement, CpuFloatPassesAreWithinTheDerivedBound) {
  // Runs without a device: the bound must hold for the CPU float32 network itself.
  for (const NetCase& c : NetCases()) {
    const MlpNetwork<float> net(c.config, c.seed);
    const Inputs in = MakeInputs(c.config, c.n, c.seed + 10);
    const FloatBound bound(net);
    const FloatBound::Result r = bound.Compute(in.u, in.tau, in.u_dot, in.g, in.g_dot);
    typename MlpNetwork<float>::Workspace ws;
    net.Forward(in.u, in.tau, &ws);
    net.Tangent(in.u_dot, &ws);
    VectorF grad = VectorF::Zero(net.num_parameters());
    net.Backward(in.g, &ws, grad.data());
    VectorF grad_t = VectorF::Zero(net.num_parameters());
    net.BackwardWithTangent(in.g, in.g_dot, &ws, grad_t.data());
    const double f = WorstRatio(ws.output, r.output, r.output_bound);
    const double fd = WorstRatio(ws.output_dot, r.output_dot, r.output_dot_bound);
    const double gr = WorstRatio(grad, r.grad, r.grad_bound);
    const double gt = WorstRatio(grad_t, r.grad_t, r.grad_t_bound);
    std::printf("[ figures ] cpu float width %d: |err|/bound F %.3g, Fdot %.3g, grad %.3g, "
                "grad(tangent) %.3g\n",
                c.config.width, f, fd, gr, gt);
    EXPECT_LE(f, 1.0);
    EXPECT_LE(fd, 1.0);
    EXPECT_LE(gr, 1.0);
    EXPECT_LE(gt, 1.0);
  }
}

TEST(CudaAgreement, DevicePassesAreWithinTheDerivedBound) {
  SKIP_WITHOUT_DEVICE();
  for (const NetCase& c : NetCases()) {
    const MlpNetwork<float> net(c.config, c.seed);
    const Inputs in = MakeInputs(c.config, c.n, c.seed + 10);
    const FloatBound bound(net);
    const FloatBound::Result r = bound.Compute(in.u, in.tau, in.u_dot, in.g, in.g_dot);
    CudaMlp mlp(net);
    MatrixF out, out_dot;
    mlp.ForwardTangent(in.u, in.tau, in.u_dot, &out, &out_dot);
    const VectorF grad = mlp.Gradient(in.u, in.tau, in.g);
    const VectorF grad_t = mlp.GradientWithTangent(in.u, in.tau, in.u_dot, in.g, in.g_dot);
    const double f = WorstRatio(out, r.output, r.output_bound);
    const double fd = WorstRatio(out_dot, r.output_dot, r.output_dot_bound);
    const double gr = WorstRatio(grad, r.grad, r.grad_bound);
    const double gt = WorstRatio(grad_t, r.grad_t, r.grad_t_bound);
    // And the CPU float result for scale: max |F_gpu − F_cpu| / max |F|.
    typename MlpNetwork<float>::Workspace ws;
    net.Forward(in.u, in.tau, &ws);
    const double rel = (out - ws.output).cwiseAbs().maxCoeff() / ws.output.cwiseAbs().maxCoeff();
    std::printf("[ figures ] cuda pedantic-fp32 width %d: |err|/bound F %.3g, Fdot %.3g, grad "
                "%.3g, grad(tangent) %.3g; max|F_gpu - F_cpu|/max|F| = %.2e\n",
                c.config.width, f, fd, gr, gt, rel);
    EXPECT_LE(f, 1.0);
    EXPECT_LE(fd, 1.0);
    EXPECT_LE(gr, 1.0);
    EXPECT_LE(gt, 1.0);
  }
}

TEST(CudaAgreement, Tf32ViolatesTheFloat32Bound) {
  SKIP_WITHOUT_DEVICE();
  const NetCase c = NetCases()[2];
  const MlpNetwork<float> net(c.config, c.seed);
  const Inputs in = MakeInputs(c.config, c.n, c.seed + 10);
  const FloatBound::Result r =
      FloatBound(net).Compute(in.u, in.tau, in.u_dot, in.g, in.g_dot);
  CudaOptions tf32;
  tf32.math = CudaMath::kTf32;
  CudaMlp mlp(net, tf32);
  const double f = WorstRatio(mlp.Forward(in.u, in.tau), r.output, r.output_bound);
  std::printf("[ figures ] cuda tf32 width %d: |err|/bound F %.3g (must exceed 1)\n",
              c.config.width, f);
  EXPECT_GT(f, 1.0);
}

// ---- 3. Training trajectories --------------------------------------------------------------------

struct Trajectory {
  std::vector<Vector> params;  // after each update
  std::vector<double> losses;
};

template <typename Scalar>
Trajectory RunCpu(const MlpNetwork<float>& initial, std::shared_ptr<const ScalarAffineSde> sde,
                  const LossOptions& loss_options, const AdamOptions& adam, int64_t batch,
                  uint64_t seed, int steps) {
  using VectorS = typename MlpNetwork<Scalar>::VectorS;
  MlpNetwork<Scalar> net(initial.config(), initial.parameters().template cast<Scalar>(),
                         initial.fourier_weights().template cast<Scalar>());
  const ScoreMatchingLoss loss(sde, initial.config(), loss_options);
  AdamOptimizer<Scalar> optimizer(net.parameters(), adam);
  const NoiseStream noise(seed, Stream::kTraining);
  typename MlpNetwork<Scalar>::Workspace ws;
  Trajectory t;
  Matrix x0(2, batch);
  for (int k = 0; k < steps; ++k) {
    SampleToy2d(Toy2d::kTwoMoons, 3, k * batch, x0);
    VectorS grad = VectorS::Zero(net.num_parameters());
    const double total = loss.Block(net, x0, 0, batch, k, noise, &ws, grad.data());
    optimizer.Step(net.mutable_parameters(), grad);
    t.losses.push_back(total / static_cast<double>(batch));
    t.params.push_back(net.parameters().template cast<double>());
  }
  return t;
}

void CompareTrajectories(LossKind kind, int steps) {
  MlpConfig config;
  config.dim = 2;
  config.width = 128;
  config.depth = 3;
  config.embed_dim = 16;
  const MlpNetwork<float> initial(config, 21);
  const auto sde = std::make_shared<VpSde>(2);
  LossOptions loss;
  loss.kind = kind;
  AdamOptions adam;
  adam.learning_rate = 2e-3;
  adam.warmup_steps = 20;
  adam.clip_norm = 1.0;
  adam.ema_decay = 0.99;
  const int64_t batch = 256;
  const uint64_t seed = 5;
  const Trajectory ref = RunCpu<double>(initial, sde, loss, adam, batch, seed, steps);
  const Trajectory cpu = RunCpu<float>(initial, sde, loss, adam, batch, seed, steps);
  CudaTrainerOptions options;
  options.batch_size = batch;
  options.seed = seed;
  CudaTrainer trainer(initial, sde, loss, adam, options);
  Trajectory gpu;
  Matrix x0(2, batch);
  for (int k = 0; k < steps; ++k) {
    SampleToy2d(Toy2d::kTwoMoons, 3, k * batch, x0);
    gpu.losses.push_back(trainer.Step(x0).loss);
    gpu.params.push_back(trainer.Parameters().cast<double>());
  }
  double dev_cpu = 0.0, dev_gpu = 0.0, loss_cpu = 0.0, loss_gpu = 0.0;
  for (int k = 0; k < steps; ++k) {
    dev_cpu = std::max(dev_cpu, (cpu.params[k] - ref.params[k]).norm());
    dev_gpu = std::max(dev_gpu, (gpu.params[k] - ref.params[k]).norm());
    loss_cpu = std::max(loss_cpu, std::abs(cpu.losses[k] - ref.losses[k]));
    loss_gpu = std::max(loss_gpu, std::abs(gpu.losses[k] - ref.losses[k]));
  }
  const double moved = (ref.params.back() - initial.parameters().cast<double>()).norm();
  std::printf("[ figures ] %s %d steps: max ||theta - theta64||: cpu32 %.3e, gpu %.3e (ratio "
              "%.2f; distance travelled %.3e); max |loss - loss64|: cpu32 %.3e, gpu %.3e; final "
              "loss %.4f\n",
              std::string(ToString(kind)).c_str(), steps, dev_cpu, dev_gpu, dev_gpu / dev_cpu,
              moved, loss_cpu, loss_gpu, ref.losses.back());
  EXPECT_GT(dev_cpu, 0.0);
  EXPECT_LE(dev_gpu, 4.0 * dev_cpu);
  EXPECT_LE(loss_gpu, 4.0 * loss_cpu);
}

TEST(CudaAgreement, DsmTrainingFollowsTheCpuTrajectory) {
  SKIP_WITHOUT_DEVICE();
  CompareTrajectories(LossKind::kDsm, 200);
}

TEST(CudaAgreement, SlicedTrainingFollowsTheCpuTrajectory) {
  SKIP_WITHOUT_DEVICE();
  CompareTrajectories(LossKind::kSsmVr, 100);
}

// ---- 4. The learned score in the sampler ---------------------------------------------------------

TEST(CudaAgreement, SamplerScoreEqualsMlpScoreWithinTheBound) {
  SKIP_WITHOUT_DEVICE();
  struct Case {
    std::shared_ptr<const ScalarAffineSde> sde;
    Parameterization parameterization;
  };
  const std::vector<Case> cases = {{std::make_shared<VpSde>(3), Parameterization::kNoise},
                                   {std::make_shared<VeSde>(3), Parameterization::kDenoiser},
                                   {std::make_shared<VpSde>(3), Parameterization::kScore}};
  for (const Case& c : cases) {
    MlpConfig config;
    config.dim = 3;
    config.width = 96;
    config.depth = 3;
    config.embed_dim = 16;
    config.parameterization = c.parameterization;
    const auto net = std::make_shared<MlpNetwork<float>>(config, 9);
    const MlpScore cpu(net, c.sde);
    CudaSampler gpu(*net, c.sde);
    const FloatBound bound(*net);
    Matrix x(3, 150);
    NoiseStream(4, Stream::kUser).FillNormal(0, 0, 0, x);
    for (double t : {1e-3, 0.3, 1.0}) {
      const ScoreCoefficients coef = ComputeScoreCoefficients(*c.sde, config, t);
      Matrix s_cpu(3, 150);
      cpu.Evaluate(x, RowVector::Constant(150, t), s_cpu);
      const Matrix s_gpu = gpu.EvaluateScore(x, t);
      const MatrixF u = (coef.c_in * x).cast<float>();
      const RowF tau = RowF::Constant(150, static_cast<float>(coef.tau));
      const FloatBound::Result r = bound.Compute(u, tau, u, u, u);
      // Both evaluate F within the bound of the exact F; s = a x + b F adds a few double roundings.
      const Matrix allowed =
          2.0 * std::abs(coef.b) * r.output_bound +
          1e-14 * (s_cpu.cwiseAbs() + std::abs(coef.a) * x.cwiseAbs());
      EXPECT_LE(WorstRatio(s_gpu, s_cpu, allowed), 1.0) << "t = " << t;
    }
  }
}

}  // namespace
}  // namespace scoresde
