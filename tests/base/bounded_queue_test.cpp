#include "palisade/base/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

namespace palisade::base {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(BoundedQueue, RejectPolicyRefusesAtTheBoundAndCountsIt) {
  BoundedQueue<int> queue(2, OnFull::kReject);
  EXPECT_EQ(queue.push(1), PushResult::kQueued);
  EXPECT_EQ(queue.push(2), PushResult::kQueued);
  EXPECT_EQ(queue.push(3), PushResult::kFull);
  const QueueStats stats = queue.stats();
  EXPECT_EQ(stats.pushed, 2u);
  EXPECT_EQ(stats.rejected_full, 1u);
  EXPECT_EQ(stats.depth, 2u);
  EXPECT_EQ(stats.high_water, 2u);
  EXPECT_EQ(queue.pop(), 1);
  EXPECT_EQ(queue.pop(), 2);
}

TEST(BoundedQueue, UrgentItemsUseTheReserveOnly) {
  BoundedQueue<int> queue(QueueLimits{1, 0, 1}, OnFull::kReject);
  EXPECT_EQ(queue.push(1), PushResult::kQueued);
  EXPECT_EQ(queue.push(2), PushResult::kFull);
  EXPECT_EQ(queue.push_urgent(3), PushResult::kQueued);
  EXPECT_EQ(queue.push_urgent(4), PushResult::kFull);
  EXPECT_EQ(queue.stats().rejected_full, 2u);
}

TEST(BoundedQueue, WaitPolicyBlocksTheProducerUntilThereIsRoom) {
  BoundedQueue<int> queue(1, OnFull::kWait);
  ASSERT_EQ(queue.push(1), PushResult::kQueued);
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    EXPECT_EQ(queue.push(2), PushResult::kQueued);
    pushed = true;
  });
  while (queue.stats().full_waits == 0) std::this_thread::yield();
  EXPECT_FALSE(pushed);
  EXPECT_EQ(queue.pop(), 1);
  producer.join();
  EXPECT_TRUE(pushed);
  EXPECT_EQ(queue.pop(), 2);
  EXPECT_EQ(queue.stats().rejected_full, 0u);
}

TEST(BoundedQueue, ByteBudgetBoundsTheQueueButAdmitsOneOversizedItem) {
  BoundedQueue<std::string> queue(QueueLimits{100, 10, 0}, OnFull::kReject);
  EXPECT_EQ(queue.push("0123456789abcdef", 16), PushResult::kQueued) << "alone in the queue";
  EXPECT_EQ(queue.push("x", 1), PushResult::kFull);
  EXPECT_EQ(queue.stats().bytes, 16u);
  EXPECT_TRUE(queue.pop().has_value());
  EXPECT_EQ(queue.push("abcd", 4), PushResult::kQueued);
  EXPECT_EQ(queue.push("efgh", 4), PushResult::kQueued);
  EXPECT_EQ(queue.push("ijkl", 4), PushResult::kFull);
  EXPECT_EQ(queue.stats().bytes, 8u);
}

TEST(BoundedQueue, CloseLetsTheConsumerDrainThenEnds) {
  BoundedQueue<int> queue(4);
  queue.push(1);
  queue.push(2);
  queue.close();
  EXPECT_EQ(queue.push(3), PushResult::kClosed);
  EXPECT_EQ(queue.pop(), 1);
  EXPECT_EQ(queue.pop(), 2);
  EXPECT_EQ(queue.pop(), std::nullopt);
  EXPECT_EQ(queue.stats().rejected_closed, 1u);
}

TEST(BoundedQueue, CloseReleasesAWaitingProducerAndConsumer) {
  BoundedQueue<int> full(1, OnFull::kWait);
  full.push(1);
  std::thread producer([&] { EXPECT_EQ(full.push(2), PushResult::kClosed); });
  BoundedQueue<int> empty(1);
  std::thread consumer([&] { EXPECT_EQ(empty.pop(), std::nullopt); });
  while (full.stats().full_waits == 0) std::this_thread::yield();
  full.close();
  empty.close();
  producer.join();
  consumer.join();
}

TEST(BoundedQueue, CancelDropsWhatIsQueuedAndCountsIt) {
  BoundedQueue<int> queue(4);
  queue.push(1);
  queue.push(2);
  EXPECT_EQ(queue.cancel(), 2u);
  EXPECT_EQ(queue.pop(), std::nullopt);
  EXPECT_EQ(queue.stats().abandoned, 2u);
  EXPECT_EQ(queue.stats().depth, 0u);
}

