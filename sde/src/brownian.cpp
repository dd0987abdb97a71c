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

struct NodeValue {
  Vector w;  // increment over the node's interval
  Vector h;  // space-time Lévy area, (1/len)∫(W_u − W_a − (u − a)/len · W) du
};

class Tree {
 public:
  Tree(uint64_t seed, Stream stream, int dim, double length)
      : seed_(seed), stream_(stream), dim_(dim), length_(length), z_(2 * dim) {}

  // Fills z_ with 2·dim standard normals for node (level, index) of one sample.
  void Draw(int level, uint64_t index, int64_t sample) {
    const uint32_t substep = static_cast<uint32_t>(level) | static_cast<uint32_t>(index >> 32) << 6;
    const NoiseStream noise(seed_, stream_);
    noise.FillNormal(static_cast<uint32_t>(index), substep, sample,
                     Eigen::Map<Batch>(z_.data(), 2 * dim_, 1));
  }

  // (W, H) of node (level, index) for one sample, by descent from the root.
  void Node(int level, uint64_t index, int64_t sample, NodeValue* node) {
    Draw(0, 0, sample);
    node->w = std::sqrt(length_) * z_.head(dim_);
    node->h = std::sqrt(length_ / 12.0) * z_.tail(dim_);
    double len = length_;
    uint64_t k = 0;
    for (int l = 1; l <= level; ++l) {
      // Split node (l − 1, k) of length len, then keep the half on the way to `index`.
      Draw(l, k, sample);
      const auto z1 = z_.head(dim_);
      const auto z2 = z_.tail(dim_);
      const Vector u = 3.0 * node->h + 0.5 * std::sqrt(len) * z1;        // W_left − W_right
      const Vector h_mid = node->h - 0.25 * u;                          // (H_left + H_right)/2
      const Vector h_half = 0.5 * std::sqrt(len / 12.0) * z2;           // (H_left − H_right)/2
      const bool right = (index >> (level - l)) & 1u;
      if (right) {
        node->w = 0.5 * (node->w - u);
        node->h = h_mid - h_half;
      } else {
        node->w = 0.5 * (node->w + u);
        node->h = h_mid + h_half;
      }
      k = 2 * k + (right ? 1 : 0);
      len *= 0.5;
    }
  }

 private:
  uint64_t seed_;
  Stream stream_;
  int dim_;
  double length_;
  Vector z_;
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

  Tree tree(seed_, options_.stream, dim_, length);
  NodeValue node;
  Vector w(dim_);
  Vector z(dim_);
  for (Eigen::Index j = 0; j < dw.cols(); ++j) {
    w.setZero();
    z.setZero();
    // Walk [a, b) left to right through maximal aligned dyadic blocks.
    uint64_t position = a;
    while (position < b) {
      int level = depth;
      // Grow the block while it stays aligned and inside [position, b).
      while (level > 0) {
        const uint64_t size = uint64_t{1} << (depth - level + 1);
        if (position % size != 0 || position + size > b) break;
        --level;
      }
      const uint64_t size = uint64_t{1} << (depth - level);
      const double node_length = std::ldexp(length, -level);
      tree.Node(level, position / size, first_sample + j, &node);
      // Concatenation: ∫_a^c (W − W_a) = ∫_a^b (W − W_a) + ∫_b^c (W − W_b) + (c − b)(W_b − W_a),
      // and a node's own integral is len · (W/2 + H).
      z += node_length * (0.5 * node.w + node.h) + node_length * w;
      w += node.w;
      position += size;
    }
    dw.col(j) = w;
    if (dz) dz->col(j) = z;
  }
}

}  // namespace scoresde
