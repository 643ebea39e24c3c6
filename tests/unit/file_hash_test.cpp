#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "palisade/base/file_hash_cache.h"

namespace palisade::base {
namespace {

namespace fs = std::filesystem;

class FileHashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("palisade-hash-" + std::to_string(getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path write(const std::string& name, const std::string& content) {
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << content;
    return dir / name;
  }
  fs::path dir;
};

TEST_F(FileHashTest, HashesOncePerFileVersion) {
  FileHashCache cache;
  const auto file = write("a", "abc");
  // sha256("abc"), FIPS 180-2 appendix B.1.
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(cache.sha256(file), abc);
  EXPECT_EQ(cache.sha256(file), abc);
  EXPECT_EQ(cache.stats().hits, 1U);
  EXPECT_EQ(cache.stats().misses, 1U);
  // A write makes a new version (size and change time differ): hashed again.
  write("a", "abcd");
  EXPECT_EQ(cache.sha256(file), "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589");
  EXPECT_EQ(cache.stats().misses, 2U);
}

TEST_F(FileHashTest, StaysWithinItsCapacity) {
  FileHashCache cache(4);
  for (int i = 0; i < 10; ++i) cache.sha256(write("f" + std::to_string(i), std::to_string(i)));
  EXPECT_EQ(cache.stats().entries, 4U);
  EXPECT_EQ(cache.stats().evictions, 6U);
}

TEST_F(FileHashTest, RefusesWhatItShouldNotHash) {
  FileHashCache cache(16, 8);
  EXPECT_EQ(cache.sha256(write("big", "more than eight bytes")), "");
  EXPECT_EQ(cache.stats().too_large, 1U);
  EXPECT_EQ(cache.sha256(dir.string()), "") << "a directory";
  EXPECT_EQ(cache.sha256((dir / "missing").string()), "");
  EXPECT_EQ(cache.sha256("/dev/null"), "") << "not a regular file";
}

}  // namespace
}  // namespace palisade::base
