// The report folder of `scoresde demo`: CSV and JSON files behind every figure and table, the
// Markdown report, and the figures, which scripts/plot_report.py draws with matplotlib from those
// files (so they can be redrawn, or drawn later where matplotlib is installed, without rerunning
// anything).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace scoresde::cli {

// A table with named columns, written as CSV (a header line, then one line per row; numbers with
// 17 significant digits, so doubles round-trip; text cells must not contain commas or quotes).
class CsvTable {
 public:
  explicit CsvTable(std::vector<std::string> columns);
  // One row: cells are numbers or text, as many as there are columns (else InvalidArgument).
  void AddRow(const std::vector<nlohmann::json>& cells);
  std::string ToString() const;
  size_t num_rows() const { return rows_.size(); }

 private:
  std::vector<std::string> columns_;
  std::vector<std::string> rows_;
};

// A folder for one report: creates it and its figures/ subfolder. Files are written atomically.
class ReportFolder {
 public:
  // Throws Error if the folder cannot be created.
  explicit ReportFolder(std::string path);
  const std::string& path() const { return path_; }
  // path/name.
  std::string File(const std::string& name) const;
  void WriteText(const std::string& name, const std::string& text) const;
  void WriteJson(const std::string& name, const nlohmann::json& value) const;
  void WriteCsv(const std::string& name, const CsvTable& table) const;

 private:
  std::string path_;
};

// The figures the plotting script draws (figures/<name>.png) with their captions, in report order.
struct Figure {
  std::string name;
  std::string caption;
};
std::vector<Figure> ReportFigures(const nlohmann::json& report);

// What happened when the figures were drawn.
struct PlotOutcome {
  bool drawn = false;
  std::string python;   // the interpreter used (empty if none was found)
  std::string message;  // why not, or what the script printed on failure
};

// Copies the plotting script into the folder (so the folder can redraw its own figures) and runs
// it with a Python that has matplotlib: `python` if given, else $SCORESDE_PYTHON, /usr/bin/python3
// (Debian's, where python3-matplotlib installs), then `python3` on the PATH. Never throws for a
// missing interpreter or library: the outcome says what is missing and how to get it.
PlotOutcome DrawFigures(const ReportFolder& folder, const std::string& script,
                        const std::string& python);

// report.md from the report's JSON: every section with its tables and figures, and the commands
// that redraw the figures. `plots` says whether the figures exist.
std::string RenderReportMarkdown(const nlohmann::json& report, const PlotOutcome& plots);

}  // namespace scoresde::cli
