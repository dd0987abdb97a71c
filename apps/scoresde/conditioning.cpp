#include "conditioning.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scoresde/scoring/array_io.hpp"
#include "scoresde/scoring/checkpoint.hpp"
#include "scoresde/scoring/classifier.hpp"
#include "scoresde/sde/check.hpp"
#include "scoresde/sde/error.hpp"
#include "scoresde/sde/scalar_affine_sde.hpp"
#include "scoresde/solvers/guidance.hpp"
#include "scoresde/solvers/linear_measurement.hpp"
#include "scoresde/solvers/pigdm_guidance.hpp"
#include "scoresde/solvers/replacement.hpp"
#include "scoresde/solvers/smc_sampler.hpp"
#include "scoresde/verification/conditional_reference.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"
#include "scoresde/verification/statistics.hpp"

namespace scoresde::cli {

namespace {

enum class Method { kExact, kReplacement, kColorization, kPigdm, kSmc, kGuidance };

constexpr const char* kMethodNames = "exact, replacement, colorization, pigdm, smc, guidance";

Method ParseMethod(const std::string& name) {
  if (name == "exact") return Method::kExact;
  if (name == "replacement") return Method::kReplacement;
  if (name == "colorization") return Method::kColorization;
  if (name == "pigdm") return Method::kPigdm;
  if (name == "smc") return Method::kSmc;
  if (name == "guidance") return Method::kGuidance;
  throw InvalidArgument("--condition-method = '" + name + "'; must be one of " + kMethodNames);
}

const ScalarAffineSde& RequireAffine(const Sde& sde, const std::string& method) {
  const auto* affine = dynamic_cast<const ScalarAffineSde*>(&sde);
  if (affine == nullptr) {
    throw InvalidArgument("--condition-method " + method +
                          " needs --sde ve, vp or subvp (the forward kernel N(alpha x, sigma^2 I))");
  }
  return *affine;
}

bool HasMixture(const SamplingSetup& setup) {
  return setup.problem != nullptr && setup.problem->mixture.has_value();
}

// Runs of consecutive samples that share an observation column (all samples when there is one).
struct Group {
  int64_t begin = 0;
  int64_t end = 0;
  Eigen::Index column = 0;
};

bool SameColumn(const Batch& m, Eigen::Index a, Eigen::Index b) {
  return std::memcmp(m.col(a).data(), m.col(b).data(), sizeof(double) * m.rows()) == 0;
}

std::vector<Group> Groups(const Batch& observed, int64_t n) {
  if (observed.cols() == 1) return {{0, n, 0}};
  std::vector<Group> groups;
  for (int64_t j = 0; j < n; ++j) {
    if (!groups.empty() && SameColumn(observed, groups.back().column, j)) {
      groups.back().end = j + 1;
    } else {
      groups.push_back({j, j + 1, static_cast<Eigen::Index>(j)});
    }
  }
  return groups;
}

// The observation file as a (rows × columns) batch: rows = expected_rows, columns 1 or n.
Batch ReadObservations(const ConditioningFlags& flags, int expected_rows, int64_t n) {
  Batch observed = ReadArray(flags.observe);
  if (observed.rows() != expected_rows) {
    throw InvalidArgument("--observe " + flags.observe + ": rows have " +
                          std::to_string(observed.rows()) + " values; must have " +
                          std::to_string(expected_rows));
  }
  if (observed.cols() != 1 && observed.cols() != n) {
    throw InvalidArgument("--observe " + flags.observe + ": " + std::to_string(observed.cols()) +
                          " rows; must be 1 (for every sample) or --n (" + std::to_string(n) +
                          ", one per sample)");
  }
  for (Eigen::Index j = 0; j < observed.cols(); ++j) {
    for (Eigen::Index i = 0; i < observed.rows(); ++i) {
      if (std::isinf(observed(i, j))) {
        throw InvalidArgument("--observe " + flags.observe + ": row " + std::to_string(j) +
                              ", column " + std::to_string(i) +
                              " is infinite; values must be finite, or NaN where unknown");
      }
    }
  }
  return observed;
}

// Distance of samples x (d × n) to a reference law with the given moments and exact sampler.
nlohmann::json Fit(ConstBatchRef x, const Vector& mean, const Matrix& cov,
                   const std::function<void(const NoiseStream&, int64_t, BatchRef)>& sample,
                   uint64_t seed, double t) {
  const int64_t n = x.cols();
  nlohmann::json fit;
  fit["reference"] = "exact conditional law p_t(x | y) at the end time t";
  fit["t"] = t;
  if (n < 2) return fit;
  const MomentEstimate est = EstimateMoments(x);
  double mean_error = 0.0;
  for (Eigen::Index i = 0; i < mean.size(); ++i) {
    mean_error = std::max(mean_error, std::abs(est.mean(i) - mean(i)) / std::sqrt(cov(i, i)));
  }
  fit["mean_error_sd"] = mean_error;
  fit["frechet"] = std::sqrt(FrechetDistance(est.mean, est.cov, mean, cov));
  // Sliced Wasserstein against exact draws of the same size, and between two independent exact
  // draws (the Monte-Carlo floor the first value cannot go below on average).
  Batch a(x.rows(), n), b(x.rows(), n);
  sample(NoiseStream(seed, Stream::kData), 0, a);
  sample(NoiseStream(seed, Stream::kData), n, b);
  constexpr int kProjections = 64;
  fit["sliced_wasserstein"] = SlicedWasserstein(x, a, kProjections, seed);
  fit["sliced_wasserstein_floor"] = SlicedWasserstein(b, a, kProjections, seed);
  return fit;
}

void Require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgument(message);
}

}  // namespace

