#include "scoresde/verification/problem.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

std::string ProblemPath(const std::string& name) {
  return std::string(SCORESDE_PROBLEMS_DIR) + "/" + name;
}

// Throws InvalidArgument whose message contains `what`.
void ExpectRejected(const std::string& json, const std::string& what) {
  EXPECT_THAT([&] { ParseProblem(json, "test.json"); },
              ThrowsMessage<InvalidArgument>(HasSubstr(what)))
      << json.substr(0, 200);
}

TEST(LoadProblem, ExampleFiles) {
  const Problem g2 = LoadProblem(ProblemPath("gaussian_2d.json"));
  EXPECT_EQ(g2.type, Problem::Type::kGaussian);
  EXPECT_EQ(g2.dim(), 2);
  ASSERT_TRUE(g2.mixture.has_value());
  EXPECT_EQ(g2.mixture->num_components(), 1);
  EXPECT_EQ(g2.mixture->mean(0)(1), -0.5);
  EXPECT_EQ(g2.mixture->cov(0)(0, 1), 0.3);

  const Problem gmm = LoadProblem(ProblemPath("gmm_2d.json"));
  EXPECT_EQ(gmm.type, Problem::Type::kGmm);
  EXPECT_EQ(gmm.dim(), 2);
  ASSERT_EQ(gmm.mixture->num_components(), 3);
  EXPECT_EQ(gmm.mixture->weight(2), 0.2);
  EXPECT_EQ(gmm.mixture->cov(1)(0, 1), -0.1);

  const Problem g5 = LoadProblem(ProblemPath("gaussian_5d.json"));
  EXPECT_EQ(g5.dim(), 5);
  EXPECT_EQ(g5.mixture->cov(0)(2, 4), -0.2);

  const Problem ln = LoadProblem(ProblemPath("lognormal_2d.json"));
  EXPECT_EQ(ln.type, Problem::Type::kLogNormal);
  EXPECT_FALSE(ln.mixture.has_value());
  EXPECT_EQ(ln.dim(), 2);
  EXPECT_EQ(ln.m0(1), 0.5);
  EXPECT_EQ(ln.s0(0), 0.3);
}

TEST(ParseProblem, DiagonalForms) {
  const Problem g = ParseProblem(R"({"type":"gaussian","mean":[0,1,2],"std":[1,2,0.5]})");
  EXPECT_EQ(g.mixture->cov(0)(1, 1), 4.0);
  EXPECT_EQ(g.mixture->cov(0)(2, 2), 0.25);
  EXPECT_EQ(g.mixture->cov(0)(0, 1), 0.0);
  const Problem m =
      ParseProblem(R"({"type":"gmm","weights":[0.25,0.75],"means":[[0],[3]],"stds":[[1],[0.5]]})");
  EXPECT_EQ(m.mixture->num_components(), 2);
  EXPECT_EQ(m.mixture->cov(1)(0, 0), 0.25);
}

TEST(ParseProblem, RejectsMalformedText) {
  ExpectRejected("", "test.json: text is not valid JSON");
  ExpectRejected("not json", "not valid JSON");
  ExpectRejected(R"({"type":"gaussian","mean":[NaN],"std":[1]})", "not valid JSON");
  ExpectRejected(R"({"type":"gaussian","mean":[1e400],"std":[1]})", "not valid JSON");
  ExpectRejected(R"({"type":"gaussian","mean":[0],"std":[1]} trailing)", "not valid JSON");
  ExpectRejected("{\"type\":\"\xff\"}", "not valid JSON");
  ExpectRejected(std::string(100000, '['), "nesting depth");
  ExpectRejected("[1, 2]", "top level = array of 2; must be a JSON object");
  ExpectRejected("42", "top level");
}

TEST(ParseProblem, RejectsBadStructure) {
  ExpectRejected(R"({"mean":[0],"std":[1]})", "type = missing");
  ExpectRejected(R"({"type":3,"mean":[0],"std":[1]})", "type = 3; must be a string");
  ExpectRejected(R"({"type":"cauchy"})", R"(type = "cauchy"; must be one of)");
  ExpectRejected(R"({"type":"gaussian","mean":[0],"std":[1],"extra":1})", "key \"extra\"");
  ExpectRejected(R"({"type":"gaussian","std":[1]})", "mean = missing");
  ExpectRejected(R"({"type":"gaussian","mean":0,"std":[1]})", "mean = 0; must be an array");
  ExpectRejected(R"({"type":"gaussian","mean":[],"std":[]})", "mean = array of 0");
  ExpectRejected(R"({"type":"gaussian","mean":[0,"a"],"std":[1,1]})", "mean[1] = \"a\"");
  ExpectRejected(R"({"type":"gaussian","mean":[0,true],"std":[1,1]})", "mean[1] = true");
  ExpectRejected(R"({"type":"gaussian","mean":[0,null],"std":[1,1]})", "mean[1] = null");
  ExpectRejected(R"({"type":"gaussian","mean":[0,1]})", "cov = missing");
  ExpectRejected(R"({"type":"gaussian","mean":[0],"cov":[[1]],"std":[1]})",
                 "cov = given together with \"std\"");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"cov":[[1,0],[0]]})", "cov[1] = array of 1");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"cov":[[1,0]]})", "cov = array of 1");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"cov":[[1,0],[0,{}]]})", "cov[1][1] = object");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"std":[1]})", "std = array of 1");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"std":[1,-2]})", "std[1] = -2; must be > 0");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"std":[1,0]})", "std[1] = 0");
  ExpectRejected(R"({"type":"gaussian","mean":[1e200],"std":[1]})",
                 "mean[0] = 1e+200; must be finite with magnitude <= 1e100");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"cov":[[1,2],[2,1]]})",
                 "smallest eigenvalue of covs[0]");
  ExpectRejected(R"({"type":"gaussian","mean":[0,0],"cov":[[1,0.5],[0,1]]})", "covs[0]");
}

