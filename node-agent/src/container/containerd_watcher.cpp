#include "container/containerd_watcher.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <random>

#include "container/containerd_events.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "palisade/base/cgroup.h"
#include "palisade/ocsf/container_object.h"

namespace palisade::agent {

namespace containers_v1 = containerd::services::containers::v1;
namespace tasks_v1 = containerd::services::tasks::v1;
namespace events_v1 = containerd::services::events::v1;

struct ContainerdWatcher::Impl {
  std::mutex stubs_mutex;  // the stubs are replaced on reconnect; fetch() reads them
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<containers_v1::Containers::Stub> containers;
  std::unique_ptr<tasks_v1::Tasks::Stub> tasks;
  std::unique_ptr<events_v1::Events::Stub> events;
  std::mutex stream_mutex;
  grpc::ClientContext* stream_context = nullptr;  // the live Subscribe call, for stop()
  // Containers whose task exited: removed once their linger time is over.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> exited;
};

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

void prepare(grpc::ClientContext& context, const std::string& ns, bool deadline = true) {
  context.AddMetadata("containerd-namespace", ns);
  if (deadline) context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

// Fills the process-side identity (cgroup, pid namespace) from the task's first process, but only
// while that pid is still in a cgroup named after this container: a pid that exited and was
// reused must not give a host service's cgroup to the container.
void add_task_identity(ContainerView& view, uint32_t pid,
                       const std::vector<std::string>& runtime_namespaces) {
  view.init_pid = 0;
  view.pid_ns = 0;
  const std::string path = pid != 0 ? base::cgroup_v2_path_of(pid) : std::string();
  if (!path.empty() && container_id_from_cgroup_path(path, runtime_namespaces) == view.id) {
    view.init_pid = pid;
    view.cgroup_path = path;
    view.pid_ns = pid_ns_of(pid);
  }
  // The process may be gone already (a short-lived container): the cgroup outlives it.
  view.cgroup_id = base::cgroup_id_of_path(view.cgroup_path);
}

// Adds containerd's record of a container to the registry, with its task's identity (`pid`, a
// process of it; 0 when none) and its pod's labels from the pod's sandbox.
ContainerRef register_container(ContainerRegistry& registry, const containers_v1::Container& c,
                                const std::string& ns, uint32_t pid) {
  ContainerView view = view_of(c, ns);
  add_task_identity(view, pid, runtime_namespaces(ns));
  auto uid = view.labels.find(kPodUidLabel);
  ContainerRef sandbox = uid == view.labels.end() ? nullptr : registry.sandbox_of(uid->second);
  registry.upsert(ocsf::make_container_view(std::move(view), sandbox.get()));
  return registry.by_id(c.id());
}

}  // namespace

ContainerdWatcher::ContainerdWatcher(ContainerdOptions options,
                                     std::shared_ptr<ContainerRegistry> registry)
    : options_(std::move(options)), registry_(std::move(registry)), impl_(new Impl) {}

ContainerdWatcher::~ContainerdWatcher() {
  stop();
}

void ContainerdWatcher::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ContainerdWatcher::stop() {
  {
    std::lock_guard lock(mutex_);  // under the lock, or sleep_for could miss the wake-up
    stopping_ = true;
  }
  wake_.notify_all();
  {
    std::lock_guard lock(impl_->stream_mutex);
    if (impl_->stream_context != nullptr) impl_->stream_context->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

ContainerdStatus ContainerdWatcher::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

ContainerRef ContainerdWatcher::fetch(const std::string& id, uint32_t pid) {
  if (!status().connected) return nullptr;
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard lock(impl_->stubs_mutex);
    channel = impl_->channel;
  }
  if (!channel) return nullptr;
  auto stub = containers_v1::Containers::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("containerd-namespace", options_.ns);
  // The pipeline waits for this: a short deadline, and only once per unknown id.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(250));
  containers_v1::GetContainerRequest request;
  request.set_id(id);
  containers_v1::GetContainerResponse response;
  if (!stub->Get(&context, request, &response).ok()) return nullptr;
  return register_container(*registry_, response.container(), options_.ns, pid);
}

void ContainerdWatcher::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, d, [this] { return stopping_.load(); });
}

namespace {

// One connected session: subscribe first (so nothing between the list and the stream is lost),
// list, then apply events until the stream ends. Returns the error that ended it.
class Session {
 public:
  Session(ContainerdWatcher::Impl& impl, const ContainerdOptions& options,
          ContainerRegistry& registry)
      : impl_(impl), options_(options), registry_(registry) {}

