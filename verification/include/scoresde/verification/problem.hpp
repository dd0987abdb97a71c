// Problem files: a JSON description of a data distribution p_0 whose score under an SDE is known in
// closed form (design.md, section 4), so any Gaussian, Gaussian mixture or log-normal can be run
// without recompiling:
//
//   {"type": "gaussian", "mean": [..d..], "cov": [[..d..], ..d rows..]}, or "std": [..d..]
//   {"type": "gmm", "weights": [..K..], "means": [[..d..], ..K..],
//    "covs": [[[..d..], ..d rows..], ..K..]}, or "stds": [[..d..], ..K..]
//   {"type": "lognormal", "m0": [..d..], "s0": [..d..]}, with a GBM SDE
//
// "std"/"stds" give diagonal covariances diag(std²). Files are untrusted input: anything malformed
// is rejected with InvalidArgument naming the file and the key, never a crash. Rejected: text that
// is not JSON or nests deeper than 64 levels, a top level that is not an object, an unknown "type"
// or unknown key, a missing key, wrong JSON types, ragged or mis-sized arrays, both "cov" and
// "std" (or "covs" and "stds"), values that are not finite or exceed 1e100 in magnitude (so that
// squares and sums stay finite), |m0| > 700 (exp(m0) must be a finite double), std, stds, s0 ≤ 0,
// dimension 0 or above 100000, more than 100000 components, dense covariances with more than
// 2^24 entries in all (K · d², 128 MiB per copy), invalid mixtures (GaussianMixture's checks:
// weights summing to 1, symmetric positive definite covariances), and files larger than 64 MiB.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "scoresde/sde/batch.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {

struct Problem {
  enum class Type { kGaussian, kGmm, kLogNormal };
  Type type = Type::kGaussian;
  // The data law for kGaussian (one component) and kGmm.
  std::optional<GaussianMixture> mixture;
  // X_0 ~ LogNormal(m0, diag(s0²)) for kLogNormal (empty otherwise).
  Vector m0;
  Vector s0;

  int dim() const { return mixture ? mixture->dim() : static_cast<int>(m0.size()); }
};

// Parses a problem from JSON text; source names the text in messages ("problem.json: cov[1] =
// ..."). Throws InvalidArgument as described above.
Problem ParseProblem(std::string_view json_text, std::string_view source = "<problem>");

// Reads and parses a file; throws InvalidArgument if it cannot be opened, is not a regular file,
// or is larger than 64 MiB.
Problem LoadProblem(const std::string& path);

}  // namespace scoresde