void AddConditioningFlags(CLI::App* command, ConditioningFlags* flags) {
  command->add_option("--observe", flags->observe,
                      "Observed values (.npy/.csv; one row per sample or one for all; NaN where "
                      "unknown)");
  command->add_option("--condition-method", flags->method,
                      std::string("Conditioning method: ") + kMethodNames +
                          " (default: exact with --score analytic, else replacement)");
  command->add_option("--guidance-scale", flags->guidance_scale,
                      "Guidance scale gamma of pigdm and class guidance (smc: proposal scale)");
  command->add_option("--observation-noise", flags->observation_noise,
                      "Std of the observation noise, y = x[known] + N(0, s^2 I) (default 0)");
  command->add_option("--class", flags->class_label, "Class label for class guidance");
  command->add_option("--classifier", flags->classifier,
                      "Noise-conditional classifier (.safetensors) or 'analytic' (mixture "
                      "components as classes)");
  command->add_option("--particles", flags->particles, "SMC particles per group (default 64)");
  command->add_option("--data-std", flags->data_std,
                      "Data std sigma_d of PiGDM's posterior variance r_t^2 (default 1)");
  command->add_option("--channels", flags->channels, "Colorization channels (default 3)");
}

bool ConditioningRequested(const ConditioningFlags& flags) {
  return !flags.observe.empty() || !flags.method.empty() || flags.class_label >= 0 ||
         !flags.classifier.empty();
}

