#include "scoresde/sde/check.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

namespace scoresde {

std::string FormatValue(double value) {
  // Shortest representation that round-trips, so messages show exactly what was passed.
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void CheckShape(std::string_view where, std::string_view name, const ConstMatrixRef& m,
                int64_t rows, int64_t cols) {
  const bool rows_ok = rows < 0 || m.rows() == rows;
  const bool cols_ok = cols < 0 || m.cols() == cols;
  if (rows_ok && cols_ok) return;
  std::ostringstream message;
  message << where << ": " << name << " has shape " << m.rows() << " x " << m.cols()
          << "; must be " << (rows < 0 ? std::string("any") : std::to_string(rows)) << " x "
          << (cols < 0 ? std::string("any") : std::to_string(cols));
  throw InvalidArgument(message.str());
}

std::optional<NonFiniteEntry> FindNonFinite(const ConstMatrixRef& m) {
  if (m.allFinite()) return std::nullopt;  // the vectorized fast path
  for (Eigen::Index col = 0; col < m.cols(); ++col) {
    for (Eigen::Index row = 0; row < m.rows(); ++row) {
      if (!std::isfinite(m(row, col))) return NonFiniteEntry{row, col, m(row, col)};
    }
  }
  return std::nullopt;
}

void CheckFinite(std::string_view where, std::string_view name, const ConstMatrixRef& m) {
  const auto bad = FindNonFinite(m);
  if (!bad) return;
  std::ostringstream message;
  message << where << ": " << name << "(" << bad->row << ", " << bad->col
          << ") = " << FormatValue(bad->value) << "; must be finite";
  throw InvalidArgument(message.str());
}

void CheckFiniteDuringSolve(std::string_view where, std::string_view what, const ConstMatrixRef& m,
                            int64_t step, double t, int64_t first_sample) {
  const auto bad = FindNonFinite(m);
  if (!bad) return;
  const int64_t sample = first_sample + bad->col;
  std::ostringstream message;
  message << where << ": " << what << " is " << FormatValue(bad->value) << " at step " << step
          << " (t = " << FormatValue(t) << "), sample " << sample << ", coordinate " << bad->row;
  throw NumericalFailure(message.str(), step, t, sample, bad->row);
}

}  // namespace scoresde
