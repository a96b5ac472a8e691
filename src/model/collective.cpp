// Ranks as threads: a shared rendezvous, with an abort that wakes everyone.
#include "minitx/model/collective.h"

#include <fmt/format.h>

#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "minitx/core/error.h"

namespace minitx {
namespace {

// What each rank posts for the call in progress: the others read it between the two waits.
struct Posted {
  const void* data = nullptr;
  std::span<const std::span<const std::byte>> sends;
};

class ThreadGroup {
 public:
  explicit ThreadGroup(std::size_t ranks) : posted_(ranks) {}
  std::size_t size() const { return posted_.size(); }
  Posted& posted(std::size_t rank) { return posted_[rank]; }

  // Returns when every rank has arrived; throws, in every waiting rank, once the group is aborted.
  void arrive_and_wait(std::size_t rank) {
    std::unique_lock lock(mutex_);
    throw_if_aborted(rank);
    const std::size_t generation = generation_;
    if (++arrived_ == posted_.size()) {
      arrived_ = 0;
      ++generation_;
      wake_.notify_all();
      return;
    }
    wake_.wait(lock, [&] { return generation_ != generation || !why_.empty(); });
    if (generation_ == generation) throw_if_aborted(rank);
  }

  void abort(const std::string& why) {
    {
      std::lock_guard lock(mutex_);
      if (why_.empty()) why_ = why.empty() ? std::string("aborted") : why;
    }
    wake_.notify_all();
  }
  std::string why() const {
    std::lock_guard lock(mutex_);
    return why_;
  }

 private:
  void throw_if_aborted(std::size_t rank) const {
    if (!why_.empty()) fail("rank {} of {} stopped: {}", rank, posted_.size(), why_);
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Posted> posted_;
  std::size_t arrived_ = 0, generation_ = 0;
  std::string why_;
};

class ThreadCollective final : public Collective {
 public:
  ThreadCollective(std::shared_ptr<ThreadGroup> group, std::size_t rank, std::unique_ptr<ByteMover> mover)
      : group_(std::move(group)), rank_(rank), mover_(std::move(mover)) {}
  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return group_->size(); }

  void all_gather(const void* in, void* out, std::size_t bytes) override {
    group_->posted(rank_).data = in;
    arrive();
    for (std::size_t r = 0; r < size(); ++r)
      if (bytes > 0) copy(static_cast<std::byte*>(out) + r * bytes, group_->posted(r).data, bytes);
    arrive();
  }

  void exchange(std::span<const std::span<const std::byte>> send, std::span<const std::span<std::byte>> recv) override {
    MINITX_CHECK(send.size() == size() && recv.size() == size(),
                 "exchange on rank {}: {} send and {} receive buffers for {} ranks", rank_, send.size(), recv.size(),
                 size());
    group_->posted(rank_).sends = send;
    arrive();
    // Checked by every rank before any copies, so that a mismatch stops all of them alike.
    for (std::size_t r = 0; r < size(); ++r) {
      const std::span<const std::byte> from = group_->posted(r).sends[rank_];
      if (from.size() != recv[r].size()) {
        group_->abort(fmt::format("exchange: rank {} sends {} bytes to rank {}, which expects {}", r, from.size(),
                                  rank_, recv[r].size()));
        arrive();  // throws: the group is aborted
      }
    }
    for (std::size_t r = 0; r < size(); ++r) {
      const std::span<const std::byte> from = group_->posted(r).sends[rank_];
      if (!from.empty() && from.data() != recv[r].data()) copy(recv[r].data(), from.data(), from.size());
    }
    arrive();
  }

  void broadcast(void* data, std::size_t bytes, std::size_t root) override {
    MINITX_CHECK(root < size(), "broadcast from rank {}, but there are {} ranks", root, size());
    group_->posted(rank_).data = data;
    arrive();
    if (rank_ != root && bytes > 0) copy(data, group_->posted(root).data, bytes);
    arrive();
  }

  void barrier() override { arrive(); }
  void abort(const std::string& why) override { group_->abort(why); }
  std::string aborted_why() const override { return group_->why(); }

 private:
  void copy(void* to, const void* from, std::size_t bytes) {
    if (mover_) mover_->copy(to, from, bytes);
    else std::memcpy(to, from, bytes);
  }
  void arrive() {
    if (mover_) mover_->settle();
    group_->arrive_and_wait(rank_);
  }

  std::shared_ptr<ThreadGroup> group_;
  std::size_t rank_;
  std::unique_ptr<ByteMover> mover_;
};

}  // namespace

std::vector<std::unique_ptr<Collective>> make_thread_collectives(std::size_t ranks,
                                                                 std::vector<std::unique_ptr<ByteMover>> movers) {
  MINITX_CHECK(ranks >= 1, "a group of {} ranks: expected at least 1", ranks);
  MINITX_CHECK(movers.empty() || movers.size() == ranks, "a group of {} ranks given {} byte movers: expected one each",
               ranks, movers.size());
  auto group = std::make_shared<ThreadGroup>(ranks);
  std::vector<std::unique_ptr<Collective>> out;
  for (std::size_t r = 0; r < ranks; ++r)
    out.push_back(std::make_unique<ThreadCollective>(group, r, movers.empty() ? nullptr : std::move(movers[r])));
  return out;
}

void run_ranks(std::span<const std::unique_ptr<Collective>> ranks, const std::function<void(Collective&)>& fn) {
  const std::size_t n = ranks.size();
  std::vector<std::exception_ptr> errors(n);
  // The first rank to fail is the one whose reason the group keeps: the others fail because of it.
  const auto run = [&](std::size_t r) {
    try {
      fn(*ranks[r]);
    } catch (const std::exception& e) {
      errors[r] = std::current_exception();
      ranks[r]->abort(fmt::format("rank {} of {} failed: {}", r, n, e.what()));
    } catch (...) {
      errors[r] = std::current_exception();
      ranks[r]->abort(fmt::format("rank {} of {} failed", r, n));
    }
  };
  if (n == 1) {
    run(0);
  } else {
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t r = 0; r < n; ++r) threads.emplace_back(run, r);
    for (std::thread& t : threads) t.join();
  }
  for (std::size_t r = 0; r < n; ++r) {
    if (!errors[r]) continue;
    const std::string why = ranks[r]->aborted_why();
    if (!why.empty()) fail("{}", why);
    std::rethrow_exception(errors[r]);
  }
}

}  // namespace minitx
