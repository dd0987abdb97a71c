// Probability-flow ODE and likelihood throughput (docs/probability-flow.md).
//
// Arguments {d, B, threads, step control (0 per-sample, 1 shared)}; counters: nfe (mean right-hand-
// side evaluations per sample), sample_evals_per_s (sample-evaluations per second, B · nfe / time).
// Scores: the exact score of a 3-component Gaussian mixture under VP (GaussianMixtureScore), and a
// linear score s = −x (CallbackScore) that isolates the integrator's own cost.
#include <cstdint>
#include <vector>

#include <Eigen/QR>
#include <benchmark/benchmark.h>

#include "scoresde/sde/random.hpp"
#include "scoresde/sde/vp_sde.hpp"
#include "scoresde/solvers/exponential_samplers.hpp"
#include "scoresde/solvers/likelihood.hpp"
#include "scoresde/solvers/probability_flow.hpp"
#include "scoresde/verification/gaussian_mixture.hpp"

namespace scoresde {
namespace {

GaussianMixture Mixture(int d) {
  std::vector<Vector> means;
  std::vector<Matrix> covs;
  for (int k = 0; k < 3; ++k) {
    Batch m(d, 1), z(d, d);
    NoiseStream(5, Stream::kUser).FillNormal(0, 0, k, m);
    NoiseStream(6 + k, Stream::kUser).FillNormal(0, 0, 0, z);
    const Matrix q = Eigen::HouseholderQR<Matrix>(z).householderQ();
    Vector lambda = Vector::LinSpaced(d, 0.3, 1.5);
    means.push_back(m.col(0));
    covs.push_back(q * lambda.asDiagonal() * q.transpose());
  }
  return GaussianMixture(Eigen::Vector3d(0.5, 0.3, 0.2), means, covs);
}

OdeOptions Options(const benchmark::State& state) {
  OdeOptions options;
  options.num_threads = static_cast<int>(state.range(2));
  options.step_control = state.range(3) == 0 ? StepControl::kPerSample : StepControl::kSharedStep;
  return options;
}

void Report(benchmark::State& state, int64_t nfe, int64_t batch) {
  state.counters["nfe"] = static_cast<double>(nfe);
  state.counters["sample_evals_per_s"] = benchmark::Counter(
      static_cast<double>(nfe * batch) * state.iterations(), benchmark::Counter::kIsRate);
}

// Decoding exact draws of p_T (an ODE sampler) at rtol = atol = 1e-5.
void BM_DecodeMixture(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const VpSde sde(d);
  const GaussianMixtureScore score(Mixture(d), sde);
  Batch latent(d, batch);
  score.SampleMarginal(1.0, NoiseStream(1, Stream::kPrior), 0, latent);
  const ProbabilityFlow flow(sde, score, Options(state));
  int64_t nfe = 0;
  for (auto _ : state) {
    const OdeSolution solution = flow.Decode(latent, 1e-3);
    nfe = solution.summary.nfe;
    benchmark::DoNotOptimize(solution.y.data());
  }
  if (!flow.Decode(latent, 1e-3).summary.ok()) state.SkipWithError("solve failed");
  Report(state, nfe, batch);
}

// The integrator alone: s = −x costs almost nothing.
void BM_DecodeLinear(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const VpSde sde(d);
  const CallbackScore score(d, [](ConstBatchRef x, ConstRowVectorRef, BatchRef s) { s = -x; });
  Batch latent(d, batch);
  NoiseStream(2, Stream::kPrior).FillNormal(0, 0, 0, latent);
  const ProbabilityFlow flow(sde, score, Options(state));
  int64_t nfe = 0;
  for (auto _ : state) {
    const OdeSolution solution = flow.Decode(latent, 1e-3);
    nfe = solution.summary.nfe;
    benchmark::DoNotOptimize(solution.y.data());
  }
  Report(state, nfe, batch);
}

// Exact log-likelihoods (analytic divergence), rtol = atol = 1e-5, ε = 1e-5, standard prior.
void BM_LikelihoodMixture(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const VpSde sde(d);
  const GaussianMixtureScore score(Mixture(d), sde);
  Batch x(d, batch);
  score.initial().Sample(NoiseStream(3, Stream::kData), 0, x);
  LikelihoodOptions options;
  options.ode = Options(state);
  const LikelihoodEstimator estimator(sde, score, options);
  int64_t nfe = 0;
  for (auto _ : state) {
    const LikelihoodResult result = estimator.Compute(x);
    nfe = result.summary.nfe;
    benchmark::DoNotOptimize(result.logp.data());
  }
  if (!estimator.Compute(x).summary.ok()) state.SkipWithError("solve failed");
  Report(state, nfe, batch);
}

// DPM-Solver-3 with 20 evaluations, for comparison with the adaptive solvers' NFE.
void BM_DpmSolver3Mixture(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const VpSde sde(d);
  const GaussianMixtureScore score(Mixture(d), sde);
  Batch latent(d, batch);
  score.SampleMarginal(1.0, NoiseStream(1, Stream::kPrior), 0, latent);
  DpmSolver::Options options;
  options.nfe = 20;
  options.num_threads = static_cast<int>(state.range(2));
  const DpmSolver solver(sde, score, options);
  for (auto _ : state) {
    const OdeSolution solution = solver.Sample(latent);
    benchmark::DoNotOptimize(solution.y.data());
  }
  Report(state, 20, batch);
}

void Arguments(benchmark::internal::Benchmark* b) {
  for (int64_t d : {2, 16, 64}) {
    for (int64_t mode : {0, 1}) b->Args({d, 256, 1, mode});
  }
  b->Args({16, 1024, 2, 0});
  b->Args({16, 1024, 2, 1});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_DecodeMixture)->Apply(Arguments);
BENCHMARK(BM_DecodeLinear)->Apply(Arguments);
BENCHMARK(BM_LikelihoodMixture)->Apply(Arguments);
BENCHMARK(BM_DpmSolver3Mixture)->Args({2, 256, 1, 0})->Args({16, 256, 1, 0})->Args({64, 256, 1, 0})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace scoresde

BENCHMARK_MAIN();
