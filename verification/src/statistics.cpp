#include "scoresde/verification/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {
namespace {

void CheckSamples(const char* where, const char* name, ConstBatchRef x) {
  Require(x.rows() >= 1, where, std::string(name) + ".rows()", static_cast<int64_t>(x.rows()),
          ">= 1");
  Require(x.cols() >= 2, where, std::string(name) + ".cols()", static_cast<int64_t>(x.cols()),
          ">= 2 (samples)");
  CheckFinite(where, name, x);
}

void CheckPair(const char* where, ConstBatchRef a, ConstBatchRef b) {
  CheckSamples(where, "a", a);
  CheckSamples(where, "b", b);
  Require(a.rows() == b.rows(), where, "b.rows()", static_cast<int64_t>(b.rows()),
          "equal to a.rows() = " + std::to_string(a.rows()));
}

// Square root of a symmetric positive semidefinite matrix through its eigendecomposition.
Matrix SymmetricSqrt(const char* where, const char* name, const Matrix& m) {
  Eigen::SelfAdjointEigenSolver<Matrix> eig(m);
  Require(eig.info() == Eigen::Success, where, std::string("eigendecomposition of ") + name,
          std::string("failed"), "computable");
  Vector lambda = eig.eigenvalues();  // ascending
  const double largest = std::max(0.0, lambda(lambda.size() - 1));
  Require(lambda(0) >= -1e-10 * largest, where, std::string("smallest eigenvalue of ") + name,
          lambda(0), ">= -1e-10 * largest eigenvalue (positive semidefinite)");
  // Clipping: the remaining negatives are rounding noise of a semidefinite matrix.
  lambda = lambda.cwiseMax(0.0).cwiseSqrt();
  return eig.eigenvectors() * lambda.asDiagonal() * eig.eigenvectors().transpose();
}

// Sum of the square roots of the (clipped) eigenvalues of a symmetric PSD matrix = tr(M^{1/2}).
double TraceSqrt(const char* where, const char* name, const Matrix& m) {
  Eigen::SelfAdjointEigenSolver<Matrix> eig(m, Eigen::EigenvaluesOnly);
  Require(eig.info() == Eigen::Success, where, std::string("eigendecomposition of ") + name,
          std::string("failed"), "computable");
  const Vector& lambda = eig.eigenvalues();  // ascending
  const double largest = std::max(0.0, lambda(lambda.size() - 1));
  Require(lambda(0) >= -1e-10 * largest, where, std::string("smallest eigenvalue of ") + name,
          lambda(0), ">= -1e-10 * largest eigenvalue (positive semidefinite)");
  return lambda.cwiseMax(0.0).cwiseSqrt().sum();
}

// Exact W_2² between the empirical laws of sorted samples x (n) and y (m): both quantile functions
// are steps, constant on [i/n, (i+1)/n) and [j/m, (j+1)/m); walk the merged breakpoints.
double SortedW2Squared(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  const size_t m = y.size();
  if (n == m) {
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += (x[i] - y[i]) * (x[i] - y[i]);
    return sum / static_cast<double>(n);
  }
  // Breakpoints (i+1)/n and (j+1)/m compared exactly in integers: (i+1)·m vs (j+1)·n.
  const double total = static_cast<double>(n) * static_cast<double>(m);
  double sum = 0.0;
  size_t i = 0;
  size_t j = 0;
  uint64_t position = 0;  // current u times n·m
  while (i < n && j < m) {
    const uint64_t next_x = static_cast<uint64_t>(i + 1) * m;
    const uint64_t next_y = static_cast<uint64_t>(j + 1) * n;
    const uint64_t next = std::min(next_x, next_y);
    const double diff = x[i] - y[j];
    sum += diff * diff * static_cast<double>(next - position);
    position = next;
    if (next_x == next) ++i;
    if (next_y == next) ++j;
  }
  return sum / total;
}

}  // namespace

