// libFuzzer target: arbitrary bytes as a libvirt domain XML document (what a hypervisor, or
// whoever can define domains on it, hands palisade hv). Errors are fine; crashes, hangs, leaks
// and entity expansion are not.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "palisade/hypervisor/domain_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::hypervisor;
  const std::string xml(reinterpret_cast<const char*>(data), size);
  try {
    palisade::VmView view;
    parse_domain_xml(xml, view);
    for (const auto& nic : view.nics) (void)interface_with_link(xml, nic.mac, true);
    for (const auto& disk : view.disks) (void)disk_chain(xml, disk.target);
  } catch (const std::exception&) {
  }
  return 0;
}
