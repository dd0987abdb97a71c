#include "cli_common.hpp"

#include <charconv>
#include <iostream>
#include <map>
#include <set>

#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/gbm_sde.hpp"
#include "scoresde/sde/subvp_sde.hpp"
#include "scoresde/sde/ve_sde.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/lognormal_reference.hpp"

namespace scoresde::cli {

void AddSdeFlags(CLI::App* command, SdeFlags* flags) {
  command->add_option("--sde", flags->name, "SDE family: ve, vp, subvp or gbm")
      ->check(CLI::IsMember({"ve", "vp", "subvp", "gbm"}))
      ->capture_default_str();
  command->add_option("--sde-param", flags->params,
                      "SDE parameter key=value (repeatable): sigma_min, sigma_max, kernel "
                      "(exact|reference), beta_min, beta_max, mu, sigma, T, eps, N");
}

namespace {

double ParseNumber(const std::string& key, const std::string& text) {
  double value = 0.0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    throw InvalidArgument("--sde-param: " + key + " = '" + text + "'; must be a number");
  }
  return value;
}

}  // namespace

SdeChoice MakeSde(const SdeFlags& flags, int dim, double default_eps) {
  static const std::map<std::string, std::set<std::string>> kKeys = {
      {"ve", {"sigma_min", "sigma_max", "kernel", "T", "eps", "N"}},
      {"vp", {"beta_min", "beta_max", "T", "eps", "N"}},
      {"subvp", {"beta_min", "beta_max", "T", "eps", "N"}},
      {"gbm", {"mu", "sigma", "T", "eps", "N"}},
  };
  const auto family = kKeys.find(flags.name);
  if (family == kKeys.end()) {
    throw InvalidArgument("--sde = '" + flags.name + "'; must be ve, vp, subvp or gbm");
  }
  std::map<std::string, std::string> values;
  for (const std::string& param : flags.params) {
    const auto equals = param.find('=');
    if (equals == std::string::npos) {
      throw InvalidArgument("--sde-param = '" + param + "'; must be key=value");
    }
    const std::string key = param.substr(0, equals);
    if (!family->second.count(key)) {
      std::string allowed;
      for (const auto& k : family->second) allowed += (allowed.empty() ? "" : ", ") + k;
      throw InvalidArgument("--sde-param: key '" + key + "' does not apply to --sde " +
                            flags.name + "; must be one of " + allowed);
    }
    values[key] = param.substr(equals + 1);
  }
  const auto number = [&](const std::string& key, double fallback) {
    const auto it = values.find(key);
    return it == values.end() ? fallback : ParseNumber(key, it->second);
  };

  SdeChoice choice;
  choice.eps = number("eps", default_eps);
  const double steps = number("N", 1000);
  Require(steps >= 1 && steps == std::floor(steps) && steps <= 1e9, "--sde-param", "N", steps,
          "a positive integer");
  choice.steps = static_cast<int>(steps);
  const double t_final = number("T", 1.0);
  if (flags.name == "ve") {
    VeSde::Options options;
    options.sigma_min = number("sigma_min", options.sigma_min);
    options.sigma_max = number("sigma_max", options.sigma_max);
    options.t_final = t_final;
    if (values.count("kernel")) {
      const std::string& kernel = values["kernel"];
      if (kernel != "exact" && kernel != "reference") {
        throw InvalidArgument("--sde-param: kernel = '" + kernel + "'; must be exact or reference");
      }
      options.kernel = kernel == "exact" ? VeKernel::kExact : VeKernel::kReference;
    }
    choice.sde = std::make_shared<VeSde>(dim, options);
  } else if (flags.name == "vp" || flags.name == "subvp") {
    BetaSchedule schedule;
    schedule.beta_min = number("beta_min", schedule.beta_min);
    schedule.beta_max = number("beta_max", schedule.beta_max);
    schedule.t_final = t_final;
    if (flags.name == "vp") {
      choice.sde = std::make_shared<VpSde>(dim, schedule);
    } else {
      choice.sde = std::make_shared<SubVpSde>(dim, schedule);
    }
  } else {
    choice.sde = std::make_shared<GbmSde>(dim, number("mu", 0.0), number("sigma", 0.5), t_final);
  }
  Require(std::isfinite(choice.eps) && choice.eps >= 0.0 && choice.eps < t_final, "--sde-param",
          "eps", choice.eps, "in [0, T)");
  return choice;
}

