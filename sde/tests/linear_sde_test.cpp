#include "scoresde/sde/linear_sde.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

LinearSde::Options ExampleOptions() {
  Matrix f(2, 2);
  f << -1.0, 0.5, 0.0, -2.0;
  Vector c(2);
  c << 0.3, -0.1;
  return {f, c, [](double t) {
            Matrix g(2, 3);
            g << 1.0 + t, 0.0, 0.5, 0.2 * t, 1.0, -0.3;
            return g;
          },
          1.0};
}

TEST(LinearSde, DriftAndDiffusionProducts) {
  const LinearSde sde(ExampleOptions());
  EXPECT_EQ(sde.dim(), 2);
  EXPECT_EQ(sde.noise_dim(), 3);
  const Batch x = Batch::Random(2, 4);
  const Batch v3 = Batch::Random(3, 4);
  const Batch v2 = Batch::Random(2, 4);
  Batch out(2, 4);
  sde.Drift(x, 0.1, out);
  const Matrix expected = (ExampleOptions().drift_matrix * x).colwise() +
                          ExampleOptions().drift_offset;
  EXPECT_TRUE(out.isApprox(expected));
  const Matrix g = sde.DiffusionAt(0.7);
  sde.DiffusionTimes(x, 0.7, v3, out);
  EXPECT_TRUE(out.isApprox(g * v3));
  sde.DiffusionSquaredTimes(x, 0.7, v2, out);
  EXPECT_TRUE(out.isApprox(g * g.transpose() * v2));
  sde.DivergenceOfGGt(x, 0.7, out);
  EXPECT_TRUE(out.isZero(0.0));
  std::vector<Matrix> dg;
  sde.DiffusionJacobian(x.col(0), 0.7, &dg);
  ASSERT_EQ(dg.size(), 2u);
  EXPECT_TRUE(dg[1].isZero(0.0));
}

TEST(LinearSde, ColumnsDoNotDependOnTheirBatch) {
  const LinearSde sde(ExampleOptions());
  const Batch x = Batch::Random(2, 64);
  const Batch v = Batch::Random(3, 64);
  Batch f(2, 64), gv(2, 64), ggtx(2, 64), one(2, 1);
  sde.Drift(x, 0.3, f);
  sde.DiffusionTimes(x, 0.3, v, gv);
  sde.DiffusionSquaredTimes(x, 0.3, x, ggtx);
  for (int j : {0, 13, 63}) {
    sde.Drift(x.col(j), 0.3, one);
    EXPECT_EQ(one.col(0), f.col(j));
    sde.DiffusionTimes(x.col(j), 0.3, v.col(j), one);
    EXPECT_EQ(one.col(0), gv.col(j));
    sde.DiffusionSquaredTimes(x.col(j), 0.3, x.col(j), one);
    EXPECT_EQ(one.col(0), ggtx.col(j));
  }
}

TEST(LinearSde, ZeroOffsetByDefault) {
  auto options = ExampleOptions();
  options.drift_offset = Vector();
  const LinearSde sde(options);
  Batch x = Batch::Zero(2, 1), f(2, 1);
  sde.Drift(x, 0.0, f);
  EXPECT_TRUE(f.isZero(0.0));
}

TEST(LinearSde, InvalidOptionsNameThemselves) {
  auto bad = ExampleOptions();
  bad.drift_matrix = Matrix::Identity(2, 3);
  EXPECT_THAT([&] { LinearSde{bad}; },
              ThrowsMessage<InvalidArgument>(HasSubstr("drift_matrix has shape 2 x 3")));
  bad = ExampleOptions();
  bad.drift_offset = Vector::Ones(3);
  EXPECT_THAT([&] { LinearSde{bad}; },
              ThrowsMessage<InvalidArgument>(HasSubstr("drift_offset has shape 3 x 1")));
  bad = ExampleOptions();
  bad.diffusion = [](double) { return Matrix::Ones(3, 3); };
  EXPECT_THAT([&] { LinearSde{bad}; },
              ThrowsMessage<InvalidArgument>(HasSubstr("diffusion(0) has shape 3 x 3")));
  bad = ExampleOptions();
  bad.diffusion = nullptr;
  EXPECT_THAT([&] { LinearSde{bad}; }, ThrowsMessage<InvalidArgument>(HasSubstr("diffusion")));
  bad = ExampleOptions();
  bad.t_final = -2.0;
  EXPECT_THAT([&] { LinearSde{bad}; }, ThrowsMessage<InvalidArgument>(HasSubstr("t_final = -2")));
}

}  // namespace
}  // namespace scoresde
