// Exporters: outputs that send events off the node (docs/exporters.md). Each is configured by
// name under `exporters:`, any number at once, and has its own filter. None works on the
// sensor's path: an accepted event is handed to the exporter's thread through a bounded queue
// (full: the event is counted lost, reason queue_full, and the pipeline goes on), written to
// its on-disk spool and sent from there; it leaves the spool only once the destination
// acknowledged it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "palisade/exporters/spool.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/runtime/output.h"

namespace palisade::exporters {

struct NatsSettings {
  std::vector<std::string> servers = {"nats://127.0.0.1:4222"};
  std::string subject_prefix = "palisade";  // subjects: <prefix>.<node>.<class>
  std::string ca_file;                      // TLS: the CA that signed the servers' certificates
  std::string certificate;                  // mTLS: this node's certificate and key
  std::string key;
  std::string credentials_file;    // a NATS .creds file (JWT and NKey seed)
  uint32_t max_in_flight = 4096;   // published, not yet acknowledged
  uint32_t ack_timeout_ms = 5000;  // an acknowledgement not back by then: sent again
};

struct ExporterSettings {
  std::string name;
  std::string type;  // "nats"
  // Filter. classes: process, file, network, privilege, enforcement, vm, finding, audit
  // (empty: all but the agent's own status events).
  std::vector<std::string> classes;
  int min_severity_id = 0;         // findings below this OCSF severity_id are not sent
  std::vector<std::string> rules;  // findings of these rules only (empty: every rule)
  double rate_per_second = 0;      // 0: unlimited; beyond it events are counted rate_limited
  double burst = 0;                // events let through at once (default: one second's worth)
  // OCSF fields removed before an event leaves the node, as dotted paths
  // ("actor.process.cmd_line", "process.environment"); done on the exporter's thread.
  std::vector<std::string> redact;
  size_t queue_events = 65536;  // the hand-off from the pipeline
  SpoolOptions spool;           // directory default: <state>/spool/<name>
  NatsSettings nats;
};

// Opens an exporter of settings.type (ConfigurationError for an unknown one). Connecting is the
// exporter's thread's work: a destination that is down at start is retried, its events spooled.
std::unique_ptr<runtime::Output> open_exporter(const ExporterSettings& settings,
                                               std::shared_ptr<ocsf::Formatter> formatter);

}  // namespace palisade::exporters
