// Runs the scoresde program for end-to-end tests and captures what it prints.
#pragma once

#include <unistd.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace scoresde::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `scoresde <arguments>` through the shell (arguments are shell words).
inline CliResult RunCli(const std::string& arguments) {
  const std::filesystem::path err_path =
      std::filesystem::temp_directory_path() /
      ("scoresde_cli_stderr_" + std::to_string(::getpid()) + ".txt");
  const std::string command =
      std::string(SCORESDE_CLI) + " " + arguments + " 2>" + err_path.string();
  CliResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err_file(err_path);
  std::stringstream err;
  err << err_file.rdbuf();
  result.err = err.str();
  std::filesystem::remove(err_path);
  return result;
}

// The problem files shipped in verification/problems/.
inline const std::string kProblems = std::string(SCORESDE_SOURCE_DIR) + "/verification/problems/";

// Runs `scoresde <arguments> --json`, expects success and returns the parsed object (an empty one,
// after a failed expectation, when the command fails).
inline nlohmann::json RunCliJson(const std::string& arguments) {
  const CliResult result = RunCli(arguments + " --json");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  if (result.exit_code != 0) return {};
  return nlohmann::json::parse(result.out);
}

// A fresh temporary directory for one test, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("scoresde_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

}  // namespace scoresde::testing