  // Returns false (with why) when containerd cannot be listed.
  bool sync(std::string& why) {
    grpc::ClientContext list_context;
    prepare(list_context, options_.ns);
    containers_v1::ListContainersRequest list_request;
    containers_v1::ListContainersResponse containers;
    grpc::Status s = impl_.containers->List(&list_context, list_request, &containers);
    if (!s.ok()) {
      why = "listing containers: " + s.error_message();
      return false;
    }
    grpc::ClientContext task_context;
    prepare(task_context, options_.ns);
    tasks_v1::ListTasksRequest task_request;
    tasks_v1::ListTasksResponse tasks;
    s = impl_.tasks->List(&task_context, task_request, &tasks);
    if (!s.ok()) {
      why = "listing tasks: " + s.error_message();
      return false;
    }
    std::unordered_map<std::string, uint32_t> pids;
    for (const auto& t : tasks.tasks()) {
      // Only running tasks: a stopped task's pid may already belong to someone else.
      if (t.status() == containerd::v1::types::RUNNING ||
          t.status() == containerd::v1::types::PAUSED)
        pids[t.container_id()] = t.pid();
    }
    std::vector<std::string> ids;
    // Sandboxes first: app containers take their pod's labels from them.
    for (bool sandboxes : {true, false}) {
      for (const auto& c : containers.containers()) {
        auto kind = c.labels().find("io.cri-containerd.kind");
        if ((kind != c.labels().end() && kind->second == "sandbox") != sandboxes) continue;
        auto it = pids.find(c.id());
        register_container(registry_, c, options_.ns, it == pids.end() ? 0 : it->second);
        ids.push_back(c.id());
      }
    }
    registry_.retain_only(ids);
    spdlog::info("containerd: {} containers in namespace {} ({} running)", ids.size(), options_.ns,
                 pids.size());
    return true;
  }

  void apply(const events_v1::Envelope& envelope) {
    const ContainerdEvent event =
        decode_containerd_event(envelope.topic(), envelope.event().value());
    switch (event.effect) {
      case ContainerdEvent::Effect::kRefresh:
        refresh(event.container_id, event.pid);
        break;
      case ContainerdEvent::Effect::kExited:
        impl_.exited.emplace_back(std::chrono::steady_clock::now() + options_.exited_linger,
                                  event.container_id);
        break;
      case ContainerdEvent::Effect::kNone:
        break;
    }
    expire();
  }

  void expire() {
    const auto now = std::chrono::steady_clock::now();
    while (!impl_.exited.empty() && impl_.exited.front().first <= now) {
      const std::string id = impl_.exited.front().second;
      impl_.exited.pop_front();
      // Restarted since (a new task): keep it. Only a container without a live task goes.
      ContainerRef current = registry_.by_id(id);
      if (current && current->init_pid != 0 && pid_ns_of(current->init_pid) == current->pid_ns &&
          base::cgroup_v2_path_of(current->init_pid) == current->cgroup_path) {
        continue;
      }
      registry_.remove(id);
    }
  }

 private:
  // Re-reads one container (and takes the task's pid when an event carried it).
  void refresh(const std::string& id, uint32_t pid) {
    grpc::ClientContext context;
    prepare(context, options_.ns);
    containers_v1::GetContainerRequest request;
    request.set_id(id);
    containers_v1::GetContainerResponse response;
    if (!impl_.containers->Get(&context, request, &response).ok()) return;
    if (pid == 0) {
      if (ContainerRef known = registry_.by_id(id)) pid = known->init_pid;
    }
    register_container(registry_, response.container(), options_.ns, pid);
  }

  ContainerdWatcher::Impl& impl_;
  const ContainerdOptions& options_;
  ContainerRegistry& registry_;
};

}  // namespace

void ContainerdWatcher::run() {
  std::mt19937 random(std::random_device{}());
  auto backoff = options_.backoff_min;
  bool warned = false;
  while (!stopping_) {
    {
      // fetch() reads the channel from the pipeline's thread.
      std::lock_guard lock(impl_->stubs_mutex);
      impl_->channel =
          grpc::CreateChannel("unix://" + options_.socket, grpc::InsecureChannelCredentials());
      impl_->containers = containers_v1::Containers::NewStub(impl_->channel);
      impl_->tasks = tasks_v1::Tasks::NewStub(impl_->channel);
      impl_->events = events_v1::Events::NewStub(impl_->channel);
    }

    grpc::ClientContext stream_context;
    prepare(stream_context, options_.ns, false);
    {
      std::lock_guard lock(impl_->stream_mutex);
      impl_->stream_context = &stream_context;
    }
    events_v1::SubscribeRequest subscribe;
    subscribe.add_filters("namespace==" + options_.ns);
    auto stream = impl_->events->Subscribe(&stream_context, subscribe);
    Session session(*impl_, options_, *registry_);
    std::string why;
    if (!stopping_ && session.sync(why)) {
      {
        std::lock_guard lock(mutex_);
        status_.connected = true;
        status_.syncs++;
        status_.last_error.clear();
      }
      warned = false;
      backoff = options_.backoff_min;
      events_v1::Envelope envelope;
      while (!stopping_ && stream->Read(&envelope)) {
        session.apply(envelope);
        std::lock_guard lock(mutex_);
        status_.events++;
      }
      grpc::Status end = stream->Finish();
      why = end.ok() ? "event stream ended" : "event stream: " + end.error_message();
    } else {
      stream_context.TryCancel();
      stream->Finish();
    }
    {
      std::lock_guard lock(impl_->stream_mutex);
      impl_->stream_context = nullptr;
    }
    if (stopping_) break;
    {
      std::lock_guard lock(mutex_);
      if (status_.connected) status_.reconnects++;
      status_.connected = false;
      status_.last_error = why;
    }
    // Say it once per outage, not once per retry.
    if (!warned) {
      spdlog::warn(
          "containerd at {} unavailable ({}); retrying with backoff, events meanwhile "
          "are attributed by cgroup path or marked unresolved",
          options_.socket, why);
      warned = true;
    }
    std::uniform_int_distribution<long> jitter(0, backoff.count() / 2);
    sleep_for(backoff + std::chrono::milliseconds(jitter(random)));
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

}  // namespace palisade::agent
