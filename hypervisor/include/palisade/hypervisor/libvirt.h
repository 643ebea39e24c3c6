// RAII over libvirt's C API: connections and domains, libvirt errors as exceptions that carry
// libvirt's own message, and the process-wide event loop libvirt needs for lifecycle events.
#pragma once

#include <libvirt/libvirt.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "palisade/base/error.h"
#include "palisade/model/vm_view.h"

namespace palisade::hypervisor {

class LibvirtError : public EnvironmentError {
 public:
  using EnvironmentError::EnvironmentError;
};

// "what: libvirt's last error message" (thread-local in libvirt).
[[noreturn]] void throw_libvirt_error(const std::string& what);
std::string last_libvirt_error();

// Starts libvirt's default event loop on its own thread, once per process. Must run before the
// first connection that registers event callbacks is opened.
void ensure_event_loop();

struct DomainDeleter {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using DomainHandle = std::unique_ptr<virDomain, DomainDeleter>;

class Connection {
 public:
  // Opens `uri` (read-only when asked: enough for inventory, stats and events). Remote URIs
  // (qemu+ssh://, qemu+tls://) authenticate with libvirt's default callbacks (ssh keys, certs).
  // Throws LibvirtError naming the URI.
  static std::shared_ptr<Connection> open(const std::string& uri, bool read_only);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  virConnectPtr get() const { return conn_; }
  const std::string& uri() const { return uri_; }
  bool read_only() const { return read_only_; }
  std::string hypervisor_type() const;  // "QEMU", "Test"

  std::vector<DomainHandle> list_domains() const;
  // By name or UUID; throws when there is none.
  DomainHandle find_domain(const std::string& name_or_uuid) const;

 private:
  Connection(virConnectPtr conn, std::string uri, bool read_only)
      : conn_(conn), uri_(std::move(uri)), read_only_(read_only) {}
  virConnectPtr conn_;
  std::string uri_;
  bool read_only_;
};

std::string domain_name(virDomainPtr d);
std::string domain_uuid(virDomainPtr d);
// The domain's state name (running, paused, shutoff, crashed, ...).
std::string domain_state(virDomainPtr d);
// Everything the inventory records: parsed from the live XML, plus state and persistence.
VmView describe_domain(virDomainPtr d, const std::string& uri, const std::string& hypervisor);
std::string domain_xml(virDomainPtr d, unsigned int flags = 0);

}  // namespace palisade::hypervisor
