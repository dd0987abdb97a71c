#include "scoresde/scoring/datasets.hpp"

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <fstream>
#include <mutex>
#include <numbers>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/random.hpp"

namespace scoresde {

std::string_view ToString(Toy2d set) {
  switch (set) {
    case Toy2d::kSwissRoll:
      return "swiss-roll";
    case Toy2d::kTwoMoons:
      return "two-moons";
    case Toy2d::kEightGaussians:
      return "eight-gaussians";
    case Toy2d::kCheckerboard:
      return "checkerboard";
    case Toy2d::kCircles:
      return "circles";
    case Toy2d::kPinwheel:
      return "pinwheel";
  }
  return "unknown";
}

const std::vector<Toy2d>& AllToy2d() {
  static const std::vector<Toy2d> kAll = {Toy2d::kSwissRoll,    Toy2d::kTwoMoons,
                                          Toy2d::kEightGaussians, Toy2d::kCheckerboard,
                                          Toy2d::kCircles,      Toy2d::kPinwheel};
  return kAll;
}

Toy2d ParseToy2d(std::string_view name) {
  for (Toy2d set : AllToy2d()) {
    if (name == ToString(set)) return set;
  }
  Require(false, "--dataset", "name", name,
          "swiss-roll, two-moons, eight-gaussians, checkerboard, circles, pinwheel or "
          "fashion-mnist");
  return Toy2d::kSwissRoll;
}

void SampleToy2d(Toy2d set, uint64_t seed, int64_t first, BatchRef out) {
  constexpr const char* kWhere = "SampleToy2d";
  CheckShape(kWhere, "out", out, 2, -1);
  Require(first >= 0, kWhere, "first", first, ">= 0");
  const int64_t n = out.cols();
  if (n == 0) return;
  const NoiseStream noise(seed, Stream::kData);
  Matrix u(3, n), z(2, n);
  noise.FillUniform(0, 0, first, u);
  noise.FillNormal(0, 1, first, z);
  constexpr double kPi = std::numbers::pi;
  for (int64_t j = 0; j < n; ++j) {
    const double u0 = u(0, j), u1 = u(1, j), u2 = u(2, j);
    const double n0 = z(0, j), n1 = z(1, j);
    double x = 0.0, y = 0.0;
    switch (set) {
      case Toy2d::kSwissRoll: {
        const double theta = 1.5 * kPi * (1.0 + 2.0 * u0);
        x = theta * std::cos(theta) / 5.0 + 0.1 * n0;
        y = theta * std::sin(theta) / 5.0 + 0.1 * n1;
        break;
      }
      case Toy2d::kTwoMoons: {
        const double a = kPi * u1;
        if (u0 < 0.5) {
          x = std::cos(a);
          y = std::sin(a);
        } else {
          x = 1.0 - std::cos(a);
          y = 0.5 - std::sin(a);
        }
        x = 2.0 * (x + 0.1 * n0) - 1.0;
        y = 2.0 * (y + 0.1 * n1) - 0.2;
        break;
      }
      case Toy2d::kEightGaussians: {
        const int k = std::min(7, static_cast<int>(8.0 * u0));
        const double a = 2.0 * kPi * k / 8.0;
        x = (4.0 * std::cos(a) + 0.5 * n0) / std::sqrt(2.0);
        y = (4.0 * std::sin(a) + 0.5 * n1) / std::sqrt(2.0);
        break;
      }
      case Toy2d::kCheckerboard: {
        const double x1 = 4.0 * u0 - 2.0;
        const double x2 = u1 - 2.0 * std::floor(2.0 * u2);
        const double parity = std::fmod(std::floor(x1), 2.0);
        x = 2.0 * x1;
        y = 2.0 * (x2 + (parity < 0 ? parity + 2.0 : parity));
        break;
      }
      case Toy2d::kCircles: {
        const double radius = u0 < 0.5 ? 1.0 : 0.5;
        const double a = 2.0 * kPi * u1;
        x = 3.0 * (radius * std::cos(a) + 0.08 * n0);
        y = 3.0 * (radius * std::sin(a) + 0.08 * n1);
        break;
      }
      case Toy2d::kPinwheel: {
        const int k = std::min(4, static_cast<int>(5.0 * u0));
        const double r = 1.0 + 0.3 * n0;
        const double tangential = 0.1 * n1;
        const double a = 2.0 * kPi * k / 5.0 + 0.25 * std::exp(r);
        x = 2.0 * (std::cos(a) * r - std::sin(a) * tangential);
        y = 2.0 * (std::sin(a) * r + std::cos(a) * tangential);
        break;
      }
    }
    out(0, j) = x;
    out(1, j) = y;
  }
}

std::string Toy2dDataSource::Describe() const {
  return std::string(ToString(set_)) + " (seed " + std::to_string(seed_) + ")";
}

// ---- Arrays --------------------------------------------------------------------------------------


struct ArrayDataSource::PermutationCache {
  std::mutex mutex;
  int64_t epoch = -1;
  std::vector<int64_t> permutation;
};

ArrayDataSource::~ArrayDataSource() = default;

ArrayDataSource::ArrayDataSource(Matrix data, uint64_t seed, std::string description)
    : data_(std::move(data)),
      seed_(seed),
      description_(std::move(description)),
      cache_(std::make_unique<PermutationCache>()) {
  Require(data_.rows() >= 1 && data_.cols() >= 1, "ArrayDataSource", "data.size()",
          static_cast<int64_t>(data_.size()), "at least one example of dimension >= 1");
  CheckFinite("ArrayDataSource", "data", data_);
}

std::vector<int64_t> ArrayDataSource::EpochPermutation(int64_t epoch) const {
  const int64_t n = data_.cols();
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  if (n < 2) return perm;
  Matrix u(1, n);
  NoiseStream(seed_, Stream::kShuffle).FillUniform(static_cast<uint64_t>(epoch), 0, 0, u);
  for (int64_t i = n - 1; i >= 1; --i) {
    const int64_t j = std::min<int64_t>(i, static_cast<int64_t>(u(0, i) * static_cast<double>(i + 1)));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

void ArrayDataSource::Fill(int64_t first, BatchRef out) const {
  CheckShape("ArrayDataSource::Fill", "out", out, data_.rows(), -1);
  Require(first >= 0, "ArrayDataSource::Fill", "first", first, ">= 0");
  const int64_t n = data_.cols();
  PermutationCache& cache = *cache_;
  std::lock_guard<std::mutex> lock(cache.mutex);
  for (int64_t j = 0; j < out.cols(); ++j) {
    const int64_t p = first + j;
    const int64_t epoch = p / n;
    if (epoch != cache.epoch) {
      cache.permutation = EpochPermutation(epoch);
      cache.epoch = epoch;
    }
    out.col(j) = data_.col(cache.permutation[p % n]);
  }
}

std::string ArrayDataSource::Describe() const {
  return description_ + " (" + std::to_string(data_.rows()) + " x " +
         std::to_string(data_.cols()) + ", shuffle seed " + std::to_string(seed_) + ")";
}

CallbackDataSource::CallbackDataSource(int dim, Function fill, std::string description)
    : dim_(dim), fill_(std::move(fill)), description_(std::move(description)) {
  Require(dim >= 1, "CallbackDataSource", "dim", dim, ">= 1");
  Require(static_cast<bool>(fill_), "CallbackDataSource", "fill", std::string("empty"),
          "callable");
}

void CallbackDataSource::Fill(int64_t first, BatchRef out) const {
  CheckShape("CallbackDataSource::Fill", "out", out, dim_, -1);
  Require(first >= 0, "CallbackDataSource::Fill", "first", first, ">= 0");
  fill_(first, out);
}

DequantizedDataSource::DequantizedDataSource(std::shared_ptr<const DataSource> images,
                                             uint64_t seed)
    : images_(std::move(images)), seed_(seed) {
  Require(images_ != nullptr, "DequantizedDataSource", "images", std::string("null"), "non-null");
}

void DequantizedDataSource::Fill(int64_t first, BatchRef out) const {
  images_->Fill(first, out);
  Matrix u(out.rows(), out.cols());
  NoiseStream(seed_, Stream::kData).FillUniform(1, 0, first, u);
  out = ((255.0 * out.array()).round() + u.array()) / 256.0;
}

std::string DequantizedDataSource::Describe() const {
  return images_->Describe() + ", dequantized (seed " + std::to_string(seed_) + ")";
}

// ---- IDX files -----------------------------------------------------------------------------------

namespace {

// The whole file, gunzipped when its name ends in .gz; at most max_bytes.
std::string ReadMaybeGzip(const std::string& path, size_t max_bytes) {
  constexpr const char* kWhere = "ReadIdx";
  std::error_code ec;
  Require(std::filesystem::is_regular_file(path, ec), kWhere, "path", path,
          "an existing regular file");
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::string bytes;
  if (!gz) {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    Require(bytes.size() <= max_bytes, kWhere, path, static_cast<int64_t>(bytes.size()),
            "at most " + std::to_string(max_bytes) + " bytes");
    return bytes;
  }
  gzFile file = gzopen(path.c_str(), "rb");
  Require(file != nullptr, kWhere, "path", path, "readable");
  char buffer[1 << 16];
  while (true) {
    const int n = gzread(file, buffer, sizeof(buffer));
    if (n < 0) {
      gzclose(file);
      Require(false, kWhere, path, std::string("corrupt gzip stream"), "a valid gzip file");
    }
    if (n == 0) break;
    bytes.append(buffer, n);
    if (bytes.size() > max_bytes) {
      gzclose(file);
      Require(false, kWhere, path, static_cast<int64_t>(bytes.size()),
              "at most " + std::to_string(max_bytes) + " bytes uncompressed");
    }
  }
  gzclose(file);
  return bytes;
}

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

Matrix ReadIdxImages(const std::string& path, int64_t max_images) {
  constexpr const char* kWhere = "ReadIdxImages";
  const std::string bytes = ReadMaybeGzip(path, size_t{1} << 32);
  Require(bytes.size() >= 16, kWhere, path, static_cast<int64_t>(bytes.size()),
          "at least 16 bytes (an IDX header)");
  const uint32_t magic = BigEndian32(bytes, 0);
  Require(magic == 0x00000803, kWhere, path + ": magic", static_cast<int64_t>(magic),
          "2051 (0x00000803: unsigned bytes, 3 dimensions)");
  const int64_t count = BigEndian32(bytes, 4), rows = BigEndian32(bytes, 8),
                cols = BigEndian32(bytes, 12);
  Require(count <= (int64_t{1} << 20), kWhere, path + ": images", count, "<= 2^20");
  Require(rows >= 1 && rows <= 65536 && cols >= 1 && cols <= 65536, kWhere, path + ": rows",
          rows * cols, "rows and cols in [1, 65536]");
  const int64_t pixels = rows * cols;
  Require(static_cast<int64_t>(bytes.size()) >= 16 + count * pixels, kWhere, path + ": bytes",
          static_cast<int64_t>(bytes.size()),
          ">= " + std::to_string(16 + count * pixels) + " (the file is truncated)");
  const int64_t n = max_images < 0 ? count : std::min(count, max_images);
  Matrix x(pixels, n);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data()) + 16;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < pixels; ++i) x(i, j) = data[j * pixels + i] / 255.0;
  }
  return x;
}

std::vector<int> ReadIdxLabels(const std::string& path, int64_t max_labels) {
  constexpr const char* kWhere = "ReadIdxLabels";
  const std::string bytes = ReadMaybeGzip(path, size_t{1} << 28);
  Require(bytes.size() >= 8, kWhere, path, static_cast<int64_t>(bytes.size()),
          "at least 8 bytes (an IDX header)");
  const uint32_t magic = BigEndian32(bytes, 0);
  Require(magic == 0x00000801, kWhere, path + ": magic", static_cast<int64_t>(magic),
          "2049 (0x00000801: unsigned bytes, 1 dimension)");
  const int64_t count = BigEndian32(bytes, 4);
  Require(static_cast<int64_t>(bytes.size()) >= 8 + count, kWhere, path + ": bytes",
          static_cast<int64_t>(bytes.size()), ">= " + std::to_string(8 + count));
  const int64_t n = max_labels < 0 ? count : std::min(count, max_labels);
  std::vector<int> labels(n);
  for (int64_t j = 0; j < n; ++j) labels[j] = static_cast<unsigned char>(bytes[8 + j]);
  return labels;
}

}  // namespace scoresde
