// BatchLoader: worker threads decode chunks of upcoming batches into place; the consumer takes them in order.
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "aciq/data.hpp"

namespace aciq::data {

// Work is handed out as chunks (a few consecutive samples of one batch) in dataset order, and only for
// batches inside the prefetch window [consumed, consumed + prefetch). Each chunk's samples are written
// straight into their rows of the batch tensor, so where a sample lands never depends on which worker
// decoded it or when.
struct BatchLoader::State {
  std::shared_ptr<const Dataset> ds;
  LoaderOptions opt;
  Shape sample_shape;
  std::int64_t sample_numel = 0;
  std::int64_t total = 0;
  std::int64_t batches = 0;
  std::int64_t chunk = 1;

  struct Slot {
    Tensor images;
    std::vector<std::int64_t> labels;
    std::int64_t remaining = 0;  // chunks not yet finished
    std::exception_ptr error;    // of the earliest failed chunk
    std::int64_t error_chunk = std::numeric_limits<std::int64_t>::max();
  };

  std::mutex mu;
  std::condition_variable work_cv;   // workers: a chunk may be in the window, or stop
  std::condition_variable ready_cv;  // consumer: a batch completed, or a worker died
  std::int64_t hand_batch = 0;       // next chunk to hand out: (hand_batch, hand_chunk)
  std::int64_t hand_chunk = 0;
  std::int64_t consumed = 0;                                           // batches already returned by next()
  std::int64_t last_batch = std::numeric_limits<std::int64_t>::max();  // nothing is handed out past a failure
  std::map<std::int64_t, Slot> slots;
  bool stop = false;
  std::exception_ptr fatal;     // an error outside any chunk (e.g. out of memory)
  std::exception_ptr terminal;  // the error next() already threw; thrown again on every later call
  std::vector<std::thread> threads;

  std::int64_t batch_len(std::int64_t b) const {
    return std::min(opt.batch_size, total - b * opt.batch_size);
  }

  bool has_work() const { return hand_batch < batches && hand_batch <= last_batch; }

  void worker() {
    std::unique_ptr<SampleReader> reader;
    std::unique_lock lock(mu);
    for (;;) {
      work_cv.wait(lock, [&] { return stop || !has_work() || hand_batch < consumed + opt.prefetch_batches; });
      if (stop || !has_work()) return;
      const std::int64_t b = hand_batch, j = hand_chunk;
      const std::int64_t n = batch_len(b);
      if ((++hand_chunk) * chunk >= n) {
        hand_chunk = 0;
        ++hand_batch;
      }
      auto it = slots.find(b);
      if (it == slots.end()) {
        // Built aside and inserted whole: a failed allocation leaves no half-made slot behind.
        Slot fresh;
        Shape shape = sample_shape;
        shape.insert(shape.begin(), n);
        fresh.images = Tensor(DType::kFloat32, shape);
        fresh.labels.assign(static_cast<std::size_t>(n), 0);
        fresh.remaining = (n + chunk - 1) / chunk;
        it = slots.emplace(b, std::move(fresh)).first;
      }
      Tensor images = it->second.images;                // shares the buffer
      std::int64_t* labels = it->second.labels.data();  // map nodes and the vector stay put until taken
      lock.unlock();

      const std::int64_t first = opt.offset + b * opt.batch_size;
      const std::int64_t begin = first + j * chunk, end = std::min(begin + chunk, first + n);
      std::exception_ptr err;
      try {
        if (!reader) {
          reader = ds->open_reader(begin);
        } else if (reader->position() != begin) {
          reader->seek(begin);
        }
        const std::span<float> all = images.f32();
        for (std::int64_t i = begin; i < end; ++i) {
          const auto row = static_cast<std::size_t>((i - first) * sample_numel);
          labels[i - first] = reader->read(all.subspan(row, static_cast<std::size_t>(sample_numel)));
        }
      } catch (const Error&) {
        err = std::current_exception();
      } catch (const std::exception& e) {
        err = std::make_exception_ptr(Error(ds->describe() + ": loading samples " + std::to_string(begin) +
                                            ".." + std::to_string(end - 1) + ": " + e.what()));
      }
      if (err) reader.reset();  // its position is unknown after a failure

      lock.lock();
      Slot& done = slots.at(b);
      if (err) {
        if (j < done.error_chunk) {
          done.error = err;
          done.error_chunk = j;
        }
        last_batch = std::min(last_batch, b);
      }
      if (--done.remaining == 0) ready_cv.notify_all();
    }
  }

