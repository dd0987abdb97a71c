#include "scoresde/sde/linear_sde.hpp"

#include <cmath>
#include <string>

#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {

int ProbeNoiseDim(const LinearSde::Options& options) {
  constexpr const char* kWhere = "LinearSde";
  const auto d = options.drift_matrix.rows();
  Require(d >= 1, kWhere, "drift_matrix.rows()", static_cast<int64_t>(d), ">= 1");
  CheckShape(kWhere, "drift_matrix", options.drift_matrix, d, d);
  CheckFinite(kWhere, "drift_matrix", options.drift_matrix);
  if (options.drift_offset.size() != 0) {
    CheckShape(kWhere, "drift_offset", options.drift_offset, d, 1);
    CheckFinite(kWhere, "drift_offset", options.drift_offset);
  }
  Require(std::isfinite(options.t_final) && options.t_final > 0.0, kWhere, "t_final",
          options.t_final, "finite and > 0");
  Require(static_cast<bool>(options.diffusion), kWhere, "diffusion", std::string_view("empty"),
          "a callable t -> G(t)");
  const Matrix g0 = options.diffusion(0.0);
  const Matrix g1 = options.diffusion(options.t_final);
  Require(g0.cols() >= 1, kWhere, "diffusion(0).cols()", static_cast<int64_t>(g0.cols()), ">= 1");
  CheckShape(kWhere, "diffusion(0)", g0, d, -1);
  CheckShape(kWhere, "diffusion(t_final)", g1, d, g0.cols());
  CheckFinite(kWhere, "diffusion(0)", g0);
  CheckFinite(kWhere, "diffusion(t_final)", g1);
  return static_cast<int>(g0.cols());
}

}  // namespace

LinearSde::LinearSde(Options options)
    : options_(std::move(options)), noise_dim_(ProbeNoiseDim(options_)) {
  if (options_.drift_offset.size() == 0) options_.drift_offset = Vector::Zero(dim());
}

Matrix LinearSde::DiffusionAt(double t) const {
  Matrix g = options_.diffusion(t);
  CheckShape("LinearSde::DiffusionAt", "diffusion(t)", g, dim(), noise_dim_);
  return g;
}

// Products are taken one column at a time: Eigen's matrix-matrix kernels round a column
// differently depending on how many columns share the call, and a sample's result must not depend
// on its batch.
void LinearSde::Drift(ConstBatchRef x, double, BatchRef f) const {
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    f.col(j).noalias() = options_.drift_matrix * x.col(j);
  }
  f.colwise() += options_.drift_offset;
}

void LinearSde::DiffusionMatrix(ConstVectorRef, double t, MatrixRef g) const { g = DiffusionAt(t); }

void LinearSde::DiffusionTimes(ConstBatchRef, double t, ConstBatchRef v, BatchRef out) const {
  const Matrix g = DiffusionAt(t);
  for (Eigen::Index j = 0; j < v.cols(); ++j) out.col(j).noalias() = g * v.col(j);
}

void LinearSde::DiffusionSquaredTimes(ConstBatchRef, double t, ConstBatchRef v,
                                      BatchRef out) const {
  const Matrix g = DiffusionAt(t);
  const Matrix ggt = g * g.transpose();
  for (Eigen::Index j = 0; j < v.cols(); ++j) out.col(j).noalias() = ggt * v.col(j);
}

void LinearSde::DivergenceOfGGt(ConstBatchRef, double, BatchRef div) const { div.setZero(); }

void LinearSde::DiffusionJacobian(ConstVectorRef, double, std::vector<Matrix>* dg) const {
  dg->assign(dim(), Matrix::Zero(dim(), noise_dim_));
}

}  // namespace scoresde
