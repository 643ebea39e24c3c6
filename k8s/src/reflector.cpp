#include "palisade/k8s/reflector.h"

#include <spdlog/spdlog.h>

#include <random>

namespace palisade::k8s {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

ObjectRef ref_of(const json& object) {
  const json& meta = object.contains("metadata") ? object["metadata"] : json::object();
  return {meta.value("namespace", ""), meta.value("name", ""), meta.value("uid", "")};
}

std::string key_of(const ObjectRef& ref) {
  return ref.namespace_name + "/" + ref.name;
}

std::string resource_version_of(const json& object) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return {};
  return object["metadata"].value("resourceVersion", "");
}

// Full jitter would make the minimum meaningless; half fixed, half random keeps the spread
// (so a fleet of agents does not reconnect in step) and a floor.
std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> half(0, std::max<std::int64_t>(base.count() / 2, 1));
  return std::chrono::milliseconds(base.count() / 2 + half(rng));
}

}  // namespace

Reflector::Reflector(Client& client, ReflectorOptions options, ReflectorSink& sink)
    : client_(client), options_(std::move(options)), sink_(sink) {}

Reflector::~Reflector() {
  stop();
}

void Reflector::start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

void Reflector::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

ReflectorStats Reflector::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Reflector::wait_for_sync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return synced_cv_.wait_for(lock, timeout, [this] { return synced_; });
}

