#include "scoresde/scoring/mlp_score.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/ve_sde.hpp"

namespace scoresde {

std::string_view ToString(Parameterization parameterization) {
  switch (parameterization) {
    case Parameterization::kScore:
      return "score";
    case Parameterization::kNoise:
      return "noise";
    case Parameterization::kDenoiser:
      return "denoiser";
  }
  return "unknown";
}

Parameterization ParseParameterization(std::string_view name) {
  if (name == "score") return Parameterization::kScore;
  if (name == "noise") return Parameterization::kNoise;
  if (name == "denoiser") return Parameterization::kDenoiser;
  Require(false, "MlpConfig", "parameterization", name, "score, noise or denoiser");
  return Parameterization::kScore;
}

void MlpConfig::Validate() const {
  constexpr const char* kWhere = "MlpConfig";
  Require(dim >= 1 && dim <= 65536, kWhere, "dim", dim, "in [1, 65536]");
  Require(width >= 1 && width <= 65536, kWhere, "width", width, "in [1, 65536]");
  Require(depth >= 1 && depth <= 64, kWhere, "depth", depth, "in [1, 64]");
  Require(embed_dim >= 2 && embed_dim <= 65536 && embed_dim % 2 == 0, kWhere, "embed_dim",
          embed_dim, "even and in [2, 65536]");
  Require(std::isfinite(fourier_scale) && fourier_scale > 0.0, kWhere, "fourier_scale",
          fourier_scale, "finite and > 0");
  Require(std::isfinite(data_std) && data_std > 0.0, kWhere, "data_std", data_std,
          "finite and > 0");
}

ScoreCoefficients ComputeScoreCoefficients(const ScalarAffineSde& sde, const MlpConfig& config,
                                           double t) {
  constexpr const char* kWhere = "MlpScore";
  Require(std::isfinite(t) && t >= 0.0 && t <= sde.t_final(), kWhere, "t", t, "in [0, T]");
  const double alpha = sde.MeanCoefficient(t);
  const double sigma = sde.MarginalStd(t);
  const double sd = config.data_std;
  const double total = std::sqrt(sigma * sigma + alpha * alpha * sd * sd);
  ScoreCoefficients c;
  c.c_in = 1.0 / total;
  if (sde.family() == SdeFamily::kVe) {
    c.tau = std::log(static_cast<const VeSde&>(sde).Sigma(t));
  } else {
    c.tau = t;
  }
  switch (config.parameterization) {
    case Parameterization::kScore:
      c.a = 0.0;
      c.b = 1.0;
      break;
    case Parameterization::kNoise:
      c.a = 0.0;
      c.b = -1.0 / sigma;
      break;
    case Parameterization::kDenoiser:
      c.a = -1.0 / (total * total);
      c.b = alpha * sd / (sigma * total);
      break;
  }
  Require(std::isfinite(c.a) && std::isfinite(c.b) && std::isfinite(c.c_in) &&
              std::isfinite(c.tau),
          kWhere, "t", t,
          "such that σ_t > 0 (the " + std::string(ToString(config.parameterization)) +
              " parameterization divides by σ_t)");
  return c;
}

// ---- MlpNetwork --------------------------------------------------------------------------------

namespace {

template <typename Scalar>
using RowMajorMap =
    Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
template <typename Scalar>
using ConstRowMajorMap =
    Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

}  // namespace

template <typename Scalar>
void MlpNetwork<Scalar>::BuildLayout() {
  config_.Validate();
  const int depth = config_.depth;
  int64_t offset = 0;
  layers_.clear();
  layout_.clear();
  for (int l = 0; l <= depth; ++l) {
    Layer layer;
    layer.in = l == 0 ? config_.input_dim() : config_.width;
    layer.out = l == depth ? config_.dim : config_.width;
    const std::string name =
        l == 0 ? "input" : (l == depth ? "output" : "hidden." + std::to_string(l));
    layer.weight = offset;
    layout_.push_back({name + ".weight", {layer.out, layer.in}, offset,
                       int64_t{layer.out} * layer.in});
    offset += int64_t{layer.out} * layer.in;
    layer.bias = offset;
    layout_.push_back({name + ".bias", {layer.out}, offset, layer.out});
    offset += layer.out;
    layers_.push_back(layer);
  }
}

template <typename Scalar>
MlpNetwork<Scalar>::MlpNetwork(const MlpConfig& config, uint64_t seed) : config_(config) {
  BuildLayout();
  const NoiseStream init(seed, Stream::kInit);
  parameters_.resize(layout_.back().offset + layout_.back().size);
  for (size_t k = 0; k < layout_.size(); ++k) {
    const Tensor& tensor = layout_[k];
    const int fan_in = layers_[k / 2].in;
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    Matrix u(1, tensor.size);
    init.FillUniform(k + 1, 0, 0, u);
    for (int64_t i = 0; i < tensor.size; ++i) {
      parameters_[tensor.offset + i] = static_cast<Scalar>(bound * (2.0 * u(0, i) - 1.0));
    }
  }
  Matrix w(1, config_.embed_dim / 2);
  init.FillNormal(0, 0, 0, w);
  fourier_.resize(w.cols());
  for (int64_t i = 0; i < w.cols(); ++i) {
    fourier_[i] = static_cast<Scalar>(config_.fourier_scale * w(0, i));
  }
}

template <typename Scalar>
MlpNetwork<Scalar>::MlpNetwork(const MlpConfig& config, VectorS parameters,
                               VectorS fourier_weights)
    : config_(config), parameters_(std::move(parameters)), fourier_(std::move(fourier_weights)) {
  BuildLayout();
  const int64_t expected = layout_.back().offset + layout_.back().size;
  Require(parameters_.size() == expected, "MlpNetwork", "parameters.size()",
          static_cast<int64_t>(parameters_.size()), std::to_string(expected) + " (the layout)");
  Require(fourier_.size() == config_.embed_dim / 2, "MlpNetwork", "fourier_weights.size()",
          static_cast<int64_t>(fourier_.size()), std::to_string(config_.embed_dim / 2));
  Require(parameters_.allFinite(), "MlpNetwork", "parameters", std::string("non-finite"),
          "finite");
  Require(fourier_.allFinite(), "MlpNetwork", "fourier_weights", std::string("non-finite"),
          "finite");
}

template <typename Scalar>
void MlpNetwork<Scalar>::Resize(int n, bool tangent, Workspace* ws) const {
  const int depth = config_.depth;
  ws->cols = n;
  ws->a.resize(depth + 1);
  ws->z.resize(depth);
  ws->sig.resize(depth);
  for (int l = 0; l <= depth; ++l) ws->a[l].resize(layers_[l].in, n);
  for (int l = 0; l < depth; ++l) {
    ws->z[l].resize(config_.width, n);
    ws->sig[l].resize(config_.width, n);
  }
  ws->output.resize(config_.dim, n);
  if (tangent) {
    ws->a_dot.resize(depth + 1);
    ws->z_dot.resize(depth);
    for (int l = 0; l <= depth; ++l) ws->a_dot[l].resize(layers_[l].in, n);
    for (int l = 0; l < depth; ++l) ws->z_dot[l].resize(config_.width, n);
    ws->output_dot.resize(config_.dim, n);
  }
}

template <typename Scalar>
void MlpNetwork<Scalar>::Forward(const MatrixS& u, const RowVectorS& tau, Workspace* ws) const {
  SCORESDE_DCHECK(u.rows() == config_.dim && tau.cols() == u.cols());
  const int n = static_cast<int>(u.cols());
  const int d = config_.dim;
  const int half = config_.embed_dim / 2;
  Resize(n, false, ws);
  MatrixS& a0 = ws->a[0];
  a0.topRows(d) = u;
  // e = [sin(2π w τ); cos(2π w τ)], computed in double so that float and double networks see the
  // same embedding up to one rounding.
  for (int j = 0; j < n; ++j) {
    for (int k = 0; k < half; ++k) {
      const double phase = 2.0 * std::numbers::pi * static_cast<double>(fourier_[k]) *
                           static_cast<double>(tau[j]);
      a0(d + k, j) = static_cast<Scalar>(std::sin(phase));
      a0(d + half + k, j) = static_cast<Scalar>(std::cos(phase));
    }
  }
  const Scalar* p = parameters_.data();
  const int depth = config_.depth;
  for (int l = 0; l < depth; ++l) {
    const Layer& layer = layers_[l];
    const ConstRowMajorMap<Scalar> w(p + layer.weight, layer.out, layer.in);
    const Eigen::Map<const VectorS> b(p + layer.bias, layer.out);
    MatrixS& z = ws->z[l];
    z.noalias() = w * ws->a[l];
    z.colwise() += b;
    MatrixS& sig = ws->sig[l];
    sig.array() = (Scalar(1) + (-z.array()).exp()).inverse();
    if (config_.residual && l >= 1) {
      ws->a[l + 1].array() = ws->a[l].array() + z.array() * sig.array();
    } else {
      ws->a[l + 1].array() = z.array() * sig.array();
    }
  }
  const Layer& out = layers_[depth];
  const ConstRowMajorMap<Scalar> w(p + out.weight, out.out, out.in);
  const Eigen::Map<const VectorS> b(p + out.bias, out.out);
  ws->output.noalias() = w * ws->a[depth];
  ws->output.colwise() += b;
}

template <typename Scalar>
void MlpNetwork<Scalar>::Tangent(const MatrixS& u_dot, Workspace* ws) const {
  const int n = ws->cols;
  SCORESDE_DCHECK(u_dot.rows() == config_.dim && u_dot.cols() == n);
  Resize(n, true, ws);
  ws->a_dot[0].topRows(config_.dim) = u_dot;
  ws->a_dot[0].bottomRows(config_.embed_dim).setZero();
  const Scalar* p = parameters_.data();
  const int depth = config_.depth;
  for (int l = 0; l < depth; ++l) {
    const Layer& layer = layers_[l];
    const ConstRowMajorMap<Scalar> w(p + layer.weight, layer.out, layer.in);
    MatrixS& z_dot = ws->z_dot[l];
    z_dot.noalias() = w * ws->a_dot[l];
    const auto z = ws->z[l].array();
    const auto s = ws->sig[l].array();
    // SiLU'(z) = s (1 + z (1 − s)).
    if (config_.residual && l >= 1) {
      ws->a_dot[l + 1].array() =
          ws->a_dot[l].array() + s * (Scalar(1) + z * (Scalar(1) - s)) * z_dot.array();
    } else {
      ws->a_dot[l + 1].array() = s * (Scalar(1) + z * (Scalar(1) - s)) * z_dot.array();
    }
  }
  const Layer& out = layers_[depth];
  const ConstRowMajorMap<Scalar> w(p + out.weight, out.out, out.in);
  ws->output_dot.noalias() = w * ws->a_dot[depth];
}

template <typename Scalar>
void MlpNetwork<Scalar>::Backward(const MatrixS& g, Workspace* ws, Scalar* grad) const {
  const int depth = config_.depth;
  ws->g_z.resize(config_.width, ws->cols);
  const Scalar* p = parameters_.data();
  {
    const Layer& out = layers_[depth];
    RowMajorMap<Scalar> gw(grad + out.weight, out.out, out.in);
    Eigen::Map<VectorS> gb(grad + out.bias, out.out);
    gw.noalias() += g * ws->a[depth].transpose();
    gb.noalias() += g.rowwise().sum();
    const ConstRowMajorMap<Scalar> w(p + out.weight, out.out, out.in);
    ws->g_a.noalias() = w.transpose() * g;
  }
  for (int l = depth - 1; l >= 0; --l) {
    const Layer& layer = layers_[l];
    const auto z = ws->z[l].array();
    const auto s = ws->sig[l].array();
    ws->g_z.array() = ws->g_a.array() * s * (Scalar(1) + z * (Scalar(1) - s));
    RowMajorMap<Scalar> gw(grad + layer.weight, layer.out, layer.in);
    Eigen::Map<VectorS> gb(grad + layer.bias, layer.out);
    gw.noalias() += ws->g_z * ws->a[l].transpose();
    gb.noalias() += ws->g_z.rowwise().sum();
    if (l == 0) break;
    const ConstRowMajorMap<Scalar> w(p + layer.weight, layer.out, layer.in);
    if (config_.residual && l >= 1) {
      ws->g_a.noalias() += w.transpose() * ws->g_z;
    } else {
      ws->g_a.noalias() = w.transpose() * ws->g_z;
    }
  }
}

template <typename Scalar>
void MlpNetwork<Scalar>::BackwardWithTangent(const MatrixS& g, const MatrixS& g_dot,
                                             Workspace* ws, Scalar* grad) const {
  const int depth = config_.depth;
  ws->g_z.resize(config_.width, ws->cols);
  ws->g_z_dot.resize(config_.width, ws->cols);
  const Scalar* p = parameters_.data();
  {
    const Layer& out = layers_[depth];
    RowMajorMap<Scalar> gw(grad + out.weight, out.out, out.in);
    Eigen::Map<VectorS> gb(grad + out.bias, out.out);
    gw.noalias() += g * ws->a[depth].transpose();
    gw.noalias() += g_dot * ws->a_dot[depth].transpose();
    gb.noalias() += g.rowwise().sum();
    const ConstRowMajorMap<Scalar> w(p + out.weight, out.out, out.in);
    ws->g_a.noalias() = w.transpose() * g;
    ws->g_a_dot.noalias() = w.transpose() * g_dot;
  }
  for (int l = depth - 1; l >= 0; --l) {
    const Layer& layer = layers_[l];
    const auto z = ws->z[l].array();
    const auto s = ws->sig[l].array();
    const auto z_dot = ws->z_dot[l].array();
    // a' = SiLU(z): ∂a'/∂z = s(1 + z(1 − s)); ȧ' = SiLU'(z) ż, so ∂ȧ'/∂z = SiLU''(z) ż with
    // SiLU''(z) = s(1 − s)(2 + z(1 − 2s)).
    ws->g_z_dot.array() = ws->g_a_dot.array() * s * (Scalar(1) + z * (Scalar(1) - s));
    ws->g_z.array() = ws->g_a.array() * s * (Scalar(1) + z * (Scalar(1) - s)) +
                      ws->g_a_dot.array() * s * (Scalar(1) - s) *
                          (Scalar(2) + z * (Scalar(1) - Scalar(2) * s)) * z_dot;
    RowMajorMap<Scalar> gw(grad + layer.weight, layer.out, layer.in);
    Eigen::Map<VectorS> gb(grad + layer.bias, layer.out);
    gw.noalias() += ws->g_z * ws->a[l].transpose();
    gw.noalias() += ws->g_z_dot * ws->a_dot[l].transpose();
    gb.noalias() += ws->g_z.rowwise().sum();
    if (l == 0) break;
    const ConstRowMajorMap<Scalar> w(p + layer.weight, layer.out, layer.in);
    if (config_.residual && l >= 1) {
      ws->g_a.noalias() += w.transpose() * ws->g_z;
      ws->g_a_dot.noalias() += w.transpose() * ws->g_z_dot;
    } else {
      ws->g_a.noalias() = w.transpose() * ws->g_z;
      ws->g_a_dot.noalias() = w.transpose() * ws->g_z_dot;
    }
  }
}

template class MlpNetwork<float>;
template class MlpNetwork<double>;

// ---- MlpScore -----------------------------------------------------------------------------------

namespace {

constexpr int kEvaluateBlock = 64;

// Columns a block of n samples is padded to: a multiple of 8 and at least 16, so that every GEMM
// takes Eigen's blocked path (never GEMV or the coefficient-based product for tiny sizes) and every
// element-wise pass runs on whole SIMD packets; a column's result then does not depend on its
// neighbours.
int PaddedColumns(int n) { return std::max(16, (n + 7) / 8 * 8); }

}  // namespace

MlpScore::MlpScore(std::shared_ptr<const MlpNetwork<float>> network,
                   std::shared_ptr<const ScalarAffineSde> sde)
    : float_network_(std::move(network)), sde_(std::move(sde)) {
  Require(float_network_ != nullptr, "MlpScore", "network", std::string("null"), "non-null");
  Require(sde_ != nullptr, "MlpScore", "sde", std::string("null"), "non-null");
  config_ = float_network_->config();
  Require(sde_->dim() == config_.dim, "MlpScore", "sde.dim()", sde_->dim(),
          "the network's dim " + std::to_string(config_.dim));
}

MlpScore::MlpScore(std::shared_ptr<const MlpNetwork<double>> network,
                   std::shared_ptr<const ScalarAffineSde> sde)
    : double_network_(std::move(network)), sde_(std::move(sde)) {
  Require(double_network_ != nullptr, "MlpScore", "network", std::string("null"), "non-null");
  Require(sde_ != nullptr, "MlpScore", "sde", std::string("null"), "non-null");
  config_ = double_network_->config();
  Require(sde_->dim() == config_.dim, "MlpScore", "sde.dim()", sde_->dim(),
          "the network's dim " + std::to_string(config_.dim));
}

template <typename Scalar>
void MlpScore::Run(const MlpNetwork<Scalar>& network, ConstBatchRef x, ConstRowVectorRef t,
                   const ConstBatchRef* v, BatchRef* s, BatchRef* jv, RowVectorRef* div) const {
  using MatrixS = typename MlpNetwork<Scalar>::MatrixS;
  using RowVectorS = typename MlpNetwork<Scalar>::RowVectorS;
  const int d = config_.dim;
  const int64_t batch = x.cols();
  typename MlpNetwork<Scalar>::Workspace ws;
  std::vector<ScoreCoefficients> coef;
  for (int64_t first = 0; first < batch; first += kEvaluateBlock) {
    const int n = static_cast<int>(std::min<int64_t>(kEvaluateBlock, batch - first));
    const int cols = PaddedColumns(n);
    coef.resize(n);
    for (int j = 0; j < n; ++j) coef[j] = ComputeScoreCoefficients(*sde_, config_, t(first + j));
    MatrixS u = MatrixS::Zero(d, cols);
    RowVectorS tau = RowVectorS::Zero(cols);
    for (int j = 0; j < n; ++j) {
      u.col(j) = (coef[j].c_in * x.col(first + j)).template cast<Scalar>();
      tau(j) = static_cast<Scalar>(coef[j].tau);
    }
    network.Forward(u, tau, &ws);
    if (s != nullptr) {
      for (int j = 0; j < n; ++j) {
        s->col(first + j) = coef[j].a * x.col(first + j) +
                            coef[j].b * ws.output.col(j).template cast<double>();
      }
    }
    if (v != nullptr) {
      MatrixS u_dot = MatrixS::Zero(d, cols);
      for (int j = 0; j < n; ++j) {
        u_dot.col(j) = (coef[j].c_in * v->col(first + j)).template cast<Scalar>();
      }
      network.Tangent(u_dot, &ws);
      for (int j = 0; j < n; ++j) {
        jv->col(first + j) = coef[j].a * v->col(first + j) +
                             coef[j].b * ws.output_dot.col(j).template cast<double>();
      }
    }
    if (div != nullptr) {
      // ∇·s = d a + b Σ_i [J_F (c_in e_i)]_i: one tangent pass per coordinate.
      Eigen::RowVectorXd trace = Eigen::RowVectorXd::Zero(n);
      MatrixS u_dot = MatrixS::Zero(d, cols);
      for (int i = 0; i < d; ++i) {
        if (i > 0) u_dot.row(i - 1).setZero();
        for (int j = 0; j < n; ++j) u_dot(i, j) = static_cast<Scalar>(coef[j].c_in);
        network.Tangent(u_dot, &ws);
        for (int j = 0; j < n; ++j) trace(j) += static_cast<double>(ws.output_dot(i, j));
      }
      for (int j = 0; j < n; ++j) (*div)(first + j) = d * coef[j].a + coef[j].b * trace(j);
    }
  }
}

void MlpScore::Dispatch(ConstBatchRef x, ConstRowVectorRef t, const ConstBatchRef* v, BatchRef* s,
                        BatchRef* jv, RowVectorRef* div) const {
  constexpr const char* kWhere = "MlpScore";
  CheckShape(kWhere, "x", x, config_.dim, -1);
  CheckShape(kWhere, "t", t, 1, x.cols());
  if (s != nullptr) CheckShape(kWhere, "s", *s, config_.dim, x.cols());
  if (v != nullptr) CheckShape(kWhere, "v", *v, config_.dim, x.cols());
  if (jv != nullptr) CheckShape(kWhere, "jv", *jv, config_.dim, x.cols());
  if (div != nullptr) CheckShape(kWhere, "div", *div, 1, x.cols());
  CheckFinite(kWhere, "x", x);
  if (v != nullptr) CheckFinite(kWhere, "v", *v);
  if (float_network_) {
    Run(*float_network_, x, t, v, s, jv, div);
  } else {
    Run(*double_network_, x, t, v, s, jv, div);
  }
}

void MlpScore::Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const {
  Dispatch(x, t, nullptr, &s, nullptr, nullptr);
}

void MlpScore::Divergence(ConstBatchRef x, ConstRowVectorRef t, RowVectorRef div) const {
  Dispatch(x, t, nullptr, nullptr, nullptr, &div);
}

void MlpScore::EvaluateWithJvp(ConstBatchRef x, ConstRowVectorRef t, ConstBatchRef v, BatchRef s,
                               BatchRef jv) const {
  Dispatch(x, t, &v, &s, &jv, nullptr);
}

}  // namespace scoresde
