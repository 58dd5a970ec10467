// Tests that ThreadPool::parallel_for covers every index once and propagates exceptions.
#include <gtest/gtest.h>

#include <atomic>

#include "aciq/core.hpp"

namespace aciq {
namespace {

TEST(ThreadPool, CoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (std::int64_t n : {1, 2, 13, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      pool.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) hits[i]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPool, RethrowsWorkerException) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(10, [](std::int64_t b, std::int64_t) {
    if (b > 0) throw Error("boom");
  }), Error);
  // The pool stays usable afterwards.
  std::atomic<int> count{0};
  pool.parallel_for(4, [&](std::int64_t b, std::int64_t e) { count += static_cast<int>(e - b); });
  EXPECT_EQ(count.load(), 4);
}

}  // namespace
}  // namespace aciq
