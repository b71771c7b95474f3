// slim — a small persistent thread pool. `parallel_for` splits [0, n) into chunks whose boundaries
// depend on n and the grain only — never on the thread count — and `parallel_reduce` combines the
// per-chunk results in chunk order, so results are bit-identical at any number of threads.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"

namespace slim {

/// Persistent workers. The calling thread takes part in every job, so a pool of `threads() == 1`
/// runs everything inline and creates no thread.
class thread_pool {
 public:
  /// `threads` workers in all, counting the caller; 0 means std::thread::hardware_concurrency().
  explicit thread_pool(std::size_t threads = 0) {
    if (threads == 0) threads = std::max<std::size_t>(1, std::thread::hardware_concurrency());
    threads_ = threads;
    try {
      for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (...) {  // a thread could not start: stop the ones that did, or their destructors terminate
      stop_workers();
      throw;
    }
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { stop_workers(); }

  std::size_t threads() const noexcept { return threads_; }

  /// Calls `task(i)` for every i in [0, count), spread over the workers; returns when all are done.
  /// The first exception a task throws is rethrown here (the remaining tasks still run).
  void run(index_t count, const std::function<void(index_t)>& task) {
    if (count <= 0) return;
    if (threads_ == 1 || count == 1 || inside_task()) {  // a task that calls run() again runs inline
      std::exception_ptr first;  // same contract as the parallel path: every task runs, first error rethrown
      for (index_t i = 0; i < count; ++i) {
        try {
          task(i);
        } catch (...) {
          if (!first) first = std::current_exception();
        }
      }
      if (first) std::rethrow_exception(first);
      return;
    }
    std::unique_lock<std::mutex> job_lock(job_mutex_);  // one job at a time; nested calls run inline
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      count_ = count;
      next_.store(0, std::memory_order_relaxed);
      pending_.store(static_cast<index_t>(workers_.size()), std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  /// How long a worker keeps polling for the next job, and the caller for the workers to finish, before
  /// sleeping on a condition variable. The ops of a training step follow each other within tens of µs, about
  /// what waking a sleeping thread costs on a VM; polling bridges those gaps, sleeping takes over after it.
  static constexpr std::chrono::microseconds spin_time{200};

 private:
  static bool& inside_task() noexcept {
    thread_local bool inside = false;
    return inside;
  }
  void stop_workers() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_relaxed);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  void drain() {
    struct flag {
      flag() { inside_task() = true; }
      ~flag() { inside_task() = false; }
    } in_task;
    for (;;) {
      const index_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= count_) return;
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }
  /// Polls `ready` (a pause between polls, a yield of the core every 64) until it holds or spin_time has passed.
  template <class Ready>
  static void spin_until(Ready&& ready) noexcept {
    const auto until = std::chrono::steady_clock::now() + spin_time;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return;
        cpu_relax();
      }
      if (std::chrono::steady_clock::now() >= until) return;
      std::this_thread::yield();  // a thread waiting for this core (more threads than cores) gets it
    }
  }
  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  void worker_loop() {
    std::size_t seen = 0;
    for (;;) {
      spin_until([&] {
        return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed);
      });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] {
          return stop_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_relaxed) != seen;
        });
        if (stop_.load(std::memory_order_relaxed)) return;
        seen = generation_.load(std::memory_order_relaxed);
      }
      drain();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);  // the caller checks pending_ under the lock before sleeping
        done_.notify_all();
      }
    }
  }

  std::size_t threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(index_t)>* task_ = nullptr;
  index_t count_ = 0;
  std::atomic<index_t> next_{0};
  std::atomic<index_t> pending_{0};
  std::atomic<std::size_t> generation_{0};  // written under mutex_; read by spinning workers without it
  std::atomic<bool> stop_{false};           // likewise
  std::exception_ptr error_;
};

/// Chunking used by parallel_for / parallel_reduce: ceil(n / grain) chunks of `grain` items (the last
/// may be shorter). Depends on n and grain only.
inline index_t chunk_count(index_t n, index_t grain) noexcept {
  grain = std::max<index_t>(1, grain);
  return n <= 0 ? 0 : (n + grain - 1) / grain;
}

/// Calls `body(begin, end)` on consecutive chunks of [0, n) of `grain` items each, in parallel when
/// `pool` is non-null. Each index is visited exactly once.
template <class Body>
void parallel_for(thread_pool* pool, index_t n, index_t grain, Body&& body) {
  grain = std::max<index_t>(1, grain);
  const index_t chunks = chunk_count(n, grain);
  auto one = [&](index_t c) {
    const index_t b = c * grain;
    body(b, std::min(n, b + grain));
  };
  if (pool == nullptr || pool->threads() == 1 || chunks <= 1) {
    for (index_t c = 0; c < chunks; ++c) one(c);
    return;
  }
  pool->run(chunks, one);
}

/// Deterministic reduction: `map(begin, end)` gives each chunk's partial result, and the partials are
/// folded with `combine` left to right in chunk order starting from `init`, whatever the thread count.
template <class R, class Map, class Combine>
R parallel_reduce(thread_pool* pool, index_t n, index_t grain, R init, Map&& map, Combine&& combine) {
  grain = std::max<index_t>(1, grain);
  std::vector<R> partial(static_cast<std::size_t>(chunk_count(n, grain)), init);
  parallel_for(pool, n, grain, [&](index_t b, index_t e) { partial[static_cast<std::size_t>(b / grain)] = map(b, e); });
  R acc = init;
  for (const R& p : partial) acc = combine(acc, p);
  return acc;
}

}  // namespace slim
