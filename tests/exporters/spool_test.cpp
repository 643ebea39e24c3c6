#include "palisade/exporters/spool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace palisade::exporters {
namespace {

namespace fs = std::filesystem;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options.directory = fs::temp_directory_path() / ("spool-test-" + std::to_string(getpid()));
    fs::remove_all(options.directory);
  }
  void TearDown() override { fs::remove_all(options.directory); }

  static std::string event(int i) { return "{\"seq\":" + std::to_string(i) + "}"; }
  SpoolOptions options;
};

TEST_F(SpoolTest, HandsOutInOrderAndForgetsOnlyWhatIsAcknowledged) {
  Spool spool(options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool.append(event(i)));
  EXPECT_EQ(spool.stats().entries, 5U);
  std::vector<Spool::Entry> out;
  while (auto e = spool.next()) out.push_back(*e);
  ASSERT_EQ(out.size(), 5U);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(out[i].payload, event(i));
  // Out of order: entry 2 acknowledged first stays counted until entry 1 is too.
  spool.acknowledge(out[1].id);
  EXPECT_EQ(spool.stats().entries, 5U);
  spool.acknowledge(out[0].id);
  EXPECT_EQ(spool.stats().entries, 3U);
  for (const auto& e : out) spool.acknowledge(e.id);
  EXPECT_TRUE(spool.empty());
  EXPECT_EQ(spool.stats().acknowledged, 5U);
}

TEST_F(SpoolTest, ARestartResumesAtTheFirstUnacknowledgedEntry) {
  {
    Spool spool(options);
    for (int i = 0; i < 10; ++i) spool.append(event(i));
    for (int i = 0; i < 5; ++i) {
      const auto e = spool.next();
      if (i < 3) spool.acknowledge(e->id);  // 3 and 4 were sent, never acknowledged
    }
  }
  Spool again(options);
  EXPECT_EQ(again.stats().entries, 7U);
  EXPECT_EQ(again.next()->payload, event(3));
  again.append(event(10));
  std::string last;
  while (auto e = again.next()) last = e->payload;
  EXPECT_EQ(last, event(10));
}

TEST_F(SpoolTest, RewindHandsOutTheUnacknowledgedAgain) {
  Spool spool(options);
  for (int i = 0; i < 3; ++i) spool.append(event(i));
  const auto first = spool.next();
  spool.next();
  spool.acknowledge(first->id);
  spool.rewind();  // the connection dropped: entry 1 was never confirmed
  EXPECT_EQ(spool.next()->payload, event(1));
  EXPECT_EQ(spool.next()->payload, event(2));
  EXPECT_FALSE(spool.next());
}

TEST_F(SpoolTest, FullRefusesTheNewestByDefault) {
  options.max_bytes = 200;
  Spool spool(options);
  int accepted = 0;
  for (int i = 0; i < 50; ++i) accepted += spool.append(event(i)) ? 1 : 0;
  EXPECT_LT(accepted, 50);
  EXPECT_EQ(spool.stats().dropped_full, static_cast<uint64_t>(50 - accepted));
  EXPECT_EQ(spool.next()->payload, event(0)) << "the oldest are kept";
}

TEST_F(SpoolTest, FullCanDropTheOldestSegmentInstead) {
  options.max_bytes = 400;
  options.segment_bytes = 100;
  options.when_full = WhenFull::kDropOldest;
  Spool spool(options);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(spool.append(event(i)));
  EXPECT_GT(spool.stats().dropped_full, 0U);
  EXPECT_LE(spool.stats().bytes, 400U);
  EXPECT_EQ(spool.stats().entries + spool.stats().dropped_full, 100U) << "every event accounted";
  std::string last;
  while (auto e = spool.next()) last = e->payload;
  EXPECT_EQ(last, event(99)) << "the newest are kept";
}

TEST_F(SpoolTest, AcknowledgedSegmentsLeaveTheDisk) {
  options.segment_bytes = 64;
  Spool spool(options);
  for (int i = 0; i < 40; ++i) spool.append(event(i));
  const uint64_t full = spool.stats().bytes;
  while (auto e = spool.next()) spool.acknowledge(e->id);
  EXPECT_LT(spool.stats().bytes, full / 4);
  size_t files = 0;
  for (const auto& f : fs::directory_iterator(options.directory)) {
    files += f.path().extension() == ".seg" ? 1 : 0;
  }
  EXPECT_EQ(files, 1U) << "only the tail being written";
}

TEST_F(SpoolTest, ADamagedTailIsCutAndCountedNotTrusted) {
  {
    Spool spool(options);
    for (int i = 0; i < 4; ++i) spool.append(event(i));
  }
  fs::path segment;
  for (const auto& f : fs::directory_iterator(options.directory)) {
    if (f.path().extension() == ".seg") segment = f.path();
  }
  // A half-written record: a header announcing 16 bytes, 7 of them there.
  const std::string torn = std::string("\x10", 1) + std::string(3, '\0') + "garbage";
  std::ofstream(segment, std::ios::app) << torn;
  Spool again(options);
  EXPECT_EQ(again.stats().corrupt, 1U);
  EXPECT_EQ(again.stats().entries, 4U);
  again.append(event(4));
  std::vector<std::string> out;
  while (auto e = again.next()) out.push_back(e->payload);
  ASSERT_EQ(out.size(), 5U);
  EXPECT_EQ(out.back(), event(4)) << "appends after the cut stay readable";
}

TEST_F(SpoolTest, WhatIsAcknowledgedStopsCountingAgainstTheSize) {
  options.max_bytes = 64 << 10;
  Spool spool(options);
  const std::string big(1000, 'x');
  for (int round = 0; round < 500; ++round) {  // ~8 times the spool's size, passed through
    ASSERT_TRUE(spool.append(big)) << "round " << round;
    spool.acknowledge(spool.next()->id);
  }
  EXPECT_TRUE(spool.empty());
  EXPECT_EQ(spool.stats().dropped_full, 0U);
  EXPECT_LT(spool.stats().bytes, 16U << 10);
}

}  // namespace
}  // namespace palisade::exporters
