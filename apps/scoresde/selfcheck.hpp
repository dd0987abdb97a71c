// A short self-check of the closed-form references, run by `scoresde demo`: each analytic score
// against finite differences of its own log-density, each SDE family's g(t) against its kernel,
// and the random streams and Brownian paths against their laws. Every check states its tolerance.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace scoresde::cli {

struct SelfCheck {
  std::string name;
  double value = 0.0;      // the measured error or statistic
  double tolerance = 0.0;  // passes when value <= tolerance
  bool passed() const { return value <= tolerance; }
};

std::vector<SelfCheck> RunReferenceSelfCheck();
nlohmann::json ToJson(const std::vector<SelfCheck>& checks);

}  // namespace scoresde::cli
