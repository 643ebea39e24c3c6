#include "exporter_base.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "palisade/base/clock.h"
#include "palisade/base/error.h"

namespace palisade::exporters {
namespace {

using Clock = std::chrono::steady_clock;

// A NATS subject token may not hold '.', '*', '>' or white space.
std::string subject_token(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '.' || c == '*' || c == '>' || c == ' ' || c == '\t') c = '_';
  }
  return out.empty() ? "unknown" : out;
}

// The first string value of `key` in a record the formatter wrote ("" when there is none).
std::string_view string_field(std::string_view json, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":\"";
  const auto at = json.find(needle);
  if (at == std::string_view::npos) return {};
  const auto begin = at + needle.size();
  const auto end = json.find('"', begin);
  return end == std::string_view::npos ? std::string_view() : json.substr(begin, end - begin);
}

int severity_id(std::string_view json) {
  const auto at = json.find("\"severity_id\":");
  if (at == std::string_view::npos) return 0;
  int value = 0;
  for (auto i = at + 14; i < json.size() && json[i] >= '0' && json[i] <= '9'; ++i) {
    value = value * 10 + (json[i] - '0');
  }
  return value;
}

}  // namespace

std::optional<std::string> redacted(const std::string& payload,
                                    const std::vector<std::string>& paths) {
  nlohmann::json doc = nlohmann::json::parse(payload, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  for (const auto& path : paths) {
    nlohmann::json* at = &doc;
    std::string_view rest = path;
    while (at != nullptr && at->is_object()) {
      const auto dot = rest.find('.');
      const std::string key(rest.substr(0, dot));
      if (dot == std::string_view::npos) {
        at->erase(key);
        break;
      }
      auto it = at->find(key);
      at = it == at->end() ? nullptr : &*it;
      rest.remove_prefix(dot + 1);
    }
  }
  return doc.dump();
}

std::string Message::encode() const {
  std::string out;
  out.reserve(subject.size() + uid.size() + payload.size() + 2);
  out.append(subject).append(1, '\n').append(uid).append(1, '\n').append(payload);
  return out;
}

Message Message::decode(const std::string& record) {
  Message m;
  const auto first = record.find('\n');
  const auto second = first == std::string::npos ? first : record.find('\n', first + 1);
  if (second == std::string::npos) return m;
  m.subject = record.substr(0, first);
  m.uid = record.substr(first + 1, second - first - 1);
  m.payload = record.substr(second + 1);
  return m;
}

QueuedExporter::QueuedExporter(const ExporterSettings& settings,
                               std::shared_ptr<ocsf::Formatter> formatter)
    : settings_(settings),
      formatter_(std::move(formatter)),
      node_(subject_token(formatter_->host().hostname)),
      queue_(std::max<size_t>(settings.queue_events, 1), base::OnFull::kReject),
      spool_(settings.spool) {
  bucket_ = base::TokenBucket::full(burst());
  spool_stats_ = spool_.stats();
  pending_ = spool_stats_.entries;
}

QueuedExporter::~QueuedExporter() = default;

void QueuedExporter::start() {
  thread_ = std::thread([this] { run(); });
}

void QueuedExporter::stop() {
  stopping_ = true;
  queue_.close();
  if (thread_.joinable()) thread_.join();
}

// Without a configured burst: one second's worth.
double QueuedExporter::burst() const {
  return settings_.burst > 0 ? settings_.burst : std::max(settings_.rate_per_second, 1.0);
}

bool QueuedExporter::wants_class(std::string_view event_class) const {
  if (settings_.classes.empty()) return true;
  return std::find(settings_.classes.begin(), settings_.classes.end(), event_class) !=
         settings_.classes.end();
}

void QueuedExporter::offer(std::string_view event_class, std::string uid,
                           std::string_view payload) {
  if (settings_.rate_per_second > 0) {
    std::lock_guard lock(limit_mutex_);
    if (!bucket_.take(settings_.rate_per_second, burst())) {
      rate_limited_++;
      return;
    }
  }
  Message m{settings_.nats.subject_prefix + "." + node_ + "." + std::string(event_class),
            std::move(uid), std::string(payload)};
  // The pipeline never waits for an exporter: a full hand-off is a counted loss.
  if (queue_.push(m.encode()) == base::PushResult::kQueued) pending_++;
}

void QueuedExporter::consume(const Event& event, std::string_view ocsf) {
  const std::string_view event_class = class_name(class_of(event.kind));
  if (ocsf.empty() || !wants_class(event_class)) {
    filtered_++;
    return;
  }
  offer(event_class, formatter_->event_uid(event), ocsf);
}

void QueuedExporter::consume_finding(std::string_view ocsf_finding, const Event& /*trigger*/) {
  const std::string uid(string_field(ocsf_finding, "uid"));  // finding_info.uid comes first
  const std::string rule = uid.substr(0, uid.rfind(':'));
  const bool rule_wanted =
      settings_.rules.empty() ||
      std::find(settings_.rules.begin(), settings_.rules.end(), rule) != settings_.rules.end();
  if (!wants_class("finding") || severity_id(ocsf_finding) < settings_.min_severity_id ||
      !rule_wanted) {
    filtered_++;
    return;
  }
  offer("finding", uid, ocsf_finding);
}

void QueuedExporter::write_record(const runtime::OutOfBandRecord& record) {
  if (record.kind != runtime::OutOfBandRecord::Kind::kAudit || !wants_class("audit")) return;
  offer("audit", "audit." + formatter_->host().run_id + "." + std::to_string(audit_seq_++),
        record.json);
}

void QueuedExporter::count_acknowledged() {
  acknowledged_++;
  if (pending_ > 0) pending_--;
  last_acknowledged_ms_ = static_cast<int64_t>(base::wall_now_ns() / 1000000);
}

void QueuedExporter::count_failed(size_t entries, const std::string& why) {
  failed_ += entries;
  set_error(why);
}

void QueuedExporter::set_error(std::string error) {
  std::lock_guard lock(status_mutex_);
  if (error != last_error_) spdlog::warn("exporter {}: {}", settings_.name, error);
  last_error_ = std::move(error);
}

void QueuedExporter::publish_spool_stats() {
  std::lock_guard lock(status_mutex_);
  spool_stats_ = spool_.stats();
}

void QueuedExporter::run() {
  connect();
  Clock::time_point give_up{};  // once stopping: how long acknowledgements are waited for
  while (true) {
    // What the pipeline handed over goes to the spool first: from there it is sent, and it
    // survives the destination's absence and the agent's restart.
    auto batch = queue_.pop_batch(4096, 1, Clock::now() + std::chrono::milliseconds(20));
    for (auto& record : batch) {
      if (!settings_.redact.empty()) {
        Message m = Message::decode(record);
        auto clean = redacted(m.payload, settings_.redact);
        if (!clean) {
          unredactable_++;
          if (pending_ > 0) pending_--;
          continue;
        }
        m.payload = std::move(*clean);
        record = m.encode();
      }
      if (!spool_.append(record) && pending_ > 0) pending_--;  // spool full: counted by the spool
    }
    queue_.done(batch.size());
    send_pending();
    connected_ = connected();
    publish_spool_stats();
    if (stopping_ && queue_.stats().depth == 0) {
      // What is not acknowledged by then stays in the spool for the next start.
      if (give_up == Clock::time_point{}) give_up = Clock::now() + std::chrono::seconds(3);
      if (spool_.empty() || !connected_ || Clock::now() >= give_up) break;
    }
  }
  spool_.sync();
  publish_spool_stats();
  disconnect();
}

void QueuedExporter::drain() {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && pending_ > 0 && connected_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

nlohmann::json QueuedExporter::status() const {
  std::lock_guard lock(status_mutex_);
  const base::QueueStats queue = queue_.stats();
  return {{"type", settings_.type},
          {"connected", connected_.load()},
          {"pending", pending_.load()},
          {"published", published_.load()},
          {"acknowledged", acknowledged_.load()},
          {"resent_after_failure", failed_.load()},
          {"filtered", filtered_.load()},
          {"lost",
           {{"queue_full", queue.rejected_full},
            {"spool_full", spool_stats_.dropped_full},
            {"rate_limited", rate_limited_.load()},
            {"unredactable", unredactable_.load()}}},
          {"spool",
           {{"directory", settings_.spool.directory.string()},
            {"entries", spool_stats_.entries},
            {"bytes", spool_stats_.bytes},
            {"corrupt_records", spool_stats_.corrupt}}},
          {"last_acknowledged_ms", last_acknowledged_ms_.load()},
          {"last_error", last_error_}};
}

void QueuedExporter::add_metrics(metrics::Snapshot& s, const std::string& /*name*/) const {
  const nlohmann::json st = status();
  const metrics::Labels of{{"exporter", settings_.name}, {"type", settings_.type}};
  const auto n = [](const nlohmann::json& v) { return v.get<double>(); };
  s.gauge("palisade_exporter_connected", "1 while the exporter reaches its destination",
          st["connected"].get<bool>() ? 1 : 0, of);
  s.gauge("palisade_exporter_pending", "Events accepted and not yet acknowledged", n(st["pending"]),
          of);
  s.counter("palisade_exporter_acknowledged_total", "Events the destination acknowledged",
            n(st["acknowledged"]), of);
  s.counter("palisade_exporter_resent_total",
            "Events sent again after a failure, a timeout or a lost connection",
            n(st["resent_after_failure"]), of);
  for (const char* reason : {"queue_full", "spool_full", "rate_limited", "unredactable"}) {
    metrics::Labels labels = of;
    labels.emplace_back("reason", reason);
    s.counter("palisade_exporter_lost_total", "Events an exporter accepted and lost, by reason",
              n(st["lost"][reason]), labels);
  }
  s.gauge("palisade_exporter_spool_bytes", "The exporter's spool on disk", n(st["spool"]["bytes"]),
          of);
  s.gauge("palisade_exporter_last_success_seconds",
          "When the destination last acknowledged an event (Unix time; 0: never)",
          n(st["last_acknowledged_ms"]) / 1e3, of);
}

std::unique_ptr<runtime::Output> open_exporter(const ExporterSettings& settings,
                                               std::shared_ptr<ocsf::Formatter> formatter) {
  if (settings.type == "nats") return open_nats_exporter(settings, std::move(formatter));
  throw ConfigurationError("exporter " + settings.name + ": unknown type '" + settings.type +
                           "' (known: nats)");
}

}  // namespace palisade::exporters
