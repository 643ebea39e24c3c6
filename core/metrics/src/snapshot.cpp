#include <prometheus/check_names.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <sstream>
#include <unordered_map>

#include "palisade/base/error.h"
#include "palisade/metrics/metrics.h"
#include "snapshot_impl.h"

namespace palisade::metrics {

void LatencyHistogram::observe(double seconds) {
  const auto* bound = std::lower_bound(kBoundsSeconds.begin(), kBoundsSeconds.end(), seconds);
  if (bound != kBoundsSeconds.end()) buckets[static_cast<size_t>(bound - kBoundsSeconds.begin())]++;
  count++;
  sum_seconds += seconds;
}

namespace {

std::vector<prometheus::ClientMetric::Label> label_list(const Labels& labels) {
  std::vector<prometheus::ClientMetric::Label> out;
  out.reserve(labels.size());
  for (const auto& [name, value] : labels) {
    if (!prometheus::CheckLabelName(name)) {
      throw InvariantError("metrics: bad label name '" + name + "'");
    }
    out.push_back({name, value});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

prometheus::ClientMetric& Snapshot::Impl::series(std::string_view name, std::string_view help,
                                                 prometheus::MetricType type,
                                                 const Labels& labels) {
  auto [it, added] = family_index.try_emplace(std::string(name), families.size());
  if (added) {
    if (!prometheus::CheckMetricName(it->first)) {
      throw InvariantError("metrics: bad metric name '" + it->first + "'");
    }
    families.push_back({it->first, std::string(help), type, {}});
  }
  prometheus::MetricFamily& family = families[it->second];
  if (family.type != type) {
    throw InvariantError("metrics: " + family.name + " given two types");
  }
  auto list = label_list(labels);
  for (auto& existing : family.metric) {
    if (existing.label == list) return existing;
  }
  family.metric.emplace_back();
  family.metric.back().label = std::move(list);
  return family.metric.back();
}

Snapshot::Snapshot() : impl_(std::make_unique<Impl>()) {}
Snapshot::~Snapshot() = default;
Snapshot::Snapshot(Snapshot&&) noexcept = default;
Snapshot& Snapshot::operator=(Snapshot&&) noexcept = default;

void Snapshot::counter(std::string_view name, std::string_view help, double value,
                       const Labels& labels) {
  impl_->series(name, help, prometheus::MetricType::Counter, labels).counter.value += value;
}

void Snapshot::gauge(std::string_view name, std::string_view help, double value,
                     const Labels& labels) {
  impl_->series(name, help, prometheus::MetricType::Gauge, labels).gauge.value += value;
}

void Snapshot::histogram(std::string_view name, std::string_view help, const LatencyHistogram& h,
                         const Labels& labels) {
  auto& series = impl_->series(name, help, prometheus::MetricType::Histogram, labels).histogram;
  if (series.bucket.empty()) {
    for (double bound : LatencyHistogram::kBoundsSeconds) series.bucket.push_back({0, bound});
    series.bucket.push_back({0, std::numeric_limits<double>::infinity()});
  }
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    series.bucket[i].cumulative_count += cumulative;
  }
  series.bucket.back().cumulative_count += h.count;
  series.sample_count += h.count;
  series.sample_sum += h.sum_seconds;
}

std::string Snapshot::text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->families);
  return out.str();
}

}  // namespace palisade::metrics
