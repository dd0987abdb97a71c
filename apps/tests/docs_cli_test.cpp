// The docs' commands, run as written (ctest label `docs`).
//
// Every fenced ```sh (or ```bash) block of README.md and docs/*.md is run with bash
// (set -euo pipefail), block after block in one scratch folder per page, so later blocks can use
// what earlier ones wrote. The scratch folder looks like the repository root: it links every
// top-level entry of the source tree, and build/release is the build tree under test, so
// `build/release/apps/scoresde ...` and `verification/problems/...` work as written; `scoresde` is
// on the PATH, and so is Debian's /usr/bin/python3 (as on the Debian machines the docs are for).
//
// Not run here:
//   - blocks whose info string has a second word: ```sh heavy (long jobs, run by hand with their
//     output recorded next to them), ```sh setup (installs packages), ```sh gpu (needs a device);
//   - build, install and test commands (cmake, ctest, git, sudo, apt-get, `bash scripts/*.sh`,
//     the programs under build/*/verification and build/*/benchmarks, python3 benchmarks/...):
//     CI runs them itself (scripts/test.sh), and they would rebuild the tree under test.
//
// Also checked: the tutorial's C++ and CMake excerpts are verbatim parts of examples/consumer (which
// the install test builds and runs), and the user guide names every flag of every subcommand.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.hpp"

