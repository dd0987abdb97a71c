#include "scoresde/verification/problem.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxFileBytes = uint64_t{64} << 20;
constexpr int kMaxDepth = 64;
constexpr int64_t kMaxDim = 100000;
constexpr int64_t kMaxComponents = 100000;
constexpr int64_t kMaxDenseEntries = int64_t{1} << 24;
constexpr double kMaxMagnitude = 1e100;
constexpr double kMaxLogMean = 700.0;

// A short description of a JSON value for messages.
std::string Describe(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return j.get<bool>() ? "true" : "false";
    case Json::value_t::string: {
      std::string s = j.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "\"" + s + "\"";
    }
    case Json::value_t::array:
      return "array of " + std::to_string(j.size());
    case Json::value_t::object:
      return "object";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return FormatValue(j.get<double>());
    default:
      return "unsupported value";
  }
}

[[noreturn]] void Reject(const std::string& where, const std::string& name,
                         const std::string& value, const std::string& constraint) {
  Require(false, where, name, value, constraint);
  throw InvalidArgument(where);  // not reached
}

// Rejects nesting deeper than kMaxDepth before the parser builds anything: a file of 64 MiB of
// '[' would otherwise become tens of millions of nested arrays.
void CheckNesting(std::string_view text, const std::string& where) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) {
        Reject(where, "nesting depth", "> " + std::to_string(kMaxDepth),
               "<= " + std::to_string(kMaxDepth));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}
  const std::string& where() const { return where_; }

  const Json& Key(const Json& object, const char* key) const {
    const auto it = object.find(key);
    if (it == object.end()) Reject(where_, key, "missing", "present");
    return *it;
  }

  double Number(const Json& j, const std::string& name) const {
    if (!j.is_number()) Reject(where_, name, Describe(j), "a number");
    const double value = j.get<double>();
    Require(std::isfinite(value) && std::abs(value) <= kMaxMagnitude, where_, name, value,
            "finite with magnitude <= 1e100");
    return value;
  }

  // An array of numbers; size must equal `size` unless size < 0, when it must be in [1, max_size].
  Vector Numbers(const Json& j, const std::string& name, int64_t size,
                 int64_t max_size = kMaxDim) const {
    if (!j.is_array()) Reject(where_, name, Describe(j), "an array of numbers");
    const int64_t n = static_cast<int64_t>(j.size());
    if (size >= 0) {
      if (n != size) {
        Reject(where_, name, Describe(j), "an array of " + std::to_string(size) + " numbers");
      }
    } else if (n < 1 || n > max_size) {
      Reject(where_, name, Describe(j),
             "an array of 1 to " + std::to_string(max_size) + " numbers");
    }
    Vector v(n);
    for (int64_t i = 0; i < n; ++i)
      v(i) = Number(j[static_cast<size_t>(i)], name + "[" + std::to_string(i) + "]");
    return v;
  }

  // rows arrays of cols numbers each (rows, cols ≥ 1 known from other keys).
  Matrix NumberMatrix(const Json& j, const std::string& name, int64_t rows, int64_t cols) const {
    if (!j.is_array() || static_cast<int64_t>(j.size()) != rows) {
      Reject(where_, name, Describe(j),
             "an array of " + std::to_string(rows) + " arrays of " + std::to_string(cols) +
                 " numbers");
    }
    Matrix m(rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      m.row(r) = Numbers(j[static_cast<size_t>(r)], name + "[" + std::to_string(r) + "]", cols)
                     .transpose();
    }
    return m;
  }

  Vector Positive(Vector v, const std::string& name) const {
    for (Eigen::Index i = 0; i < v.size(); ++i) {
      Require(v(i) > 0.0, where_, name + "[" + std::to_string(i) + "]", v(i), "> 0");
    }
    return v;
  }

  void OnlyKeys(const Json& object, std::initializer_list<const char*> allowed) const {
    for (const auto& item : object.items()) {
      bool known = false;
      std::string list;
      for (const char* key : allowed) {
        known = known || item.key() == key;
        list += list.empty() ? key : std::string(", ") + key;
      }
      if (!known) Reject(where_, "key \"" + item.key() + "\"", "present", "one of " + list);
    }
  }

  // Exactly one of two alternative keys.
  bool Choose(const Json& object, const char* first, const char* second) const {
    const bool has_first = object.contains(first);
    const bool has_second = object.contains(second);
    if (has_first && has_second) {
      Reject(where_, first, "given together with \"" + std::string(second) + "\"",
             "given alone (use one of them)");
    }
    if (!has_first && !has_second) {
      Reject(where_, first, "missing", "present (or \"" + std::string(second) + "\")");
    }
    return has_first;
  }

  void CheckDenseSize(const char* key, int64_t components, int64_t dim) const {
    const int64_t entries = components * dim * dim;  // ≤ 1e5 · 1e10, fits in 64 bits
    Require(entries <= kMaxDenseEntries, where_,
            std::string("covariance entries for \"") + key + "\" (components * dim^2)", entries,
            "<= 2^24 (dense covariances)");
  }

  // Builds the mixture; its own checks (weights, symmetry, definiteness) are reported with the key.
  GaussianMixture Mixture(const char* key, Vector weights, std::vector<Vector> means,
                          std::vector<Matrix> covs) const {
    try {
      return GaussianMixture(std::move(weights), std::move(means), std::move(covs));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(where_ + ": \"" + key +
                            "\" does not give a valid distribution: " + e.what());
    }
  }

 private:
  std::string where_;
};

