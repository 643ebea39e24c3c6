#include "palisade/runtime/control_signals.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>

namespace palisade::runtime {
namespace {

using namespace std::chrono_literals;

// One test: the stop flag is process-wide and, once set, stays set.
TEST(ControlSignals, HupReloadsOnceAndTermStops) {
  ControlSignals::install();
  EXPECT_FALSE(ControlSignals::take_reload());
  std::atomic<int> reloads{0};
  {
    ReloadThread reloader([&] { reloads++; }, 10ms);
    ASSERT_EQ(raise(SIGHUP), 0) << "handled, not the default action (which ends the process)";
    for (int i = 0; i < 500 && reloads == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(reloads, 1);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(reloads, 1) << "one reload per SIGHUP";
    EXPECT_FALSE(ControlSignals::stop_requested());
    ASSERT_EQ(raise(SIGTERM), 0);
    EXPECT_TRUE(ControlSignals::stop_requested());
  }  // the reloader sees the stop flag and ends
  ASSERT_EQ(raise(SIGPIPE), 0) << "ignored";
  EXPECT_TRUE(ControlSignals::stop_flag().load());
}

}  // namespace
}  // namespace palisade::runtime
