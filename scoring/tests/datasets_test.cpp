#include "scoresde/scoring/datasets.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

TEST(Toy2d, EachExampleIsAFunctionOfItsIndex) {
  for (Toy2d set : AllToy2d()) {
    EXPECT_EQ(ParseToy2d(ToString(set)), set);
    Batch all(2, 50), a(2, 17), b(2, 33);
    SampleToy2d(set, 3, 100, all);
    SampleToy2d(set, 3, 100, a);
    SampleToy2d(set, 3, 117, b);
    EXPECT_EQ(all.leftCols(17), a) << ToString(set);
    EXPECT_EQ(all.rightCols(33), b) << ToString(set);
    EXPECT_TRUE(all.allFinite());
    Batch other(2, 50);
    SampleToy2d(set, 4, 100, other);
    EXPECT_NE(all, other);
  }
  EXPECT_THROW(ParseToy2d("spiral"), InvalidArgument);
  Batch wrong(3, 2);
  EXPECT_THROW(SampleToy2d(Toy2d::kCircles, 0, 0, wrong), InvalidArgument);
}

// Closed-form checks of two generators: the eight Gaussians have mean 0 and per-coordinate
// variance (16/2 + 0.25)/2 = 4.125 (centres on a circle of radius 4, noise 0.5, scaled by 1/√2);
// the checkerboard lives on the dark squares (⌊x/2⌋ + ⌊y/2⌋ even) of [−4, 4]². 5σ with
// n = 20000: the mean's standard error is sqrt(4.125/n).
TEST(Toy2d, MomentsAndSupport) {
  const int n = 20000;
  Batch x(2, n);
  SampleToy2d(Toy2d::kEightGaussians, 1, 0, x);
  const Eigen::Vector2d mean = x.rowwise().mean();
  EXPECT_LT(mean.cwiseAbs().maxCoeff(), 5.0 * std::sqrt(4.125 / n));
  const double var = (x.colwise() - mean).squaredNorm() / (2.0 * (n - 1));
  // Var of the variance estimate ≈ (E[x⁴] − σ⁴)/n ≤ 3σ⁴/n per coordinate (a loose kurtosis bound
  // for this light-tailed law): 5σ.
  EXPECT_NEAR(var, 4.125, 5.0 * std::sqrt(3.0 * 4.125 * 4.125 / (2.0 * n)));
  SampleToy2d(Toy2d::kCheckerboard, 1, 0, x);
  for (int j = 0; j < n; ++j) {
    ASSERT_LE(x.col(j).cwiseAbs().maxCoeff(), 4.0);
    const int cx = static_cast<int>(std::floor(x(0, j) / 2.0));
    const int cy = static_cast<int>(std::floor(x(1, j) / 2.0));
    ASSERT_EQ(((cx + cy) % 2 + 2) % 2, 0) << x.col(j).transpose();
  }
}

TEST(ArrayDataSource, VisitsEveryExampleOncePerEpoch) {
  Matrix data(1, 10);
  for (int i = 0; i < 10; ++i) data(0, i) = i;
  const ArrayDataSource source(data, 7);
  Batch x(1, 30);
  source.Fill(0, x);
  for (int e = 0; e < 3; ++e) {
    std::vector<double> seen(x.data() + 10 * e, x.data() + 10 * e + 10);
    std::sort(seen.begin(), seen.end());
    for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[i], i);
  }
  EXPECT_NE(x.leftCols(10), x.middleCols(10, 10));  // epochs are shuffled differently
  Batch y(1, 7);
  source.Fill(12, y);
  EXPECT_EQ(y, x.middleCols(12, 7));
  EXPECT_THROW(ArrayDataSource(Matrix(0, 3), 0), InvalidArgument);
  Matrix bad = data;
  bad(0, 3) = std::nan("");
  EXPECT_THROW(ArrayDataSource(bad, 0), InvalidArgument);
}

void WriteIdx(const std::string& path, uint32_t magic, const std::vector<uint32_t>& dims,
              const std::string& payload) {
  std::ofstream out(path, std::ios::binary);
  auto be = [&](uint32_t v) {
    const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.write(b, 4);
  };
  be(magic);
  for (uint32_t d : dims) be(d);
  out << payload;
}

TEST(Idx, ReadsAndRejects) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / "scoresde_idx_test-images-idx3-ubyte").string();
  std::string pixels;
  for (int i = 0; i < 2 * 6; ++i) pixels += static_cast<char>(i * 20);
  WriteIdx(path, 0x803, {2, 2, 3}, pixels);
  const Matrix x = ReadIdxImages(path);
  ASSERT_EQ(x.rows(), 6);
  ASSERT_EQ(x.cols(), 2);
  EXPECT_EQ(x(1, 1), 140.0 / 255.0);  // image 1, pixel 1 = byte 7
  EXPECT_EQ(ReadIdxImages(path, 1).cols(), 1);
  WriteIdx(path, 0x803, {3, 2, 3}, pixels);  // claims 3 images, holds 2
  EXPECT_THROW(ReadIdxImages(path), InvalidArgument);
  WriteIdx(path, 0x801, {2}, "ab");
  EXPECT_THROW(ReadIdxImages(path), InvalidArgument);
  EXPECT_EQ(ReadIdxLabels(path), (std::vector<int>{'a', 'b'}));
  std::filesystem::remove(path);
  EXPECT_THROW(ReadIdxImages((dir / "no-such-file.gz").string()), InvalidArgument);
}

TEST(Idx, ReadsDebiansFashionMnistWhenInstalled) {
  const std::string path = std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << kFashionMnistHint;
  const Matrix x = ReadIdxImages(path, 100);
  EXPECT_EQ(x.rows(), 784);
  EXPECT_EQ(x.cols(), 100);
  EXPECT_GE(x.minCoeff(), 0.0);
  EXPECT_LE(x.maxCoeff(), 1.0);
  EXPECT_EQ(ReadIdxLabels(std::string(kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz", 5).size(),
            5u);
}

// (255 x + u)/256 with x = k/255 lies in [k/256, (k + 1)/256).
TEST(DequantizedDataSource, SpreadsEachLevelOverItsBin) {
  Matrix data(3, 4);
  data << 0, 1, 2, 3, 255, 254, 128, 7, 10, 20, 30, 40;
  data /= 255.0;
  auto images = std::make_shared<ArrayDataSource>(data, 1);
  const DequantizedDataSource dq(images, 2);
  Batch raw(3, 8), x(3, 8);
  images->Fill(0, raw);
  dq.Fill(0, x);
  for (int i = 0; i < x.size(); ++i) {
    const double k = std::round(raw(i) * 255.0);
    EXPECT_GE(x(i), k / 256.0);
    EXPECT_LT(x(i), (k + 1) / 256.0);
  }
}

}  // namespace
}  // namespace scoresde
