#include "core/runtime/threads.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/base/error.hpp"
#include "core/runtime/memory.hpp"

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

// A small pool of persistent workers. Each parallel_for publishes one job (its own chunk counter, count of
// chunks left and first error); workers take chunk indices from the job they picked up, the caller takes its
// share too. A worker that picks up a job late only finds its chunks all taken, never another job's.
// Waking a sleeping thread costs tens of microseconds here (a futex and a reschedule, more in a VM), as much
// as a whole elementwise op on a batch, so a worker that finishes a job spins for kSpinBeforeSleep looking
// for the next one before it sleeps, and the caller spins the same way for the workers to finish. 200 us is
// several wake-ups' worth: a pool kept busy by back-to-back ops never pays one, an idle pool still sleeps
// within 0.2 ms.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);
// While spinning: pause instructions per poll of done() (each pause idles the core briefly and yields to a
// hyperthread sibling), and polls per read of the clock (reading it costs more than a poll).
constexpr int kPausesPerPoll = 16;
constexpr int kPollsPerClockRead = 16;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or kSpinBeforeSleep has passed; returns done().
template <class Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  for (int i = 0;; ++i) {
    if (done()) return true;
    for (int j = 0; j < kPausesPerPoll; ++j) cpu_relax();
    if (i % kPollsPerClockRead == kPollsPerClockRead - 1 && std::chrono::steady_clock::now() > deadline) {
      return done();
    }
  }
}

struct Job {
  const std::function<void(std::size_t)>* body = nullptr;
  std::size_t chunks = 0;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> remaining{0};
  std::exception_ptr error;  // guarded by ThreadPool::mutex_
};

class ThreadPool {
 public:
  ~ThreadPool() {
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
    auto job = std::make_shared<Job>();
    job->body = &chunk_body;
    job->chunks = chunks;
    job->remaining = chunks;
    bool anyone_asleep = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
      anyone_asleep = sleeping_ > 0;
    }
    if (anyone_asleep) wake_.notify_all();
    work(*job);
    if (!spin_until([&] { return job->remaining.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return job->remaining.load() == 0; });
    }
    std::lock_guard<std::mutex> lock(mutex_);
    job_.reset();
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void ensure_workers(std::size_t n) {
    while (workers_.size() < n) workers_.emplace_back([this] { loop(); });
  }

  // Takes chunks of `job` until none are left.
  void work(Job& job) {
    t_inside_parallel = true;
    for (;;) {
      const std::size_t i = job.next.fetch_add(1);
      if (i >= job.chunks) break;
      try {
        (*job.body)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!job.error) job.error = std::current_exception();
      }
      if (job.remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(
            mutex_);  // the caller checks `remaining` under the mutex before it sleeps
        done_.notify_all();
      }
    }
    t_inside_parallel = false;
  }

  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(); });
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ++sleeping_;
        wake_.wait(lock, [&] { return stop_ || (generation_.load() != seen && job_ != nullptr); });
        --sleeping_;
        if (stop_) return;
        seen = generation_.load();
        job = job_;
      }
      work(*job);
    }
  }

  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::shared_ptr<Job> job_;                  // the job being run, guarded by mutex_
  std::atomic<std::uint64_t> generation_{0};  // written under mutex_, read by spinning workers
  int sleeping_ = 0;                          // workers inside wake_.wait, guarded by mutex_
  std::atomic<bool> stop_{false};             // set under mutex_, also read by spinning workers
};

ThreadPool& pool() {
  static ThreadPool p;
  return p;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads: expected n >= 1, got ", n);
  thread_count() = n;
}

int num_threads() { return thread_count(); }

void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& body,
                  std::size_t grain) {
  if (n == 0) return;
  advise_huge_pages();  // the output this loop is about to write may sit in newly grown heap
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