MomentEstimate EstimateMoments(ConstBatchRef samples) {
  constexpr const char* where = "EstimateMoments";
  CheckSamples(where, "samples", samples);
  const Eigen::Index n = samples.cols();
  const double dn = static_cast<double>(n);
  MomentEstimate result;
  result.count = n;
  result.mean = samples.rowwise().sum() / dn;
  const Matrix centered = samples.colwise() - result.mean;
  // Lower triangles by rank updates, mirrored: exactly symmetric results.
  auto gram = [d = samples.rows(), dn](const Matrix& x) {
    Matrix g = Matrix::Zero(d, d);
    g.selfadjointView<Eigen::Lower>().rankUpdate(x, 1.0 / dn);
    return Matrix(g.selfadjointView<Eigen::Lower>());
  };
  const Matrix m2 = gram(centered);
  result.cov = m2 * (dn / (dn - 1.0));
  result.mean_stderr = (result.cov.diagonal() / dn).cwiseSqrt();
  const Matrix squared = centered.cwiseAbs2();
  const Matrix m4 = gram(squared);
  // m4 − m2² ≥ 0 by Cauchy–Schwarz; the max guards rounding.
  result.cov_stderr = ((m4 - m2.cwiseAbs2()) / dn).cwiseMax(0.0).cwiseSqrt();
  return result;
}

double FrechetDistance(const Vector& m1, const Matrix& c1, const Vector& m2, const Matrix& c2) {
  constexpr const char* where = "FrechetDistance";
  const Eigen::Index d = m1.size();
  Require(d >= 1, where, "m1.size()", static_cast<int64_t>(d), ">= 1");
  CheckShape(where, "c1", c1, d, d);
  CheckShape(where, "m2", m2, d, 1);
  CheckShape(where, "c2", c2, d, d);
  CheckFinite(where, "m1", m1);
  CheckFinite(where, "c1", c1);
  CheckFinite(where, "m2", m2);
  CheckFinite(where, "c2", c2);
  auto check_symmetric = [&](const char* name, const Matrix& c) {
    const double asymmetry = (c - c.transpose()).cwiseAbs().maxCoeff();
    Require(asymmetry <= 1e-8 * c.cwiseAbs().maxCoeff(), where,
            std::string("max|") + name + " - transpose|", asymmetry, "<= 1e-8 * max|C|");
  };
  check_symmetric("c1", c1);
  check_symmetric("c2", c2);
  const Matrix s1 = SymmetricSqrt(where, "c1", 0.5 * (c1 + c1.transpose()));
  Matrix inner = s1 * (0.5 * (c2 + c2.transpose())) * s1;
  inner = 0.5 * (inner + inner.transpose()).eval();
  // c2 is checked through the product: C1^{1/2} C2 C1^{1/2} is PSD iff C2 is (for C1 ≻ 0).
  const double cross = TraceSqrt(where, "c1^(1/2) c2 c1^(1/2)", inner);
  const double value = (m1 - m2).squaredNorm() + c1.trace() + c2.trace() - 2.0 * cross;
  return std::max(0.0, value);
}

double SlicedWasserstein(ConstBatchRef a, ConstBatchRef b, int num_projections, uint64_t seed) {
  constexpr const char* where = "SlicedWasserstein";
  CheckPair(where, a, b);
  Require(num_projections >= 1, where, "num_projections", num_projections, ">= 1");
  const Eigen::Index d = a.rows();
  Batch directions(d, num_projections);
  NoiseStream(seed, Stream::kData).FillNormal(0, 0, 0, directions);
  std::vector<double> pa(a.cols());
  std::vector<double> pb(b.cols());
  double sum = 0.0;
  for (int p = 0; p < num_projections; ++p) {
    Vector theta = directions.col(p);
    const double norm = theta.norm();
    // A zero vector from d independent normals has probability 0; fall back to e_0.
    if (norm > 0.0) {
      theta /= norm;
    } else {
      theta = Vector::Unit(d, 0);
    }
    Eigen::Map<RowVector>(pa.data(), a.cols()) = theta.transpose() * a;
    Eigen::Map<RowVector>(pb.data(), b.cols()) = theta.transpose() * b;
    std::sort(pa.begin(), pa.end());
    std::sort(pb.begin(), pb.end());
    sum += SortedW2Squared(pa, pb);
  }
  return std::sqrt(sum / num_projections);
}

