#include "scoresde/scoring/losses.hpp"

#include <cmath>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {

std::string_view ToString(LossKind kind) {
  switch (kind) {
    case LossKind::kDsm:
      return "dsm";
    case LossKind::kSsm:
      return "ssm";
    case LossKind::kSsmVr:
      return "ssm-vr";
    case LossKind::kEsm:
      return "esm";
    case LossKind::kDdpm:
      return "ddpm";
    case LossKind::kNcsn:
      return "ncsn";
  }
  return "unknown";
}

std::string_view ToString(Weighting weighting) {
  return weighting == Weighting::kSigmaSquared ? "sigma2" : "g2";
}

std::string_view ToString(ProjectionKind projection) {
  return projection == ProjectionKind::kRademacher ? "rademacher" : "gaussian";
}

LossKind ParseLossKind(std::string_view name) {
  for (LossKind kind : {LossKind::kDsm, LossKind::kSsm, LossKind::kSsmVr, LossKind::kEsm,
                        LossKind::kDdpm, LossKind::kNcsn}) {
    if (name == ToString(kind)) return kind;
  }
  Require(false, "LossOptions", "kind", name, "dsm, ssm, ssm-vr, esm, ddpm or ncsn");
  return LossKind::kDsm;
}

Weighting ParseWeighting(std::string_view name) {
  if (name == "sigma2") return Weighting::kSigmaSquared;
  if (name == "g2") return Weighting::kLikelihood;
  Require(false, "LossOptions", "weighting", name, "sigma2 or g2");
  return Weighting::kSigmaSquared;
}

ProjectionKind ParseProjectionKind(std::string_view name) {
  if (name == "rademacher") return ProjectionKind::kRademacher;
  if (name == "gaussian") return ProjectionKind::kGaussian;
  Require(false, "LossOptions", "projection", name, "rademacher or gaussian");
  return ProjectionKind::kRademacher;
}

namespace {

bool IsContinuous(LossKind kind) { return kind != LossKind::kDdpm && kind != LossKind::kNcsn; }

}  // namespace

void LossOptions::Validate() const {
  constexpr const char* kWhere = "LossOptions";
  Require(std::isfinite(eps) && eps > 0.0 && eps < 1.0, kWhere, "eps", eps, "in (0, 1)");
  Require(num_scales >= 2 && num_scales <= 10000000, kWhere, "num_scales", num_scales,
          "in [2, 1e7]");
  if (importance_sampling) {
    Require(weighting == Weighting::kLikelihood, kWhere, "importance_sampling",
            std::string("true"), "used with weighting g2 (t ∝ g²/σ² is its proposal)");
    Require(IsContinuous(kind), kWhere, "importance_sampling", std::string("true"),
            "used with a continuous-time loss (dsm, ssm, ssm-vr, esm)");
  }
}

// ---- TimeSampler ---------------------------------------------------------------------------------

TimeSampler::TimeSampler(const ScalarAffineSde& sde, double eps, Weighting weighting,
                         bool importance)
    : sde_(sde), eps_(eps), weighting_(weighting), importance_(importance) {
  Require(std::isfinite(eps) && eps > 0.0 && eps < sde.t_final(), "TimeSampler", "eps", eps,
          "in (0, T)");
  phi_eps_ = Potential(eps_);
  phi_t_ = Potential(sde.t_final());
}

double TimeSampler::Potential(double t) const {
  switch (sde_.family()) {
    case SdeFamily::kVp: {
      const double b = static_cast<const VpSde&>(sde_).options().Integral(t);
      return b + std::log(-std::expm1(-b));  // log(e^B − 1)
    }
    case SdeFamily::kSubVp: {
      const double b = static_cast<const SubVpSde&>(sde_).options().Integral(t);
      return b + 2.0 * std::log(-std::expm1(-b));  // 2 log(e^B − 1) − B
    }
    case SdeFamily::kVe: {
      const auto& ve = static_cast<const VeSde&>(sde_);
      const double x =
          2.0 * (t / ve.options().t_final) * std::log(ve.options().sigma_max / ve.options().sigma_min);
      return ve.options().kernel == VeKernel::kExact ? std::log(std::expm1(x)) : x;
    }
  }
  return 0.0;
}

std::pair<double, double> TimeSampler::Sample(double u) const {
  const double t_final = sde_.t_final();
  if (!importance_) {
    const double t = eps_ + (t_final - eps_) * u;
    double factor = 1.0;
    if (weighting_ == Weighting::kLikelihood) {
      const double g = sde_.ScalarDiffusion(t);
      const double sigma = sde_.MarginalStd(t);
      factor = g * g / (sigma * sigma);
    }
    return {t, factor};
  }
  // Invert Φ by bisection: Φ is increasing (g²/σ² > 0); 200 halvings reach adjacent doubles.
  const double target = phi_eps_ + u * (phi_t_ - phi_eps_);
  double lo = eps_, hi = t_final;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (Potential(mid) < target ? lo : hi) = mid;
  }
  return {0.5 * (lo + hi), (phi_t_ - phi_eps_) / (t_final - eps_)};
}

