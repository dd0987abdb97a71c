// Reverse-SDE sampler throughput (docs/samplers.md, "Performance").
//
//   BM_PredictorStep/<predictor>/d/B   one predictor step of the reverse VP SDE on B samples in R^d
//   BM_CorrectorStep/<corrector>/d/B   one corrector step (expectation step rule)
//   BM_FillNormal/d/B/threads          NoiseStream::FillNormal, the normal-generation floor
//   BM_PcSample/threads/rule           the reference comparison's whole job: PC sampling (reverse
//                                      diffusion + Langevin, snr 0.16), 1000 levels, 10,000 samples,
//                                      d = 64, VP, analytic diagonal-Gaussian score, float64; rule 0
//                                      the expectation step rule (default), 1 the paper's batch rule
//
// Counters: samples_per_s (sample-steps per second for the step benchmarks), normals_per_s
// (FillNormal), and for BM_PcSample normals (variates drawn per run) and floor_s (normals divided
// by the FillNormal rate measured in the same process at the same thread count: the time normal
// generation alone takes for this job). The score is the exact score of p_t for
// p_0 = N(m, diag(s²)) under VP: s(x, t) = −(x − α_t m) / (α_t² s² + σ_t²), O(d) per sample —
// the same function benchmarks/compare_reference_pc.py gives the reference PyTorch sampler.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "scoresde/sde/context.hpp"
#include "scoresde/sde/random.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/correctors.hpp"
#include "scoresde/solvers/noise_source.hpp"
#include "scoresde/solvers/pc_sampler.hpp"
#include "scoresde/solvers/predictors.hpp"

namespace scoresde {
namespace {

// p_0 = N(m, diag(s²)) with m_i = 0.5 (i mod 4) − 0.75 and s_i = 0.5 + 0.25 (i mod 3); the exact
// score of p_t under a scalar-affine SDE, and E‖s_t‖² = Σ_i 1 / (α_t² s_i² + σ_t²).
class DiagonalGaussianScore final : public ScoreModel {
 public:
  DiagonalGaussianScore(const ScalarAffineSde& sde, int d) : sde_(&sde), mean_(d), var_(d) {
    for (int i = 0; i < d; ++i) {
      mean_(i) = 0.5 * (i % 4) - 0.75;
      const double s = 0.5 + 0.25 * (i % 3);
      var_(i) = s * s;
    }
  }
  int dim() const override { return static_cast<int>(mean_.size()); }
  void Evaluate(ConstBatchRef x, ConstRowVectorRef t, BatchRef s) const override {
    Eigen::Index j = 0;
    while (j < x.cols()) {
      Eigen::Index end = j + 1;
      while (end < x.cols() && t(end) == t(j)) ++end;  // columns sharing a time
      const double alpha = sde_->MeanCoefficient(t(j)), sigma = sde_->MarginalStd(t(j));
      const Vector precision = (alpha * alpha * var_.array() + sigma * sigma).inverse().matrix();
      const Vector shift = alpha * mean_;
      s.middleCols(j, end - j) =
          -((x.middleCols(j, end - j).colwise() - shift).array().colwise() * precision.array())
               .matrix();
      j = end;
    }
  }
  std::optional<double> ExpectedSquaredNorm(double t) const override {
    const double alpha = sde_->MeanCoefficient(t), sigma = sde_->MarginalStd(t);
    return (alpha * alpha * var_.array() + sigma * sigma).inverse().sum();
  }

