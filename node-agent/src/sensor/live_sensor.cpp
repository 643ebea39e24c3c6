#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palisade/agent/sensor.h"
#include "palisade/base/unique_fd.h"
#include "sensor.skel.h"
#include "sensor/sensor_abi.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTracefsRoot = "/sys/kernel/tracing";

// Programs whose absence makes the agent pointless; all others degrade to a reported blind spot.
bool essential(std::string_view program) {
  return program == "handle_exec" || program == "handle_fork" || program == "handle_exit";
}

std::string describe_program(std::string_view name) {
  if (name == "handle_exec") return "process exec";
  if (name == "handle_fork") return "process fork";
  if (name == "handle_exit") return "process exit";
  auto underscore = name.find('_');
  std::string call(name.substr(underscore + 1));
  return "syscall " + call;
}

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof(line), format, args);
  std::string_view text(line,
                        n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof(line) - 1) : 0);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (level == LIBBPF_WARN) {
    spdlog::debug("libbpf: {}", text);  // failures are reported through the capability report
  } else {
    spdlog::trace("libbpf: {}", text);
  }
  return 0;
}

// "sys_enter_openat" for a program in SEC("tracepoint/syscalls/sys_enter_openat").
std::string tracepoint_of(const bpf_program* prog) {
  std::string section = bpf_program__section_name(prog);
  const std::string prefix = "tracepoint/syscalls/";
  return section.rfind(prefix, 0) == 0 ? section.substr(prefix.size()) : std::string();
}

void fill_filters(int map_fd, const PathRules& rules) {
  std::vector<pal_file_filter> filters;
  auto add = [&filters](const std::string& prefix, bool include) {
    pal_file_filter f{};
    f.len = static_cast<__u32>(std::min(prefix.size(), size_t{PAL_FILTER_PREFIX_LEN}));
    f.include = include ? 1 : 0;
    std::memcpy(f.prefix, prefix.data(), f.len);
    filters.push_back(f);
  };
  for (const auto& p : rules.exclude) add(p, false);
  for (const auto& p : rules.include) add(p, true);
  if (filters.size() > PAL_MAX_FILE_FILTERS) {
    // User space still applies every rule; the kernel only gets the first few as a pre-filter.
    spdlog::warn("only the first {} file path rules are applied in the kernel",
                 PAL_MAX_FILE_FILTERS);
    // An include rule left out of the kernel would drop its events there: keep includes whole.
    if (!rules.include.empty()) filters.clear();
    filters.resize(std::min(filters.size(), size_t{PAL_MAX_FILE_FILTERS}));
  }
  for (__u32 i = 0; i < PAL_MAX_FILE_FILTERS; ++i) {
    pal_file_filter f = i < filters.size() ? filters[i] : pal_file_filter{};
    bpf_map_update_elem(map_fd, &i, &f, BPF_ANY);
  }
}

}  // namespace

bool ensure_tracefs(std::string& detail) {
  if (fs::exists(fs::path(kTracefsRoot) / "events")) {
    detail = "mounted at /sys/kernel/tracing";
    return true;
  }
  if (mount("nodev", kTracefsRoot, "tracefs", 0, nullptr) == 0) {
    detail = "was not mounted; mounted it at /sys/kernel/tracing";
    return true;
  }
  detail = std::string("not mounted and mount failed: ") + std::strerror(errno);
  return false;
}

std::string probe_bpf_lsm() {
  if (!fs::exists("/sys/kernel/security/lsm")) {
    mount("none", "/sys/kernel/security", "securityfs", 0, nullptr);
  }
  std::string lsms = read_text("/sys/kernel/security/lsm");
  if (lsms.empty()) return "unavailable: securityfs not readable";
  if (("," + lsms + ",").find(",bpf,") == std::string::npos) {
    return "unavailable: 'bpf' not in the active LSM list (" + lsms + ")";
  }
  if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_LSM, nullptr) != 1) {
    return "unavailable: 'bpf' is an active LSM but the kernel refuses LSM programs";
  }
  return "available";
}

struct LiveSensor::Impl {
  sensor* skel = nullptr;
  ring_buffer* ring = nullptr;
  std::vector<bpf_link*> links;
  const RecordCallback* deliver = nullptr;  // valid during poll() only
  std::vector<std::vector<std::byte>> pending_snapshot;
  int ncpus = 1;
  base::UniqueFd run_time_stats;  // holds the kernel's BPF run-time statistics on while open

