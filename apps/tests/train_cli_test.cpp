// End-to-end tests of `scoresde train`.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/datasets.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::RunCli;
using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const char* kSmall = "--width 16 --depth 2 --embed-dim 8 --batch 64 --block 32 --log-every 0";

TEST(TrainCli, TrainsABuiltInSetAndWritesAModelFile) {
  TempDir dir;
  const std::string out = dir / "moons.safetensors";
  const auto r = RunCli(std::string("train --dataset two-moons --sde vp --steps 30 --threads 2 ") +
                        kSmall + " --eval-every 30 --json --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("steps"), 30);
  EXPECT_EQ(j.at("out"), out);
  EXPECT_TRUE(j.at("final_loss").is_number());
  EXPECT_TRUE(j.at("final_eval_loss").is_number());
  EXPECT_TRUE(j.contains("seconds"));
  EXPECT_TRUE(j.contains("steps_per_second"));
  EXPECT_EQ(j.at("nfe"), 30 * 64);
  const ModelCheckpoint ck = LoadCheckpoint(out);
  EXPECT_EQ(ck.step, 30);
  EXPECT_EQ(ck.config.width, 16);
  EXPECT_EQ(ck.sde->family(), SdeFamily::kVp);
}

// --resume continues exactly: 12 steps, then 8 more, give the same file as 20 at once.
TEST(TrainCli, ResumeEqualsAnUninterruptedRunByteForByte) {
  TempDir dir;
  const std::string common = std::string("train --dataset pinwheel --sde ve --sde-param sigma_max=5 ") +
                             kSmall + " --param denoiser --loss dsm --seed 4 ";
  ASSERT_EQ(RunCli(common + "--steps 20 --out " + (dir / "straight.safetensors")).exit_code, 0);
  ASSERT_EQ(RunCli(common + "--steps 12 --out " + (dir / "part.safetensors")).exit_code, 0);
  const auto r = RunCli(common + "--steps 20 --threads 2 --resume " + (dir / "part.safetensors") +
                        " --out " + (dir / "resumed.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Slurp(dir / "straight.safetensors"), Slurp(dir / "resumed.safetensors"));
  // Different data on resume is refused.
  const auto wrong = RunCli(std::string("train --dataset swiss-roll --steps 20 --resume ") +
                            (dir / "part.safetensors") + " --out " + (dir / "x.safetensors"));
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("same data"));
}

TEST(TrainCli, TrainsOnFilesAndProblemsWithEveryLoss) {
  TempDir dir;
  {
    std::ofstream csv(dir / "data.csv");
    for (int i = 0; i < 50; ++i) csv << 0.1 * i << "," << -0.05 * i << "," << (i % 3) << "\n";
  }
  for (const char* loss : {"dsm", "ssm", "ssm-vr", "esm"}) {
    const auto r = RunCli(std::string("train --data ") + (dir / "data.csv") + " --loss " + loss +
                          " --steps 3 " + kSmall + " --json --out " + (dir / "m.safetensors"));
    EXPECT_EQ(r.exit_code, 0) << loss << r.err;
  }
  const std::string problem = std::string(SCORESDE_SOURCE_DIR) + "/verification/problems/gmm_2d.json";
  auto r = RunCli("train --problem " + problem + " --loss ddpm --steps 3 " + kSmall +
                  " --out " + (dir / "p.safetensors"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunCli("train --problem " + problem + " --sde ve --sde-param kernel=reference --loss ncsn "
             "--steps 3 " + kSmall + " --out " + (dir / "p.safetensors"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunCli("train --problem " + problem + " --sde subvp --weighting g2 --importance --steps 3 " +
             kSmall + " --precision float64 --out " + (dir / "p.safetensors"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(LoadCheckpoint(dir / "p.safetensors").float32);
}

TEST(TrainCli, RejectsBadInput) {
  TempDir dir;
  const std::string out = " --out " + (dir / "m.safetensors");
  auto r = RunCli("train --steps 1" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("exactly one of"));
  r = RunCli("train --dataset spiral --steps 1" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("two-moons"));
  r = RunCli("train --dataset two-moons --sde gbm --steps 1" + out);
  EXPECT_EQ(r.exit_code, 2);
  r = RunCli("train --dataset two-moons --loss ddpm --sde ve --steps 1" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("ddpm"));
  r = RunCli("train --dataset two-moons --importance --steps 1" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("importance_sampling"));
  r = RunCli("train --dataset two-moons --batch 0 --steps 1" + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("batch_size"));
  r = RunCli("train --dataset two-moons --steps 1 --resume " + (dir / "missing.safetensors") + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(RunCli("train --dataset two-moons --steps 1").exit_code, 0);  // --out is required
}

TEST(TrainCli, FashionMnistTrainsOrSaysHowToInstallIt) {
  TempDir dir;
  const auto r = RunCli(std::string("train --dataset fashion-mnist --max-examples 64 --steps 2 ") +
                        kSmall + " --out " + (dir / "f.safetensors"));
  if (std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(LoadCheckpoint(dir / "f.safetensors").config.dim, 784);
  } else {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr("scripts/setup.sh data"));
  }
}

}  // namespace
}  // namespace scoresde
