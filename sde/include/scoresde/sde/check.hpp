// Argument checks with one message format: "<where>: <name> = <value>; must be <constraint>".
//
// Used by every constructor and Options::Validate() so that bad input is rejected before any work
// and the message names the parameter and its value.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "scoresde/sde/batch.hpp"
#include "scoresde/sde/error.hpp"

#ifndef NDEBUG
#include <cassert>
#define SCORESDE_DCHECK(condition) assert(condition)
#else
#define SCORESDE_DCHECK(condition) ((void)0)
#endif

namespace scoresde {

// Formats a value for messages (shortest round-trip form for doubles).
std::string FormatValue(double value);
inline std::string FormatValue(int64_t value) { return std::to_string(value); }
inline std::string FormatValue(int value) { return std::to_string(value); }
inline std::string FormatValue(std::string_view value) { return std::string(value); }

// Throws InvalidArgument("<where>: <name> = <value>; must be <constraint>") unless ok.
template <typename T>
void Require(bool ok, std::string_view where, std::string_view name, const T& value,
             std::string_view constraint) {
  if (ok) return;
  std::ostringstream message;
  message << where << ": " << name << " = " << FormatValue(value) << "; must be " << constraint;
  throw InvalidArgument(message.str());
}

inline void RequirePositive(std::string_view where, std::string_view name, double value) {
  Require(value > 0.0, where, name, value, "> 0");  // false for NaN
}
inline void RequireFinite(std::string_view where, std::string_view name, double value) {
  Require(std::isfinite(value), where, name, value, "finite");
}

// Throws unless m is rows × cols (a negative expectation matches anything).
void CheckShape(std::string_view where, std::string_view name, const ConstMatrixRef& m,
                int64_t rows, int64_t cols);

// Location of the first non-finite entry, scanning column by column.
struct NonFiniteEntry {
  int64_t row;
  int64_t col;
  double value;
};
std::optional<NonFiniteEntry> FindNonFinite(const ConstMatrixRef& m);

// Throws InvalidArgument naming the first non-finite entry of an input.
void CheckFinite(std::string_view where, std::string_view name, const ConstMatrixRef& m);

// Throws NumericalFailure "<where>: <what> is <value> at step <step> (t = <t>), sample <s>,
// coordinate <c>" if m has a non-finite entry; first_sample offsets the column index.
void CheckFiniteDuringSolve(std::string_view where, std::string_view what, const ConstMatrixRef& m,
                            int64_t step, double t, int64_t first_sample = 0);

}  // namespace scoresde