// ---- ScoreMatchingLoss -------------------------------------------------------------------------

ScoreMatchingLoss::ScoreMatchingLoss(std::shared_ptr<const ScalarAffineSde> sde,
                                     const MlpConfig& config, LossOptions options)
    : sde_(std::move(sde)), config_(config), options_(options) {
  constexpr const char* kWhere = "ScoreMatchingLoss";
  Require(sde_ != nullptr, kWhere, "sde", std::string("null"), "non-null");
  options_.Validate();
  config_.Validate();
  Require(sde_->dim() == config_.dim, kWhere, "sde.dim()", sde_->dim(),
          "the model's dim " + std::to_string(config_.dim));
  if (options_.kind == LossKind::kDdpm) {
    Require(sde_->family() == SdeFamily::kVp, kWhere, "kind", std::string("ddpm"),
            "used with the VP SDE");
    const auto& beta = static_cast<const VpSde&>(*sde_).options();
    const int n = options_.num_scales;
    alpha_bar_.resize(n);
    double product = 1.0;
    for (int i = 0; i < n; ++i) {
      const double b = beta.beta_min / n + i * (beta.beta_max - beta.beta_min) / (double(n) * (n - 1));
      product *= 1.0 - b;
      alpha_bar_[i] = product;
    }
  } else if (options_.kind == LossKind::kNcsn) {
    const bool ok = sde_->family() == SdeFamily::kVe &&
                    static_cast<const VeSde&>(*sde_).options().kernel == VeKernel::kReference;
    Require(ok, kWhere, "kind", std::string("ncsn"),
            "used with the VE SDE and the reference kernel (kernel=reference)");
  } else {
    sampler_ = std::make_unique<TimeSampler>(*sde_, options_.eps, options_.weighting,
                                             options_.importance_sampling);
  }
}

ScoreMatchingLoss::Draw ScoreMatchingLoss::DrawTime(double u) const {
  const double t_final = sde_->t_final();
  const int n = options_.num_scales;
  Draw draw;
  if (options_.kind == LossKind::kDdpm) {
    const int i = std::min(n - 1, static_cast<int>(u * n));  // index i + 1 in 1..N
    draw.t = t_final * (i + 1) / n;
    draw.alpha = std::sqrt(alpha_bar_[i]);
    draw.sigma = std::sqrt(1.0 - alpha_bar_[i]);
    draw.weight = draw.sigma * draw.sigma;
    return draw;
  }
  if (options_.kind == LossKind::kNcsn) {
    const int i = std::min(n - 1, static_cast<int>(u * n));
    draw.t = t_final * i / (n - 1);
    draw.alpha = 1.0;
    draw.sigma = sde_->MarginalStd(draw.t);
    draw.weight = draw.sigma * draw.sigma;
    return draw;
  }
  const auto [t, factor] = sampler_->Sample(u);
  draw.t = t;
  draw.alpha = sde_->MeanCoefficient(t);
  draw.sigma = sde_->MarginalStd(t);
  draw.weight = draw.sigma * draw.sigma * factor;
  return draw;
}

