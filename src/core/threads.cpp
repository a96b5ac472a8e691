#include "minitx/core/threads.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "minitx/core/error.h"

namespace minitx {
namespace {

int default_threads() {
  if (const char* env = std::getenv("MINITX_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long value = std::strtol(env, &end, 10);
    if (*end != '\0' || value < 1 || value > 1024)
      fail("MINITX_THREADS: expected a whole number from 1 to 1024, got '{}'", excerpt(env));
    return static_cast<int>(value);
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Workers wait for a generation number to change, run their chunk, and count down. Both sides
// spin briefly on atomics before sleeping: a decode step issues dozens of parallel_for calls a
// few microseconds apart, and a condition-variable wake-up costs more than the work itself.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(const std::function<void(int)>& task) {
    task_ = &task;
    error_ = nullptr;
    pending_.store(size() - 1, std::memory_order_relaxed);
    {
      // Under the lock, so a worker deciding to sleep either sees the new generation or is
      // already waiting (and counted in sleepers_).
      std::lock_guard lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load() > 0) wake_.notify_all();
    try {
      task(0);
    } catch (...) {
      record_error();
    }
    if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock lock(mutex_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Polls for a few tens of microseconds, long enough to bridge the gap between two calls of
  // one decode step. It yields between polls so that, on a machine with more runnable threads
  // than cores, the thread we wait for gets the core instead of us.
  template <class Ready>
  static bool spin_until(Ready ready) {
    for (int i = 0; i < 64; ++i) {
      for (int j = 0; j < 16; ++j) {
        if (ready()) return true;
        _mm_pause();
      }
      std::this_thread::yield();
    }
    return ready();
  }

  void record_error() {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }

  void loop(int index) {
    std::uint64_t seen = 0;
    for (;;) {
      const auto changed = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(changed)) {
        std::unique_lock lock(mutex_);
        ++sleepers_;
        wake_.wait(lock, changed);
        --sleepers_;
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      try {
        (*task_)(index);
      } catch (...) {
        record_error();
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_, error_mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  bool stop_ = false;  // written under mutex_ before the generation that workers read it after
  std::exception_ptr error_;
};

// The requested count is read without the pool's lock, so code running inside a parallel_for
// body may ask for it (a nested lock would deadlock).
std::atomic<int> g_requested{0};  // 0: not set yet
std::mutex g_pool_mutex;          // serialises parallel_for calls from different threads
std::unique_ptr<Pool> g_pool;
thread_local bool t_inside_pool = false;

Pool& pool() {
  const int wanted = thread_count();
  if (!g_pool || g_pool->size() != wanted) {
    g_pool.reset();
    g_pool = std::make_unique<Pool>(wanted);
  }
  return *g_pool;
}

}  // namespace

int thread_count() {
  int n = g_requested.load();
  if (n == 0) {
    int expected = 0;
    g_requested.compare_exchange_strong(expected, default_threads());
    n = g_requested.load();
  }
  return n;
}

void set_thread_count(int threads) {
  MINITX_CHECK(threads >= 0 && threads <= 1024, "threads: expected 0 (all cores) to 1024, got {}", threads);
  g_requested = threads == 0 ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) : threads;
}

void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn, std::size_t grain) {
  if (n == 0) return;
  grain = std::max<std::size_t>(grain, 1);
  const std::size_t units = (n + grain - 1) / grain;
  // Nested calls run serially: same chunks as one thread would see, no deadlock.
  if (t_inside_pool) {
    fn(0, n);
    return;
  }
  std::lock_guard lock(g_pool_mutex);
  Pool& workers = pool();
  const std::size_t chunks = std::min<std::size_t>(units, static_cast<std::size_t>(workers.size()));
  if (chunks <= 1) {
    t_inside_pool = true;
    try {
      fn(0, n);
    } catch (...) {
      t_inside_pool = false;
      throw;
    }
    t_inside_pool = false;
    return;
  }
  workers.run([&](int index) {
    const auto i = static_cast<std::size_t>(index);
    if (i >= chunks) return;
    const std::size_t begin = std::min(n, (units * i / chunks) * grain);
    const std::size_t end = std::min(n, (units * (i + 1) / chunks) * grain);
    t_inside_pool = true;
    try {
      if (begin < end) fn(begin, end);
    } catch (...) {
      t_inside_pool = false;
      throw;
    }
    t_inside_pool = false;
  });
}

}  // namespace minitx
