#include "scoresde/sde/brownian.hpp"

#include <cmath>
#include <vector>

#include "scoresde/sde/check.hpp"
#include "random_internal.hpp"

namespace scoresde {

namespace {

// A node's draws live at counter (block, sample, step = low 32 bits of the node index,
// substep = level | high index bits << 6); max_depth ≤ 42 keeps that within 16 bits.
constexpr int kMaxDepth = 42;

// Walks the tree over [a, b) (in finest-grid units) for one sample: a node inside the interval is
// added to the running sums, a node outside is skipped, a node straddling an end is split. Only
// O(max_depth) nodes are split per query, and none is recomputed.
class TreeWalk {
 public:
  TreeWalk(uint64_t seed, Stream stream, int dim, double length, int depth)
      : noise_(seed, stream), dim_(dim), length_(length), depth_(depth),
        z_(2 * dim, 1), nodes_(2 * dim, 2 * (depth + 1)) {}

  // Adds W(b) − W(a) to w and ∫_a^b (W_u − W_a) du to z (both start at zero).
  void Run(uint64_t a, uint64_t b, int64_t sample, VectorRef w, VectorRef z) {
    a_ = a;
    b_ = b;
    sample_ = sample;
    w_ = &w;
    z_sum_ = &z;
    Draw(0, 0);
    // Column 2·level holds the node's W (rows 0..dim) and H (rows dim..2dim).
    nodes_.col(0).head(dim_) = std::sqrt(length_) * z_.col(0).head(dim_);
    nodes_.col(0).tail(dim_) = std::sqrt(length_ / 12.0) * z_.col(0).tail(dim_);
    Visit(0, 0, 0);
  }

 private:
  void Draw(int level, uint64_t index) {
    // A node's draws: counter (block, sample, step = low 32 bits of the index,
    // substep = level | high index bits << 6); max_depth ≤ 42 keeps that within 16 bits.
    const uint32_t substep =
        static_cast<uint32_t>(level) | static_cast<uint32_t>(index >> 32) << 6;
    noise_.FillNormal(static_cast<uint32_t>(index), substep, sample_, z_);
  }

  // The node (level, index) whose value is in column `slot` of nodes_.
  void Visit(int level, uint64_t index, Eigen::Index slot) {
    const uint64_t size = uint64_t{1} << (depth_ - level);
    const uint64_t begin = index * size;
    const uint64_t end = begin + size;
    if (end <= a_ || begin >= b_) return;
    const auto w = nodes_.col(slot).head(dim_);
    const auto h = nodes_.col(slot).tail(dim_);
    if (begin >= a_ && end <= b_) {
      // Concatenation: ∫_a^c (W − W_a) = ∫_a^b (W − W_a) + ∫_b^c (W − W_b) + (c − b)(W_b − W_a);
      // a node's own integral is len·(W/2 + H).
      const double len = std::ldexp(length_, -level);
      *z_sum_ += len * (0.5 * w + h + *w_);
      *w_ += w;
      return;
    }
    // Split by the exact conditional law (brownian.hpp), with the node's own draws.
    const double len = std::ldexp(length_, -level);
    Draw(level + 1, index);
    const auto z1 = z_.col(0).head(dim_);
    const auto z2 = z_.col(0).tail(dim_);
    const Eigen::Index left = 2 * (level + 1);
    const Eigen::Index right = left + 1;
    // u = W_left − W_right; (H_left + H_right)/2 = H − u/4; (H_left − H_right)/2 = √(len/12)/2·Z2.
    auto w_left = nodes_.col(left).head(dim_);
    auto h_left = nodes_.col(left).tail(dim_);
    auto w_right = nodes_.col(right).head(dim_);
    auto h_right = nodes_.col(right).tail(dim_);
    w_right = 3.0 * h + 0.5 * std::sqrt(len) * z1;  // u, for now
    h_left = h - 0.25 * w_right;
    h_right = h_left - 0.5 * std::sqrt(len / 12.0) * z2;
    h_left += 0.5 * std::sqrt(len / 12.0) * z2;
    w_left = 0.5 * (w + w_right);
    w_right = w - w_left;
    Visit(level + 1, 2 * index, left);
    Visit(level + 1, 2 * index + 1, right);
  }

  NoiseStream noise_;
  int dim_;
  double length_;
  int depth_;
  Batch z_;
  Matrix nodes_;
  uint64_t a_ = 0;
  uint64_t b_ = 0;
  int64_t sample_ = 0;
  VectorRef* w_ = nullptr;
  VectorRef* z_sum_ = nullptr;
};

}  // namespace

void BrownianPath::Options::Validate() const {
  constexpr const char* kWhere = "BrownianPath::Options";
  RequireFinite(kWhere, "t0", t0);
  RequireFinite(kWhere, "t1", t1);
  Require(t1 > t0, kWhere, "t1", t1, "> t0");
  Require(max_depth >= 1 && max_depth <= kMaxDepth, kWhere, "max_depth", max_depth,
          "in [1, 42]");
}

BrownianPath::BrownianPath(int dim, uint64_t seed, Options options)
    : dim_(dim), seed_(seed), options_(options) {
  Require(dim >= 1, "BrownianPath", "dim", dim, ">= 1");
  options_.Validate();
}

void BrownianPath::Increment(double s, double t, int64_t first_sample, BatchRef dw) const {
  IncrementImpl(s, t, first_sample, dw, nullptr);
}

void BrownianPath::Increment(double s, double t, int64_t first_sample, BatchRef dw,
                             BatchRef dz) const {
  IncrementImpl(s, t, first_sample, dw, &dz);
}

void BrownianPath::IncrementImpl(double s, double t, int64_t first_sample, BatchRef dw,
                                 BatchRef* dz) const {
  constexpr const char* kWhere = "BrownianPath::Increment";
  Require(s >= options_.t0 && s <= options_.t1, kWhere, "s", s, "within [t0, t1]");
  Require(t >= s && t <= options_.t1, kWhere, "t", t, "within [s, t1]");
  CheckShape(kWhere, "dw", dw, dim_, -1);
  if (dz) CheckShape(kWhere, "dz", *dz, dim_, dw.cols());
  Require(first_sample >= 0, kWhere, "first_sample", first_sample, ">= 0");

  // Grid positions of s and t at the finest level.
  const int depth = options_.max_depth;
  const double length = options_.t1 - options_.t0;
  const double cells = std::ldexp(1.0, depth);
  const auto to_grid = [&](double time) {
    return static_cast<uint64_t>(std::llround((time - options_.t0) / length * cells));
  };
  const uint64_t a = to_grid(s);
  const uint64_t b = to_grid(t);

  TreeWalk walk(seed_, options_.stream, dim_, length, depth);
  Vector w(dim_);
  Vector z(dim_);
  for (Eigen::Index j = 0; j < dw.cols(); ++j) {
    w.setZero();
    z.setZero();
    if (a < b) walk.Run(a, b, first_sample + j, w, z);
    dw.col(j) = w;
    if (dz) dz->col(j) = z;
  }
}

}  // namespace scoresde
