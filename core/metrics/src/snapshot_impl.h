// The snapshot's families in prometheus-cpp's own types, for the endpoint to serve.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "palisade/metrics/metrics.h"

namespace palisade::metrics {

struct Snapshot::Impl {
  std::vector<prometheus::MetricFamily> families;
  std::unordered_map<std::string, size_t> family_index;
  prometheus::ClientMetric& series(std::string_view name, std::string_view help,
                                   prometheus::MetricType type, const Labels& labels);
};

}  // namespace palisade::metrics