  ~Impl() {
    if (ring != nullptr) ring_buffer__free(ring);
    for (bpf_link* link : links) bpf_link__destroy(link);
    if (skel != nullptr) sensor__destroy(skel);
  }

  static int on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    (*self->deliver)(RecordView(static_cast<const std::byte*>(data), size));
    return 0;
  }
};

namespace {
// Whether the administrator turned BPF statistics on for the whole host.
bool kernel_bpf_stats_enabled() {
  std::ifstream in("/proc/sys/kernel/bpf_stats_enabled");
  int value = 0;
  return (in >> value) && value != 0;
}
}  // namespace

LiveSensor::LiveSensor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LiveSensor::~LiveSensor() = default;

std::unique_ptr<LiveSensor> LiveSensor::start(const SensorOptions& options) {
  libbpf_set_print(libbpf_log);
  CapabilityReport report;
  utsname uts{};
  if (uname(&uts) == 0) report.kernel_release = uts.release;

  report.btf = fs::exists("/sys/kernel/btf/vmlinux");
  if (!report.btf) {
    throw SensorError(
        "kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y) is missing: the CO-RE "
        "sensor cannot be relocated for this kernel");
  }
  report.tracefs = ensure_tracefs(report.tracefs_detail);
  report.bpf_lsm = probe_bpf_lsm();

  auto impl = std::make_unique<Impl>();
  impl->ncpus = libbpf_num_possible_cpus();
  impl->skel = sensor__open();
  if (impl->skel == nullptr) throw SensorError("cannot open the eBPF sensor object");
  sensor* skel = impl->skel;
  skel->rodata->agent_tgid = static_cast<__u32>(getpid());
  skel->rodata->argv_max = std::min<uint32_t>(options.argv_max_bytes, PAL_ARGV_LIMIT - 1);
  skel->rodata->wakeup_bytes =
      std::min<uint64_t>(options.wakeup_bytes, options.ring_buffer_bytes / 4);
  bpf_map__set_max_entries(skel->maps.events, options.ring_buffer_bytes);
  bpf_map__set_max_entries(skel->maps.scratch_map, static_cast<__u32>(impl->ncpus));

  // Syscall tracepoints this kernel lacks (or all of them without tracefs) are not loaded.
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    std::string tp = tracepoint_of(prog);
    if (tp.empty()) continue;
    bool present =
        report.tracefs && fs::exists(fs::path(kTracefsRoot) / "events" / "syscalls" / tp);
    if (!present) bpf_program__set_autoload(prog, false);
  }

  int err = sensor__load(skel);
  if (err != 0) {
    throw SensorError(std::string("the kernel verifier rejected the eBPF sensor (") +
                      std::strerror(-err) +
                      "); eBPF needs CAP_BPF/CAP_SYS_ADMIN, ring buffers (Linux 5.8+) and "
                      "bpf_loop (Linux 5.17+)");
  }
  fill_filters(bpf_map__fd(skel->maps.file_filters), options.file_rules);

  bpf_object__for_each_program(prog, skel->obj) {
    HookStatus hook;
    std::string name = bpf_program__name(prog);
    hook.name = bpf_program__section_name(prog);
    hook.sees = describe_program(name);
    if (!bpf_program__autoload(prog)) {
      hook.detail =
          report.tracefs ? "tracepoint not present in this kernel" : "tracefs unavailable";
    } else if (bpf_link* link = bpf_program__attach(prog)) {
      impl->links.push_back(link);
      hook.attached = true;
    } else {
      hook.detail = std::string("attach failed: ") + std::strerror(errno);
    }
    if (!hook.attached && essential(name)) {
      throw SensorError("cannot attach " + hook.name + " (" + hook.detail +
                        "): raw tracepoints on sched_process_* are required");
    }
    if (!hook.attached) {
      std::string spot = hook.sees + ": " + hook.detail;
      if (hook.sees.find("module") != std::string::npos && !fs::exists("/proc/modules")) {
        spot += " (kernel built without loadable module support: no module can be loaded)";
      }
      // Enter and exit programs of one syscall share a blind spot.
      if (std::find(report.blind_spots.begin(), report.blind_spots.end(), spot) ==
          report.blind_spots.end()) {
        report.blind_spots.push_back(std::move(spot));
      }
    }
    report.hooks.push_back(std::move(hook));
  }
  report.blind_spots.push_back(
      "kprobes/fentry are not used: syscall tracepoints cover the same calls on every kernel");

  impl->ring =
      ring_buffer__new(bpf_map__fd(skel->maps.events), &Impl::on_record, impl.get(), nullptr);
  if (impl->ring == nullptr) throw SensorError("cannot map the sensor ring buffer");

  if (options.kernel_time_stats) {
    impl->run_time_stats = base::UniqueFd(bpf_enable_stats(BPF_STATS_RUN_TIME));
    if (!impl->run_time_stats) {
      spdlog::warn("cannot turn on the kernel's BPF run-time statistics: {}", std::strerror(errno));
    }
  }
  if (options.seed_from_proc) impl->pending_snapshot = snapshot_processes();
  auto sensor = std::unique_ptr<LiveSensor>(new LiveSensor(std::move(impl)));
  sensor->report_ = std::move(report);
  return sensor;
}

