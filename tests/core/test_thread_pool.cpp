// thread_pool, parallel_for, parallel_reduce: coverage (each index once), determinism of reductions at any
// thread count, error propagation, nested calls, and many small jobs back to back.
#include <atomic>
#include <bit>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "slim/core/philox.hpp"
#include "slim/core/thread_pool.hpp"

namespace {

/// Ends the program with a message if the scope is not left within `seconds`: a deadlock then fails the
/// test run instead of hanging it.
class watchdog {
 public:
  watchdog(const char* what, int seconds)
      : thread_([this, what, seconds] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: '%s' did not finish within %d s (deadlock?)\n", what, seconds);
            std::_Exit(3);
          }
        }) {}
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// Values whose float sum depends strongly on the order of additions: magnitudes from 2^-10 to 2^20, both
/// signs.
std::vector<float> order_sensitive_values(std::size_t n) {
  std::vector<float> v(n);
  slim::philox_stream s(31337);
  for (auto& x : v) {
    const float mag = std::ldexp(1.0f + s.uniform(), static_cast<int>(s.below(31)) - 10);
    x = s.below(2) ? mag : -mag;
  }
  return v;
}

}  // namespace

TEST_CASE("thread_pool counts the caller among its threads", "[thread_pool]") {
  CHECK(slim::thread_pool(1).threads() == 1);
  CHECK(slim::thread_pool(3).threads() == 3);
  CHECK(slim::thread_pool(0).threads() >= 1);  // hardware_concurrency, at least one
}

TEST_CASE("parallel_for visits every index exactly once, in chunks fixed by n and grain", "[thread_pool]") {
  watchdog guard("parallel_for coverage", 60);
  slim::thread_pool p1(1), p2(2), p4(4);
  for (slim::thread_pool* pool : {static_cast<slim::thread_pool*>(nullptr), &p1, &p2, &p4})
    for (const slim::index_t n : {slim::index_t{1}, slim::index_t{36}, slim::index_t{37}, slim::index_t{100003}}) {
      const slim::index_t grain = 37;
      std::vector<std::atomic<int>> visits(static_cast<std::size_t>(n));
      std::atomic<int> bad_chunks{0}, chunks{0};
      slim::parallel_for(pool, n, grain, [&](slim::index_t b, slim::index_t e) {
        ++chunks;
        // Chunk boundaries: multiples of the grain; every chunk but the last is full.
        if (b % grain != 0 || e - b < 1 || e - b > grain || (e - b < grain && e != n)) ++bad_chunks;
        for (slim::index_t i = b; i < e; ++i) ++visits[static_cast<std::size_t>(i)];
      });
      INFO("threads " << (pool ? pool->threads() : 0) << ", n " << n);
      CHECK(bad_chunks == 0);
      CHECK(chunks == slim::chunk_count(n, grain));
      int wrong = 0;
      for (auto& v : visits) wrong += v != 1;
      CHECK(wrong == 0);
    }
  // Empty and negative ranges call nothing; a grain below 1 acts as 1.
  int calls = 0;
  slim::parallel_for(&p2, 0, 8, [&](slim::index_t, slim::index_t) { ++calls; });
  slim::parallel_for(&p2, -5, 8, [&](slim::index_t, slim::index_t) { ++calls; });
  CHECK(calls == 0);
  std::atomic<int> singles{0};
  slim::parallel_for(&p2, 10, 0, [&](slim::index_t b, slim::index_t e) { singles += (e - b == 1); });
  CHECK(singles == 10);
  CHECK(slim::chunk_count(0, 4) == 0);
  CHECK(slim::chunk_count(8, 4) == 2);
  CHECK(slim::chunk_count(9, 4) == 3);
}

