#include "scoresde/scoring/checkpoint.hpp"

#include <cstring>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scoresde/sde/error.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;

std::string WithHeader(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + data;
}

void ExpectRejected(const std::string& bytes, const std::string& substring) {
  try {
    ParseSafetensors(bytes, "test");
    ADD_FAILURE() << "accepted: " << substring;
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr(substring));
  }
}

ModelCheckpoint SampleCheckpoint(bool float32) {
  ModelCheckpoint ck;
  ck.config.dim = 3;
  ck.config.width = 8;
  ck.config.depth = 2;
  ck.config.embed_dim = 4;
  ck.config.parameterization = Parameterization::kDenoiser;
  ck.sde = std::make_shared<SubVpSde>(3, BetaSchedule{0.2, 15.0, 1.0});
  ck.float32 = float32;
  const MlpNetwork<double> net(ck.config, 5);
  ck.parameters = net.parameters();
  if (float32) ck.parameters = ck.parameters.cast<float>().cast<double>();
  ck.fourier = net.fourier_weights().cast<float>().cast<double>();
  ck.ema = ck.parameters * 0.5;
  ck.step = 42;
  ck.ema_updates = 42;
  return ck;
}

TEST(Safetensors, RoundTripsAndPadsTheHeader) {
  SafetensorsFile f;
  f.metadata["k"] = "v";
  f.tensors.push_back(MakeTensor("a", Eigen::VectorXd::LinSpaced(6, 0, 5), {2, 3}, true));
  f.tensors.push_back(MakeTensor("b", Eigen::VectorXd::Constant(1, 0.1), {}, false));
  const std::string bytes = SerializeSafetensors(f);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const SafetensorsFile g = ParseSafetensors(bytes);
  EXPECT_EQ(g.metadata.at("k"), "v");
  ASSERT_NE(g.Find("a"), nullptr);
  EXPECT_EQ(g.Find("a")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(TensorValues(*g.Find("a")), Eigen::VectorXd::LinSpaced(6, 0, 5));
  EXPECT_EQ(TensorValues(*g.Find("b"))(0), 0.1);
}

TEST(Safetensors, RejectsHostileHeaders) {
  const std::string four(4, '\0');
  ExpectRejected("1234", "truncated");
  ExpectRejected(WithHeader("{}", "") .substr(0, 9), "exceeds the file");
  {
    std::string huge(8, '\0');
    const uint64_t n = uint64_t{200} << 20;
    std::memcpy(huge.data(), &n, 8);
    ExpectRejected(huge + "{}", "100 MiB");
  }
  {
    std::string all(8, '\xff');
    ExpectRejected(all, "100 MiB");
  }
  ExpectRejected(WithHeader("[1]", ""), "JSON object");
  ExpectRejected(WithHeader("{\"a\":", ""), "not valid JSON");
  ExpectRejected(WithHeader(std::string(40, '{'), ""), "nests deeper");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            std::string(8, '\0')),
                 "duplicate name 'a'");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", four),
                 "unknown dtype");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four),
                 "need");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four),
                 "non-negative integer");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four),
                 "non-negative integer");
  ExpectRejected(
      WithHeader(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}})",
                 four),
      "overflow");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four),
                 "begin must not exceed end");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", ""),
                 "beyond the data buffer");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                            std::string(6, '\0')),
                 "overlap");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            std::string(8, '\0')),
                 "gap");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                            std::string(12, '\0')),
                 "cover it exactly");
  ExpectRejected(WithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})",
                            four),
                 "exactly dtype, shape and data_offsets");
  ExpectRejected(WithHeader(R"({"__metadata__":{"k":1}})", ""), "must be a string");
  ExpectRejected(WithHeader(R"({"a":[1,2]})", ""), "exactly dtype");
}