Problem ParseGaussian(const Json& root, const Reader& in) {
  in.OnlyKeys(root, {"type", "mean", "cov", "std"});
  Vector mean = in.Numbers(in.Key(root, "mean"), "mean", -1);
  const int64_t d = mean.size();
  const bool full = in.Choose(root, "cov", "std");
  in.CheckDenseSize(full ? "cov" : "std", 1, d);
  Matrix cov = full ? in.NumberMatrix(in.Key(root, "cov"), "cov", d, d)
                    : Matrix(in.Positive(in.Numbers(in.Key(root, "std"), "std", d), "std")
                                 .array()
                                 .square()
                                 .matrix()
                                 .asDiagonal());
  Problem problem;
  problem.type = Problem::Type::kGaussian;
  std::vector<Vector> means{std::move(mean)};
  std::vector<Matrix> covs{std::move(cov)};
  problem.mixture =
      in.Mixture(full ? "cov" : "std", Vector::Ones(1), std::move(means), std::move(covs));
  return problem;
}

Problem ParseGmm(const Json& root, const Reader& in) {
  in.OnlyKeys(root, {"type", "weights", "means", "covs", "stds"});
  Vector weights = in.Numbers(in.Key(root, "weights"), "weights", -1, kMaxComponents);
  const int64_t k = weights.size();
  const Json& jmeans = in.Key(root, "means");
  if (!jmeans.is_array() || static_cast<int64_t>(jmeans.size()) != k) {
    Reject(in.where(), "means", Describe(jmeans),
           "an array of " + std::to_string(k) + " arrays (one per weight)");
  }
  std::vector<Vector> means;
  means.push_back(in.Numbers(jmeans[0], "means[0]", -1));
  const int64_t d = means[0].size();
  for (int64_t c = 1; c < k; ++c) {
    means.push_back(
        in.Numbers(jmeans[static_cast<size_t>(c)], "means[" + std::to_string(c) + "]", d));
  }
  const bool full = in.Choose(root, "covs", "stds");
  const char* key = full ? "covs" : "stds";
  in.CheckDenseSize(key, k, d);
  const Json& jcovs = in.Key(root, key);
  if (!jcovs.is_array() || static_cast<int64_t>(jcovs.size()) != k) {
    Reject(in.where(), key, Describe(jcovs),
           "an array of " + std::to_string(k) + " entries (one per weight)");
  }
  std::vector<Matrix> covs;
  for (int64_t c = 0; c < k; ++c) {
    const std::string name = std::string(key) + "[" + std::to_string(c) + "]";
    if (full) {
      covs.push_back(in.NumberMatrix(jcovs[static_cast<size_t>(c)], name, d, d));
    } else {
      covs.push_back(in.Positive(in.Numbers(jcovs[static_cast<size_t>(c)], name, d), name)
                         .array()
                         .square()
                         .matrix()
                         .asDiagonal());
    }
  }
  Problem problem;
  problem.type = Problem::Type::kGmm;
  problem.mixture = in.Mixture(key, std::move(weights), std::move(means), std::move(covs));
  return problem;
}

Problem ParseLogNormal(const Json& root, const Reader& in) {
  in.OnlyKeys(root, {"type", "m0", "s0"});
  Problem problem;
  problem.type = Problem::Type::kLogNormal;
  problem.m0 = in.Numbers(in.Key(root, "m0"), "m0", -1);
  for (Eigen::Index i = 0; i < problem.m0.size(); ++i) {
    Require(std::abs(problem.m0(i)) <= kMaxLogMean, in.where(), "m0[" + std::to_string(i) + "]",
            problem.m0(i), "in [-700, 700] (exp(m0) a finite double)");
  }
  problem.s0 = in.Positive(in.Numbers(in.Key(root, "s0"), "s0", problem.m0.size()), "s0");
  return problem;
}

}  // namespace

Problem ParseProblem(std::string_view json_text, std::string_view source) {
  const std::string where(source);
  Require(json_text.size() <= kMaxFileBytes, where, "size in bytes",
          static_cast<int64_t>(json_text.size()), "<= 64 MiB");
  CheckNesting(json_text, where);
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    // Parse errors, invalid UTF-8 and numbers that overflow a double all land here.
    throw InvalidArgument(where + ": text is not valid JSON (" + e.what() + ")");
  }
  const Reader in(where);
  if (!root.is_object()) Reject(where, "top level", Describe(root), "a JSON object");
  const Json& type = in.Key(root, "type");
  if (!type.is_string()) Reject(where, "type", Describe(type), "a string");
  const std::string name = type.get<std::string>();
  if (name == "gaussian") return ParseGaussian(root, in);
  if (name == "gmm") return ParseGmm(root, in);
  if (name == "lognormal") return ParseLogNormal(root, in);
  Reject(where, "type", Describe(type), "one of \"gaussian\", \"gmm\", \"lognormal\"");
}

Problem LoadProblem(const std::string& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status)) {
    Reject(path, "file", "not found", "an existing problem file");
  }
  if (!std::filesystem::is_regular_file(status)) {
    Reject(path, "file", "not a regular file", "a regular file");
  }
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) Reject(path, "file", "unreadable (" + error.message() + ")", "readable");
  Require(size <= kMaxFileBytes, path, "size in bytes", static_cast<int64_t>(size), "<= 64 MiB");
  std::ifstream stream(path, std::ios::binary);
  if (!stream) Reject(path, "file", "cannot be opened", "readable");
  std::string text(static_cast<size_t>(size), '\0');
  stream.read(text.data(), static_cast<std::streamsize>(size));
  // The file may have changed size between the check and the read; use what was read.
  text.resize(static_cast<size_t>(stream.gcount()));
  return ParseProblem(text, path);
}

}  // namespace scoresde