TEST(ParseProblem, RejectsBadMixtures) {
  ExpectRejected(R"({"type":"gmm","weights":[0.5,0.5],"means":[[0],[1]]})", "covs = missing");
  ExpectRejected(R"({"type":"gmm","weights":[0.5,0.5],"means":[[0]],"stds":[[1],[1]]})",
                 "means = array of 1");
  ExpectRejected(R"({"type":"gmm","weights":[0.5,0.5],"means":[[0],[1,2]],"stds":[[1],[1]]})",
                 "means[1] = array of 2");
  ExpectRejected(R"({"type":"gmm","weights":[0.5,0.5],"means":[[0],[1]],"stds":[[1]]})",
                 "stds = array of 1");
  ExpectRejected(R"({"type":"gmm","weights":[0.5,0.5],"means":[[0],[1]],"stds":[[1],[1,2]]})",
                 "stds[1] = array of 2");
  ExpectRejected(R"({"type":"gmm","weights":[0.5,0.6],"means":[[0],[1]],"stds":[[1],[1]]})",
                 "sum(weights) = 1.1");
  ExpectRejected(R"({"type":"gmm","weights":[1.5,-0.5],"means":[[0],[1]],"stds":[[1],[1]]})",
                 "weights[1] = -0.5");
  ExpectRejected(R"({"type":"gmm","weights":[],"means":[],"stds":[]})", "weights = array of 0");
  ExpectRejected(R"({"type":"gmm","weights":[1],"means":[[0]],"covs":[[[1]]],"stds":[[1]]})",
                 "covs = given together with \"stds\"");
  ExpectRejected(R"({"type":"gmm","weights":[1],"means":[[0,0]],"covs":[[[1,0],[0,1,2]]]})",
                 "covs[0][1] = array of 3");
}

TEST(ParseProblem, RejectsBadLogNormal) {
  ExpectRejected(R"({"type":"lognormal","m0":[0]})", "s0 = missing");
  ExpectRejected(R"({"type":"lognormal","m0":[0,1],"s0":[1]})", "s0 = array of 1");
  ExpectRejected(R"({"type":"lognormal","m0":[0],"s0":[0]})", "s0[0] = 0; must be > 0");
  ExpectRejected(R"({"type":"lognormal","m0":[800],"s0":[1]})", "m0[0] = 800");
  ExpectRejected(R"({"type":"lognormal","m0":[0],"s0":[1],"mean":[0]})", "key \"mean\"");
}

TEST(ParseProblem, RejectsHugeDimensions) {
  std::string zeros = "0";
  for (int i = 0; i < 100000; ++i) zeros += ",0";  // 100001 entries
  ExpectRejected(R"({"type":"lognormal","m0":[)" + zeros + R"(],"s0":[1]})",
                 "m0 = array of 100001; must be an array of 1 to 100000 numbers");
  // A diagonal Gaussian of dimension 5000 would need a dense 5000² covariance (> 2^24 entries).
  std::string ones = "1";
  for (int i = 1; i < 5000; ++i) ones += ",1";
  std::string mean = "0";
  for (int i = 1; i < 5000; ++i) mean += ",0";
  ExpectRejected(R"({"type":"gaussian","mean":[)" + mean + R"(],"std":[)" + ones + "]}",
                 "covariance entries for \"std\"");
}

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("scoresde_problem_test_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(LoadProblem, RejectsBadFiles) {
  const TempDir dir;
  EXPECT_THAT([&] { LoadProblem(dir.File("missing.json")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("missing.json: file = not found")));
  EXPECT_THAT([&] { LoadProblem(dir.File("")); },
              ThrowsMessage<InvalidArgument>(HasSubstr("not a regular file")));
  // A sparse file just over 64 MiB: rejected from its size, before reading.
  const std::string big = dir.File("big.json");
  { std::ofstream(big) << "{"; }
  std::filesystem::resize_file(big, (uint64_t{64} << 20) + 1);
  EXPECT_THAT(
      [&] { LoadProblem(big); },
      ThrowsMessage<InvalidArgument>(HasSubstr("size in bytes = 67108865; must be <= 64 MiB")));
  const std::string bad = dir.File("bad.json");
  { std::ofstream(bad) << R"({"type":"gaussian","mean":[0],"std":[-1]})"; }
  EXPECT_THAT([&] { LoadProblem(bad); },
              ThrowsMessage<InvalidArgument>(HasSubstr("bad.json: std[0] = -1")));
}

// Every prefix of a valid file and every single-byte corruption either parses or throws
// InvalidArgument: nothing else escapes (and nothing crashes).
TEST(ParseProblem, CorruptedFilesNeverEscapeAsOtherErrors) {
  std::ifstream in(ProblemPath("gmm_2d.json"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  auto attempt = [](const std::string& s) {
    try {
      ParseProblem(s, "fuzz");
    } catch (const InvalidArgument&) {
    }
  };
  for (size_t n = 0; n < text.size(); ++n) EXPECT_NO_THROW(attempt(text.substr(0, n)));
  const char replacements[] = {'[', ']', '{', '}', ',', '"', '-', 'e', '0', '9', ' ', '\0', '\\'};
  for (size_t i = 0; i < text.size(); ++i) {
    for (char c : replacements) {
      std::string corrupted = text;
      corrupted[i] = c;
      EXPECT_NO_THROW(attempt(corrupted)) << "byte " << i << " -> " << int(c);
    }
  }
}

}  // namespace
}  // namespace scoresde