std::unique_ptr<ScoreModel> MakeAnalyticScore(const Problem& problem, const Sde& sde) {
  if (problem.type == Problem::Type::kLogNormal) {
    const auto* gbm = dynamic_cast<const GbmSde*>(&sde);
    if (gbm == nullptr) {
      throw InvalidArgument("--score analytic: a lognormal problem needs --sde gbm");
    }
    return std::make_unique<LogNormalReference>(problem.m0, problem.s0, *gbm);
  }
  const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde);
  if (affine == nullptr) {
    throw InvalidArgument("--score analytic: a Gaussian or mixture problem needs --sde ve, vp "
                          "or subvp");
  }
  return std::make_unique<GaussianMixtureScore>(*problem.mixture, *affine);
}

ScoreChoice MakeScoreAndSde(const std::string& score_flag, const Problem* problem,
                            const SdeFlags& sde_flags, int dim, double default_eps) {
  ScoreChoice choice;
  if (score_flag == "analytic") {
    if (problem == nullptr) {
      throw InvalidArgument("--score analytic needs --problem FILE (the data law it is exact for)");
    }
    choice.sde = MakeSde(sde_flags, problem->dim(), default_eps);
    choice.score = MakeAnalyticScore(*problem, *choice.sde.sde);
    return choice;
  }
  // A model file: its metadata names the SDE it was trained with, which the score needs (its
  // coefficients use α(t) and σ_t). --sde and --sde-param may restate that SDE but must agree;
  // eps and N (sampling settings) are free.
  const ModelCheckpoint model = LoadCheckpoint(score_flag);
  if (dim > 0 && dim != model.config.dim) {
    throw InvalidArgument("--score " + score_flag + ": the model has dimension " +
                          std::to_string(model.config.dim) + " but the data has " +
                          std::to_string(dim));
  }
  if (problem != nullptr && problem->dim() != model.config.dim) {
    throw InvalidArgument("--score " + score_flag + ": the model has dimension " +
                          std::to_string(model.config.dim) + " but --problem has " +
                          std::to_string(problem->dim()));
  }
  const nlohmann::json described = nlohmann::json::parse(DescribeSde(*model.sde));
  const std::string family = described.at("family").get<std::string>();
  // SdeFlags cannot tell an explicit "--sde vp" from its default, so "vp" is taken as unset.
  if (sde_flags.name != family && sde_flags.name != "vp") {
    throw InvalidArgument("--sde " + sde_flags.name + " does not match the model's SDE (" +
                          family + ", from " + score_flag + "); omit --sde or pass --sde " +
                          family);
  }
  // The model's parameters first, the user's after them (later keys win), then compare.
  SdeFlags merged;
  merged.name = family;
  for (const auto& [key, value] : described.items()) {
    if (key == "family") continue;
    merged.params.push_back(key + "=" + (value.is_string() ? value.get<std::string>()
                                                           : FormatValue(value.get<double>())));
  }
  for (const std::string& param : sde_flags.params) merged.params.push_back(param);
  SdeChoice sde = MakeSde(merged, model.config.dim, default_eps);
  const auto* affine = dynamic_cast<const ScalarAffineSde*>(sde.sde.get());
  if (affine == nullptr || DescribeSde(*affine) != DescribeSde(*model.sde)) {
    throw InvalidArgument("--sde-param: " + std::string(affine ? DescribeSde(*affine) : family) +
                          " disagrees with the SDE the model was trained with (" +
                          DescribeSde(*model.sde) + ", from " + score_flag + ")");
  }
  sde.sde = model.sde;
  choice.sde = sde;
  choice.score = MakeScoreModel(model);
  return choice;
}

void PrintJson(const nlohmann::json& result) { std::cout << result.dump(2) << std::endl; }

nlohmann::json ConvergenceJson(const ConvergenceResult& r) {
  return {{"sde", r.problem},
          {"solver", r.solver},
          {"noise_type", r.noise_type},
          {"strong_order", r.strong.order},
          {"strong_ci", {r.strong.ci_low, r.strong.ci_high}},
          {"weak_order", r.weak.order},
          {"weak_ci", {r.weak.ci_low, r.weak.ci_high}},
          {"expected_strong", r.expected_strong},
          {"expected_weak", r.expected_weak},
          {"strong_contains_expected", r.strong.Contains(r.expected_strong)},
          {"weak_contains_expected", r.weak.Contains(r.expected_weak)},
          {"confidence", r.confidence},
          {"strong_samples", r.strong_samples},
          {"weak_samples", r.weak_samples},
          {"nfe", r.nfe},
          {"seconds", r.seconds}};
}

}  // namespace scoresde::cli
