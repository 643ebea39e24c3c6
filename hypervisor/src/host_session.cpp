#include "host_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace palisade::hypervisor {

HostSession::HostSession(size_t index, std::string uri, SessionOptions options, Inbox& inbox)
    : index_(index), uri_(std::move(uri)), options_(options), inbox_(inbox) {}

HostSession::~HostSession() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HostSession::start() {
  ensure_event_loop();
  thread_ = std::thread([this] { run(); });
}

std::shared_ptr<Connection> HostSession::connection() const {
  std::lock_guard lock(mutex_);
  return connection_;
}

SessionCounters HostSession::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void HostSession::wait_for(std::chrono::milliseconds span) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, span, [&] { return stopping_ || closed_; });
}

void HostSession::run() {
  uint32_t backoff = options_.backoff_min_ms;
  bool reported_unreachable = false;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    std::string error;
    if (!connect_once(error)) {
      {
        std::lock_guard lock(mutex_);
        counters_.failed_attempts++;
      }
      if (!reported_unreachable) {
        inbox_.push(Notice{Notice::Type::kHostUnreachable, index_, {}, {}, 0, 0, error, {}});
        reported_unreachable = true;
      }
      spdlog::debug("hv: {}: {} (retrying in {} ms)", uri_, error, backoff);
      wait_for(std::chrono::milliseconds(backoff));
      backoff = std::min(options_.backoff_max_ms, backoff * 2);
      continue;
    }
    backoff = options_.backoff_min_ms;
    reported_unreachable = false;
    inbox_.push(Notice{Notice::Type::kHostUp, index_, {}, {}, 0, 0, {}, {}});
    // Connected: watch for the close callback, and ask libvirt now and then whether the peer is
    // still there (drivers without keepalive never call the close callback).
    for (;;) {
      wait_for(std::chrono::milliseconds(1000));
      std::shared_ptr<Connection> conn;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
        if (closed_) break;
        conn = connection_;
      }
      if (conn && virConnectIsAlive(conn->get()) != 1) break;
    }
    bool stopping = false;
    {
      std::lock_guard lock(mutex_);
      stopping = stopping_;
    }
    disconnect();
    if (stopping) break;
    {
      std::lock_guard lock(mutex_);
      counters_.losses++;
    }
    inbox_.push(
        Notice{Notice::Type::kHostDown, index_, {}, {}, 0, 0, "connection to the host lost", {}});
  }
  disconnect();
}

bool HostSession::connect_once(std::string& error) {
  std::shared_ptr<Connection> conn;
  try {
    conn = Connection::open(uri_, options_.read_only);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  // Keepalive is a remote-driver feature; local drivers (test://) say it is unsupported.
  virConnectSetKeepAlive(conn->get(), static_cast<int>(options_.keepalive_interval_s),
                         options_.keepalive_count);
  std::lock_guard lock(mutex_);
  closed_ = false;
  connection_ = conn;
  close_callback_ =
      virConnectRegisterCloseCallback(conn->get(), &HostSession::on_close, this, nullptr) == 0;
  struct Registration {
    int id;
    virConnectDomainEventGenericCallback callback;
  };
  const Registration wanted[] = {
      {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(&HostSession::on_lifecycle)},
      {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(&HostSession::on_metadata)},
      {VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(&HostSession::on_device)},
      {VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(&HostSession::on_device)},
  };
  for (const auto& r : wanted) {
    const int id =
        virConnectDomainEventRegisterAny(conn->get(), nullptr, r.id, r.callback, this, nullptr);
    if (id >= 0) {
      callbacks_.push_back(id);
    } else if (r.id == VIR_DOMAIN_EVENT_ID_LIFECYCLE) {
      error = "cannot subscribe to lifecycle events of " + uri_ + ": " + last_libvirt_error();
      for (int cb : callbacks_) virConnectDomainEventDeregisterAny(conn->get(), cb);
      callbacks_.clear();
      connection_.reset();
      return false;
    }
  }
  counters_.connects++;
  return true;
}

void HostSession::disconnect() {
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lock(mutex_);
    conn = std::move(connection_);
    connection_.reset();
  }
  if (!conn) return;
  for (int cb : callbacks_) virConnectDomainEventDeregisterAny(conn->get(), cb);
  callbacks_.clear();
  if (close_callback_) {
    virConnectUnregisterCloseCallback(conn->get(), &HostSession::on_close);
    close_callback_ = false;
  }
  // Other holders (a stats call in progress) keep it open until they finish.
}

void HostSession::on_close(virConnectPtr, int reason, void* opaque) {
  auto* self = static_cast<HostSession*>(opaque);
  spdlog::warn("hv: {}: connection closed (reason {})", self->uri_, reason);
  {
    std::lock_guard lock(self->mutex_);
    self->closed_ = true;
  }
  self->wake_.notify_all();
}

void HostSession::notify(Notice::Type type, virDomainPtr dom, int event, int detail) {
  inbox_.push(Notice{type, index_, domain_uuid(dom), domain_name(dom), event, detail, {}, {}});
}

int HostSession::on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail,
                              void* opaque) {
  static_cast<HostSession*>(opaque)->notify(Notice::Type::kLifecycle, dom, event, detail);
  return 0;
}

void HostSession::on_metadata(virConnectPtr, virDomainPtr dom, int, const char*, void* opaque) {
  static_cast<HostSession*>(opaque)->notify(Notice::Type::kMetadata, dom);
}

void HostSession::on_device(virConnectPtr, virDomainPtr dom, const char*, void* opaque) {
  static_cast<HostSession*>(opaque)->notify(Notice::Type::kDevice, dom);
}

}  // namespace palisade::hypervisor
