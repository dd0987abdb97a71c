#include "report.hpp"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "scoresde/scoring/array_io.hpp"
#include "scoresde/sde/error.hpp"

namespace scoresde::cli {
namespace {

std::string FormatCell(const nlohmann::json& cell) {
  if (cell.is_string()) {
    const std::string text = cell.get<std::string>();
    if (text.find_first_of(",\"\n") != std::string::npos) {
      throw InvalidArgument("CsvTable: cell = '" + text + "'; must not contain commas or quotes");
    }
    return text;
  }
  if (cell.is_number_integer()) return std::to_string(cell.get<int64_t>());
  if (cell.is_number()) {
    const double x = cell.get<double>();
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.17g", x);
    return buffer;
  }
  if (cell.is_boolean()) return cell.get<bool>() ? "true" : "false";
  if (cell.is_null()) return "nan";
  throw InvalidArgument("CsvTable: a cell must be a number, text or a boolean");
}

// A number for a table: 3 significant digits (4 for values that need them to differ).
std::string Num(const nlohmann::json& value, int digits = 3) {
  if (!value.is_number()) return value.is_null() ? "–" : value.dump();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  const double x = value.get<double>();
  if (std::isnan(x)) return "–";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*g", digits, x);
  return buffer;
}

std::string Quote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

int RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool HasMatplotlib(const std::string& python) {
  return RunShell(Quote(python) + " -c 'import matplotlib, numpy' >/dev/null 2>&1") == 0;
}

// Counts the checks of every section (sections hold "checks": [{..., "passed"}]).
void CountChecks(const nlohmann::json& node, int* passed, int* total) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "checks" && value.is_array()) {
        for (const auto& check : value) {
          ++*total;
          if (check.value("passed", false)) ++*passed;
        }
      } else {
        CountChecks(value, passed, total);
      }
    }
  }
}

void ChecksTable(std::ostringstream& md, const nlohmann::json& checks) {
  md << "| check | value | tolerance | result |\n|---|---|---|---|\n";
  for (const auto& c : checks) {
    md << "| " << c.at("check").get<std::string>() << " | " << Num(c.at("value")) << " | "
       << Num(c.at("tolerance")) << " | " << (c.at("passed").get<bool>() ? "pass" : "**FAIL**")
       << " |\n";
  }
  md << "\n";
}

}  // namespace

CsvTable::CsvTable(std::vector<std::string> columns) : columns_(std::move(columns)) {}

void CsvTable::AddRow(const std::vector<nlohmann::json>& cells) {
  if (cells.size() != columns_.size()) {
    throw InvalidArgument("CsvTable::AddRow: cells = " + std::to_string(cells.size()) +
                          "; must be " + std::to_string(columns_.size()));
  }
  std::string row;
  for (size_t i = 0; i < cells.size(); ++i) row += (i ? "," : "") + FormatCell(cells[i]);
  rows_.push_back(std::move(row));
}

std::string CsvTable::ToString() const {
  std::string text;
  for (size_t i = 0; i < columns_.size(); ++i) text += (i ? "," : "") + columns_[i];
  text += "\n";
  for (const std::string& row : rows_) text += row + "\n";
  return text;
}

ReportFolder::ReportFolder(std::string path) : path_(std::move(path)) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path_) / "figures", error);
  if (error) throw Error("report: cannot create " + path_ + "/figures: " + error.message());
}

std::string ReportFolder::File(const std::string& name) const {
  return (std::filesystem::path(path_) / name).string();
}

void ReportFolder::WriteText(const std::string& name, const std::string& text) const {
  WriteFileAtomically(File(name), text);
}

void ReportFolder::WriteJson(const std::string& name, const nlohmann::json& value) const {
  WriteText(name, value.dump(2) + "\n");
}

void ReportFolder::WriteCsv(const std::string& name, const CsvTable& table) const {
  WriteText(name, table.ToString());
}

std::vector<Figure> ReportFigures(const nlohmann::json& report) {
  std::vector<Figure> figures = {
      {"training_loss", "Training loss (batch mean per log interval, and the EMA model's loss on a "
                        "fixed evaluation batch)"},
      {"samples", "Held-out data and 2000 samples of each sampler (sliced W2 to the held-out data "
                  "in each title)"},
  };
  if (report.contains("score_field") && !report["score_field"].contains("skipped")) {
    figures.push_back({"score_field", "The learned score s(x, t) at four times (arrows: direction; "
                                      "colour: log10 |s|), over the held-out data"});
  }
  if (report.contains("verification")) {
    figures.push_back({"convergence", "Strong errors against step size on the harness's problems, "
                                      "with the fitted orders"});
    figures.push_back({"nfe_error", "NFE against error on a Gaussian with its exact score: the "
                                    "sampled law's Fréchet distance to p_ε (left), the probability "
                                    "flow's per-path error against the exact flow map (middle), "
                                    "likelihood error (right)"});
  }
  return figures;
}