namespace {

// Σ k(x_i, y_j) over all pairs i, j; with same = true (y is x) over pairs i ≠ j only, using the
// symmetry to visit each unordered pair once. Column blocks bound the Gram scratch.
double KernelSum(ConstBatchRef x, ConstBatchRef y, double inv_two_h2, bool same) {
  constexpr Eigen::Index kBlock = 256;
  const RowVector x_norm = x.colwise().squaredNorm();
  const RowVector y_norm = y.colwise().squaredNorm();
  double total = 0.0;
  Matrix gram;
  for (Eigen::Index i0 = 0; i0 < x.cols(); i0 += kBlock) {
    const Eigen::Index ni = std::min(kBlock, x.cols() - i0);
    for (Eigen::Index j0 = same ? i0 : 0; j0 < y.cols(); j0 += kBlock) {
      const Eigen::Index nj = std::min(kBlock, y.cols() - j0);
      gram.noalias() = x.middleCols(i0, ni).transpose() * y.middleCols(j0, nj);
      double block = 0.0;
      for (Eigen::Index j = 0; j < nj; ++j) {
        // In a diagonal block of the symmetric case only i < j (strictly upper part).
        const Eigen::Index i_end = (same && i0 == j0) ? j : ni;
        for (Eigen::Index i = 0; i < i_end; ++i) {
          const double dist2 = std::max(0.0, x_norm(i0 + i) + y_norm(j0 + j) - 2.0 * gram(i, j));
          block += std::exp(-dist2 * inv_two_h2);
        }
      }
      total += block;
    }
  }
  return same ? 2.0 * total : total;
}

}  // namespace

double MmdSquared(ConstBatchRef a, ConstBatchRef b, double bandwidth) {
  constexpr const char* where = "MmdSquared";
  CheckPair(where, a, b);
  RequirePositive(where, "bandwidth", bandwidth);
  RequireFinite(where, "bandwidth", bandwidth);
  const double inv = 1.0 / (2.0 * bandwidth * bandwidth);
  const double n = static_cast<double>(a.cols());
  const double m = static_cast<double>(b.cols());
  // The within-sample sums exclude the diagonal terms k(x_i, x_i) (U-statistic).
  const double kaa = KernelSum(a, a, inv, true) / (n * (n - 1.0));
  const double kbb = KernelSum(b, b, inv, true) / (m * (m - 1.0));
  const double kab = KernelSum(a, b, inv, false) / (n * m);
  return kaa + kbb - 2.0 * kab;
}

double MedianHeuristicBandwidth(ConstBatchRef a, ConstBatchRef b) {
  constexpr const char* where = "MedianHeuristicBandwidth";
  CheckPair(where, a, b);
  constexpr Eigen::Index kMaxPerSet = 500;
  std::vector<Vector> points;
  for (const ConstBatchRef* set : {&a, &b}) {
    const Eigen::Index n = set->cols();
    const Eigen::Index take = std::min(n, kMaxPerSet);
    for (Eigen::Index i = 0; i < take; ++i) points.push_back(set->col(i * n / take));
  }
  std::vector<double> distances;
  distances.reserve(points.size() * (points.size() - 1) / 2);
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t j = i + 1; j < points.size(); ++j) {
      distances.push_back((points[i] - points[j]).norm());
    }
  }
  const size_t mid = distances.size() / 2;
  std::nth_element(distances.begin(), distances.begin() + mid, distances.end());
  double median = distances[mid];
  if (distances.size() % 2 == 0) {
    // Even count: average the two middle values (the lower one is the max of the lower half).
    const double lower = *std::max_element(distances.begin(), distances.begin() + mid);
    median = 0.5 * (median + lower);
  }
  Require(median > 0.0, where, "median pairwise distance", median,
          "> 0 (the samples are not all identical)");
  return median;
}

}  // namespace scoresde