TEST_CASE("parallel_reduce of a float sum is bit-identical at every thread count", "[thread_pool]") {
  watchdog guard("parallel_reduce determinism", 60);
  const std::size_t n = 1000000;
  const slim::index_t grain = 4096;
  const std::vector<float> v = order_sensitive_values(n);
  auto reduce = [&](slim::thread_pool* pool) {
    return slim::parallel_reduce(
        pool, static_cast<slim::index_t>(n), grain, 0.0f,
        [&](slim::index_t b, slim::index_t e) {
          float s = 0;
          for (slim::index_t i = b; i < e; ++i) s += v[static_cast<std::size_t>(i)];
          return s;
        },
        [](float a, float b) { return a + b; });
  };
  // The documented order, written out: per-chunk sums left to right, folded left to right from init.
  float expected = 0;
  for (std::size_t b = 0; b < n; b += grain) {
    float s = 0;
    for (std::size_t i = b; i < std::min(n, b + grain); ++i) s += v[i];
    expected += s;
  }
  float naive = 0;  // one left-to-right pass: another order
  for (float x : v) naive += x;

  slim::thread_pool p1(1), p2(2), p4(4);
  const std::uint32_t want = std::bit_cast<std::uint32_t>(expected);
  CHECK(std::bit_cast<std::uint32_t>(reduce(nullptr)) == want);
  CHECK(std::bit_cast<std::uint32_t>(reduce(&p1)) == want);
  for (int repeat = 0; repeat < 10; ++repeat) {  // schedules differ run to run; the result must not
    CHECK(std::bit_cast<std::uint32_t>(reduce(&p2)) == want);
    CHECK(std::bit_cast<std::uint32_t>(reduce(&p4)) == want);
  }
  // The data is order-sensitive, so the checks above would see a change of summation order.
  INFO("chunked " << expected << ", naive " << naive);
  CHECK(std::bit_cast<std::uint32_t>(naive) != want);
}

TEST_CASE("an exception in a task is rethrown by run(); the other tasks still run", "[thread_pool]") {
  watchdog guard("exceptions", 60);
  for (const std::size_t threads : {1u, 2u, 4u}) {
    slim::thread_pool pool(threads);
    std::atomic<int> ran{0};
    INFO("threads " << threads);
    CHECK_THROWS_WITH(pool.run(100,
                               [&](slim::index_t i) {
                                 if (i == 37) throw std::runtime_error("task 37 failed");
                                 ++ran;
                               }),
                      "task 37 failed");
    CHECK(ran == 99);
    // The pool stays usable.
    std::atomic<int> after{0};
    pool.run(50, [&](slim::index_t) { ++after; });
    CHECK(after == 50);
    // Through parallel_for as well, with the exception type kept.
    CHECK_THROWS_AS(slim::parallel_for(&pool, 1000, 10,
                                       [](slim::index_t b, slim::index_t) {
                                         if (b == 500) throw slim::error("where", "place", "boom");
                                       }),
                    slim::error);
  }
}

TEST_CASE("a task that calls run() again runs the inner job inline, without deadlock", "[thread_pool]") {
  watchdog guard("nested run", 30);
  slim::thread_pool pool(4);
  const slim::index_t outer = 64, inner = 100;
  std::vector<std::atomic<int>> visits(static_cast<std::size_t>(outer * inner));
  std::atomic<int> foreign_thread{0};
  slim::parallel_for(&pool, outer, 1, [&](slim::index_t ob, slim::index_t) {
    const auto me = std::this_thread::get_id();
    slim::parallel_for(&pool, inner, 7, [&](slim::index_t b, slim::index_t e) {
      if (std::this_thread::get_id() != me) ++foreign_thread;
      for (slim::index_t i = b; i < e; ++i) ++visits[static_cast<std::size_t>(ob * inner + i)];
    });
  });
  int wrong = 0;
  for (auto& v : visits) wrong += v != 1;
  CHECK(wrong == 0);
  CHECK(foreign_thread == 0);
}

TEST_CASE("10,000 small jobs in a row, and jobs from two outside threads at once, all complete", "[thread_pool]") {
  watchdog guard("stress", 120);
  slim::thread_pool pool(4);
  std::atomic<std::int64_t> total{0};
  std::int64_t want = 0;
  for (int job = 0; job < 10000; ++job) {
    const slim::index_t count = 2 + job % 7;
    want += count;
    pool.run(count, [&](slim::index_t) { total.fetch_add(1, std::memory_order_relaxed); });
  }
  CHECK(total == want);

  std::atomic<std::int64_t> shared{0};
  auto submitter = [&] {
    for (int job = 0; job < 2000; ++job) pool.run(5, [&](slim::index_t) { ++shared; });
  };
  std::thread a(submitter), b(submitter);
  a.join();
  b.join();
  CHECK(shared == 2 * 2000 * 5);
}
