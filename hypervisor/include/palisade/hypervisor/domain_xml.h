// Reads what the inventory needs from a libvirt domain XML document (libxml2, no network, no
// entity expansion): vCPUs, memory, disks, NICs with their link state, and palisade's labels from
// <metadata>.
#pragma once

#include <string>

#include "palisade/model/vm_view.h"

namespace palisade::hypervisor {

// Fills name, uuid, vcpus, memory, disks, nics and labels (sorted); leaves host, hypervisor,
// state and persistent alone. Throws std::runtime_error when the text is not a domain document.
void parse_domain_xml(const std::string& xml, VmView& out);

// The <interface> element of the NIC with this MAC, serialized, with its <link state> set to
// up or down (added when absent): what virDomainUpdateDeviceFlags takes to change a link.
// Throws when the domain has no such NIC.
std::string interface_with_link(const std::string& domain_xml, const std::string& mac, bool up);

// A disk's active image and the image right below it (the first <backingStore>), from the live
// XML; empty strings when the disk or a backing image is not there.
struct DiskChain {
  std::string active;
  std::string backing;
};
DiskChain disk_chain(const std::string& domain_xml, const std::string& target);

// Text made safe for an XML attribute value or element content.
std::string xml_escape(std::string_view text);

}  // namespace palisade::hypervisor