bool LiveSensor::poll(std::chrono::milliseconds timeout, const RecordCallback& deliver) {
  if (!impl_->pending_snapshot.empty()) {
    // The snapshot was taken after the hooks attached, so nothing falls between the two.
    for (const auto& record : impl_->pending_snapshot) deliver(RecordView(record));
    impl_->pending_snapshot.clear();
    impl_->pending_snapshot.shrink_to_fit();
  }
  impl_->deliver = &deliver;
  int n = ring_buffer__poll(impl_->ring, static_cast<int>(timeout.count()));
  // The sensor wakes us only for large batches; whatever arrived below that threshold is read
  // here, so the poll timeout bounds the latency.
  if (n >= 0) n = ring_buffer__consume(impl_->ring);
  impl_->deliver = nullptr;
  if (n < 0 && n != -EINTR)
    throw SensorError(std::string("ring buffer poll: ") + std::strerror(-n));
  return true;
}

SourceCounters LiveSensor::counters() const {
  SourceCounters out;
  std::vector<__u64> per_cpu(static_cast<size_t>(impl_->ncpus));
  int fd = bpf_map__fd(impl_->skel->maps.lost_map);
  for (__u32 cls = 0; cls < PAL_CLASS_COUNT; ++cls) {
    if (bpf_map_lookup_elem(fd, &cls, per_cpu.data()) != 0) continue;
    for (auto v : per_cpu) out.kernel_drops[cls] += v;
  }
  out.kernel_time_enabled = impl_->run_time_stats || kernel_bpf_stats_enabled();
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl_->skel->obj) {
    const int prog_fd = bpf_program__fd(prog);
    if (prog_fd < 0) continue;  // not loaded on this kernel
    ProgramRunStats& stats = out.programs.emplace_back();
    stats.name = bpf_program__name(prog);
    if (!out.kernel_time_enabled) continue;
    bpf_prog_info info{};
    __u32 size = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &size) == 0) {
      stats.runs = info.run_cnt;
      stats.run_time_ns = info.run_time_ns;
    }
  }
  return out;
}

void LiveSensor::set_file_rules(const PathRules& rules) {
  fill_filters(bpf_map__fd(impl_->skel->maps.file_filters), rules);
}

std::string CapabilityReport::to_text() const {
  std::string out = "palisade sensor capability report (kernel " + kernel_release + ")\n";
  out += "  BTF (CO-RE):  " + std::string(btf ? "yes" : "no") + "\n";
  out += "  tracefs:      " + tracefs_detail + "\n";
  out += "  BPF-LSM:      " + bpf_lsm + " (enforcement mechanism; the sensor only observes)\n";
  size_t attached = 0;
  for (const auto& h : hooks) attached += h.attached ? 1 : 0;
  out += "  hooks:        " + std::to_string(attached) + "/" + std::to_string(hooks.size()) +
         " attached\n";
  for (const auto& h : hooks) {
    if (!h.attached) out += "    not attached: " + h.name + " (" + h.detail + ")\n";
  }
  out += "  not seen:\n";
  for (const auto& b : blind_spots) out += "    - " + b + "\n";
  return out;
}

std::string CapabilityReport::to_json() const {
  nlohmann::json j;
  j["kernel_release"] = kernel_release;
  j["btf"] = btf;
  j["tracefs"] = tracefs_detail;
  j["bpf_lsm"] = bpf_lsm;
  j["hooks_total"] = hooks.size();
  size_t attached = 0;
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& h : hooks) {
    if (h.attached) {
      attached++;
    } else {
      missing.push_back({{"hook", h.name}, {"sees", h.sees}, {"why", h.detail}});
    }
  }
  j["hooks_attached"] = attached;
  j["hooks_missing"] = missing;
  j["blind_spots"] = blind_spots;
  return j.dump();
}

}  // namespace palisade::agent
