// Training data: an indexable stream of examples. Example p of the stream (p = step · batch + j
// for position j of a training step's batch) is a pure function of p and the data set's seed, so
// the trainer needs no data-order state beyond its step count: a resumed run sees the same
// examples, and any thread count or split of a batch gives the same batch.
//
// Sources:
// - Built-in two-dimensional sets (generators from NoiseStream(seed, Stream::kData), one example
//   per sample index, so each is a pure function of its index; the shapes follow the usual
//   benchmarks of Grathwohl et al., ICLR 2019 (FFJORD) and sklearn):
//     swiss-roll     θ = 1.5π(1 + 2u); (θ cos θ, θ sin θ)/5 + 0.1 n                     (std ≈ 1.6)
//     two-moons      upper (cos πu, sin πu) or lower (1 − cos πu, ½ − sin πu), each with prob. ½,
//                    + 0.1 n, then ×2 − (1, 0.2)
//     eight-gaussians centre 4(cos 2πk/8, sin 2πk/8), k uniform in 0..7, + 0.5 n, then /√2
//     checkerboard   x₁ = 4u₁ − 2, x₂ = u₂ − 2⌊2u₃⌋ + (⌊x₁⌋ mod 2), then ×2 (uniform on the
//                    8 dark squares of a 4 × 4 board on [−4, 4]²)
//     circles        radius 1 or ½ (prob. ½ each), angle 2πu, + 0.08 n, then ×3
//     pinwheel       5 arms: r = 1 + 0.3 n₁, τ = 0.1 n₂, angle 2πk/5 + 0.25 e^r, point
//                    2 R(angle) (r, τ)
//   with u uniform on (0, 1) and n standard normal draws of that example.
// - Finite arrays (.npy, .csv, images): d × N in memory, visited in epochs; epoch e is a uniform
//   random permutation (Fisher–Yates driven by NoiseStream(seed, Stream::kShuffle) at step e), so
//   example p is array column perm_{p / N}(p mod N).
// - Callbacks: any law that can draw example p by itself (the CLI wraps verification's problem
//   files this way, keeping scoring independent of verification).
// - Fashion-MNIST in its IDX format (gzip-compressed or raw), as Debian's dataset-fashion-mnist
//   installs it under /usr/share/datasets/fashion-mnist/. Images are scaled as the paper's code
//   scales them (config.data.centered = False): x = pixel/255 ∈ [0, 1]. For likelihoods of 8-bit
//   data the paper dequantizes uniformly, x = (pixel + u)/256 with u ~ U(0, 1) (likelihood.py);
//   DequantizedDataSource does that per example from NoiseStream(seed, Stream::kData).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "scoresde/sde/batch.hpp"

namespace scoresde {

class DataSource {
 public:
  virtual ~DataSource() = default;
  virtual int dim() const = 0;
  // Column j of out (dim() × n) receives example first + j. Throws InvalidArgument on a shape
  // mismatch or a negative index.
  virtual void Fill(int64_t first, BatchRef out) const = 0;
  // A one-line description stored in checkpoints ("two-moons (seed 0)", "array 2 × 1000").
  virtual std::string Describe() const = 0;
};

enum class Toy2d { kSwissRoll, kTwoMoons, kEightGaussians, kCheckerboard, kCircles, kPinwheel };
// Names: swiss-roll two-moons eight-gaussians checkerboard circles pinwheel.
std::string_view ToString(Toy2d set);
// Throws InvalidArgument listing the names.
Toy2d ParseToy2d(std::string_view name);
const std::vector<Toy2d>& AllToy2d();

// Examples [first, first + n) of a built-in set into out (2 × n). Throws InvalidArgument if out
// does not have 2 rows, first < 0, or an index needs more than 32 bits.
void SampleToy2d(Toy2d set, uint64_t seed, int64_t first, BatchRef out);

class Toy2dDataSource final : public DataSource {
 public:
  Toy2dDataSource(Toy2d set, uint64_t seed) : set_(set), seed_(seed) {}
  int dim() const override { return 2; }
  void Fill(int64_t first, BatchRef out) const override { SampleToy2d(set_, seed_, first, out); }
  std::string Describe() const override;

 private:
  Toy2d set_;
  uint64_t seed_;
};

class ArrayDataSource final : public DataSource {
 public:
  // data is d × N with N ≥ 1 and finite entries (checked; throws InvalidArgument).
  ArrayDataSource(Matrix data, uint64_t seed, std::string description = "array");
  ~ArrayDataSource() override;
  int dim() const override { return static_cast<int>(data_.rows()); }
  void Fill(int64_t first, BatchRef out) const override;
  std::string Describe() const override;
  const Matrix& data() const { return data_; }
  // The permutation of epoch e (N entries).
  std::vector<int64_t> EpochPermutation(int64_t epoch) const;

 private:
  Matrix data_;
  uint64_t seed_;
  std::string description_;
  // The permutation of the most recent epoch (recomputing it costs N draws); Fill may run
  // concurrently, so the cache is guarded by a lock.
  struct PermutationCache;
  std::unique_ptr<PermutationCache> cache_;
};

class CallbackDataSource final : public DataSource {
 public:
  using Function = std::function<void(int64_t first, BatchRef out)>;
  // dim ≥ 1, fill callable (throws InvalidArgument otherwise).
  CallbackDataSource(int dim, Function fill, std::string description);
  int dim() const override { return dim_; }
  void Fill(int64_t first, BatchRef out) const override;
  std::string Describe() const override { return description_; }

 private:
  int dim_;
  Function fill_;
  std::string description_;
};

// Wraps 8-bit image data scaled to [0, 1] (x = pixel/255): example p becomes
// (255 x + u)/256 with u ~ U(0, 1) per coordinate from NoiseStream(seed, Stream::kData) at
// step 1 — the paper's uniform dequantization for likelihoods.
class DequantizedDataSource final : public DataSource {
 public:
  DequantizedDataSource(std::shared_ptr<const DataSource> images, uint64_t seed);
  int dim() const override { return images_->dim(); }
  void Fill(int64_t first, BatchRef out) const override;
  std::string Describe() const override;

 private:
  std::shared_ptr<const DataSource> images_;
  uint64_t seed_;
};

// Reads an IDX image file (magic 0x00000803, unsigned bytes, dimensions N × rows × cols),
// gzip-compressed when the name ends in .gz. Returns (rows·cols) × min(N, max_images) with
// column j = image j row-major, scaled to pixel/255. Throws InvalidArgument naming the file on a
// missing file, a bad magic number, dimensions above 2^20 images or 2^16 pixels per side, or
// truncated data.
Matrix ReadIdxImages(const std::string& path, int64_t max_images = -1);
// Reads an IDX label file (magic 0x00000801) as integers.
std::vector<int> ReadIdxLabels(const std::string& path, int64_t max_labels = -1);

// Where Debian's dataset-fashion-mnist puts the training images, and the install hint shown when
// it is absent.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kFashionMnistHint =
    "Fashion-MNIST is not installed; install it with `sudo scripts/setup.sh data` (Debian package "
    "dataset-fashion-mnist)";

}  // namespace scoresde
