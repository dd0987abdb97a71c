// `scoresde demo`: for now, the self-check of the closed-form references (the full demo — train,
// sample, likelihood, report — replaces it as the other modules land).
#include <chrono>
#include <cstdio>

#include "cli_common.hpp"
#include "commands.hpp"
#include "scoresde/sde/error.hpp"
#include "selfcheck.hpp"

namespace scoresde::cli {

void AddDemoCommand(CLI::App& app) {
  CLI::App* command = app.add_subcommand("demo", "Self-check of the closed-form references");
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print one JSON object with every check");
  command->callback([json] {
    const auto start = std::chrono::steady_clock::now();
    const auto checks = RunReferenceSelfCheck();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bool all = true;
    for (const auto& check : checks) all = all && check.passed();
    if (*json) {
      auto result = ToJson(checks);
      result["nfe"] = 0;
      result["seconds"] = seconds;
      PrintJson(result);
    } else {
      std::printf("scoresde self-check of the closed-form references\n");
      for (const auto& check : checks) {
        std::printf("  %-4s %-68s %.3g (tolerance %.3g)\n", check.passed() ? "ok" : "FAIL",
                    check.name.c_str(), check.value, check.tolerance);
      }
      std::printf("%zu checks, %s, %.2f s\n", checks.size(), all ? "all passed" : "SOME FAILED",
                  seconds);
    }
    if (!all) throw Error("self-check failed");
  });
}

}  // namespace scoresde::cli
