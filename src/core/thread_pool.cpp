// A small fixed-size thread pool with a blocking parallel_for; owned by a Context, never global.
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "aciq/core.hpp"

namespace aciq {

struct ThreadPool::Impl {
  std::mutex mu;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::vector<std::thread> workers;
  const std::function<void(std::int64_t, std::int64_t)>* fn = nullptr;
  std::int64_t n = 0;
  std::int64_t chunks = 0;
  std::int64_t next_chunk = 0;
  std::int64_t pending = 0;
  std::uint64_t generation = 0;
  bool stop = false;
  std::exception_ptr error;

  // Runs chunks of the current job until none are left; called with the lock held.
  void drain(std::unique_lock<std::mutex>& lock) {
    while (next_chunk < chunks) {
      const std::int64_t c = next_chunk++;
      const std::int64_t begin = n * c / chunks;
      const std::int64_t end = n * (c + 1) / chunks;
      const auto* f = fn;
      lock.unlock();
      std::exception_ptr err;
      try {
        (*f)(begin, end);
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      if (err && !error) error = err;
      if (--pending == 0) done_cv.notify_all();
    }
  }
};

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads), impl_(std::make_unique<Impl>()) {
  for (int i = 1; i < threads_; ++i) {
    impl_->workers.emplace_back([impl = impl_.get()] {
      std::unique_lock lock(impl->mu);
      std::uint64_t seen = 0;
      for (;;) {
        impl->work_cv.wait(lock, [&] { return impl->stop || impl->generation != seen; });
        if (impl->stop) return;
        seen = impl->generation;
        impl->drain(lock);
      }
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

void ThreadPool::parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  std::unique_lock lock(impl_->mu);
  impl_->fn = &fn;
  impl_->n = n;
  impl_->chunks = std::min<std::int64_t>(n, threads_);
  impl_->next_chunk = 0;
  impl_->pending = impl_->chunks;
  impl_->error = nullptr;
  ++impl_->generation;
  impl_->work_cv.notify_all();
  impl_->drain(lock);
  impl_->done_cv.wait(lock, [&] { return impl_->pending == 0; });
  impl_->fn = nullptr;
  if (impl_->error) std::rethrow_exception(impl_->error);
}

Context::Context(int threads) : pool(std::make_shared<ThreadPool>(threads)) {}

}  // namespace aciq