void Reflector::run(std::stop_token stop) {
  bool need_list = true;
  auto backoff = options_.backoff_min;
  std::mutex sleep_mu;
  std::condition_variable_any sleep_cv;
  const auto sleep = [&](std::chrono::milliseconds d) {
    std::unique_lock lock(sleep_mu);
    sleep_cv.wait_for(lock, stop, d, [] { return false; });
  };
  while (!stop.stop_requested()) {
    try {
      if (need_list) {
        list();
        need_list = false;
        backoff = options_.backoff_min;
      }
      const auto started = Clock::now();
      const std::uint64_t events_before = stats().events + stats().bookmarks;
      if (watch(stop) == WatchResult::kGone) {
        std::lock_guard lock(mu_);
        ++stats_.relists_410;
        need_list = true;
        continue;
      }
      // A normal end (timeoutSeconds): watch again from where we are. A stream that ended at
      // once without delivering anything is treated like a failure so a misbehaving proxy
      // cannot make this a hot loop.
      if (stats().events + stats().bookmarks > events_before ||
          Clock::now() - started >= options_.backoff_min) {
        backoff = options_.backoff_min;
        continue;
      }
    } catch (const ApiError& e) {
      if (e.status() == 410) {  // the watch's version is too old: HTTP 410 Gone
        std::lock_guard lock(mu_);
        ++stats_.relists_410;
        need_list = true;
        continue;
      }
      record_error(e.status(), e.what());
    } catch (const std::exception& e) {
      if (stop.stop_requested()) break;
      record_error(0, e.what());
    }
    sleep(jittered(backoff));
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  std::lock_guard lock(mu_);
  stats_.connected = false;
}

void Reflector::record_error(int http_status, const std::string& what) {
  {
    std::lock_guard lock(mu_);
    ++stats_.errors;
    stats_.connected = false;
    stats_.last_http_status = http_status;
    stats_.last_error = what;
  }
  spdlog::warn("k8s: {}: {}", options_.path, what);
}

std::string Reflector::selectors() const {
  std::string q;
  if (!options_.field_selector.empty()) {
    q += "&fieldSelector=" + query_escape(options_.field_selector);
  }
  if (!options_.label_selector.empty()) {
    q += "&labelSelector=" + query_escape(options_.label_selector);
  }
  return q;
}

// LISTs in pages, then replaces the known set: what is listed is upserted, what is known but
// no longer listed is removed (it was deleted while we were not watching).
void Reflector::list() {
  std::unordered_map<std::string, std::string> seen;
  std::string continue_token;
  std::string version;
  do {
    std::string target =
        options_.path + "?limit=" + std::to_string(options_.list_page_size) + selectors();
    if (!continue_token.empty()) target += "&continue=" + query_escape(continue_token);
    const json page = client_.get(target);
    const json& meta = page.contains("metadata") ? page["metadata"] : json::object();
    continue_token = meta.value("continue", "");
    version = meta.value("resourceVersion", "");
    if (page.contains("items") && page["items"].is_array()) {
      for (const json& item : page["items"]) {
        const ObjectRef ref = ref_of(item);
        seen.emplace(key_of(ref), ref.uid);
        apply_upsert(item);
      }
    }
  } while (!continue_token.empty());

  for (auto it = known_.begin(); it != known_.end();) {
    if (seen.count(it->first) == 0) {
      const auto slash = it->first.find('/');
      ObjectRef ref{it->first.substr(0, slash), it->first.substr(slash + 1), it->second};
      it = known_.erase(it);
      sink_.remove(ref);
    } else {
      ++it;
    }
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.lists;
    stats_.resource_version = version;
    synced_ = true;
  }
  synced_cv_.notify_all();
  sink_.committed();  // after synced_: a sink may wait for several reflectors to be in sync
}

Reflector::WatchResult Reflector::watch(std::stop_token stop) {
  std::string rv;
  {
    std::lock_guard lock(mu_);
    rv = stats_.resource_version;
  }
  const std::string target =
      options_.path + "?watch=1&resourceVersion=" + query_escape(rv) +
      "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(options_.watch_timeout.count()) +
      selectors();
  WatchResult result = WatchResult::kEnded;
  std::string error;
  int error_code = 0;
  const auto on_line = [&](std::string_view line) {
    const json event = json::parse(line, nullptr, false);
    if (!event.is_object() || !event.contains("object")) {
      error = "unreadable watch event: " + std::string(line.substr(0, 128));
      return false;
    }
    if (event.value("type", "") == "ERROR") {
      const json& status = event["object"];
      error_code = status.value("code", 0);
      error = status.value("message", "watch error");
      if (error_code == 410) result = WatchResult::kGone;
      return false;
    }
    apply_event(event);
    return true;
  };
  const auto on_open = [this] {
    std::lock_guard lock(mu_);
    ++stats_.watches;
    stats_.connected = true;
  };
  // A little longer than timeoutSeconds: the server ends the watch, not our idle timer.
  const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(options_.watch_timeout +
                                                                          std::chrono::seconds(30));
  try {
    client_.stream_lines(target, idle, stop, on_line, on_open);
  } catch (...) {
    std::lock_guard lock(mu_);
    stats_.connected = false;
    throw;
  }
  {
    std::lock_guard lock(mu_);
    stats_.connected = false;
  }
  if (result == WatchResult::kGone) return result;
  if (!error.empty()) throw ApiError(error_code, "", error);
  return result;
}

void Reflector::apply_event(const json& event) {
  const std::string type = event.value("type", "");
  const json& object = event["object"];
  const std::string rv = resource_version_of(object);
  if (type == "ADDED" || type == "MODIFIED") {
    apply_upsert(object);
  } else if (type == "DELETED") {
    apply_remove(ref_of(object));
  } else if (type != "BOOKMARK") {
    spdlog::debug("k8s: {}: ignoring watch event type {}", options_.path, type);
  }
  if (type != "BOOKMARK") sink_.committed();
  std::lock_guard lock(mu_);
  if (!rv.empty()) stats_.resource_version = rv;
  if (type == "BOOKMARK") {
    ++stats_.bookmarks;
  } else {
    ++stats_.events;
  }
}

void Reflector::apply_upsert(const json& object) {
  const ObjectRef ref = ref_of(object);
  const std::string key = key_of(ref);
  const auto it = known_.find(key);
  if (it == known_.end()) {
    if (known_.size() >= options_.max_objects) {
      std::lock_guard lock(mu_);
      ++stats_.dropped;
      return;
    }
    known_.emplace(key, ref.uid);
  } else if (it->second != ref.uid) {
    // Same name, new object (deleted and re-created): the old one is gone.
    ObjectRef old{ref.namespace_name, ref.name, it->second};
    it->second = ref.uid;
    sink_.remove(old);
  }
  sink_.upsert(object);
}

void Reflector::apply_remove(const ObjectRef& ref) {
  if (known_.erase(key_of(ref)) > 0) sink_.remove(ref);
}

}  // namespace palisade::k8s