TEST(BoundedQueue, PopUntilGivesUpAtTheDeadline) {
  BoundedQueue<int> queue(4);
  EXPECT_EQ(queue.pop_until(Clock::now() + milliseconds(20)), std::nullopt);
  queue.push(7);
  EXPECT_EQ(queue.pop_until(Clock::now()), 7);
}

TEST(BoundedQueue, PopBatchTakesUpToMaxOnceEnoughAreQueued) {
  BoundedQueue<int> queue(16);
  for (int i = 0; i < 5; ++i) queue.push(i);
  const std::vector<int> batch = queue.pop_batch(3, 3, Clock::time_point::max());
  EXPECT_EQ(batch, (std::vector<int>{0, 1, 2}));
  // Fewer than wake_at: the deadline ends the wait with what is there.
  const std::vector<int> rest = queue.pop_batch(3, 3, Clock::now() + milliseconds(20));
  EXPECT_EQ(rest, (std::vector<int>{3, 4}));
}

TEST(BoundedQueue, PopBatchWakesWhenTheBatchIsComplete) {
  BoundedQueue<int> queue(16);
  std::thread consumer([&] {
    const std::vector<int> batch = queue.pop_batch(4, 4, Clock::time_point::max());
    EXPECT_EQ(batch.size(), 4u);
  });
  for (int i = 0; i < 4; ++i) queue.push(i);
  consumer.join();
}

TEST(BoundedQueue, AFullQueueEndsABatchWaitEarly) {
  // The byte budget fills before the batch size: the waiting producer must not stall on the
  // consumer's timer.
  BoundedQueue<std::string> queue(QueueLimits{100, 8, 0}, OnFull::kWait);
  queue.push("abcd", 4);
  queue.push("efgh", 4);
  std::thread producer([&] { queue.push("ijkl", 4); });
  while (queue.stats().full_waits == 0) std::this_thread::yield();
  const std::vector<std::string> batch = queue.pop_batch(50, 50, Clock::time_point::max());
  EXPECT_EQ(batch.size(), 2u);
  producer.join();
}

TEST(BoundedQueue, TakeAllEmptiesTheQueueWithoutWaiting) {
  BoundedQueue<int> queue(8, OnFull::kReject);
  EXPECT_TRUE(queue.take_all().empty());
  queue.push(1);
  queue.push(2);
  EXPECT_EQ(queue.take_all(), (std::vector<int>{1, 2}));
  EXPECT_EQ(queue.stats().depth, 0u);
}

TEST(BoundedQueue, WaitIdleWaitsForTheConsumerToFinish) {
  BoundedQueue<int> queue(8);
  std::atomic<int> finished{0};
  std::thread consumer([&] {
    while (auto item = queue.pop()) {
      std::this_thread::sleep_for(milliseconds(5));
      finished++;
      queue.done();
    }
  });
  for (int i = 0; i < 5; ++i) queue.push(i);
  EXPECT_TRUE(queue.wait_idle());
  EXPECT_EQ(finished, 5) << "idle means popped and done, not only popped";
  queue.close();
  consumer.join();
}

TEST(BoundedQueue, WaitIdleTimesOutWhileWorkIsUnfinished) {
  BoundedQueue<int> queue(8);
  queue.push(1);
  ASSERT_TRUE(queue.pop().has_value());
  EXPECT_FALSE(queue.wait_idle(Clock::now() + milliseconds(20)));
  queue.done();
  EXPECT_TRUE(queue.wait_idle(Clock::now()));
}

TEST(BoundedQueue, ManyProducersAndConsumersLoseNothing) {
  BoundedQueue<int> queue(8, OnFull::kWait);
  constexpr int kPerProducer = 2000;
  std::atomic<long> sum{0};
  std::vector<std::thread> consumers;
  consumers.reserve(3);
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      while (auto item = queue.pop()) sum += *item;
    });
  }
  std::vector<std::thread> producers;
  producers.reserve(3);
  for (int p = 0; p < 3; ++p) {
    producers.emplace_back([&] {
      for (int i = 1; i <= kPerProducer; ++i) queue.push(i);
    });
  }
  for (auto& t : producers) t.join();
  queue.close();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(sum, 3L * kPerProducer * (kPerProducer + 1) / 2);
  EXPECT_LE(queue.stats().high_water, 8u);
}

}  // namespace
}  // namespace palisade::base
