#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.hpp"

namespace scoresde {
namespace {

using ::testing::HasSubstr;
using testing::RunCli;

TEST(Cli, HelpListsEverySubcommand) {
  const auto result = RunCli("--help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* command : {"sample", "likelihood", "encode", "train", "verify", "bench", "demo"}) {
    EXPECT_THAT(result.out, HasSubstr(command));
  }
}

TEST(Cli, VersionAndUnknownCommands) {
  EXPECT_EQ(RunCli("--version").exit_code, 0);
  const auto unknown = RunCli("frobnicate");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(RunCli("").exit_code, 0);  // a subcommand is required
}

}  // namespace
}  // namespace scoresde
