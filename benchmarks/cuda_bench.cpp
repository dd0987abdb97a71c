// Throughput of the CUDA backend (docs/gpu.md): training steps per second and sampling throughput
// of the MLP score model, and the card's ceilings (cuBLAS SGEMM in FP32 and TF32, device-to-device
// copy). benchmarks/compare_torch_gpu.py runs this program next to the same model in PyTorch.
//
//   BM_CudaTrainStep/<width>/<batch>/<math>  one DSM update (VP SDE, noise parameterization,
//        σ² weighting, Adam with warm-up, clipping at 1, EMA), d = 2, depth 3, embed 32; 20 steps
//        are enqueued per iteration and the host waits for them (wall time / 20).
//   BM_CudaSample/<width>/<batch>/<math>  Euler–Maruyama on the reverse VP SDE with the learned
//        score, 100 steps, `batch` samples in one chunk, results copied back to the host.
//   BM_CudaPeaks  SGEMM 8192³ (median of 10) in FP32 and TF32, 1 GiB device copy.
// <math>: 0 pedantic FP32, 1 FP32 (cuBLAS default; PyTorch allow_tf32 = False), 2 TF32.
// Every benchmark reports "skipped: no CUDA device" on machines without one.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "scoresde/scoring/cuda_backend.hpp"
#include "scoresde/scoring/datasets.hpp"
#include "scoresde/sde/vp_sde.hpp"

namespace scoresde {
namespace {

constexpr int kStepsPerIteration = 20;
constexpr int kSampleSteps = 100;

MlpConfig BenchConfig(int width) {
  MlpConfig c;
  c.dim = 2;
  c.width = width;
  c.depth = 3;
  c.embed_dim = 32;
  c.parameterization = Parameterization::kNoise;
  return c;
}

// Σ in·out over the layers: a forward pass costs 2·B·this FLOPs, a training step about 3 times.
double WeightCount(const MlpConfig& c) {
  double total = static_cast<double>(c.input_dim()) * c.width;
  total += static_cast<double>(c.depth - 1) * c.width * c.width;
  total += static_cast<double>(c.width) * c.dim;
  return total;
}

bool RequireDevice(benchmark::State& state) {
  const CudaDeviceInfo info = QueryCudaDevice();
  if (info.available) return true;
  state.SkipWithError(("skipped: no CUDA device (" + info.reason + ")").c_str());
  return false;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_CudaTrainStep(benchmark::State& state) {
  if (!RequireDevice(state)) return;
  const int width = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  CudaOptions cuda;
  cuda.math = static_cast<CudaMath>(state.range(2));
  const MlpConfig config = BenchConfig(width);
  const MlpNetwork<float> network(config, 0);
  const auto sde = std::make_shared<VpSde>(2);
  CudaTrainerOptions options;
  options.batch_size = batch;
  CudaTrainer trainer(network, sde, LossOptions{}, AdamOptions{}, options, cuda);
  std::vector<Matrix> batches(4, Matrix(2, batch));
  for (int k = 0; k < 4; ++k) SampleToy2d(Toy2d::kTwoMoons, 0, k * batch, batches[k]);
  for (int k = 0; k < 3; ++k) trainer.Enqueue(batches[k % 4]);  // eager step, graph capture
  trainer.Wait();
  int64_t steps = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < kStepsPerIteration; ++k) trainer.Enqueue(batches[k % 4]);
    const auto records = trainer.Wait();
    state.SetIterationTime(Seconds(start));
    benchmark::DoNotOptimize(records.data());
    steps += kStepsPerIteration;
  }
  state.counters["steps_per_second"] = benchmark::Counter(static_cast<double>(steps),
                                                          benchmark::Counter::kIsRate);
  state.counters["flops_per_step"] = 6.0 * static_cast<double>(batch) * WeightCount(config);
  state.counters["parameters"] = static_cast<double>(trainer.Parameters().size());
}

void BM_CudaSample(benchmark::State& state) {
  if (!RequireDevice(state)) return;
  const int width = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  CudaOptions cuda;
  cuda.math = static_cast<CudaMath>(state.range(2));
  const MlpConfig config = BenchConfig(width);
  const MlpNetwork<float> network(config, 0);
  CudaSampler sampler(network, std::make_shared<VpSde>(2), cuda);
  CudaSamplerOptions options;
  options.num_steps = kSampleSteps;
  options.chunk_size = batch;
  const CudaSampleResult first = sampler.Sample(batch, options);  // graph capture
  state.counters["setup_seconds"] = first.setup_seconds;
  int64_t samples = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const CudaSampleResult r = sampler.Sample(batch, options);
    state.SetIterationTime(Seconds(start));
    benchmark::DoNotOptimize(r.x.data());
    samples += batch;
  }
  state.counters["samples_per_second"] = benchmark::Counter(static_cast<double>(samples),
                                                            benchmark::Counter::kIsRate);
  state.counters["steps"] = kSampleSteps;
  state.counters["flops_per_step"] = 2.0 * static_cast<double>(batch) * WeightCount(config);
}

void BM_CudaPeaks(benchmark::State& state) {
  if (!RequireDevice(state)) return;
  CudaPeaks peaks;
  for (auto _ : state) peaks = MeasureCudaPeaks(8192, int64_t{1} << 30, 10);
  const CudaDeviceInfo info = QueryCudaDevice();
  state.SetLabel(info.name + ", " + std::to_string(info.multiprocessors) + " SMs, driver " +
                 std::to_string(info.driver_version) + ", runtime " +
                 std::to_string(info.runtime_version) + ", cuBLAS " +
                 std::to_string(info.cublas_version));
  state.counters["sgemm_fp32_tflops"] = peaks.sgemm_fp32_tflops;
  state.counters["sgemm_tf32_tflops"] = peaks.sgemm_tf32_tflops;
  state.counters["copy_gbytes_per_second"] = peaks.copy_gbytes_per_second;
}

void Grid(benchmark::internal::Benchmark* b) {
  for (int math : {1, 2}) {
    for (int width : {256, 512, 1024}) {
      for (int batch : {1024, 8192, 65536}) b->Args({width, batch, math});
    }
  }
}

BENCHMARK(BM_CudaPeaks)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaTrainStep)->Apply(Grid)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaSample)->Apply(Grid)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace scoresde

BENCHMARK_MAIN();