 private:
  const ScalarAffineSde* sde_;
  Vector mean_, var_;
};

const std::vector<std::string> kPredictors = {"euler-maruyama", "milstein", "srk",
                                              "reverse-diffusion", "ancestral"};
const std::vector<std::string> kCorrectors = {"langevin", "annealed-langevin"};

Batch StartingStates(int d, int64_t batch) {
  Batch x(d, batch);
  NoiseStream(7, Stream::kPrior).FillNormal(0, 0, 0, x);
  return x;
}

void SetRate(benchmark::State& state, double per_iteration, const char* name) {
  state.counters[name] =
      benchmark::Counter(per_iteration * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_PredictorStep(benchmark::State& state, const std::string& name) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const VpSde sde(d);
  const DiagonalGaussianScore score(sde, d);
  const auto predictor = MakePredictor(name);
  const StepProblem problem = StepProblem::Reverse(sde, score);
  const IidNoise noise(d, NoiseStream(1, Stream::kPredictor));
  StepWorkspace workspace;
  Batch x = StartingStates(d, batch);
  const double dt = -1e-3;
  int64_t step = 0;
  for (auto _ : state) {
    // The same level every iteration (t = 0.5): the state drifts by O(√h) per step, harmlessly.
    predictor->Step(problem, 0.5, dt, step++, noise, 0, x, &workspace);
    benchmark::DoNotOptimize(x.data());
  }
  SetRate(state, static_cast<double>(batch), "samples_per_s");
}

void BM_CorrectorStep(benchmark::State& state, const std::string& name) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const VpSde sde(d);
  const DiagonalGaussianScore score(sde, d);
  const auto corrector = MakeCorrector(name);
  const StepProblem problem = StepProblem::Reverse(sde, score);
  const NoiseStream noise(1, Stream::kCorrector);
  CorrectorLevel level;
  level.t = 0.5;
  level.h = 1e-3;
  level.snr = 0.16;
  level.rule = LangevinStepRule::kExpectation;
  level.expected_squared_score_norm = *score.ExpectedSquaredNorm(level.t);
  StepWorkspace workspace;
  Batch x = StartingStates(d, batch);
  int64_t step = 0;
  for (auto _ : state) {
    corrector->Correct(problem, level, step++, 0, noise, 0, x, &workspace);
    benchmark::DoNotOptimize(x.data());
  }
  SetRate(state, static_cast<double>(batch), "samples_per_s");
}

// Normals per second of FillNormal into a d × B buffer, split over threads by columns as the
// samplers do (each chunk fills its own columns).
double FillNormalRate(int d, int64_t batch, int threads, int repeats) {
  ExecutionContext context(threads);
  Batch out(d, batch);
  const NoiseStream noise(3, Stream::kPredictor);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / d);
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeats; ++r) {
    context.ParallelFor(0, batch, grain, [&](int64_t begin, int64_t end) {
      noise.FillNormal(r, 0, begin, out.middleCols(begin, end - begin));
    });
  }
  benchmark::DoNotOptimize(out.data());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(d) * batch * repeats / seconds;
}

void BM_FillNormal(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  ExecutionContext context(threads);
  Batch out(d, batch);
  const NoiseStream noise(3, Stream::kPredictor);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / d);
  uint64_t step = 0;
  for (auto _ : state) {
    context.ParallelFor(0, batch, grain, [&](int64_t begin, int64_t end) {
      noise.FillNormal(step, 0, begin, out.middleCols(begin, end - begin));
    });
    ++step;
    benchmark::DoNotOptimize(out.data());
  }
  SetRate(state, static_cast<double>(d) * batch, "normals_per_s");
}

// The comparison job (benchmarks/compare_reference_pc.py runs the same on the reference code).
void BM_PcSample(benchmark::State& state) {
  constexpr int kDim = 64;
  constexpr int kSteps = 1000;
  constexpr int64_t kSamples = 10000;
  const int threads = static_cast<int>(state.range(0));
  const VpSde sde(kDim);
  const DiagonalGaussianScore score(sde, kDim);
  const auto predictor = MakePredictor("reverse-diffusion");
  const auto corrector = MakeCorrector("langevin");
  PcSampler::Options options;
  options.num_steps = kSteps;
  options.corrector_steps = 1;
  options.snr = 0.16;
  options.step_rule =
      state.range(1) == 0 ? LangevinStepRule::kExpectation : LangevinStepRule::kBatchAverage;
  options.seed = 1;
  options.num_threads = threads;
  const PcSampler sampler(sde, score, *predictor, *corrector, options);
  for (auto _ : state) {
    const SampleResult result = sampler.Sample(kSamples);
    benchmark::DoNotOptimize(result.x.data());
  }
  // Prior, then per level one predictor and one corrector draw of d normals per sample.
  const double normals = static_cast<double>(kDim) * kSamples * (1 + 2 * kSteps);
  const double rate = FillNormalRate(kDim, kSamples, threads, 20);
  state.counters["normals"] = normals;
  state.counters["fill_normals_per_s"] = rate;
  state.counters["floor_s"] = normals / rate;
}

void RegisterAll() {
  const std::vector<std::pair<int, int64_t>> shapes = {{2, 10000}, {64, 10000}, {3072, 256}};
  for (const std::string& name : kPredictors) {
    auto* b = benchmark::RegisterBenchmark(("BM_PredictorStep/" + name).c_str(), BM_PredictorStep,
                                           name);
    for (const auto& [d, batch] : shapes) b->Args({d, batch});
    b->Unit(benchmark::kMicrosecond);
  }
  for (const std::string& name : kCorrectors) {
    auto* b = benchmark::RegisterBenchmark(("BM_CorrectorStep/" + name).c_str(), BM_CorrectorStep,
                                           name);
    for (const auto& [d, batch] : shapes) b->Args({d, batch});
    b->Unit(benchmark::kMicrosecond);
  }
  auto* fill = benchmark::RegisterBenchmark("BM_FillNormal", BM_FillNormal);
  for (const auto& [d, batch] : shapes) fill->Args({d, batch, 1});
  fill->Args({64, 10000, 2})->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_PcSample", BM_PcSample)
      ->Args({1, 0})
      ->Args({2, 0})
      ->Args({1, 1})
      ->Args({2, 1})
      ->Iterations(1)
      ->UseRealTime()
      ->Unit(benchmark::kSecond);
}

}  // namespace
}  // namespace scoresde

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  scoresde::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
