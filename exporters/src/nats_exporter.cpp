// The NATS JetStream exporter (nats.c): events published asynchronously to
// <prefix>.<node>.<class>, each with Nats-Msg-Id set to its uid so that JetStream drops a copy
// sent twice; an event leaves the spool once JetStream acknowledged it. A lost connection, a
// negative acknowledgement or one that does not come back in time sends everything not yet
// acknowledged again, in order.
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "exporter_base.h"

namespace palisade::exporters {
namespace {

using Clock = std::chrono::steady_clock;

std::string status_text(natsStatus s) {
  return natsStatus_GetText(s);
}

class NatsExporter final : public QueuedExporter {
 public:
  NatsExporter(const ExporterSettings& settings, std::shared_ptr<ocsf::Formatter> formatter)
      : QueuedExporter(settings, std::move(formatter)) {
    start();
  }
  ~NatsExporter() override { stop(); }
  NatsExporter(const NatsExporter&) = delete;
  NatsExporter& operator=(const NatsExporter&) = delete;

 private:
  struct InFlight {
    uint64_t spool_id;
    Clock::time_point sent;
  };

  // ---- the exporter thread

  void connect() override {
    const NatsSettings& n = settings().nats;
    natsOptions* options = nullptr;
    natsStatus s = natsOptions_Create(&options);
    std::vector<const char*> servers;
    servers.reserve(n.servers.size());
    for (const auto& url : n.servers) servers.push_back(url.c_str());
    if (s == NATS_OK)
      s = natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(options, -1);  // forever: the spool waits
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(options, 500);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(options, true, nullptr, nullptr);
    if (s == NATS_OK) s = natsOptions_SetName(options, ("palisade " + settings().name).c_str());
    if (s == NATS_OK && !n.ca_file.empty()) {
      s = natsOptions_SetSecure(options, true);
      if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(options, n.ca_file.c_str());
    }
    if (s == NATS_OK && !n.certificate.empty()) {
      s = natsOptions_LoadCertificatesChain(options, n.certificate.c_str(), n.key.c_str());
    }
    if (s == NATS_OK && !n.credentials_file.empty()) {
      s = natsOptions_SetUserCredentialsFromFiles(options, n.credentials_file.c_str(), nullptr);
    }
    if (s == NATS_OK) {
      s = natsConnection_Connect(&connection_, options);
      if (s == NATS_NOT_YET_CONNECTED) s = NATS_OK;  // retried in the background
    }
    natsOptions_Destroy(options);
    if (s == NATS_OK) {
      jsOptions js_options;
      jsOptions_Init(&js_options);
      js_options.PublishAsync.MaxPending = n.max_in_flight * 2LL;
      js_options.PublishAsync.AckHandler = &NatsExporter::on_ack;
      js_options.PublishAsync.AckHandlerClosure = this;
      s = natsConnection_JetStream(&js_, connection_, &js_options);
    }
    if (s != NATS_OK) {
      set_error("cannot set up the NATS connection: " + status_text(s) + " " +
                nats_GetLastError(nullptr));
    }
  }

  void disconnect() override {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (connection_ != nullptr) {
      natsConnection_Close(connection_);
      natsConnection_Destroy(connection_);
    }
    js_ = nullptr;
    connection_ = nullptr;
  }

  bool connected() const override {
    return connection_ != nullptr &&
           natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
  }

  // Called on nats.c's thread: only hands the outcome over.
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<NatsExporter*>(closure);
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) {
      std::lock_guard lock(self->outcomes_mutex_);
      self->outcomes_.push_back({id, ack != nullptr && error == nullptr});
      if (error != nullptr) self->last_nak_ = status_text(error->Err);
    }
    natsMsg_Destroy(msg);
  }

  void send_pending() override {
    apply_outcomes();
    if (!in_flight_.empty() &&
        Clock::now() - oldest_sent() > std::chrono::milliseconds(settings().nats.ack_timeout_ms)) {
      resend_all("no acknowledgement within " + std::to_string(settings().nats.ack_timeout_ms) +
                 " ms");
    }
    const bool now_connected = connected();
    if (now_connected && !was_connected_ && !in_flight_.empty()) {
      resend_all("reconnected");  // what was in flight when the connection went may be lost
    }
    was_connected_ = now_connected;
    if (!now_connected) return;
    // After a failure (and at first) one event goes alone until it is acknowledged: a cluster
    // that is back but still electing its stream's leader then gets the backlog in order,
    // rather than a window of which the later part lands before the earlier part's resend.
    const size_t window = probing_ ? 1 : settings().nats.max_in_flight;
    while (in_flight_.size() < window) {
      auto entry = spool().next();
      if (!entry) break;
      const Message m = Message::decode(entry->payload);
      natsMsg* msg = nullptr;
      natsStatus s = natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.payload.data(),
                                    static_cast<int>(m.payload.size()));
      if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", m.uid.c_str());
      if (s == NATS_OK) s = js_PublishMsgAsync(js_, &msg, nullptr);
      natsMsg_Destroy(msg);  // no-op once the library took it
      if (s != NATS_OK) {
        resend_all("publish: " + status_text(s));
        return;
      }
      in_flight_[m.uid] = {entry->id, Clock::now()};
      count_published();
    }
  }

  bool all_acknowledged() const override { return in_flight_.empty(); }

  void apply_outcomes() {
    std::vector<std::pair<std::string, bool>> outcomes;
    std::string nak;
    {
      std::lock_guard lock(outcomes_mutex_);
      outcomes.swap(outcomes_);
      nak.swap(last_nak_);
    }
    bool failed = false;
    for (const auto& [uid, ok] : outcomes) {
      auto it = in_flight_.find(uid);
      if (it == in_flight_.end()) continue;  // from before a resend: its copy is in flight
      if (!ok) {
        failed = true;
        continue;
      }
      spool().acknowledge(it->second.spool_id);
      in_flight_.erase(it);
      count_acknowledged();
      probing_ = false;
    }
    if (failed) resend_all("negative acknowledgement: " + nak);
  }

  Clock::time_point oldest_sent() const {
    Clock::time_point oldest = Clock::time_point::max();
    for (const auto& [uid, f] : in_flight_) oldest = std::min(oldest, f.sent);
    return oldest;
  }

  void resend_all(const std::string& why) {
    count_failed(in_flight_.size(), why);
    in_flight_.clear();
    spool().rewind();
    probing_ = true;
  }

  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
  std::unordered_map<std::string, InFlight> in_flight_;  // by Nats-Msg-Id
  bool probing_ = true;  // one event at a time until one is acknowledged
  bool was_connected_ = false;
  std::mutex outcomes_mutex_;
  std::vector<std::pair<std::string, bool>> outcomes_;
  std::string last_nak_;
};

}  // namespace

std::unique_ptr<runtime::Output> open_nats_exporter(const ExporterSettings& settings,
                                                    std::shared_ptr<ocsf::Formatter> formatter) {
  return std::make_unique<NatsExporter>(settings, std::move(formatter));
}

}  // namespace palisade::exporters
