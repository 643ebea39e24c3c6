#include "decode/decoder.h"

#include <gtest/gtest.h>

#include "test_records.h"

namespace palisade::agent {
namespace {

using testing::RecordBuilder;

TEST(Decoder, DecodesExecWithArgvAndPaths) {
  DecoderTable table;
  Event event;
  auto bytes = RecordBuilder(PAL_PROC_EXEC)
                   .task(42, 7, 123, "tool")
                   .uid(1000, 1000)
                   .seq(1, 9)
                   .str(0, "/usr/bin/tool")
                   .str(1, testing::argv_block({"tool", "-x", "a b"}))
                   .str(2, "/home/alice/./src/../work")
                   .str(3, "./tool")
                   .build();
  ASSERT_FALSE(table.decode(bytes, event));
  EXPECT_EQ(event.kind, EventKind::kProcessExec);
  EXPECT_EQ(event.task.tgid, 42U);
  EXPECT_EQ(event.task.ppid, 7U);
  EXPECT_EQ(event.task.auid, 1000U);
  EXPECT_EQ(event.task.comm, "tool");
  EXPECT_EQ(event.cpu, 1);
  EXPECT_EQ(event.seq, 9U);
  EXPECT_EQ(event.exe, "/usr/bin/tool");
  EXPECT_EQ(event.argv, (std::vector<std::string>{"tool", "-x", "a b"}));
  EXPECT_EQ(event.cwd, "/home/alice/work");
  EXPECT_EQ(event.exec_filename, "./tool");
}

TEST(Decoder, DecodesRenameWithBothPathsNormalized) {
  DecoderTable table;
  Event event;
  auto bytes = RecordBuilder(PAL_FILE_RENAME)
                   .task(5, 1, 0, "mv")
                   .str(0, "//tmp/dir/./a.txt")
                   .str(1, "/tmp/dir/sub/../b.txt")
                   .build();
  ASSERT_FALSE(table.decode(bytes, event));
  EXPECT_EQ(event.kind, EventKind::kFileRename);
  EXPECT_EQ(event.path, "/tmp/dir/a.txt");
  EXPECT_EQ(event.path2, "/tmp/dir/b.txt");
}

TEST(Decoder, RejectsMalformedRecords) {
  DecoderTable table;
  Event event;
  std::vector<std::byte> tiny(8);
  EXPECT_TRUE(table.decode(tiny, event));

  auto bytes = RecordBuilder(PAL_FILE_UNLINK).str(0, "/x").build();
  auto truncated = bytes;
  truncated.pop_back();
  EXPECT_TRUE(table.decode(truncated, event)) << "length mismatch must be caught";

  RecordBuilder unknown(63);
  EXPECT_TRUE(table.decode(unknown.build(), event));

  RecordBuilder overrun(PAL_FILE_UNLINK);
  auto over = overrun.str(0, "/abc").build();
  reinterpret_cast<pal_record*>(over.data())->h.str_len[0] = 200;  // claims more than is there
  EXPECT_TRUE(table.decode(over, event));
}

TEST(Decoder, DecodesNetworkEndpoints) {
  DecoderTable table;
  Event event;
  RecordBuilder b(PAL_NET_CONNECT);
  b.task(9, 1, 0, "curl").result(0);
  auto& n = b.raw().a.net;
  n.family = 2;
  n.remote_port = 443;
  n.remote_addr[0] = 10;
  n.remote_addr[3] = 7;
  n.local_addr[0] = 127;
  n.local_addr[3] = 1;
  n.local_port = 40000;
  ASSERT_FALSE(table.decode(b.build(), event));
  EXPECT_EQ(event.remote.to_string(event.family), "10.0.0.7");
  EXPECT_EQ(event.remote.port, 443);
  EXPECT_EQ(event.local.to_string(event.family), "127.0.0.1");
}

TEST(Decoder, FlagsTruncatedArgv) {
  DecoderTable table;
  Event event;
  RecordBuilder b(PAL_PROC_EXEC);
  b.task(1, 0, 0, "x").str(0, "/bin/x").str(1, std::string("x\0aaaa", 6));
  b.raw().a.exec.argv_truncated = 1;
  ASSERT_FALSE(table.decode(b.build(), event));
  EXPECT_TRUE(event.argv_truncated);
  EXPECT_EQ(event.argv, (std::vector<std::string>{"x", "aaaa"}));
}

TEST(NormalizePath, HandlesDotsAndSlashes) {
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("//"), "/");
  EXPECT_EQ(normalize_path("/a/b/../../.."), "/");
  EXPECT_EQ(normalize_path("/a//b/./c/"), "/a/b/c");
  EXPECT_EQ(normalize_path("relative/x"), "relative/x");
}

TEST(SplitArgv, KeepsEmptyArgumentsInside) {
  std::vector<std::string> out;
  split_argv(std::string_view("a\0\0b\0", 5), out);
  EXPECT_EQ(out, (std::vector<std::string>{"a", "", "b"}));
}

}  // namespace
}  // namespace palisade::agent
