#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include "helpers.h"
#include "minitx/core/threads.h"

using namespace minitx;

namespace {
struct ThreadCount {
  explicit ThreadCount(int n) : old(thread_count()) { set_thread_count(n); }
  ~ThreadCount() { set_thread_count(old); }
  int old;
};
}  // namespace

TEST_CASE("threads: chunks cover [0, n) exactly once, aligned to the grain") {
  for (int threads : {1, 2, 3, 8}) {
    ThreadCount scope(threads);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
      std::vector<std::atomic<int>> hits(n);
      parallel_for(
          n,
          [&](std::size_t begin, std::size_t end) {
            CHECK(begin % 4 == 0);
            for (std::size_t i = begin; i < end; ++i) hits[i]++;
          },
          4);
      for (std::size_t i = 0; i < n; ++i) CHECK(hits[i] == 1);
    }
  }
}

TEST_CASE("threads: nested calls run inline, errors propagate") {
  ThreadCount scope(2);
  std::atomic<int> total{0};
  parallel_for(4, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) parallel_for(10, [&](std::size_t b2, std::size_t e2) { total += static_cast<int>(e2 - b2); });
  });
  CHECK(total == 40);
  CHECK_ERROR_CONTAINS(parallel_for(100, [](std::size_t b, std::size_t) {
                         if (b > 0) minitx::fail("chunk {} failed", b);
                       }),
                       "chunk 50 failed");
  CHECK_ERROR_CONTAINS(set_thread_count(-1), "threads: expected 0 (all cores) to 1024, got -1");
  set_thread_count(3);
  CHECK(thread_count() == 3);
}

TEST_CASE("threads: the count may be read inside a parallel body") {
  ThreadCount scope(2);
  std::atomic<int> seen{0};
  parallel_for(8, [&](std::size_t, std::size_t) { seen += thread_count(); });
  CHECK(seen == 4);  // two chunks, each saw 2
}
