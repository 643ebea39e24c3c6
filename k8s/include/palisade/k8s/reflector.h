#pragma once
// List-then-watch of one collection, the way client-go's Reflector does it: LIST, remember the
// list's resourceVersion, WATCH from there; BOOKMARKs advance the version, a 410 (the version
// has left the server's history window) means LIST again, anything else is retried with
// exponential backoff and jitter.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>

#include "palisade/k8s/client.h"

namespace palisade::k8s {

struct ObjectRef {
  std::string namespace_name;  // empty for cluster-scoped objects
  std::string name;
  std::string uid;
};

// Receives the objects. Called from the reflector's thread only.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  virtual void upsert(const nlohmann::json& object) = 0;  // added or modified
  virtual void remove(const ObjectRef& ref) = 0;          // deleted, or gone at a re-list
  // A consistent point: after a LIST has been applied and after each watch event, so a sink
  // that publishes whole sets publishes once per change rather than once per object.
  virtual void committed() {}
};

struct ReflectorOptions {
  std::string path;  // the collection, e.g. "/api/v1/pods"
  std::string field_selector;
  std::string label_selector;
  std::chrono::seconds watch_timeout{300};  // timeoutSeconds: the server ends the watch then
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::size_t max_objects = 16384;  // objects beyond this are dropped and counted
  std::size_t list_page_size = 500;
};

struct ReflectorStats {
  std::uint64_t lists = 0;    // LISTs completed
  std::uint64_t watches = 0;  // WATCH streams opened
  std::uint64_t events = 0;   // ADDED/MODIFIED/DELETED applied
  std::uint64_t bookmarks = 0;
  std::uint64_t relists_410 = 0;  // re-lists forced by 410 Gone / Expired
  std::uint64_t errors = 0;       // failed requests and dropped connections
  std::uint64_t dropped = 0;      // objects refused because max_objects was reached
  std::string resource_version;   // where the next watch starts
  bool connected = false;         // a watch stream is open
  int last_http_status = 0;       // of the last failed request, 0 for transport errors
  std::string last_error;
};

class Reflector {
 public:
  Reflector(Client& client, ReflectorOptions options, ReflectorSink& sink);
  ~Reflector();  // stops
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void start();
  void stop();  // prompt: aborts an open watch and any backoff sleep
  ReflectorStats stats() const;
  // True once the first LIST has been applied (false on timeout).
  bool wait_for_sync(std::chrono::milliseconds timeout) const;

 private:
  enum class WatchResult { kEnded, kGone };
  void run(std::stop_token stop);
  void list();
  WatchResult watch(std::stop_token stop);
  void apply_event(const nlohmann::json& event);
  void apply_upsert(const nlohmann::json& object);
  void apply_remove(const ObjectRef& ref);
  void record_error(int http_status, const std::string& what);
  std::string selectors() const;

  Client& client_;
  const ReflectorOptions options_;
  ReflectorSink& sink_;
  std::unordered_map<std::string, std::string> known_;  // "ns/name" -> uid; reflector thread
  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  bool synced_ = false;
  ReflectorStats stats_;
  std::jthread thread_;
};

}  // namespace palisade::k8s
