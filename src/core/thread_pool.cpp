// ThreadPool: parallel_for on the OpenMP team that oneDNN also uses; owned by a Context, never global.
//
// Why OpenMP and not our own threads (docs/threading.md): oneDNN's OpenMP workers keep spinning for a
// while after each primitive. A second set of threads (the previous std::thread pool) then competed
// with those spinning workers for the same cores, and on a 2-core machine every elementwise pass
// between two convolutions ran at a fraction of its speed (perf showed ~29% of an int4 run inside
// libgomp's spin loop). Sharing one team removes the contention: whichever thread finishes a
// convolution picks up the next chunk of our work.
#include <omp.h>

#include <algorithm>
#include <exception>
#include <mutex>

#include "aciq/core.hpp"

namespace aciq {

struct ThreadPool::Impl {};

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {}

ThreadPool::~ThreadPool() = default;

void ThreadPool::parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  const std::int64_t chunks = std::min<std::int64_t>(n, threads_);
  // Called from inside another parallel region (a caller's own OpenMP code), run serially:
  // nested teams would oversubscribe the cores.
  if (chunks == 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
  for (std::int64_t c = 0; c < chunks; ++c) {
    // Chunk boundaries depend only on n and the pool size, never on timing.
    try {
      fn(n * c / chunks, n * (c + 1) / chunks);
    } catch (...) {
      std::lock_guard lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

Context::Context(int threads) : pool(std::make_shared<ThreadPool>(threads)) {}

}  // namespace aciq