ConditionalSamples SampleConditionally(const ConditioningFlags& flags,
                                       const SamplingSetup& setup) {
  Require(setup.sde != nullptr && setup.score != nullptr && setup.predictor != nullptr &&
              setup.corrector != nullptr,
          "SampleConditionally: incomplete sampling setup");
  const int d = setup.sde->dim();
  const int64_t n = setup.num_samples;
  Require(n >= 1, "--n = " + std::to_string(n) + "; must be >= 1");
  Require(std::isfinite(flags.guidance_scale),
          "--guidance-scale = " + FormatValue(flags.guidance_scale) + "; must be finite");
  Require(std::isfinite(flags.observation_noise) && flags.observation_noise >= 0.0,
          "--observation-noise = " + FormatValue(flags.observation_noise) + "; must be >= 0");
  const bool guidance_requested = flags.class_label >= 0 || !flags.classifier.empty();
  std::string method_name = flags.method;
  if (method_name.empty()) {
    if (guidance_requested && flags.observe.empty()) {
      method_name = "guidance";
    } else {
      method_name = setup.analytic && HasMixture(setup) ? "exact" : "replacement";
    }
  }
  const Method method = ParseMethod(method_name);
  const ScalarAffineSde& sde = RequireAffine(*setup.sde, method_name);
  const double eps = setup.options.eps;

  ConditionalSamples out;
  out.x.resize(d, n);
  out.report["condition_method"] = method_name;
  PcSampler::Options options = setup.options;
  options.state_hook = nullptr;
  // Runs a PcSampler over samples [begin, end) with this score and options.
  const auto run = [&](const ScoreModel& score, const PcSampler::Options& o, int64_t begin,
                       int64_t end) {
    const PcSampler sampler(*setup.sde, score, *setup.predictor, *setup.corrector, o);
    const SolveSummary s = sampler.SampleInto(begin, out.x.middleCols(begin, end - begin));
    const double seconds = out.summary.seconds + s.seconds;
    if (out.summary.status == SolveStatus::kNotRun) out.summary = s;
    out.summary.seconds = seconds;
  };

  if (method == Method::kGuidance) {
    Require(flags.observe.empty(),
            "--condition-method guidance takes --class and --classifier, not --observe");
    Require(flags.class_label >= 0, "--condition-method guidance needs --class LABEL (>= 0)");
    Require(!flags.classifier.empty(),
            "--condition-method guidance needs --classifier MODEL.safetensors or 'analytic'");
    std::shared_ptr<Guidance> guidance;
    std::shared_ptr<MixtureLabelLikelihood> labels;
    std::shared_ptr<NoiseConditionalClassifier> classifier;
    const std::vector<int> label{flags.class_label};
    if (flags.classifier == "analytic") {
      Require(HasMixture(setup), "--classifier analytic needs a Gaussian or mixture --problem");
      std::vector<int> components(setup.problem->mixture->num_components());
      for (size_t k = 0; k < components.size(); ++k) components[k] = static_cast<int>(k);
      labels = std::make_shared<MixtureLabelLikelihood>(*setup.problem->mixture, sde, components);
      Require(flags.class_label < labels->num_classes(),
              "--class = " + std::to_string(flags.class_label) + "; must be < " +
                  std::to_string(labels->num_classes()) + " (a mixture component)");
      guidance = std::make_shared<CallbackGuidance>(
          d, [labels, label](ConstBatchRef x, ConstRowVectorRef t, BatchRef g) {
            RowVector log_prob(x.cols());
            labels->Evaluate(label[0], x, t, log_prob, g);
          });
    } else {
      classifier = std::make_shared<NoiseConditionalClassifier>(LoadClassifier(flags.classifier));
      Require(classifier->dim() == d, "--classifier " + flags.classifier + ": dimension " +
                                          std::to_string(classifier->dim()) + " differs from " +
                                          std::to_string(d));
      Require(DescribeSde(classifier->sde()) == DescribeSde(sde),
              "--classifier " + flags.classifier + " was trained with the SDE " +
                  DescribeSde(classifier->sde()) + ", not the sampler's " + DescribeSde(sde));
      Require(flags.class_label < classifier->num_classes(),
              "--class = " + std::to_string(flags.class_label) + "; must be < " +
                  std::to_string(classifier->num_classes()));
      guidance = std::make_shared<CallbackGuidance>(
          d, [classifier, label](ConstBatchRef x, ConstRowVectorRef t, BatchRef g) {
            RowVector log_prob(x.cols());
            classifier->LogProbAndGradient(x, t, label, log_prob, g);
          });
    }
    const GuidedScore guided(*setup.score, *guidance, flags.guidance_scale);
    run(guided, options, 0, n);
    out.report["class"] = flags.class_label;
    out.report["guidance_scale"] = flags.guidance_scale;
    out.report["classifier_evaluations"] = flags.guidance_scale != 0.0 ? out.summary.nfe : 0;
    if (labels) {
      const GaussianMixture cls = labels->ClassConditional(flags.class_label);
      const GaussianMixtureScore cls_score(cls, sde);
      const GaussianMixture marginal = cls_score.Marginal(eps);
      out.report["conditional_fit"] =
          Fit(out.x, marginal.Mean(), marginal.Covariance(),
              [&](const NoiseStream& noise, int64_t first, BatchRef x) {
                marginal.Sample(noise, first, x);
              },
              setup.options.seed, eps);
    }
    return out;
  }

  Require(!flags.observe.empty(), "--condition-method " + method_name + " needs --observe FILE");
  Require(!guidance_requested, "--class and --classifier belong to --condition-method guidance");
  const bool colorization = method == Method::kColorization;
  Require(flags.channels >= 1, "--channels = " + std::to_string(flags.channels) + "; must be >= 1");
  if (colorization) {
    Require(d % flags.channels == 0, "--channels = " + std::to_string(flags.channels) +
                                         " does not divide the dimension " + std::to_string(d));
  }
  const int pixels = d / flags.channels;
  const Batch file = ReadObservations(flags, colorization ? pixels : d, n);
  // Observations in the coordinates the method replaces: the gray channel z₀ = √C · gray of the
  // Helmert mix for colorization, the data coordinates otherwise.
  Batch observed = Batch::Constant(d, file.cols(), std::numeric_limits<double>::quiet_NaN());
  if (colorization) {
    observed.topRows(pixels) = std::sqrt(static_cast<double>(flags.channels)) * file;
  } else {
    observed = file;
  }
  for (Eigen::Index j = 0; j < observed.cols(); ++j) {
    bool any = false;
    for (Eigen::Index i = 0; i < d; ++i) any = any || !std::isnan(observed(i, j));
    Require(any, "--observe " + flags.observe + ": row " + std::to_string(j) +
                     " observes nothing (every value is NaN)");
  }
  const std::vector<Group> groups = Groups(observed, n);
  out.report["observations"] = observed.cols();
  out.report["observation_groups"] = groups.size();
  out.report["observation_noise"] = flags.observation_noise;
  const double noise = flags.observation_noise;
  // The observation model of one observed column: a masked identity, or the gray rows of the
  // channel mix for colorization.
  const auto measurement = [&](Eigen::Index column) {
    LinearMeasurement m = LinearMeasurement::FromMasked(observed.col(column), noise);
    if (colorization) {
      const Matrix q = HelmertMatrix(flags.channels);
      m.A = Matrix::Zero(pixels, d);
      for (int p = 0; p < pixels; ++p) {
        for (int c = 0; c < flags.channels; ++c) m.A(p, c * pixels + p) = q(0, c);
      }
    }
    return m;
  };
  const auto reference = [&](Eigen::Index column) {
    const LinearMeasurement m = measurement(column);
    return ConditionalReference(*setup.problem->mixture, m.A, m.noise_cov, m.y);
  };

  switch (method) {
    case Method::kExact: {
      Require(setup.analytic && HasMixture(setup),
              "--condition-method exact needs --score analytic with a Gaussian or mixture "
              "--problem (the closed-form posterior)");
      for (const Group& g : groups) {
        const ConditionalReference ref = reference(g.column);
        const ConditionalScore score(ref, sde);
        PcSampler::Options o = options;
        if (setup.exact_prior) {
          o.initial_sampler = [&ref, &sde](const NoiseStream& s, int64_t first, BatchRef x) {
            ref.SampleMarginal(sde, sde.t_final(), s, first, x);
          };
        }
        run(score, o, g.begin, g.end);
      }
      break;
    }
    case Method::kReplacement:
    case Method::kColorization: {
      Require(noise == 0.0, "--observation-noise applies to exact, pigdm and smc; replacement "
                            "imputes noiseless observations");
      ReplacementConditioner::Options ro;
      ro.seed = setup.options.seed;
      if (colorization) ro.channel_mix = HelmertMatrix(flags.channels);
      const ReplacementConditioner conditioner(sde, observed, ro);
      PcSampler::Options o = options;
      o.state_hook = conditioner.Hook();
      run(*setup.score, o, 0, n);
      break;
    }
    case Method::kPigdm: {
      Require(setup.score->HasJvp(), "--condition-method pigdm needs a score with Jacobian-vector "
                                     "products (analytic or an MLP model)");
      PigdmGuidance::Options po;
      po.data_std = flags.data_std;
      int evaluations_per_call = 1;
      for (const Group& g : groups) {
        const PigdmGuidance guidance(sde, *setup.score, measurement(g.column), po);
        const GuidedScore guided(*setup.score, guidance, flags.guidance_scale);
        run(guided, options, g.begin, g.end);
        evaluations_per_call = guided.evaluations_per_call();
      }
      // The sampler counts calls of the guided score; each costs a score and a JVP.
      out.summary.nfe *= evaluations_per_call;
      out.report["guidance_scale"] = flags.guidance_scale;
      out.report["data_std"] = flags.data_std;
      break;
    }
    case Method::kSmc: {
      Require(groups.size() == 1, "--condition-method smc takes one observation row for all "
                                  "samples (the particles of a group share it)");
      Require(flags.particles >= 1, "--particles = " + std::to_string(flags.particles) +
                                        "; must be >= 1");
      Require(setup.score->HasJvp(), "--condition-method smc needs a score with Jacobian-vector "
                                     "products (its twist is PiGDM's)");
      PigdmGuidance::Options po;
      po.data_std = flags.data_std;
      const PigdmGuidance twist(sde, *setup.score, measurement(0), po);
      SmcSampler::Options so;
      so.num_steps = options.num_steps;
      so.eps = options.eps;
      so.num_particles = flags.particles;
      so.proposal_scale = flags.guidance_scale;
      so.seed = options.seed;
      so.num_threads = options.num_threads;
      so.throw_on_failure = options.throw_on_failure;
      const SmcSampler sampler(sde, *setup.score, twist, *setup.predictor, so);
      const int64_t num_groups = (n + flags.particles - 1) / flags.particles;
      const SmcResult r = sampler.Sample(num_groups);
      out.x = r.x.leftCols(n);
      out.summary = r.summary;
      out.report["particles"] = flags.particles;
      out.report["particle_groups"] = num_groups;
      out.report["mean_final_ess"] = r.final_ess.mean();
      out.report["mean_resamplings"] = r.resamplings.mean();
      out.report["log_evidence"] = r.log_evidence.mean();
      out.report["guidance_scale"] = flags.guidance_scale;
      if (setup.corrector->nfe_per_step() > 0 && options.corrector_steps > 0) {
        out.summary.warnings.push_back("smc uses the predictor only; the corrector is not used");
      }
      break;
    }
    case Method::kGuidance:
      break;  // handled above
  }

  if (HasMixture(setup) && groups.size() == 1) {
    const ConditionalReference ref = reference(0);
    out.report["conditional_fit"] =
        Fit(out.x, ref.MarginalMean(sde, eps), ref.MarginalCovariance(sde, eps),
            [&](const NoiseStream& s, int64_t first, BatchRef x) {
              ref.SampleMarginal(sde, eps, s, first, x);
            },
            setup.options.seed, eps);
  }
  return out;
}

}  // namespace scoresde::cli
