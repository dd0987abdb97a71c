// The library's exceptions.
//
// InvalidArgument: bad options, shapes, non-finite inputs or times; thrown before any work, with a
// message "<Where>: <name> = <value>; must be <constraint>".
// NumericalFailure: a solve produced a non-finite value or could not proceed; it carries where.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace scoresde {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Raised during a solve. step, t, sample and coordinate locate the first offending value
// (-1 where not applicable).
class NumericalFailure : public Error {
 public:
  NumericalFailure(const std::string& message, int64_t step, double t, int64_t sample,
                   int64_t coordinate)
      : Error(message), step_(step), t_(t), sample_(sample), coordinate_(coordinate) {}
  int64_t step() const { return step_; }
  double t() const { return t_; }
  int64_t sample() const { return sample_; }
  int64_t coordinate() const { return coordinate_; }

 private:
  int64_t step_;
  double t_;
  int64_t sample_;
  int64_t coordinate_;
};

}  // namespace scoresde