  void run_worker() {
    try {
      worker();
    } catch (...) {
      std::lock_guard lock(mu);
      if (!fatal) fatal = std::current_exception();
      stop = true;
      work_cv.notify_all();
      ready_cv.notify_all();
    }
  }

  void shutdown() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }
};

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  if (!dataset) fail("BatchLoader: no dataset");
  const std::string name = dataset->describe();
  if (options.batch_size < 1)
    fail(name + ": batch size must be at least 1, got " + std::to_string(options.batch_size));
  if (options.limit < 0) fail(name + ": limit must be >= 0, got " + std::to_string(options.limit));
  if (options.offset < 0 || options.offset >= dataset->size()) {
    if (options.offset != 0) {
      fail(name + ": offset " + std::to_string(options.offset) + " is outside the dataset (" +
           std::to_string(dataset->size()) + " samples)");
    }
  }
  if (options.workers < 1)
    fail(name + ": workers must be at least 1, got " + std::to_string(options.workers));
  if (options.prefetch_batches < 1) {
    fail(name + ": prefetch_batches must be at least 1, got " + std::to_string(options.prefetch_batches));
  }
  s.ds = std::move(dataset);
  s.opt = options;
  s.sample_shape = s.ds->sample_shape();
  s.sample_numel = shape_numel(s.sample_shape);
  const std::int64_t rest = s.ds->size() - options.offset;
  s.total = options.limit > 0 ? std::min(options.limit, rest) : rest;  // no offset + limit: it may overflow
  s.batches = (s.total + options.batch_size - 1) / options.batch_size;
  if (s.batches == 0) return;
  // Refuse a batch tensor past the element limit now rather than in a worker.
  Shape batch_shape = s.sample_shape;
  batch_shape.insert(batch_shape.begin(), std::min(options.batch_size, s.total));
  try {
    (void)shape_numel(batch_shape);
  } catch (const Error& e) {
    fail(name + ": batch size " + std::to_string(options.batch_size) + " is too large: " + e.what());
  }

  int workers = options.workers;
  if (s.ds->random_access()) {
    // Small chunks spread one batch over all workers (low latency for the first batch) while keeping
    // each worker's reads contiguous.
    s.chunk = std::clamp<std::int64_t>(options.batch_size / (2 * std::int64_t{workers}), 1, 16);
  } else {
    // A stream has one reader: every extra worker would re-inflate the file to skip to its chunk.
    workers = 1;
    s.chunk = options.batch_size;
  }
  try {
    for (int i = 0; i < workers; ++i) s.threads.emplace_back([st = state_.get()] { st->run_worker(); });
  } catch (const std::exception& e) {
    s.shutdown();
    fail(name + ": cannot start loader threads: " + e.what());
  }
}

BatchLoader::~BatchLoader() { state_->shutdown(); }

std::int64_t BatchLoader::total() const { return state_->total; }

std::int64_t BatchLoader::num_batches() const { return state_->batches; }

std::optional<Batch> BatchLoader::next() {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  if (s.terminal) std::rethrow_exception(s.terminal);
  if (s.consumed >= s.batches) return std::nullopt;
  const std::int64_t b = s.consumed;
  const auto complete = [&] {
    const auto it = s.slots.find(b);
    return it != s.slots.end() && it->second.remaining == 0 ? it : s.slots.end();
  };
  s.ready_cv.wait(lock, [&] { return complete() != s.slots.end() || s.fatal; });
  const auto it = complete();
  if (it == s.slots.end() || it->second.error) {
    // Batches before the failure were delivered; from here on the loader only reports it.
    s.terminal = it == s.slots.end() ? s.fatal : it->second.error;
    s.stop = true;
    lock.unlock();
    s.work_cv.notify_all();
    std::rethrow_exception(s.terminal);
  }
  Batch batch;
  batch.images = std::move(it->second.images);
  batch.labels = std::move(it->second.labels);
  batch.first_index = s.opt.offset + b * s.opt.batch_size;
  s.slots.erase(it);
  ++s.consumed;
  lock.unlock();
  s.work_cv.notify_all();  // the window moved
  return batch;
}

}  // namespace aciq::data
