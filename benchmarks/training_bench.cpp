// Training throughput of the CPU MLP score model (issue 5, item 10), and the machine's GEMM
// throughput at the sizes training uses, for the fraction-of-peak figures in
// docs/training.md. benchmarks/compare_torch_training.py runs this program and the
// same model in PyTorch side by side.
//
//   BM_TrainStep/<width>/<batch>/<threads>   one Trainer<float> step: DSM loss (VP, noise form),
//       forward + backward over the batch in blocks of 128 columns, deterministic reduction,
//       clipping, Adam, EMA. depth 3 (input layer, 2 residual hidden layers), embed_dim 32, d = 2.
//       Counters: steps_per_s, gflops (useful GEMM flops per second, formula in GemmFlopsPerStep).
//   BM_EigenSgemm/<m>/<k>/<n>   C (m × n) = A (m × k) · B (k × n), float, single thread (Eigen), the
//       shape of one hidden layer on one block: the machine's attainable GEMM rate here.
#include <benchmark/benchmark.h>

#include <memory>

#include <Eigen/Core>

#include "scoresde/scoring/datasets.hpp"
#include "scoresde/scoring/trainer.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

constexpr int kDepth = 3;
constexpr int kEmbed = 32;
constexpr int kDim = 2;

// Flops of the GEMMs of one step: forward 2·in·out·B per layer, weight gradients 2·in·out·B per
// layer, input gradients 2·in·out·B per layer except the first.
double GemmFlopsPerStep(int width, int64_t batch) {
  double per_column = 0.0;
  const double in0 = kDim + kEmbed;
  per_column += 2 * (2.0 * in0 * width);                          // input layer: forward + dW
  per_column += (kDepth - 1) * 3 * (2.0 * width * width);         // hidden layers
  per_column += 3 * (2.0 * width * kDim);                         // output layer
  return per_column * static_cast<double>(batch);
}

void BM_TrainStep(benchmark::State& state) {
  const int width = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  auto sde = std::make_shared<VpSde>(kDim);
  MlpConfig model;
  model.dim = kDim;
  model.width = width;
  model.depth = kDepth;
  model.embed_dim = kEmbed;
  AdamOptions adam;
  adam.learning_rate = 1e-4;
  adam.warmup_steps = 0;
  TrainerOptions options;
  options.batch_size = batch;
  options.num_threads = threads;
  options.num_steps = 1 << 30;
  options.progress = ProgressStyle::kNone;
  Trainer<float> trainer(sde, model, LossOptions{}, adam, options);
  const Toy2dDataSource data(Toy2d::kTwoMoons, 0);
  double loss = 0.0;
  for (int i = 0; i < 3; ++i) loss = trainer.Step(data);  // warm-up: allocations, caches
  for (auto _ : state) {
    loss = trainer.Step(data);
    benchmark::DoNotOptimize(loss);
  }
  if (!std::isfinite(loss)) state.SkipWithError("non-finite loss");
  state.counters["steps_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                     benchmark::Counter::kIsRate);
  state.counters["gflops"] = benchmark::Counter(
      GemmFlopsPerStep(width, batch) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

void TrainArgs(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (int width : {128, 256, 512}) {
      for (int batch : {256, 1024, 4096}) b->Args({width, batch, threads});
    }
  }
}
BENCHMARK(BM_TrainStep)->Apply(TrainArgs)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EigenSgemm(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1)),
            n = static_cast<int>(state.range(2));
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k);
  const Eigen::MatrixXf b = Eigen::MatrixXf::Random(k, n);
  Eigen::MatrixXf c(m, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  if (!c.allFinite()) state.SkipWithError("non-finite product");
  state.counters["gflops"] = benchmark::Counter(
      2.0 * m * k * n * static_cast<double>(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EigenSgemm)
    ->Args({128, 128, 128})
    ->Args({256, 256, 128})
    ->Args({512, 512, 128})
    ->Args({512, 512, 4096})
    ->Args({1024, 1024, 1024});

}  // namespace
}  // namespace scoresde

BENCHMARK_MAIN();
