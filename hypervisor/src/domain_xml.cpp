#include "palisade/hypervisor/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <stdexcept>

namespace palisade::hypervisor {
namespace {

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct ContextFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct ObjectFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;
using Context = std::unique_ptr<xmlXPathContext, ContextFree>;
using Object = std::unique_ptr<xmlXPathObject, ObjectFree>;

const xmlChar* x(const char* s) {
  return reinterpret_cast<const xmlChar*>(s);
}

// Domain XML comes from libvirt, but it carries text the guest's owner chose (metadata, names):
// no network access and no entity substitution while parsing it.
Doc parse(const std::string& xml) {
  Doc doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) throw std::runtime_error("not a well-formed XML document");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || xmlStrcmp(root->name, x("domain")) != 0) {
    throw std::runtime_error("not a libvirt domain document (no <domain> root element)");
  }
  return doc;
}

Context context(xmlDoc* doc) {
  Context ctx(xmlXPathNewContext(doc));
  if (!ctx) throw std::runtime_error("out of memory");
  const std::string ns(kVmLabelNamespace);
  xmlXPathRegisterNs(ctx.get(), x("p"), x(ns.c_str()));
  return ctx;
}

std::vector<xmlNode*> nodes(xmlXPathContext* ctx, const char* path, xmlNode* from = nullptr) {
  ctx->node = from != nullptr ? from : xmlDocGetRootElement(ctx->doc);
  Object result(xmlXPathEvalExpression(x(path), ctx));
  std::vector<xmlNode*> out;
  if (!result || result->nodesetval == nullptr) return out;
  for (int i = 0; i < result->nodesetval->nodeNr; ++i)
    out.push_back(result->nodesetval->nodeTab[i]);
  return out;
}

std::string owned(xmlChar* s) {
  if (s == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(s));
  xmlFree(s);
  return out;
}

std::string attribute(const xmlNode* node, const char* name) {
  return node != nullptr ? owned(xmlGetProp(node, x(name))) : std::string();
}

std::string content(const xmlNode* node) {
  return node != nullptr ? owned(xmlNodeGetContent(node)) : std::string();
}

xmlNode* child(xmlNode* node, const char* name) {
  for (xmlNode* c = node != nullptr ? node->children : nullptr; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, x(name)) == 0) return c;
  }
  return nullptr;
}

std::string first_text(xmlXPathContext* ctx, const char* path) {
  auto found = nodes(ctx, path);
  return found.empty() ? std::string() : content(found[0]);
}

uint64_t number(const std::string& text) {
  uint64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// libvirt's memory units, to KiB.
uint64_t to_kib(uint64_t value, const std::string& unit) {
  if (unit.empty() || unit == "k" || unit == "KiB") return value;
  if (unit == "b" || unit == "bytes") return value / 1024;
  if (unit == "KB") return value * 1000 / 1024;
  if (unit == "M" || unit == "MiB") return value << 10;
  if (unit == "MB") return value * 1'000'000 / 1024;
  if (unit == "G" || unit == "GiB") return value << 20;
  if (unit == "GB") return value * 1'000'000'000 / 1024;
  if (unit == "T" || unit == "TiB") return value << 30;
  return value;
}

std::string first_attribute(xmlNode* node, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string v = attribute(node, n);
    if (!v.empty()) return v;
  }
  return {};
}

void read_disks(xmlXPathContext* ctx, VmView& out) {
  for (xmlNode* disk : nodes(ctx, "/domain/devices/disk")) {
    VmDisk d;
    d.type = attribute(disk, "type");
    d.device = attribute(disk, "device");
    d.target = attribute(child(disk, "target"), "dev");
    d.source = first_attribute(child(disk, "source"), {"file", "dev", "name", "volume"});
    d.format = attribute(child(disk, "driver"), "type");
    d.read_only = child(disk, "readonly") != nullptr;
    out.disks.push_back(std::move(d));
  }
}