// Random byte flips and truncations of a valid file must load or throw InvalidArgument, never
// crash (run under the asan preset as well).
TEST(Safetensors, FuzzedFilesThrowOrLoad) {
  const std::string valid = SerializeSafetensors(CheckpointToSafetensors(SampleCheckpoint(true)));
  const NoiseStream noise(11, Stream::kUser);
  Matrix u(4, 1);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    noise.FillUniform(trial, 0, 0, u);
    std::string bytes = valid;
    if (trial % 3 == 0) {
      bytes.resize(static_cast<size_t>(u(0, 0) * valid.size()));
    } else {
      // Flip bytes, mostly in the header where the structure lives.
      const size_t region = trial % 3 == 1 ? std::min<size_t>(valid.size(), 400) : valid.size();
      const int flips = 1 + static_cast<int>(u(1, 0) * 4);
      for (int f = 0; f < flips; ++f) {
        Matrix v(2, 1);
        noise.FillUniform(trial, 1 + f, 0, v);
        const size_t at = std::min(region - 1, static_cast<size_t>(v(0, 0) * region));
        bytes[at] = static_cast<char>(static_cast<int>(v(1, 0) * 256));
      }
    }
    try {
      const SafetensorsFile f = ParseSafetensors(bytes, "fuzz");
      CheckpointFromSafetensors(f, "fuzz");
      ++loaded;
    } catch (const InvalidArgument&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(loaded + rejected, 1500);
}

TEST(Checkpoint, RoundTripsModelsAndSdes) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "scoresde_checkpoint_test.safetensors").string();
  for (bool float32 : {true, false}) {
    const ModelCheckpoint ck = SampleCheckpoint(float32);
    SaveCheckpoint(path, ck);
    const ModelCheckpoint back = LoadCheckpoint(path);
    EXPECT_EQ(back.float32, float32);
    EXPECT_EQ(back.parameters, ck.parameters);
    EXPECT_EQ(back.ema, ck.ema);
    EXPECT_EQ(back.fourier, ck.fourier);
    EXPECT_EQ(back.adam_m.size(), 0);
    EXPECT_EQ(back.step, 42);
    EXPECT_EQ(back.config.parameterization, Parameterization::kDenoiser);
    EXPECT_EQ(DescribeSde(*back.sde), DescribeSde(*ck.sde));
    const auto score = MakeScoreModel(back);
    EXPECT_EQ(score->is_float(), float32);
    EXPECT_EQ(score->dim(), 3);
  }
  std::filesystem::remove(path);
  VeSde::Options ve;
  ve.kernel = VeKernel::kReference;
  ve.sigma_max = 7.0;
  const VeSde sde(2, ve);
  const auto back = SdeFromDescription(DescribeSde(sde), 2);
  EXPECT_EQ(DescribeSde(*back), DescribeSde(sde));
  EXPECT_THROW(SdeFromDescription(R"({"family":"gbm"})", 2), InvalidArgument);
  EXPECT_THROW(SdeFromDescription(R"({"family":"vp","beta_min":0.1})", 2), InvalidArgument);
}

TEST(Checkpoint, RejectsForeignFiles) {
  SafetensorsFile f;
  f.tensors.push_back(MakeTensor("w", Eigen::VectorXd::Zero(2), {2}, true));
  EXPECT_THROW(CheckpointFromSafetensors(f, "x"), InvalidArgument);
  SafetensorsFile g = CheckpointToSafetensors(SampleCheckpoint(true));
  g.metadata["format"] = "other";
  EXPECT_THROW(CheckpointFromSafetensors(g, "x"), InvalidArgument);
  SafetensorsFile h = CheckpointToSafetensors(SampleCheckpoint(true));
  h.tensors.erase(h.tensors.begin());
  EXPECT_THROW(CheckpointFromSafetensors(h, "x"), InvalidArgument);
  EXPECT_THROW(LoadCheckpoint("/nonexistent/model.safetensors"), InvalidArgument);
}

}  // namespace
}  // namespace scoresde
