// Container drift: the layers of an overlay read from mountinfo text, then, as root, a real
// overlay mount whose files are judged through descriptors opened on the overlay, as the
// fanotify decider gets them.
#include "enforce/overlay_layers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

std::optional<OverlayMount> overlay_in(const std::string& mountinfo, const std::string& at) {
  std::istringstream in(mountinfo);
  return overlay_at(in, at);
}

TEST(OverlayAt, ReadsTheLayersOfTheMountOnTop) {
  const std::string mountinfo =
      "46 27 0:39 / /run/c/rootfs rw,relatime - overlay overlay "
      "rw,lowerdir=/s/2/fs:/s/1/fs,upperdir=/s/3/fs,workdir=/s/3/work\n"
      "47 27 0:40 / /run/d\\040x/rootfs rw shared:5 master:1 - overlay overlay "
      "rw,lowerdir=/a\\134:b:/c::/data,upperdir=/u\\054v,workdir=/w,uuid=on\n"
      "48 27 0:41 / /run/e/rootfs rw - overlay overlay "
      "rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d,upperdir=/u,workdir=/w\n"
      "49 27 0:42 / /run/f/rootfs rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
      "50 49 0:43 / /run/f/rootfs rw - tmpfs tmpfs rw\n"
      "51 27 0:44 / /run/g/rootfs rw - overlay overlay rw,lowerdir=/l2:/l1\n";

  const auto c = overlay_in(mountinfo, "/run/c/rootfs");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->upperdir, "/s/3/fs");
  EXPECT_EQ(c->lowerdirs, (std::vector<std::string>{"/s/2/fs", "/s/1/fs"}));

  // Escapes: \ooo from mountinfo, then '\' before ':' inside a lower directory; the data-only
  // layers after "::" hold no names and are left out.
  const auto d = overlay_in(mountinfo, "/run/d x/rootfs");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->upperdir, "/u,v");
  EXPECT_EQ(d->lowerdirs, (std::vector<std::string>{"/a:b", "/c"}));

  const auto e = overlay_in(mountinfo, "/run/e/rootfs");
  ASSERT_TRUE(e) << "the mount API's lowerdir+=";
  EXPECT_EQ(e->lowerdirs, (std::vector<std::string>{"/l1", "/l2"}));

  EXPECT_FALSE(overlay_in(mountinfo, "/run/f/rootfs")) << "a tmpfs mounted over the overlay";
  const auto g = overlay_in(mountinfo, "/run/g/rootfs");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->upperdir.empty()) << "a read-only overlay";
  EXPECT_FALSE(overlay_in(mountinfo, "/run/h/rootfs"));
}

class OverlayLayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting an overlay needs root";
    dir = fs::path("/var/tmp") / ("palisade-overlay-" + std::to_string(getpid()));
    fs::remove_all(dir);
    for (const char* d : {"image1/bin", "image2/bin", "upper", "work", "upper2", "work2", "root"})
      fs::create_directories(dir / d);
    write(dir / "image1/bin/tool", "tool from the image");
    write(dir / "image2/bin/other", "another layer's file");
    mount_root("image2:image1", "upper", "work");
  }

  void TearDown() override {
    if (dir.empty()) return;
    umount2(root().c_str(), MNT_DETACH);
    fs::remove_all(dir);
  }

  // `lowers`: directories of `dir`, topmost first, separated by ':'.
  void mount_root(const std::string& lowers, const std::string& upper, const std::string& work) {
    std::string options = "lowerdir=";
    std::istringstream names(lowers);
    for (std::string name; std::getline(names, name, ':');) {
      options += (options.back() == '=' ? "" : ":") + (dir / name).string();
    }
    options += ",upperdir=" + (dir / upper).string() + ",workdir=" + (dir / work).string();
    ASSERT_EQ(mount("overlay", root().c_str(), "overlay", 0, options.c_str()), 0)
        << std::strerror(errno);
  }

  static void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

  std::string root() const { return (dir / "root").string(); }

  // The provenance of the file the container calls `path`, opened as `opened` (default: the same).
  Provenance of(const std::string& path, const std::string& opened = "") {
    const std::string file = root() + (opened.empty() ? path : opened);
    const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << file;
    const Provenance p = layers.provenance(root(), path, fd);
    close(fd);
    return p;
  }

  fs::path dir;
  OverlayLayers layers{4};
};

TEST_F(OverlayLayersTest, ImageFilesAreTheImagesAndWhatTheContainerWroteIsDrift) {
  EXPECT_EQ(of("/bin/tool"), Provenance::kImage);
  EXPECT_EQ(of("/bin/other"), Provenance::kImage) << "from the topmost image layer";

  write(root() + "/bin/dropped", "written after the start");
  EXPECT_EQ(of("/bin/dropped"), Provenance::kDrift);

  // Opened for writing, not written: copied up all the same, and no longer the image's.
  close(open((root() + "/bin/other").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  EXPECT_TRUE(fs::exists(dir / "upper/bin/other"));
  EXPECT_EQ(of("/bin/other"), Provenance::kDrift);

  // A path that no longer names the opened file (renamed while the exec waited): not a pass.
  EXPECT_EQ(of("/bin/gone", "/bin/tool"), Provenance::kDrift);
  EXPECT_EQ(of("/bin/tool"), Provenance::kImage);

  // Not on the container's overlay: another filesystem, or a rootfs that is no overlay.
  const int elsewhere = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(layers.provenance(root(), "/bin/tool", elsewhere), Provenance::kElsewhere);
  close(elsewhere);
  const int image = open((root() + "/bin/tool").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(layers.provenance((dir / "image1").string(), "/bin/tool", image), Provenance::kUnknown);
  close(image);

  const nlohmann::json status = layers.status();
  EXPECT_EQ(status["drift"], 3) << status.dump();
  EXPECT_EQ(status["elsewhere"], 1);
  EXPECT_EQ(status["mountinfo_reads"], 1) << "once for the root filesystem";
}

TEST_F(OverlayLayersTest, ARemountedRootfsIsReadAgain) {
  write(root() + "/bin/dropped", "written after the start");
  EXPECT_EQ(of("/bin/dropped"), Provenance::kDrift);
  // Mounted again at the same place (a container id reused), now with the first upper layer as
  // an image layer (a committed image): the file is the image's, which stale layers would deny.
  ASSERT_EQ(umount2(root().c_str(), MNT_DETACH), 0);
  mount_root("upper:image2:image1", "upper2", "work2");
  EXPECT_EQ(of("/bin/dropped"), Provenance::kImage);
  write(root() + "/bin/fresh", "written after the restart");
  EXPECT_EQ(of("/bin/fresh"), Provenance::kDrift);
  EXPECT_EQ(layers.status()["mountinfo_reads"], 2) << layers.status().dump();
}

}  // namespace
}  // namespace palisade::agent
