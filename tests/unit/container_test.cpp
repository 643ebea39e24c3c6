#include "palisade/agent/container.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "palisade/base/cgroup.h"
#include "palisade/model/event.h"
#include "palisade/ocsf/container_object.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/reader.h"

namespace palisade::agent {
namespace {

const std::vector<std::string> kNamespaces = {"k8s.io", "default"};

TEST(CgroupPath, FindsTheContainerIdInEveryRuntimeLayout) {
  const std::string id(64, 'a');
  EXPECT_EQ(container_id_from_cgroup_path("/k8s.io/" + id, kNamespaces), id);
  EXPECT_EQ(container_id_from_cgroup_path("/default/t1", kNamespaces), "t1") << "ctr's namespace";
  EXPECT_EQ(container_id_from_cgroup_path("/kubepods/burstable/pod1234/" + id, kNamespaces), id);
  EXPECT_EQ(container_id_from_cgroup_path(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
                "cri-containerd-" +
                    id + ".scope",
                kNamespaces),
            id);
  EXPECT_EQ(container_id_from_cgroup_path("/user.slice/user-0.slice/session-1.scope", kNamespaces),
            "");
  EXPECT_EQ(container_id_from_cgroup_path("/", kNamespaces), "");
  EXPECT_EQ(container_id_from_cgroup_path("/system.slice/containerd.service", kNamespaces), "");
  EXPECT_EQ(container_id_from_cgroup_path("/kubepods/burstable/pod1234", kNamespaces), "")
      << "a pod's cgroup is not a container's";
}

ContainerView app(const std::string& id, uint64_t cgroup, uint32_t pid_ns) {
  ContainerView v;
  v.id = id;
  v.cgroup_id = cgroup;
  v.pid_ns = pid_ns;
  v.labels = {{kPodNameLabel, "web-1"},
              {kPodNamespaceLabel, "shop"},
              {kPodUidLabel, "uid-1"},
              {kContainerNameLabel, "app"}};
  return v;
}

TEST(ContainerRegistry, TakesPodIdentityFromTheKubeletsLabels) {
  ContainerView sandbox = app("pause", 0, 0);
  sandbox.labels.erase(kContainerNameLabel);
  sandbox.labels["io.cri-containerd.kind"] = "sandbox";
  sandbox.labels["app"] = "web";
  ContainerRef pause = ocsf::make_container_view(sandbox);
  EXPECT_TRUE(pause->sandbox);
  ContainerRef view = ocsf::make_container_view(app("c1", 10, 20), pause.get());
  EXPECT_EQ(view->name, "app");
  EXPECT_EQ(view->pod_name, "web-1");
  EXPECT_EQ(view->pod_namespace, "shop");
  EXPECT_EQ(view->pod_uid, "uid-1");
  EXPECT_EQ(view->pod_labels, (std::map<std::string, std::string>{{"app", "web"}}))
      << "the pod's labels come from its sandbox, without the runtime's own";
  ContainerView plain;
  plain.id = "plain";
  EXPECT_EQ(ocsf::make_container_view(plain)->name, "plain") << "no kubelet: the id names it";
  ContainerView labelled = app("c2", 0, 0);
  labelled.labels["app"] = "from-the-image";
  EXPECT_TRUE(ocsf::make_container_view(labelled)->pod_labels.empty())
      << "without its sandbox, a container's own labels (image LABELs) are not the pod's";
}

TEST(ContainerRegistry, IndexesAndStaysBounded) {
  ContainerRegistry registry(2);
  registry.upsert(ocsf::make_container_view(app("a", 10, 20)));
  registry.upsert(ocsf::make_container_view(app("b", 11, 21)));
  registry.upsert(ocsf::make_container_view(app("c", 12, 22)));
  EXPECT_EQ(registry.stats().containers, 2U);
  EXPECT_EQ(registry.stats().rejected_full, 1U);
  EXPECT_EQ(registry.by_cgroup(10)->id, "a");
  EXPECT_EQ(registry.by_pid_ns(21)->id, "b");
  // A restarted task moves the container to a new cgroup: the old key goes.
  registry.upsert(ocsf::make_container_view(app("a", 13, 23)));
  EXPECT_EQ(registry.by_cgroup(10), nullptr);
  EXPECT_EQ(registry.by_cgroup(13)->id, "a");
  registry.retain_only({"b"});
  EXPECT_EQ(registry.by_id("a"), nullptr);
  EXPECT_EQ(registry.by_cgroup(13), nullptr);
  EXPECT_NE(registry.by_id("b"), nullptr);
}

TEST(ContainerRegistry, ASharedPidNamespaceHasNoSingleOwner) {
  ContainerRegistry registry;
  registry.upsert(ocsf::make_container_view(app("a", 10, 77)));
  EXPECT_EQ(registry.by_pid_ns(77)->id, "a");
  registry.upsert(ocsf::make_container_view(app("b", 11, 77)));  // shareProcessNamespace
  EXPECT_EQ(registry.by_pid_ns(77), nullptr) << "ambiguous: unresolved, not a guess";
  registry.upsert(ocsf::make_container_view(app("s", 13, 77)));
  registry.remove("a");
  EXPECT_EQ(registry.by_pid_ns(77), nullptr) << "b and s still share it";
  registry.remove("b");
  registry.remove("s");
  registry.upsert(ocsf::make_container_view(app("c", 12, 77)));  // the inode, reused later
  EXPECT_EQ(registry.by_pid_ns(77)->id, "c");
}

TEST(ContainerResolver, HostProcessesAreNotAttributed) {
  auto registry = std::make_shared<ContainerRegistry>();
  ContainerResolver resolver(registry, kNamespaces);
  TaskIdentity self;
  self.tgid = static_cast<uint32_t>(getpid());
  self.cgroup_id = base::cgroup_id_of_process(self.tgid);
  self.pid_ns = pid_ns_of(self.tgid);
  ContainerRef out;
  std::string unresolved;
  EXPECT_EQ(resolver.resolve(self, out, unresolved), Attribution::kHost);
  EXPECT_EQ(out, nullptr);
  // The same cgroup, known as a container's: attributed by cgroup id, no /proc read needed.
  registry->upsert(ocsf::make_container_view(app("mine", self.cgroup_id, 0)));
  EXPECT_EQ(resolver.resolve(self, out, unresolved), Attribution::kContainer);
  EXPECT_EQ(out->id, "mine");
  EXPECT_EQ(resolver.stats().by_cgroup, 1U);
}

TEST(ContainerResolver, AnUnknownPidNamespaceIsUnresolvedNeverGuessed) {
  auto registry = std::make_shared<ContainerRegistry>();
  ContainerResolver resolver(registry, kNamespaces);
  TaskIdentity task;
  task.tgid = 999999;  // gone: no /proc to read
  task.cgroup_id = 4242;
  task.pid_ns = 77;
  ContainerRef out;
  std::string unresolved;
  EXPECT_EQ(resolver.resolve(task, out, unresolved), Attribution::kUnresolved);
  EXPECT_EQ(out, nullptr);
  registry->upsert(ocsf::make_container_view(app("known", 0, 77)));
  EXPECT_EQ(resolver.resolve(task, out, unresolved), Attribution::kContainer);
  EXPECT_EQ(out->id, "known");
}

TEST(ContainerOcsf, ContainerAndPodRoundTrip) {
  ocsf::Formatter formatter(ocsf::HostInfo::detect());
  Event e;
  e.kind = EventKind::kProcessExec;
  e.task.tgid = 7;
  ContainerView sandbox = app("pause", 0, 0);
  sandbox.labels["io.cri-containerd.kind"] = "sandbox";
  sandbox.labels["team \"x\""] = "a\"b";  // hostile label text stays valid JSON
  ContainerRef pause = ocsf::make_container_view(sandbox);
  ContainerView v = app("c1", 10, 20);
  v.image = "docker.io/library/nginx:1.25";
  e.container = ocsf::make_container_view(v, pause.get());
  std::string out;
  formatter.format(e, out);
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["container"]["uid"], "c1");
  EXPECT_EQ(j["container"]["name"], "app");
  EXPECT_EQ(j["container"]["image"]["name"], "docker.io/library/nginx:1.25");
  EXPECT_EQ(j["container"]["pod_uuid"], "uid-1");
  EXPECT_EQ(j["unmapped"]["palisade"]["kubernetes"]["namespace"], "shop");
  EXPECT_EQ(j["unmapped"]["palisade"]["kubernetes"]["labels"]["team \"x\""], "a\"b");
  auto back = ocsf::event_from_ocsf(j);
  ASSERT_TRUE(back && back->container);
  EXPECT_EQ(back->container->id, "c1");
  EXPECT_EQ(back->container->name, "app");
  EXPECT_EQ(back->container->pod_namespace, "shop");
  EXPECT_EQ(back->container->pod_labels.at("team \"x\""), "a\"b");
}

}  // namespace
}  // namespace palisade::agent
