#include "demo.hpp"

#include <chrono>
#include <sstream>

#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {
namespace {

// The command line that reproduces a run.
std::string CommandLine(const DemoOptions& o) {
  std::ostringstream line;
  line << "scoresde demo";
  if (!o.problem.empty()) {
    line << " --problem " << o.problem;
  } else if (!o.data.empty()) {
    line << " --data " << o.data;
  } else {
    line << " --dataset " << o.dataset;
  }
  line << " --sde " << o.sde.name;
  for (const std::string& p : o.sde.params) line << " --sde-param " << p;
  line << " --train-steps " << o.train_steps << " --steps " << o.steps << " --n " << o.num_samples
       << " --seed " << o.seed << " --threads " << o.threads << " --out " << o.out;
  if (!o.verify) line << " --no-verify";
  return line.str();
}

// Collects the failed checks of every section.
void FailedChecks(const nlohmann::json& node, std::vector<std::string>* failed) {
  if (!node.is_object()) return;
  for (const auto& [key, value] : node.items()) {
    if (key == "checks" && value.is_array()) {
      for (const auto& check : value) {
        if (!check.value("passed", false)) failed->push_back(check.value("check", "?"));
      }
    } else {
      FailedChecks(value, failed);
    }
  }
}

}  // namespace

void DemoOptions::Validate() const {
  constexpr const char* kWhere = "scoresde demo";
  const int sources = !problem.empty() + !data.empty();
  Require(sources <= 1, kWhere, "data source", sources,
          "at most one of --problem and --data (without them, --dataset)");
  Require(train_steps >= 1 && train_steps <= (int64_t{1} << 31), kWhere, "--train-steps",
          train_steps, "in [1, 2^31]");
  Require(batch >= 1 && batch <= (1 << 20), kWhere, "--batch", batch, "in [1, 2^20]");
  Require(width >= 1 && width <= 65536, kWhere, "--width", width, "in [1, 65536]");
  Require(depth >= 1 && depth <= 64, kWhere, "--depth", depth, "in [1, 64]");
  Require(steps >= 1 && steps <= 1000000, kWhere, "--steps", steps, "in [1, 10^6]");
  Require(num_samples >= 2 && num_samples <= 10000000, kWhere, "--n", num_samples,
          "in [2, 10^7]");
  Require(num_heldout >= 2 && num_heldout <= 10000000, kWhere, "--heldout", num_heldout,
          "in [2, 10^7]");
  Require(likelihood_points >= 2 && likelihood_points <= 10000000, kWhere, "--likelihood-points",
          likelihood_points, "in [2, 10^7]");
  Require(threads >= 1 && threads <= 1024, kWhere, "--threads", threads, "in [1, 1024]");
  Require(!out.empty(), kWhere, "--out", std::string_view(out), "a folder name");
}

nlohmann::json RunDemo(const DemoOptions& o, const DemoLog& log) {
  o.Validate();
  const auto start = std::chrono::steady_clock::now();
  const int sections = o.verify ? 10 : 5;
  int section = 0;
  const DemoLog step = [&](const std::string& line) {
    log("[" + std::to_string(++section) + "/" + std::to_string(sections) + "] " + line);
  };
  const DemoLog detail = [&](const std::string& line) { log("      " + line); };

  const DemoData data = LoadDemoData(o);
  const ReportFolder folder(o.out);
  nlohmann::json report = {{"command", CommandLine(o)},
                           {"version", SCORESDE_VERSION},
                           {"threads", o.threads},
                           {"seed", o.seed},
                           {"data", data.description}};

  step("training on " + data.train->Describe());
  TrainedModel model;
  report["training"] = TrainSection(o, data, folder, detail, &model);
  step("sampling");
  report["sampling"] = SamplingSection(o, data, model, folder, detail);
  step("held-out likelihood");
  report["likelihood"] = LikelihoodSection(o, data, model, folder, detail);
  step("score field");
  report["score_field"] = ScoreFieldSection(o, data, model, folder);
  if (o.verify) {
    nlohmann::json verification;
    step("self-check of the closed-form references");
    verification["self_check"] = SelfCheckSection();
    step("convergence orders");
    verification["convergence"] = ConvergenceSection(o, folder, detail);
    step("likelihood exactness on a Gaussian");
    verification["likelihood"] = GaussianLikelihoodSection(o, folder, detail);
    step("NFE against error on a Gaussian");
    verification["nfe_error"] = NfeErrorSection(o, folder, detail);
    step("the divergence term under state-dependent diffusion");
    verification["divergence_term"] = DivergenceTermSection(o, folder, detail);
    report["verification"] = verification;
  }
  step("report and figures");
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  folder.WriteJson("report.json", report);

  PlotOutcome plots;
  if (o.plots) {
    const std::string script =
        o.plot_script.empty() ? std::string(SCORESDE_SOURCE_DIR) + "/scripts/plot_report.py"
                              : o.plot_script;
    plots = DrawFigures(folder, script, o.python);
    if (!plots.drawn) detail("figures not drawn: " + plots.message);
  } else {
    plots.message = "--no-plots was given; draw them with `python3 plot_report.py .` in the folder";
  }
  folder.WriteText("report.md", RenderReportMarkdown(report, plots));
  report["figures_drawn"] = plots.drawn;
  if (!plots.drawn) report["figures_message"] = plots.message;
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  folder.WriteJson("report.json", report);
  log("wrote " + folder.File("report.md") + " (" + std::to_string(static_cast<int>(
          report["seconds"].get<double>())) + " s)");

  std::vector<std::string> failed;
  FailedChecks(report, &failed);
  if (!failed.empty()) {
    std::string message = "demo: " + std::to_string(failed.size()) + " check(s) failed:";
    for (const std::string& f : failed) message += "\n  " + f;
    throw Error(message + "\n(see " + folder.File("report.md") + ")");
  }
  return report;
}

}  // namespace scoresde::cli
