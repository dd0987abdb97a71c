#include "scoresde/sde/check.hpp"

#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace scoresde {
namespace {

using ::testing::HasSubstr;

TEST(Check, RequireNamesParameterValueAndConstraint) {
  try {
    Require(false, "PcSampler::Options", "snr", -0.1, "> 0");
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "PcSampler::Options: snr = -0.1; must be > 0");
  }
  EXPECT_NO_THROW(Require(true, "X", "y", 1.0, "> 0"));
}

TEST(Check, RequirePositiveRejectsNanAndZero) {
  EXPECT_THROW(RequirePositive("X", "y", 0.0), InvalidArgument);
  EXPECT_THROW(RequirePositive("X", "y", std::numeric_limits<double>::quiet_NaN()),
               InvalidArgument);
  EXPECT_THROW(RequireFinite("X", "y", std::numeric_limits<double>::infinity()), InvalidArgument);
  EXPECT_NO_THROW(RequirePositive("X", "y", 1e-300));
}

TEST(Check, ShapeMessageGivesBothShapes) {
  const Matrix m(2, 3);
  EXPECT_NO_THROW(CheckShape("F", "x", m, 2, 3));
  EXPECT_NO_THROW(CheckShape("F", "x", m, 2, -1));
  try {
    CheckShape("F", "x", m, 3, -1);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("x has shape 2 x 3; must be 3 x any"));
  }
}

TEST(Check, FindsFirstNonFiniteColumnMajor) {
  Matrix m = Matrix::Zero(3, 4);
  EXPECT_FALSE(FindNonFinite(m).has_value());
  m(2, 3) = std::numeric_limits<double>::infinity();
  m(1, 2) = std::numeric_limits<double>::quiet_NaN();
  const auto bad = FindNonFinite(m);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->row, 1);
  EXPECT_EQ(bad->col, 2);
  EXPECT_THROW(CheckFinite("F", "x", m), InvalidArgument);
}

TEST(Check, SolveFailureCarriesLocation) {
  Matrix m = Matrix::Zero(4, 5);
  m(3, 2) = std::numeric_limits<double>::quiet_NaN();
  try {
    CheckFiniteDuringSolve("PcSampler::Sample", "score", m, 412, 0.588, 15);
    FAIL() << "no throw";
  } catch (const NumericalFailure& e) {
    EXPECT_EQ(e.step(), 412);
    EXPECT_DOUBLE_EQ(e.t(), 0.588);
    EXPECT_EQ(e.sample(), 17);
    EXPECT_EQ(e.coordinate(), 3);
    EXPECT_THAT(e.what(), HasSubstr("score is nan at step 412 (t = 0.588), sample 17, "
                                    "coordinate 3"));
  }
}

}  // namespace
}  // namespace scoresde