namespace scoresde {
namespace {

namespace fs = std::filesystem;
using ::scoresde::testing::RunCli;

struct CodeBlock {
  std::string info;  // the info string after the fence: "sh", "sh heavy", "cpp", ...
  std::string text;
  int line = 0;      // of the opening fence
};

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// Fenced code blocks (``` at the start of a line, possibly indented).
std::vector<CodeBlock> CodeBlocks(const std::string& markdown) {
  std::vector<CodeBlock> blocks;
  std::istringstream in(markdown);
  std::string line;
  int number = 0;
  CodeBlock* open = nullptr;
  while (std::getline(in, line)) {
    ++number;
    const std::string trimmed = Trim(line);
    if (trimmed.rfind("```", 0) == 0) {
      if (open == nullptr) {
        blocks.push_back({Trim(trimmed.substr(3)), "", number});
        open = &blocks.back();
      } else {
        open = nullptr;
      }
    } else if (open != nullptr) {
      open->text += line + "\n";
    }
  }
  return blocks;
}

bool IsShell(const CodeBlock& block) {
  const std::string first = block.info.substr(0, block.info.find(' '));
  return first == "sh" || first == "bash";
}

// Commands of a shell block, continuation lines joined, comment-only lines dropped.
std::vector<std::string> Commands(const std::string& text) {
  std::vector<std::string> commands;
  std::istringstream in(text);
  std::string line, current;
  while (std::getline(in, line)) {
    const std::string trimmed = Trim(line);
    if (current.empty() && (trimmed.empty() || trimmed[0] == '#')) continue;
    if (!trimmed.empty() && trimmed.back() == '\\') {
      current += trimmed.substr(0, trimmed.size() - 1) + " ";
      continue;
    }
    current += trimmed;
    commands.push_back(current);
    current.clear();
  }
  if (!Trim(current).empty()) commands.push_back(current);
  return commands;
}

// Build, install and test commands, which CI runs by itself (see the file comment).
bool IsBuildCommand(const std::string& command) {
  static const std::regex kBuild(
      R"(^(sudo |apt-get |apt |git |cmake |ctest |bash scripts/|scripts/|\./scripts/|)"
      R"(build/[^/ ]+/(verification|benchmarks|sde|solvers|scoring)/|python3 benchmarks/|)"
      R"(\.device/|nvidia-smi))");
  return std::regex_search(command, kBuild);
}

fs::path SourceDir() { return fs::path(SCORESDE_SOURCE_DIR); }
// The build tree under test: SCORESDE_CLI is <build>/apps/scoresde.
fs::path BuildDir() { return fs::path(SCORESDE_CLI).parent_path().parent_path(); }

std::vector<std::string> DocPages() {
  std::vector<std::string> pages = {"README.md"};
  std::vector<std::string> docs;
  for (const auto& entry : fs::directory_iterator(SourceDir() / "docs")) {
    if (entry.path().extension() == ".md") docs.push_back("docs/" + entry.path().filename().string());
  }
  std::sort(docs.begin(), docs.end());
  pages.insert(pages.end(), docs.begin(), docs.end());
  return pages;
}

// A scratch folder that looks like the repository root (see the file comment).
class Sandbox {
 public:
  Sandbox() {
    root_ = fs::temp_directory_path() / ("scoresde_docs_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::remove_all(root_);
    fs::create_directories(root_ / "build");
    fs::create_directories(root_ / ".bin");
    for (const auto& entry : fs::directory_iterator(SourceDir())) {
      const std::string name = entry.path().filename().string();
      if (name == "build" || name.rfind("build-", 0) == 0 || name == ".git") continue;
      fs::create_symlink(entry.path(), root_ / name);
    }
    fs::create_directory_symlink(BuildDir(), root_ / "build" / "release");
    if (fs::exists("/usr/bin/python3")) fs::create_symlink("/usr/bin/python3", root_ / ".bin" / "python3");
  }
  ~Sandbox() { fs::remove_all(root_); }
  const fs::path& root() const { return root_; }

  // Runs a script with bash in the sandbox; returns the exit code, output in *log.
  int Run(const std::string& script, std::string* log) const {
    const fs::path file = root_ / ".block.sh";
    std::ofstream(file) << "set -euo pipefail\n" << script;
    const std::string command = "cd '" + root_.string() + "' && PATH='" +
                                (root_ / ".bin").string() + ":" +
                                (BuildDir() / "apps").string() + ":'\"$PATH\" bash .block.sh > "
                                ".block.log 2>&1";
    const int status = std::system(command.c_str());
    *log = Slurp(root_ / ".block.log");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  static inline int counter_ = 0;
  fs::path root_;
};

class DocsCommands : public ::testing::TestWithParam<std::string> {};

TEST_P(DocsCommands, RunAsWritten) {
  const std::string page = GetParam();
  const std::vector<CodeBlock> blocks = CodeBlocks(Slurp(SourceDir() / page));
  const Sandbox sandbox;
  int run = 0, skipped = 0;
  for (const CodeBlock& block : blocks) {
    if (!IsShell(block)) continue;
    if (block.info.find(' ') != std::string::npos) {  // sh heavy / setup / gpu
      ++skipped;
      continue;
    }
    std::string script;
    for (const std::string& command : Commands(block.text)) {
      if (IsBuildCommand(command)) {
        ++skipped;
        continue;
      }
      script += command + "\n";
      ++run;
    }
    if (script.empty()) continue;
    std::string log;
    const int code = sandbox.Run(script, &log);
    EXPECT_EQ(code, 0) << page << ":" << block.line << ": the block failed:\n"
                       << script << "--- output ---\n" << log;
  }
  std::cout << page << ": ran " << run << " command(s), skipped " << skipped << "\n";
}

INSTANTIATE_TEST_SUITE_P(Pages, DocsCommands, ::testing::ValuesIn(DocPages()),
                         [](const ::testing::TestParamInfo<std::string>& page) {
                           std::string name = page.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// The tutorial shows the consumer's code in excerpts: each must be a verbatim part of
// examples/consumer (which the install test builds and runs), so the tutorial cannot drift.
TEST(DocsTutorial, ExcerptsAreVerbatimPartsOfTheConsumer) {
  const std::string md = Slurp(SourceDir() / "docs/tutorial-embedding.md");
  const std::string main = Slurp(SourceDir() / "examples/consumer/main.cpp");
  const std::string cmake = Slurp(SourceDir() / "examples/consumer/CMakeLists.txt");
  int checked = 0;
  for (const CodeBlock& block : CodeBlocks(md)) {
    if (block.info == "cpp") {
      EXPECT_NE(main.find(block.text), std::string::npos)
          << "tutorial-embedding.md:" << block.line << " is not in examples/consumer/main.cpp:\n"
          << block.text;
      ++checked;
    } else if (block.info == "cmake") {
      EXPECT_NE(cmake.find(block.text), std::string::npos)
          << "tutorial-embedding.md:" << block.line
          << " is not in examples/consumer/CMakeLists.txt:\n" << block.text;
      ++checked;
    }
  }
  EXPECT_GE(checked, 4);
}

// Every flag of every subcommand (from its --help) appears in the user guide.
TEST(DocsUserGuide, NamesEveryFlagOfEverySubcommand) {
  const std::string guide = Slurp(SourceDir() / "docs/user-guide.md");
  const auto top = RunCli("--help");
  ASSERT_EQ(top.exit_code, 0);
  const std::regex subcommand_line(R"(\n  ([a-z]+)  )");
  std::set<std::string> subcommands;
  for (std::sregex_iterator it(top.out.begin(), top.out.end(), subcommand_line), end; it != end;
       ++it) {
    subcommands.insert((*it)[1]);
  }
  ASSERT_GE(subcommands.size(), 7u) << top.out;
  const std::regex flag(R"((--[a-z][a-z0-9-]*))");
  for (const std::string& name : subcommands) {
    EXPECT_NE(guide.find("scoresde " + name), std::string::npos) << "subcommand " << name;
    const auto help = RunCli(name + " --help");
    ASSERT_EQ(help.exit_code, 0) << name;
    std::set<std::string> flags;
    for (std::sregex_iterator it(help.out.begin(), help.out.end(), flag), end; it != end; ++it) {
      flags.insert((*it)[1]);
    }
    for (const std::string& f : flags) {
      if (f == "--help") continue;
      EXPECT_NE(guide.find("`" + f), std::string::npos)
          << "docs/user-guide.md does not name `scoresde " << name << " " << f << "`";
    }
  }
}

}  // namespace
}  // namespace scoresde
