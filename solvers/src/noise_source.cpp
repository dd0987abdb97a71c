#include "scoresde/solvers/noise_source.hpp"

#include <cmath>
#include <string>

#include "scoresde/sde/check.hpp"

namespace scoresde {

namespace {

void CheckStep(const char* where, double t, double dt) {
  RequireFinite(where, "t", t);
  Require(std::isfinite(dt) && dt != 0.0, where, "dt", dt, "finite and nonzero");
}

}  // namespace

IidNoise::IidNoise(int dim, NoiseStream stream, uint32_t first_substep)
    : dim_(dim), stream_(stream), first_substep_(first_substep) {
  Require(dim >= 1, "IidNoise", "dim", dim, ">= 1");
  Require(first_substep < 0xffffu, "IidNoise", "first_substep", static_cast<int64_t>(first_substep),
          "< 65535 (it and the next substep must fit 16 bits)");
}

void IidNoise::Increment(int64_t step, double t, double dt, int64_t first_sample,
                         BatchRef dw) const {
  CheckStep("IidNoise::Increment", t, dt);
  CheckShape("IidNoise::Increment", "dw", dw, dim_, -1);
  Require(step >= 0, "IidNoise::Increment", "step", step, ">= 0");
  stream_.FillNormal(static_cast<uint64_t>(step), first_substep_, first_sample, dw);
  dw *= std::sqrt(std::abs(dt));
}

void IidNoise::IncrementWithArea(int64_t step, double t, double dt, int64_t first_sample,
                                 BatchRef dw, BatchRef dz) const {
  constexpr const char* kWhere = "IidNoise::IncrementWithArea";
  CheckStep(kWhere, t, dt);
  CheckShape(kWhere, "dw", dw, dim_, -1);
  CheckShape(kWhere, "dz", dz, dim_, dw.cols());
  Require(step >= 0, kWhere, "step", step, ">= 0");
  stream_.FillNormal(static_cast<uint64_t>(step), first_substep_, first_sample, dw);
  stream_.FillNormal(static_cast<uint64_t>(step), first_substep_ + 1, first_sample, dz);
  // (ΔW, ΔZ) = (√h z₁, (h^{3/2}/2)(z₁ + z₂/√3)): Var ΔZ = (h³/4)(1 + 1/3) = h³/3 and
  // Cov(ΔW, ΔZ) = √h · h^{3/2}/2 = h²/2, the law of (W_h, ∫_0^h W_u du).
  const double h = std::abs(dt);
  const double sqrt_h = std::sqrt(h);
  const double half_h32 = 0.5 * h * sqrt_h;
  const double inv_sqrt3 = 1.0 / std::sqrt(3.0);
  dz = half_h32 * (dw + inv_sqrt3 * dz);
  dw *= sqrt_h;
}

namespace {

// The forward-time interval [s, e] a step covers, clamped to the path's span when rounding puts an
// end a hair outside it.
void StepInterval(const BrownianPath::Options& path, double t, double dt, double* s, double* e) {
  *s = std::min(t, t + dt);
  *e = std::max(t, t + dt);
  const double slack = 1e-12 * (path.t1 - path.t0);
  if (*s < path.t0 && *s > path.t0 - slack) *s = path.t0;
  if (*e > path.t1 && *e < path.t1 + slack) *e = path.t1;
}

}  // namespace

void BrownianNoise::Increment(int64_t, double t, double dt, int64_t first_sample,
                              BatchRef dw) const {
  CheckStep("BrownianNoise::Increment", t, dt);
  double s, e;
  StepInterval(path_->options(), t, dt, &s, &e);
  // W(e) − W(s) is the increment in either direction (reverse: W̄_u = W(t) − W(t − u)).
  path_->Increment(s, e, first_sample, dw);
}

void BrownianNoise::IncrementWithArea(int64_t, double t, double dt, int64_t first_sample,
                                      BatchRef dw, BatchRef dz) const {
  CheckStep("BrownianNoise::IncrementWithArea", t, dt);
  double s, e;
  StepInterval(path_->options(), t, dt, &s, &e);
  path_->Increment(s, e, first_sample, dw, dz);
  if (dt < 0.0) {
    // ∫_0^h (W̄_u) du with W̄_u = W(e) − W(e − u): h·ΔW − ∫_s^e (W(v) − W(s)) dv.
    dz = (e - s) * dw - dz;
  }
}

BrownianGridNoise::BrownianGridNoise(const BrownianPath& path, int level, int64_t first_sample,
                                     int64_t num_samples)
    : dim_(path.dim()),
      level_(level),
      t0_(path.options().t0),
      first_sample_(first_sample),
      num_samples_(num_samples) {
  constexpr const char* kWhere = "BrownianGridNoise";
  Require(level >= 0 && level <= path.options().max_depth, kWhere, "level", level,
          "in [0, path max_depth = " + std::to_string(path.options().max_depth) + "]");
  Require(level <= 24, kWhere, "level", level, "<= 24");
  Require(num_samples >= 1, kWhere, "num_samples", num_samples, ">= 1");
  Require(first_sample >= 0, kWhere, "first_sample", first_sample, ">= 0");
  const int64_t cells = int64_t{1} << level;
  cell_ = (path.options().t1 - t0_) / static_cast<double>(cells);
  w_.resize(level + 1);
  z_.resize(level + 1);
  w_[level].resize(dim_, cells * num_samples);
  z_[level].resize(dim_, cells * num_samples);
  for (int64_t c = 0; c < cells; ++c) {
    const double s = t0_ + static_cast<double>(c) * cell_;
    const double e = c + 1 == cells ? path.options().t1 : t0_ + static_cast<double>(c + 1) * cell_;
    path.Increment(s, e, first_sample, w_[level].middleCols(c * num_samples, num_samples),
                   z_[level].middleCols(c * num_samples, num_samples));
  }
  BuildLevels();
}

BrownianGridNoise::BrownianGridNoise(int dim, double t0, double t1, int level,
                                     const NoiseStream& stream, int64_t first_sample,
                                     int64_t num_samples)
    : dim_(dim), level_(level), t0_(t0), first_sample_(first_sample), num_samples_(num_samples) {
  constexpr const char* kWhere = "BrownianGridNoise";
  Require(dim >= 1, kWhere, "dim", dim, ">= 1");
  RequireFinite(kWhere, "t0", t0);
  Require(std::isfinite(t1) && t1 > t0, kWhere, "t1", t1, "finite and > t0");
  Require(level >= 0 && level <= 24, kWhere, "level", level, "in [0, 24]");
  Require(num_samples >= 1, kWhere, "num_samples", num_samples, ">= 1");
  Require(first_sample >= 0, kWhere, "first_sample", first_sample, ">= 0");
  const int64_t cells = int64_t{1} << level;
  cell_ = (t1 - t0) / static_cast<double>(cells);
  w_.resize(level + 1);
  z_.resize(level + 1);
  w_[level].resize(dim_, cells * num_samples);
  z_[level].resize(dim_, cells * num_samples);
  const IidNoise noise(dim, stream, 0);
  for (int64_t c = 0; c < cells; ++c) {
    noise.IncrementWithArea(c, t0 + static_cast<double>(c) * cell_, cell_, first_sample,
                            w_[level].middleCols(c * num_samples, num_samples),
                            z_[level].middleCols(c * num_samples, num_samples));
  }
  BuildLevels();
}

void BrownianGridNoise::BuildLevels() {
  const int64_t n = num_samples_;
  for (int l = level_ - 1; l >= 0; --l) {
    const int64_t cells = int64_t{1} << l;
    const double child_length = std::ldexp(cell_, level_ - l - 1);
    w_[l].resize(dim_, cells * n);
    z_[l].resize(dim_, cells * n);
    for (int64_t c = 0; c < cells; ++c) {
      const auto left_w = w_[l + 1].middleCols(2 * c * n, n);
      const auto right_w = w_[l + 1].middleCols((2 * c + 1) * n, n);
      const auto left_z = z_[l + 1].middleCols(2 * c * n, n);
      const auto right_z = z_[l + 1].middleCols((2 * c + 1) * n, n);
      w_[l].middleCols(c * n, n) = left_w + right_w;
      // ∫ over both halves = ∫_left + ∫_right + (right length)·W_left.
      z_[l].middleCols(c * n, n) = left_z + right_z + child_length * left_w;
    }
  }
}

void BrownianGridNoise::Fill(double t, double dt, int64_t first_sample, BatchRef dw,
                             BatchRef* dz) const {
  constexpr const char* kWhere = "BrownianGridNoise";
  CheckStep(kWhere, t, dt);
  CheckShape(kWhere, "dw", dw, dim_, -1);
  if (dz) CheckShape(kWhere, "dz", *dz, dim_, dw.cols());
  const int64_t cells = int64_t{1} << level_;
  const double s = std::min(t, t + dt);
  const double e = std::max(t, t + dt);
  const double a_real = (s - t0_) / cell_;
  const double b_real = (e - t0_) / cell_;
  const int64_t a = std::llround(a_real);
  const int64_t b = std::llround(b_real);
  Require(std::abs(a_real - a) <= 1e-6 && a >= 0, kWhere, "step start", s,
          "on the grid of 2^" + std::to_string(level_) + " cells");
  Require(std::abs(b_real - b) <= 1e-6 && b <= cells && b > a, kWhere, "step end", e,
          "on the grid of 2^" + std::to_string(level_) + " cells, after the start");
  Require(first_sample >= first_sample_ && first_sample + dw.cols() <= first_sample_ + num_samples_,
          kWhere, "first_sample", first_sample,
          "such that the samples lie in the range read [" + std::to_string(first_sample_) + ", " +
              std::to_string(first_sample_ + num_samples_) + ")");
  const int64_t offset = first_sample - first_sample_;
  const int64_t count = dw.cols();
  const int64_t n = num_samples_;
  // Walk [a, b) through maximal aligned dyadic blocks (one block for a step of an aligned grid).
  bool first_block = true;
  int64_t position = a;
  while (position < b) {
    int l = level_;
    while (l > 0) {
      const int64_t size = int64_t{1} << (level_ - l + 1);
      if (position % size != 0 || position + size > b) break;
      --l;
    }
    const int64_t size = int64_t{1} << (level_ - l);
    const int64_t column = (position / size) * n + offset;
    const auto block_w = w_[l].middleCols(column, count);
    if (first_block) {
      if (dz) *dz = z_[l].middleCols(column, count);
      dw = block_w;
      first_block = false;
    } else {
      // Z[a, c] = Z[a, p] + Z[p, c] + (c − p)(W_p − W_a).
      if (dz) *dz += z_[l].middleCols(column, count) + (static_cast<double>(size) * cell_) * dw;
      dw += block_w;
    }
    position += size;
  }
  if (dz && dt < 0.0) {
    const double h = static_cast<double>(b - a) * cell_;
    *dz = h * dw - *dz;
  }
}

void BrownianGridNoise::Increment(int64_t, double t, double dt, int64_t first_sample,
                                  BatchRef dw) const {
  Fill(t, dt, first_sample, dw, nullptr);
}

void BrownianGridNoise::IncrementWithArea(int64_t, double t, double dt, int64_t first_sample,
                                          BatchRef dw, BatchRef dz) const {
  Fill(t, dt, first_sample, dw, &dz);
}

}  // namespace scoresde
