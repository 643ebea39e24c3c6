#include <algorithm>

#include "decode/decoder.h"

namespace palisade::agent {
namespace {

void copy_endpoint(const __u8 (&addr)[16], uint16_t port, NetEndpoint& out) {
  std::copy(std::begin(addr), std::end(addr), out.addr.begin());
  out.port = port;
}

void decode_net(const pal_record& record, const RecordStrings&, Event& out) {
  const pal_net_args& n = record.a.net;
  out.family = n.family;
  out.sock_type = n.sock_type;
  out.protocol = n.protocol;
  copy_endpoint(n.local_addr, n.local_port, out.local);
  copy_endpoint(n.remote_addr, n.remote_port, out.remote);
}

}  // namespace

void register_network_decoders(DecoderTable& table) {
  for (uint16_t kind : {PAL_NET_CONNECT, PAL_NET_ACCEPT, PAL_NET_BIND, PAL_NET_LISTEN}) {
    table.add(kind, decode_net);
  }
}

}  // namespace palisade::agent
