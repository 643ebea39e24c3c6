#include "palisade/ocsf/mapping.h"

#include <array>
#include <cerrno>

namespace palisade::ocsf {
namespace {

constexpr OcsfClass kFileSystem{1001, "File System Activity", 1, "System Activity"};
constexpr OcsfClass kKernelExtension{1002, "Kernel Extension Activity", 1, "System Activity"};
constexpr OcsfClass kKernel{1003, "Kernel Activity", 1, "System Activity"};
constexpr OcsfClass kProcess{1007, "Process Activity", 1, "System Activity"};
constexpr OcsfClass kNetwork{4001, "Network Activity", 4, "Network Activity"};
constexpr OcsfClass kDeviceInventory{5001, "Device Inventory Info", 5, "Discovery"};

constexpr KindMapping kMappings[] = {
    {EventKind::kProcessExec, &kProcess, 1, "Launch", ""},
    {EventKind::kProcessFork, &kProcess, 1, "Launch", ""},
    {EventKind::kProcessExit, &kProcess, 2, "Terminate", ""},
    {EventKind::kProcessSnapshot, &kProcess, 1, "Launch", ""},
    {EventKind::kFileOpen, &kFileSystem, 14, "Open", ""},
    {EventKind::kFileUnlink, &kFileSystem, 4, "Delete", ""},
    {EventKind::kFileRmdir, &kFileSystem, 4, "Delete", ""},
    {EventKind::kFileRename, &kFileSystem, 5, "Rename", ""},
    {EventKind::kFileChmod, &kFileSystem, 7, "Set Security", ""},
    {EventKind::kFileChown, &kFileSystem, 7, "Set Security", ""},
    {EventKind::kNetConnect, &kNetwork, 1, "Open",
     "4 Fail when it failed, 5 Refuse for ECONNREFUSED"},
    {EventKind::kNetAccept, &kNetwork, 1, "Open", ""},
    {EventKind::kNetListen, &kNetwork, 7, "Listen", ""},
    {EventKind::kNetBind, &kNetwork, 99, "Bind", ""},
    {EventKind::kPrivSetuid, &kProcess, 5, "Set User ID", ""},
    {EventKind::kPrivSetgid, &kProcess, 99, "Set Group ID", ""},
    {EventKind::kPrivCapset, &kProcess, 99, "Set Capabilities", ""},
    {EventKind::kPrivPtrace, &kProcess, 3, "Open", ""},
    {EventKind::kPrivModule, &kKernelExtension, 1, "Load", ""},
    {EventKind::kPrivMount, &kKernel, 4, "Invoke", ""},
    {EventKind::kPrivUnshare, &kKernel, 4, "Invoke", ""},
    {EventKind::kPrivSetns, &kKernel, 4, "Invoke", ""},
    {EventKind::kPrivBpf, &kKernel, 4, "Invoke", ""},
    {EventKind::kPrivMemfd, &kFileSystem, 1, "Create", ""},
    {EventKind::kNetDeny, &kNetwork, 5, "Refuse", ""},
    {EventKind::kExecDeny, &kProcess, 1, "Launch", ""},
    {EventKind::kFileDeny, &kFileSystem, 14, "Open", ""},
    {EventKind::kVmInventory, &kDeviceInventory, 2, "Collect", ""},
    {EventKind::kVmLifecycle, &kDeviceInventory, 99, "Lifecycle", ""},
    {EventKind::kVmHost, &kDeviceInventory, 99, "Host Connection", ""},
    {EventKind::kVmStats, &kDeviceInventory, 99, "Stats", ""},
    {EventKind::kVmGuestChange, &kDeviceInventory, 99, "Guest Change", ""},
    {EventKind::kVmInspection, &kDeviceInventory, 99, "Inspection", ""},
};

constexpr ProfileDeclaration kProfiles[] = {
    {Profile::kHost, "host", "", "device, actor",
     "every process, file, kernel and network event, and findings"},
    {Profile::kLinuxUsers, "linux/linux_users", "process", "euid, egid, auid",
     "a process object with the acting task's effective ids, or with a login uid"},
    {Profile::kContainer, "container", "", "container", "the event came from a container"},
    {Profile::kSecurityControl, "security_control", "",
     "action, action_id, disposition, disposition_id",
     "enforcement denials (exec_deny, file_deny, net_deny)"},
};

}  // namespace

std::span<const KindMapping> kind_mappings() {
  return kMappings;
}

const KindMapping* mapping_of(EventKind kind) {
  // Indexed once by kind, so the formatter's lookup is one load.
  static const auto kByKind = [] {
    std::array<const KindMapping*, kEventKindLimit> table{};
    for (const KindMapping& m : kMappings) table[static_cast<size_t>(m.kind)] = &m;
    return table;
  }();
  const auto index = static_cast<size_t>(kind);
  return index < kByKind.size() ? kByKind[index] : nullptr;
}

Classification classify(const Event& event) {
  const KindMapping* m = mapping_of(event.kind);
  if (m == nullptr) return Classification{0, "Base Event", 0, "Uncategorized", 0, "Unknown"};
  const OcsfClass& k = *m->ocsf_class;
  Classification c{k.class_uid,     k.class_name,   k.category_uid,
                   k.category_name, m->activity_id, m->activity_name};
  // The one activity that depends on the outcome (the declaration's note says so).
  if (event.kind == EventKind::kNetConnect && event.result != 0 && event.result != -EINPROGRESS) {
    const bool refused = event.result == -ECONNREFUSED;
    c.activity_id = refused ? 5 : 4;
    c.activity_name = refused ? "Refuse" : "Fail";
  }
  return c;
}

std::span<const ProfileDeclaration> profile_declarations() {
  return kProfiles;
}

}  // namespace palisade::ocsf
