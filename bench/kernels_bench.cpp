// Micro-benchmarks: fake_quant (SIMD and reference), sample_stats and memcpy as the bandwidth ceiling.
//
// Buffers of 64 KiB (L1/L2), 1 MiB (L2/L3) and 64 MiB (DRAM). Throughput is reported as bytes of the
// float buffer per second: fake_quant reads and writes it in place, memcpy reads one buffer and writes
// another (the same traffic), sample_stats only reads it (twice: mean first, then centered moments).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "aciq/quant.hpp"

namespace {

std::vector<float> random_buffer(std::size_t bytes) {
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.2f, 1.0f);
  std::vector<float> x(bytes / sizeof(float));
  for (float& v : x) v = dist(rng);
  return x;
}

void set_bytes(benchmark::State& state, std::size_t bytes) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
}

// A 4-bit true-zero grid clipped inside the data's range, as a clipped activation would be.
const aciq::quant::AffineQuantParams& params() {
  static const aciq::quant::AffineQuantParams p = aciq::quant::affine_params(-2.0f, 2.5f, 4);
  return p;
}

void BM_FakeQuant(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<float> x = random_buffer(bytes);
  for (auto _ : state) {
    aciq::quant::fake_quant(x, params());
    benchmark::ClobberMemory();
  }
  set_bytes(state, bytes);
  state.SetLabel(std::string(aciq::quant::simd_target_name()));
}

void BM_FakeQuantRef(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<float> x = random_buffer(bytes);
  for (auto _ : state) {
    aciq::quant::fake_quant_ref(x, params());
    benchmark::ClobberMemory();
  }
  set_bytes(state, bytes);
}

void BM_SampleStats(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = random_buffer(bytes);
  aciq::quant::SampleStats s;
  for (auto _ : state) {
    aciq::quant::sample_stats(x, s);
    benchmark::DoNotOptimize(s);
  }
  set_bytes(state, bytes);
  state.SetLabel(std::string(aciq::quant::simd_target_name()));
}

void BM_SampleStatsRef(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const std::vector<float> x = random_buffer(bytes);
  aciq::quant::SampleStats s;
  for (auto _ : state) {
    aciq::quant::sample_stats_ref(x, s);
    benchmark::DoNotOptimize(s);
  }
  set_bytes(state, bytes);
}

void BM_Memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  // Source and destination in one allocation, half a page apart modulo 4 KiB: two separate 64 KiB
  // heap blocks sit 16 bytes past a 4 KiB multiple, and the resulting 4K-aliasing stalls made glibc's
  // memcpy ~15x slower than its real ceiling.
  const std::size_t n = bytes / sizeof(float);
  std::vector<float> storage = random_buffer(2 * bytes + 4096);
  const float* src = storage.data();
  float* dst = storage.data() + n + 512;
  for (auto _ : state) {
    std::memcpy(dst, src, bytes);
    benchmark::ClobberMemory();
  }
  set_bytes(state, bytes);
}

constexpr std::int64_t kKiB = 1024;
#define ACIQ_SIZES ->Arg(64 * kKiB)->Arg(1024 * kKiB)->Arg(64 * 1024 * kKiB)

BENCHMARK(BM_FakeQuant) ACIQ_SIZES;
BENCHMARK(BM_FakeQuantRef) ACIQ_SIZES;
BENCHMARK(BM_SampleStats) ACIQ_SIZES;
BENCHMARK(BM_SampleStatsRef) ACIQ_SIZES;
BENCHMARK(BM_Memcpy) ACIQ_SIZES;

}  // namespace

BENCHMARK_MAIN();