void read_nics(xmlXPathContext* ctx, VmView& out) {
  for (xmlNode* nic : nodes(ctx, "/domain/devices/interface")) {
    VmNic n;
    n.type = attribute(nic, "type");
    n.mac = attribute(child(nic, "mac"), "address");
    n.source = first_attribute(child(nic, "source"), {"network", "bridge", "dev"});
    n.target = attribute(child(nic, "target"), "dev");
    n.model = attribute(child(nic, "model"), "type");
    n.link_up = attribute(child(nic, "link"), "state") != "down";
    out.nics.push_back(std::move(n));
  }
}

void read_labels(xmlXPathContext* ctx, VmView& out) {
  for (xmlNode* label : nodes(ctx, "/domain/metadata/p:labels/p:label")) {
    std::string key = attribute(label, "key");
    if (key.empty()) continue;
    out.labels.emplace_back(std::move(key), content(label));
  }
  std::sort(out.labels.begin(), out.labels.end());
  out.labels.erase(std::unique(out.labels.begin(), out.labels.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   out.labels.end());
}

}  // namespace

void parse_domain_xml(const std::string& xml, VmView& out) {
  Doc doc = parse(xml);
  Context ctx = context(doc.get());
  out.name = first_text(ctx.get(), "/domain/name");
  out.uuid = first_text(ctx.get(), "/domain/uuid");
  auto vcpu = nodes(ctx.get(), "/domain/vcpu");
  if (!vcpu.empty()) {
    const std::string current = attribute(vcpu[0], "current");
    out.vcpus = static_cast<uint32_t>(number(current.empty() ? content(vcpu[0]) : current));
  }
  auto memory = nodes(ctx.get(), "/domain/currentMemory");
  if (memory.empty()) memory = nodes(ctx.get(), "/domain/memory");
  if (!memory.empty()) {
    out.memory_kib = to_kib(number(content(memory[0])), attribute(memory[0], "unit"));
  }
  out.disks.clear();
  out.nics.clear();
  out.labels.clear();
  read_disks(ctx.get(), out);
  read_nics(ctx.get(), out);
  read_labels(ctx.get(), out);
}

std::string interface_with_link(const std::string& domain_xml, const std::string& mac, bool up) {
  Doc doc = parse(domain_xml);
  Context ctx = context(doc.get());
  for (xmlNode* nic : nodes(ctx.get(), "/domain/devices/interface")) {
    std::string address = attribute(child(nic, "mac"), "address");
    std::transform(address.begin(), address.end(), address.begin(), ::tolower);
    std::string wanted = mac;
    std::transform(wanted.begin(), wanted.end(), wanted.begin(), ::tolower);
    if (address != wanted) continue;
    xmlNode* link = child(nic, "link");
    if (link == nullptr) link = xmlNewChild(nic, nullptr, x("link"), nullptr);
    xmlSetProp(link, x("state"), x(up ? "up" : "down"));
    struct BufferFree {
      void operator()(xmlBuffer* b) const { xmlBufferFree(b); }
    };
    std::unique_ptr<xmlBuffer, BufferFree> buffer(xmlBufferCreate());
    xmlNodeDump(buffer.get(), doc.get(), nic, 0, 0);
    return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer.get())),
                       static_cast<size_t>(xmlBufferLength(buffer.get())));
  }
  throw std::runtime_error("the domain has no network interface with MAC " + mac);
}

DiskChain disk_chain(const std::string& domain_xml, const std::string& target) {
  Doc doc = parse(domain_xml);
  Context ctx = context(doc.get());
  for (xmlNode* disk : nodes(ctx.get(), "/domain/devices/disk")) {
    if (attribute(child(disk, "target"), "dev") != target) continue;
    DiskChain chain;
    chain.active = first_attribute(child(disk, "source"), {"file", "dev", "name", "volume"});
    xmlNode* backing = child(disk, "backingStore");
    chain.backing = first_attribute(child(backing, "source"), {"file", "dev", "name", "volume"});
    return chain;
  }
  return {};
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace palisade::hypervisor
