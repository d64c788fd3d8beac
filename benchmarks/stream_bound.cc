// The memory-traffic bound of an optimizer step on this CPU, for
// benchmarks/optimizer_step.py (--bound).
//
// An optimizer step reads θ, its slots and g and writes θ and the slots back; it
// cannot take less time than streaming those bytes. This program streams exactly
// that pattern with the cheapest arithmetic — for each element, every written
// array gets x[i] += g[i] — over ARRAYS float32 arrays of N elements (the last is
// g, read only; the others are read and written): SGD 2 arrays (12 B/param),
// Momentum/Nesterov/AdaGrad/RMSProp 3 (20 B), Nesterov-RMSProp/Adam 4 (28 B).
// THREADS threads each take a contiguous share and meet at a barrier after every
// step, as one step of a real optimizer does; there is no TensorFlow, no dispatch
// and no per-variable overhead, so the time is a floor, not a competitor.
//
//   c++ -O3 -march=x86-64-v3 -std=c++20 -pthread stream_bound.cc -o stream_bound
//   (optimizer_step.py builds it with the kernels' portable chain, keras_optlab.accel.cpu.flag_sets())
//   ./stream_bound ARRAYS N THREADS STEPS ROUNDS WARMUP
//
// Prints one JSON list: the ms per step of each round.

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s ARRAYS N THREADS STEPS ROUNDS WARMUP\n", argv[0]);
    return 2;
  }
  const int arrays = std::atoi(argv[1]);
  const long n = std::atol(argv[2]);
  const int threads = std::atoi(argv[3]);
  const int steps = std::atoi(argv[4]), rounds = std::atoi(argv[5]), warmup = std::atoi(argv[6]);
  if (arrays < 2 || arrays > 4 || n < 1 || threads < 1 || steps < 1 || rounds < 1 || warmup < 0) {
    std::fprintf(stderr, "need ARRAYS in 2..4 and N, THREADS, STEPS, ROUNDS >= 1, WARMUP >= 0\n");
    return 2;
  }
  std::vector<std::vector<float>> data(arrays, std::vector<float>(n));  // zeroed: pages touched
  for (long i = 0; i < n; ++i) data[arrays - 1][i] = 1e-3f * static_cast<float>(i % 7);
  std::vector<float*> x;
  for (int k = 0; k + 1 < arrays; ++k) x.push_back(data[k].data());
  const float* g = data[arrays - 1].data();

  auto pass = [&](long begin, long end) {
    // One loop over the elements, every array per element (as the kernels do).
    switch (arrays) {
      case 2: {
        float* __restrict__ a = x[0];
        for (long i = begin; i < end; ++i) a[i] += g[i];
        break;
      }
      case 3: {
        float* __restrict__ a = x[0];
        float* __restrict__ b = x[1];
        for (long i = begin; i < end; ++i) {
          a[i] += g[i];
          b[i] += g[i];
        }
        break;
      }
      default: {  // 4
        float* __restrict__ a = x[0];
        float* __restrict__ b = x[1];
        float* __restrict__ c = x[2];
        for (long i = begin; i < end; ++i) {
          a[i] += g[i];
          b[i] += g[i];
          c[i] += g[i];
        }
      }
    }
  };

  std::barrier sync(threads);
  std::vector<double> ms;
  auto run = [&](int count, bool record) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    auto worker = [&](int t) {
      const long chunk = (n + threads - 1) / threads;
      const long begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
      for (int s = 0; s < count; ++s) {
        pass(begin, end);
        sync.arrive_and_wait();
      }
    };
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
    worker(0);
    for (auto& th : pool) th.join();
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (record) ms.push_back(elapsed / count);
  };
  if (warmup > 0) run(warmup, false);
  for (int r = 0; r < rounds; ++r) run(steps, true);
  std::printf("[");
  for (int r = 0; r < rounds; ++r) std::printf("%s%.6f", r ? ", " : "", ms[r]);
  std::printf("]\n");
  return 0;
}