PlotOutcome DrawFigures(const ReportFolder& folder, const std::string& script,
                        const std::string& python) {
  PlotOutcome outcome;
  std::error_code error;
  if (script.empty() || !std::filesystem::is_regular_file(script, error)) {
    outcome.message = "the plotting script " + (script.empty() ? std::string("(none)") : script) +
                      " was not found (pass --plot-script PATH to scripts/plot_report.py)";
    return outcome;
  }
  const std::string copy = folder.File("plot_report.py");
  std::filesystem::copy_file(script, copy, std::filesystem::copy_options::overwrite_existing,
                             error);
  if (error) {
    outcome.message = "cannot copy " + script + " into the report: " + error.message();
    return outcome;
  }
  std::vector<std::string> candidates;
  if (!python.empty()) {
    candidates.push_back(python);
  } else {
    if (const char* env = std::getenv("SCORESDE_PYTHON"); env != nullptr && *env != '\0') {
      candidates.push_back(env);
    }
    candidates.push_back("/usr/bin/python3");
    candidates.push_back("python3");
  }
  for (const std::string& candidate : candidates) {
    if (HasMatplotlib(candidate)) {
      outcome.python = candidate;
      break;
    }
  }
  if (outcome.python.empty()) {
    outcome.message = "no Python with matplotlib and numpy was found (tried";
    for (const std::string& c : candidates) outcome.message += " " + c;
    outcome.message += "); install them with `sudo bash scripts/setup.sh demo` (Debian's "
                       "python3-matplotlib), then run `python3 " + copy + " " + folder.path() + "`";
    return outcome;
  }
  const std::string log = folder.File("figures/plot.log");
  const int status =
      RunShell(Quote(outcome.python) + " " + Quote(copy) + " " + Quote(folder.path()) + " >" +
               Quote(log) + " 2>&1");
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  if (status != 0) {
    outcome.message = "the plotting script failed (exit " + std::to_string(status) + "): " +
                      text.str();
    return outcome;
  }
  std::filesystem::remove(log, error);
  outcome.drawn = true;
  return outcome;
}