template <typename Scalar>
double ScoreMatchingLoss::Block(const MlpNetwork<Scalar>& network, const Matrix& x0,
                                int64_t first, int64_t batch_size, uint64_t step,
                                const NoiseStream& noise,
                                typename MlpNetwork<Scalar>::Workspace* ws, Scalar* grad) const {
  using MatrixS = typename MlpNetwork<Scalar>::MatrixS;
  using RowVectorS = typename MlpNetwork<Scalar>::RowVectorS;
  const int d = config_.dim;
  const int n = static_cast<int>(x0.cols());
  SCORESDE_DCHECK(x0.rows() == d);
  Matrix u(1, n), z(d, n);
  noise.FillUniform(step, 0, first, u);
  noise.FillNormal(step, 1, first, z);
  std::vector<Draw> draws(n);
  std::vector<ScoreCoefficients> coef(n);
  Matrix x(d, n);
  MatrixS input(d, n);
  RowVectorS tau(n);
  for (int j = 0; j < n; ++j) {
    draws[j] = DrawTime(u(0, j));
    coef[j] = ComputeScoreCoefficients(*sde_, config_, draws[j].t);
    x.col(j) = draws[j].alpha * x0.col(j) + draws[j].sigma * z.col(j);
    input.col(j) = (coef[j].c_in * x.col(j)).template cast<Scalar>();
    tau(j) = static_cast<Scalar>(coef[j].tau);
  }
  network.Forward(input, tau, ws);
  Matrix s(d, n);
  for (int j = 0; j < n; ++j) {
    s.col(j) = coef[j].a * x.col(j) + coef[j].b * ws->output.col(j).template cast<double>();
  }
  const double inv_batch = 1.0 / static_cast<double>(batch_size);
  double total = 0.0;
  const LossKind kind = options_.kind;
  if (kind == LossKind::kDsm || kind == LossKind::kDdpm || kind == LossKind::kNcsn) {
    // ℓ = (W/σ²) ‖σ s + z‖²; ∂ℓ/∂s = 2 (W/σ) (σ s + z).
    MatrixS g(d, n);
    for (int j = 0; j < n; ++j) {
      const Draw& dr = draws[j];
      const Vector r = dr.sigma * s.col(j) + z.col(j);
      total += dr.weight / (dr.sigma * dr.sigma) * r.squaredNorm();
      g.col(j) = (2.0 * dr.weight / dr.sigma * inv_batch * coef[j].b * r).template cast<Scalar>();
    }
    if (grad != nullptr) network.Backward(g, ws, grad);
    return total;
  }
  if (kind == LossKind::kSsm || kind == LossKind::kSsmVr) {
    Matrix v(d, n);
    if (options_.projection == ProjectionKind::kRademacher) {
      noise.FillRademacher(step, 2, first, v);
    } else {
      noise.FillNormal(step, 2, first, v);
    }
    MatrixS input_dot(d, n);
    for (int j = 0; j < n; ++j) input_dot.col(j) = (coef[j].c_in * v.col(j)).template cast<Scalar>();
    network.Tangent(input_dot, ws);
    MatrixS g(d, n), g_dot(d, n);
    for (int j = 0; j < n; ++j) {
      const double w = draws[j].weight;
      const Vector jv = coef[j].a * v.col(j) + coef[j].b * ws->output_dot.col(j).template cast<double>();
      const double vs = v.col(j).dot(s.col(j));
      const double second = kind == LossKind::kSsm ? 0.5 * vs * vs : 0.5 * s.col(j).squaredNorm();
      total += w * (v.col(j).dot(jv) + second);
      const Vector g_s = kind == LossKind::kSsm ? Vector(vs * v.col(j)) : Vector(s.col(j));
      g.col(j) = (w * inv_batch * coef[j].b * g_s).template cast<Scalar>();
      g_dot.col(j) = (w * inv_batch * coef[j].b * v.col(j)).template cast<Scalar>();
    }
    if (grad != nullptr) network.BackwardWithTangent(g, g_dot, ws, grad);
    return total;
  }
  // kEsm: tr(∂s/∂x) = d a + b Σ_i [J_F (c_in e_i)]_i, one tangent pass per coordinate; the primal
  // adjoint (½‖s‖²) rides along with the first pass.
  Vector trace = Vector::Zero(n);
  MatrixS g(d, n), g_dot(d, n), input_dot = MatrixS::Zero(d, n);
  for (int i = 0; i < d; ++i) {
    if (i > 0) input_dot.row(i - 1).setZero();
    for (int j = 0; j < n; ++j) input_dot(i, j) = static_cast<Scalar>(coef[j].c_in);
    network.Tangent(input_dot, ws);
    for (int j = 0; j < n; ++j) trace(j) += static_cast<double>(ws->output_dot(i, j));
    if (grad != nullptr) {
      g_dot.setZero();
      for (int j = 0; j < n; ++j) {
        const double w = draws[j].weight;
        g_dot(i, j) = static_cast<Scalar>(w * inv_batch * coef[j].b);
        if (i == 0) {
          g.col(j) = (w * inv_batch * coef[j].b * s.col(j)).template cast<Scalar>();
        } else {
          g.col(j).setZero();
        }
      }
      network.BackwardWithTangent(g, g_dot, ws, grad);
    }
  }
  for (int j = 0; j < n; ++j) {
    total += draws[j].weight *
             (d * coef[j].a + coef[j].b * trace(j) + 0.5 * s.col(j).squaredNorm());
  }
  return total;
}

template double ScoreMatchingLoss::Block<float>(const MlpNetwork<float>&, const Matrix&, int64_t,
                                                int64_t, uint64_t, const NoiseStream&,
                                                MlpNetwork<float>::Workspace*, float*) const;
template double ScoreMatchingLoss::Block<double>(const MlpNetwork<double>&, const Matrix&,
                                                 int64_t, int64_t, uint64_t, const NoiseStream&,
                                                 MlpNetwork<double>::Workspace*, double*) const;

}  // namespace scoresde
