#include "palisade/hypervisor/libvirt.h"

#include <libvirt/virterror.h>

#include <array>
#include <mutex>
#include <thread>

#include "palisade/hypervisor/domain_xml.h"

namespace palisade::hypervisor {

std::string last_libvirt_error() {
  const char* message = virGetLastErrorMessage();
  return message != nullptr ? message : "unknown libvirt error";
}

void throw_libvirt_error(const std::string& what) {
  throw LibvirtError(what + ": " + last_libvirt_error());
}

void ensure_event_loop() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (virEventRegisterDefaultImpl() < 0) throw_libvirt_error("libvirt event loop");
    // The loop runs for the life of the process: libvirt offers no way to stop it, and every
    // connection's keepalive and events depend on it.
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }).detach();
  });
}

std::shared_ptr<Connection> Connection::open(const std::string& uri, bool read_only) {
  // libvirt prints every error on stderr by default; palisade reports them itself, with context,
  // through last_libvirt_error().
  static std::once_flag quiet;
  std::call_once(quiet, [] { virSetErrorFunc(nullptr, [](void*, virErrorPtr) {}); });
  virConnectPtr conn = read_only ? virConnectOpenReadOnly(uri.c_str())
                                 : virConnectOpenAuth(uri.c_str(), virConnectAuthPtrDefault, 0);
  if (conn == nullptr) throw_libvirt_error("cannot connect to " + uri);
  return std::shared_ptr<Connection>(new Connection(conn, uri, read_only));
}

Connection::~Connection() {
  virConnectClose(conn_);
}

std::string Connection::hypervisor_type() const {
  const char* type = virConnectGetType(conn_);
  return type != nullptr ? type : "";
}

std::vector<DomainHandle> Connection::list_domains() const {
  virDomainPtr* domains = nullptr;
  const int n = virConnectListAllDomains(conn_, &domains, 0);
  if (n < 0) throw_libvirt_error("cannot list the domains of " + uri_);
  std::vector<DomainHandle> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.emplace_back(domains[i]);
  free(domains);  // NOLINT: libvirt allocates the array with malloc
  return out;
}

DomainHandle Connection::find_domain(const std::string& name_or_uuid) const {
  // A UUID is tried as one first: a name lookup that fails costs a round trip.
  const bool uuid_like = name_or_uuid.size() == VIR_UUID_STRING_BUFLEN - 1 &&
                         name_or_uuid[8] == '-' && name_or_uuid[13] == '-';
  virDomainPtr d = uuid_like ? virDomainLookupByUUIDString(conn_, name_or_uuid.c_str()) : nullptr;
  if (d == nullptr) d = virDomainLookupByName(conn_, name_or_uuid.c_str());
  if (d == nullptr && !uuid_like) d = virDomainLookupByUUIDString(conn_, name_or_uuid.c_str());
  if (d == nullptr) throw_libvirt_error("no domain '" + name_or_uuid + "' on " + uri_);
  return DomainHandle(d);
}

std::string domain_name(virDomainPtr d) {
  const char* name = virDomainGetName(d);
  return name != nullptr ? name : "";
}

std::string domain_uuid(virDomainPtr d) {
  std::array<char, VIR_UUID_STRING_BUFLEN> buf{};
  if (virDomainGetUUIDString(d, buf.data()) < 0) return {};
  return buf.data();
}

std::string domain_state(virDomainPtr d) {
  int state = 0;
  int reason = 0;
  if (virDomainGetState(d, &state, &reason, 0) < 0) return "unknown";
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "shutdown";
    case VIR_DOMAIN_SHUTOFF:
      return "shutoff";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "pmsuspended";
    default:
      return "unknown";
  }
}

std::string domain_xml(virDomainPtr d, unsigned int flags) {
  char* xml = virDomainGetXMLDesc(d, flags);
  if (xml == nullptr) throw_libvirt_error("cannot read the XML of domain " + domain_name(d));
  std::string out(xml);
  free(xml);  // NOLINT: allocated by libvirt
  return out;
}

VmView describe_domain(virDomainPtr d, const std::string& uri, const std::string& hypervisor) {
  VmView vm;
  parse_domain_xml(domain_xml(d), vm);
  vm.host = uri;
  vm.hypervisor = hypervisor;
  vm.state = domain_state(d);
  vm.persistent = virDomainIsPersistent(d) == 1;
  if (vm.uuid.empty()) vm.uuid = domain_uuid(d);
  if (vm.name.empty()) vm.name = domain_name(d);
  return vm;
}

}  // namespace palisade::hypervisor
