#include "host_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace palisade::hypervisor {

HostSession::HostSession(size_t index, std::string uri, SessionOptions options, Inbox& inbox)
    : index_(index), uri_(std::move(uri)), options_(options), inbox_(inbox) {}

HostSession::~HostSession() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void HostSession::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

bool HostSession::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void HostSession::release_context(void* opaque) {
  delete static_cast<ContextRef*>(opaque);
}

template <typename F>
void HostSession::with_session(void* opaque, F&& f) {
  CallbackContext& ctx = **static_cast<ContextRef*>(opaque);
  std::lock_guard lock(ctx.mutex);
  if (ctx.session != nullptr) f(*ctx.session);
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

void HostSession::wait_for(std::chrono::milliseconds span, bool or_closed) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, span, [&] { return stopping_ || (or_closed && closed_.load()); });
}

void HostSession::run() {
  uint32_t backoff = options_.backoff_min_ms;
  bool reported_unreachable = false;
  while (!stopping()) {
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
      wait_for(std::chrono::milliseconds(backoff), false);
      backoff = std::min(options_.backoff_max_ms, backoff * 2);
      continue;
    }
    backoff = options_.backoff_min_ms;
    reported_unreachable = false;
    inbox_.push(Notice{Notice::Type::kHostUp, index_, {}, {}, 0, 0, {}, {}});
    // Connected: watch for the close callback, and ask libvirt now and then whether the peer is
    // still there (drivers without keepalive never call the close callback).
    for (;;) {
      wait_for(std::chrono::milliseconds(1000), true);
      if (stopping() || closed_) break;
      const std::shared_ptr<Connection> conn = connection();
      if (conn && virConnectIsAlive(conn->get()) != 1) break;
    }
    disconnect();
    if (stopping()) break;
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
  // Registered without holding mutex_: these calls are round trips, and libvirt may call the
  // close callback from inside one of them.
  closed_ = false;
  context_ = std::make_shared<CallbackContext>();
  context_->session = this;
  close_callback_ =
      virConnectRegisterCloseCallback(conn->get(), &HostSession::on_close, new ContextRef(context_),
                                      &HostSession::release_context) == 0;
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
    auto* opaque = new ContextRef(context_);
    const int id = virConnectDomainEventRegisterAny(conn->get(), nullptr, r.id, r.callback, opaque,
                                                    &HostSession::release_context);
    if (id >= 0) {
      callbacks_.push_back(id);
      continue;
    }
    delete opaque;  // not registered: libvirt will not free it
    if (r.id == VIR_DOMAIN_EVENT_ID_LIFECYCLE) {
      error = "cannot subscribe to lifecycle events of " + uri_ + ": " + last_libvirt_error();
      {
        std::lock_guard lock(mutex_);
        connection_ = conn;
      }
      disconnect();
      return false;
    }
  }
  std::lock_guard lock(mutex_);
  connection_ = conn;
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
  if (conn) {
    for (int cb : callbacks_) virConnectDomainEventDeregisterAny(conn->get(), cb);
    if (close_callback_) virConnectUnregisterCloseCallback(conn->get(), &HostSession::on_close);
  }
  callbacks_.clear();
  close_callback_ = false;
  if (context_) {
    // Waits for a callback in progress; later ones find no session.
    std::lock_guard lock(context_->mutex);
    context_->session = nullptr;
  }
  context_.reset();
  closed_ = false;
  // Other holders (a stats call in progress) keep the connection open until they finish.
}

void HostSession::on_close(virConnectPtr, int reason, void* opaque) {
  with_session(opaque, [reason](HostSession& self) {
    spdlog::warn("hv: {}: connection closed (reason {})", self.uri_, reason);
    self.closed_ = true;
    self.wake_.notify_all();
  });
}

void HostSession::notify(Notice::Type type, virDomainPtr dom, int event, int detail) {
  inbox_.push(Notice{type, index_, domain_uuid(dom), domain_name(dom), event, detail, {}, {}});
}

int HostSession::on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail,
                              void* opaque) {
  with_session(opaque, [&](HostSession& self) {
    self.notify(Notice::Type::kLifecycle, dom, event, detail);
  });
  return 0;
}

void HostSession::on_metadata(virConnectPtr, virDomainPtr dom, int, const char*, void* opaque) {
  with_session(opaque, [&](HostSession& self) { self.notify(Notice::Type::kMetadata, dom); });
}

void HostSession::on_device(virConnectPtr, virDomainPtr dom, const char*, void* opaque) {
  with_session(opaque, [&](HostSession& self) { self.notify(Notice::Type::kDevice, dom); });
}

}  // namespace palisade::hypervisor
