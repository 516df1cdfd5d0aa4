#include "core/threads.hpp"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/blas.hpp"
#include "core/error.hpp"

namespace tg {
namespace {

int machine_cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{machine_cores()};
  return count;
}

thread_local bool t_inside_parallel = false;

// A small pool of persistent workers. Each parallel_for publishes one job: a body and a chunk count;
// workers take chunk indices from an atomic counter, the caller takes its share too.
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  void run(std::size_t chunks, const std::function<void(std::size_t)>& chunk_body) {
    std::lock_guard<std::mutex> one_job_at_a_time(run_mutex_);
    ensure_workers(static_cast<std::size_t>(num_threads()) - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &chunk_body;
      chunks_ = chunks;
      next_ = 0;
      remaining_ = chunks;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return remaining_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void ensure_workers(std::size_t n) {
    while (workers_.size() < n) workers_.emplace_back([this] { loop(); });
  }

  // Takes chunks until none are left.
  void work() {
    t_inside_parallel = true;
    for (;;) {
      const std::size_t i = next_.fetch_add(1);
      if (i >= chunks_) break;
      try {
        (*body_.load())(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (--remaining_ == 0) done_.notify_all();
    }
    t_inside_parallel = false;
  }

  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || (generation_ != seen && body_ != nullptr); });
        if (stop_) return;
        seen = generation_;
      }
      work();
    }
  }

  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  // atomics: a worker finishing one job may read them while the next job is being published
  std::atomic<const std::function<void(std::size_t)>*> body_{nullptr};
  std::atomic<std::size_t> chunks_{0};
  std::size_t remaining_ = 0;
  std::atomic<std::size_t> next_{0};
  std::uint64_t generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads: expected n >= 1, got ", n);
  thread_count() = n;
  blas_set_num_threads(1);  // our threads parallelize; OpenBLAS stays single-threaded (see core/blas.hpp)
}

int num_threads() { return thread_count(); }

void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& body, std::size_t grain) {
  if (n == 0) return;
  const auto threads = static_cast<std::size_t>(num_threads());
  const std::size_t chunks = std::min(threads, std::max<std::size_t>(1, n / std::max<std::size_t>(grain, 1)));
  if (chunks <= 1 || t_inside_parallel) {
    body(0, n);
    return;
  }
  const std::function<void(std::size_t)> chunk_body = [&](std::size_t c) {
    body(c * n / chunks, (c + 1) * n / chunks);  // contiguous, balanced, deterministic split
  };
  pool().run(chunks, chunk_body);
}

}  // namespace tg