std::string RenderReportMarkdown(const nlohmann::json& r, const PlotOutcome& plots) {
  std::ostringstream md;
  const auto figure = [&](const std::string& name) {
    for (const Figure& f : ReportFigures(r)) {
      if (f.name == name) md << "![" << f.caption << "](figures/" << name << ".png)\n\n*" << f.caption << ".*\n\n";
    }
  };
  int passed = 0, total = 0;
  CountChecks(r, &passed, &total);

  md << "# scoresde demo report\n\n";
  md << "`" << r.at("command").get<std::string>() << "` — " << Num(r.at("seconds"), 3)
     << " s on " << r.at("threads") << " thread(s), scoresde " << r.at("version").get<std::string>()
     << ". Every number below is in `report.json`; the data behind each figure and table is in "
        "the CSV/JSON file named beside it.\n\n";
  if (!plots.drawn) {
    md << "> **The figures were not drawn:** " << plots.message << "\n\n";
  }

  const auto& train = r.at("training");
  const auto& sampling = r.at("sampling");
  const auto& like = r.at("likelihood");
  md << "## Summary\n\n| | |\n|---|---|\n";
  md << "| data | " << train.at("data").get<std::string>() << ", d = " << train.at("dim") << " |\n";
  md << "| SDE | " << train.at("sde").dump() << " |\n";
  md << "| model | MLP, width " << train.at("model").at("width") << ", "
     << train.at("model").at("depth") << " SiLU layers, " << train.at("parameters")
     << " parameters, " << train.at("model").at("parameterization").get<std::string>()
     << " parameterization |\n";
  md << "| training | " << train.at("steps") << " steps of batch " << train.at("batch") << " in "
     << Num(train.at("seconds")) << " s (" << Num(train.at("steps_per_second")) << " steps/s) |\n";
  std::string best;
  double best_w2 = INFINITY;
  for (const auto& s : sampling.at("samplers")) {
    if (s.at("sliced_w2").get<double>() < best_w2) {
      best_w2 = s.at("sliced_w2").get<double>();
      best = s.at("label").get<std::string>();
    }
  }
  md << "| closest samples to held-out data | " << best << ": sliced W2 " << Num(best_w2)
     << " (two independent data samples: " << Num(sampling.at("floor")) << ") |\n";
  md << "| held-out NLL | " << Num(like.at("exact").at("bpd"), 4)
     << " bits/dim through the probability flow (exact divergence), "
     << Num(like.at("hutchinson").at("bpd"), 4) << " (Hutchinson) |\n";
  md << "| verification | " << passed << " of " << total << " checks passed |\n\n";

  md << "## 1. Training\n\n";
  figure("training_loss");
  md << "Denoising score matching (" << train.at("loss").get<std::string>() << "), Adam with lr "
     << Num(train.at("optimizer").at("lr")) << ", warm-up " << train.at("optimizer").at("warmup")
     << " steps, EMA " << Num(train.at("optimizer").at("ema")) << ", gradient clipping at "
     << Num(train.at("optimizer").at("clip")) << ". Final batch loss "
     << Num(train.at("final_loss")) << ", EMA model on the evaluation batch "
     << Num(train.at("final_eval_loss")) << ". The model is `model.safetensors` (use it with "
        "`scoresde sample --score` or `scoresde likelihood --score`); the curve is "
        "`training_loss.csv`.\n\n";

  md << "## 2. Samples\n\n";
  figure("samples");
  md << "| sampler | steps | NFE per sample | time (s) | sliced W2 to held-out data | file |\n"
        "|---|---|---|---|---|---|\n";
  for (const auto& s : sampling.at("samplers")) {
    md << "| " << s.at("label").get<std::string>() << " | " << s.at("steps") << " | "
       << s.at("nfe") << " | " << Num(s.at("seconds")) << " | " << Num(s.at("sliced_w2")) << " | `"
       << s.at("file").get<std::string>() << "` |\n";
  }
  md << "| two independent samples of the data (Monte-Carlo floor) | | | | "
     << Num(sampling.at("floor")) << " | `data_heldout.csv` |\n\n";
  md << "Sliced Wasserstein-2 over " << sampling.at("projections") << " directions between "
     << sampling.at("num_samples") << " samples and " << sampling.at("num_heldout")
     << " held-out points. The SDE samplers run from t = T to ε = " << Num(sampling.at("eps"))
     << "; predictor-only (2N steps), predictor–corrector (N levels, one Langevin step each, snr "
     << Num(sampling.at("snr")) << ") and corrector-only (2N) cost the same 2N score evaluations "
        "per sample, the comparison of the paper's Table 1. The Langevin step size uses E‖s_t‖² "
        "from a seeded pilot batch (docs/user-guide.md, \"Samplers\").\n\n";

  md << "## 3. Held-out likelihood\n\n";
  md << "| divergence | NLL (bits/dim) | NLL (nats) | NFE per point | time (s) |\n|---|---|---|---|---|\n";
  md << "| exact (d Jacobian–vector products) | " << Num(like.at("exact").at("bpd"), 4) << " | "
     << Num(like.at("exact").at("nll_nats"), 4) << " | " << Num(like.at("exact").at("nfe")) << " | "
     << Num(like.at("exact").at("seconds")) << " |\n";
  md << "| Hutchinson, 1 Rademacher probe | " << Num(like.at("hutchinson").at("bpd"), 4) << " | "
     << Num(like.at("hutchinson").at("nll_nats"), 4) << " | "
     << Num(like.at("hutchinson").at("nfe")) << " | " << Num(like.at("hutchinson").at("seconds"))
     << " |\n";
  if (like.contains("true_law")) {
    md << "| the data law's own density (the floor: cross-entropy ≥ entropy) | "
       << Num(like.at("true_law").at("bpd"), 4) << " | " << Num(like.at("true_law").at("nll_nats"), 4)
       << " | | |\n";
  }
  md << "\n" << like.at("points") << " held-out points, data time ε = " << Num(like.at("eps"))
     << ", RK45 at rtol = atol = 1e-5, prior N(0, σ_prior² I) — the paper's settings. Bits/dim "
        "of continuous 2-D data depend on its scale (no dequantization here). Per point: "
        "`likelihood_heldout.csv`.\n\n";
  ChecksTable(md, like.at("checks"));

  if (r.contains("score_field") && !r["score_field"].contains("skipped")) {
    md << "## 4. The score field\n\n";
    figure("score_field");
    md << "Data: `score_field.csv` (a " << r["score_field"].at("grid") << " × "
       << r["score_field"].at("grid") << " grid at each time).\n\n";
  }

  if (r.contains("verification")) {
    const auto& v = r.at("verification");
    md << "## 5. Verification against closed forms\n\n";
    md << "### 5.1 The references' self-check\n\n";
    ChecksTable(md, v.at("self_check").at("checks"));
    md << "### 5.2 Convergence orders (the harness)\n\n";
    figure("convergence");
    md << "| problem | solver | strong order [99% CI] | expected | weak order [99% CI] | expected |\n"
          "|---|---|---|---|---|---|\n";
    for (const auto& c : v.at("convergence").at("results")) {
      md << "| " << c.at("sde").get<std::string>() << " | " << c.at("solver").get<std::string>()
         << " | " << Num(c.at("strong_order")) << " [" << Num(c.at("strong_ci")[0]) << ", "
         << Num(c.at("strong_ci")[1]) << "] | " << Num(c.at("expected_strong")) << " | "
         << Num(c.at("weak_order")) << " [" << Num(c.at("weak_ci")[0]) << ", "
         << Num(c.at("weak_ci")[1]) << "] | " << Num(c.at("expected_weak")) << " |\n";
    }
    md << "\nEach grid is driven by the same Brownian path; errors against the exact solution "
          "(or a reference solve); order fits with Monte-Carlo and lack-of-fit errors "
          "(verification/include/scoresde/verification/convergence.hpp). Data: `convergence.csv`, "
          "`convergence.json`.\n\n";
    ChecksTable(md, v.at("convergence").at("checks"));
    md << "### 5.3 Likelihood exactness on a Gaussian\n\n";
    md << "| prior | rtol = atol | NFE per point | mean abs error (nats) | max abs error | "
          "mean abs (error − prior mismatch) |\n|---|---|---|---|---|---|\n";
    for (const auto& row : v.at("likelihood").at("rows")) {
      md << "| " << row.at("prior").get<std::string>() << " | " << Num(row.at("tolerance")) << " | "
         << Num(row.at("nfe")) << " | " << Num(row.at("mean_abs_error")) << " | "
         << Num(row.at("max_abs_error")) << " | "
         << (row.contains("mean_abs_error_minus_mismatch")
                 ? Num(row.at("mean_abs_error_minus_mismatch"))
                 : std::string("–"))
         << " |\n";
    }
    md << "\n" << v.at("likelihood").at("points")
       << " points of N((1, −0.5), [[0.5, 0.2], [0.2, 0.3]]) under the demo's SDE, exact "
          "divergence, against the exact log p_ε. \"exact\" prior: the true p_T; \"standard\": "
          "N(0, σ_prior² I), whose error is the closed-form mismatch log π(x_T) − log p_T(x_T) "
          "plus the solve's. Data: `likelihood_gaussian.csv`.\n\n";
    ChecksTable(md, v.at("likelihood").at("checks"));
    md << "### 5.4 NFE against error\n\n";
    figure("nfe_error");
    md << v.at("nfe_error").at("samples")
       << " samples per point from exact draws of p_T, exact score. The dashed line is the "
          "Fréchet distance of as many exact draws of p_ε (the Monte-Carlo floor: "
       << Num(v.at("nfe_error").at("floor"))
       << "). Data: `nfe_error.csv`.\n\n";
  }

  if (r.contains("verification") && r["verification"].contains("divergence_term")) {
    const auto& dt = r["verification"]["divergence_term"];
    md << "### 5.5 The divergence term under state-dependent diffusion\n\n";
    md << "Reverse-time sampling of X_0 ~ LogNormal((0, 0.5), diag(0.3², 0.2²)) under GBM "
          "(μ = 0, σ = 0.5, so G = diag(σx) and ∇·(GGᵀ) = 2σ²x) with its exact score, from exact "
          "draws of p_T, "
       << dt.at("steps") << " SRIW1 steps, " << dt.at("samples") << " samples:\n\n";
    md << "| ∇·(GGᵀ) in the reverse drift | coordinate | mean ln X_0 | exact | standard error | "
          "deviation / SE |\n|---|---|---|---|---|---|\n";
    for (const auto& row : dt.at("rows")) {
      md << "| " << row.at("divergence_term").get<std::string>() << " | " << row.at("coordinate")
         << " | " << Num(row.at("mean_log_x"), 4) << " | " << Num(row.at("exact"), 4) << " | "
         << Num(row.at("standard_error"), 2) << " | " << Num(row.at("z")) << " |\n";
    }
    md << "\nData: `divergence_term.csv`.\n\n";
    ChecksTable(md, dt.at("checks"));
  }

  md << "## Redrawing the figures\n\n```sh\npython3 " << "plot_report.py .   # in this folder; "
        "needs matplotlib (sudo bash scripts/setup.sh demo)\n```\n";
  return md.str();
}

}  // namespace scoresde::cli
