#include "scoresde/solvers/linear_measurement.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include "scoresde/sde/check.hpp"

namespace scoresde {

bool LinearMeasurement::noiseless() const {
  return noise_cov.size() > 0 && (noise_cov.array() == 0.0).all();
}

void LinearMeasurement::Validate(std::string_view where, int dim) const {
  const std::string w(where);
  const int64_t m = A.rows();
  Require(m >= 1, w, "A.rows()", m, ">= 1 (at least one observation)");
  Require(A.cols() >= 1, w, "A.cols()", static_cast<int64_t>(A.cols()), ">= 1");
  if (dim >= 0) {
    Require(A.cols() == dim, w, "A.cols()", static_cast<int64_t>(A.cols()),
            "equal to the data dimension (" + std::to_string(dim) + ")");
  }
  CheckShape(w, "noise_cov", noise_cov, m, m);
  CheckShape(w, "y", y, m, 1);
  CheckFinite(w, "A", A);
  CheckFinite(w, "noise_cov", noise_cov);
  CheckFinite(w, "y", y);
  const double scale = std::max(1.0, noise_cov.cwiseAbs().maxCoeff());
  const double asymmetry = (noise_cov - noise_cov.transpose()).cwiseAbs().maxCoeff();
  Require(asymmetry <= 1e-12 * scale, w, "max |noise_cov - noise_cov^T|", asymmetry,
          "<= 1e-12 * max(1, max |noise_cov|) (symmetric)");
  const Eigen::SelfAdjointEigenSolver<Matrix> eigen(noise_cov, Eigen::EigenvaluesOnly);
  const double smallest = eigen.eigenvalues()(0);
  const double largest = eigen.eigenvalues()(m - 1);
  Require(smallest >= -1e-12 * std::max(1.0, largest), w, "smallest eigenvalue of noise_cov",
          smallest, ">= 0 (positive semidefinite)");
  if (smallest <= 1e-12 * std::max(1.0, largest)) {
    const Eigen::ColPivHouseholderQR<Matrix> qr(A);
    Require(qr.rank() == m, w, "rank(A)", static_cast<int64_t>(qr.rank()),
            "equal to A.rows() (" + std::to_string(m) +
                ") when noise_cov is singular (noiseless observations must not be redundant)");
  }
}

std::vector<int> ObservedIndices(const Vector& observed) {
  std::vector<int> indices;
  for (Eigen::Index i = 0; i < observed.size(); ++i) {
    if (!std::isnan(observed(i))) indices.push_back(static_cast<int>(i));
  }
  return indices;
}

LinearMeasurement LinearMeasurement::FromMasked(const Vector& observed, double noise_std) {
  constexpr const char* kWhere = "LinearMeasurement::FromMasked";
  Require(std::isfinite(noise_std) && noise_std >= 0.0, kWhere, "noise_std", noise_std,
          "finite and >= 0");
  Require(observed.size() >= 1, kWhere, "observed.size()", static_cast<int64_t>(observed.size()),
          ">= 1");
  for (Eigen::Index i = 0; i < observed.size(); ++i) {
    Require(!std::isinf(observed(i)), kWhere, "observed[" + std::to_string(i) + "]", observed(i),
            "finite, or NaN for an unknown coordinate");
  }
  const std::vector<int> known = ObservedIndices(observed);
  Require(!known.empty(), kWhere, "observed coordinates", 0,
          ">= 1 (every value is NaN: nothing is observed)");
  const int m = static_cast<int>(known.size());
  LinearMeasurement measurement;
  measurement.A = Matrix::Zero(m, observed.size());
  measurement.y.resize(m);
  for (int r = 0; r < m; ++r) {
    measurement.A(r, known[r]) = 1.0;
    measurement.y(r) = observed(known[r]);
  }
  measurement.noise_cov = (noise_std * noise_std) * Matrix::Identity(m, m);
  return measurement;
}

}  // namespace scoresde
