#include "palisade/exporters/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "palisade/base/atomic_file.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"

namespace palisade::exporters {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kHeader = 8;  // u32 length, u32 crc32
constexpr uint32_t kMaxRecord = 16U << 20;
constexpr uint64_t kSyncEvery = 256;

uint32_t crc_of(std::string_view payload) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size())));
}

bool read_exact(int fd, void* into, size_t size, uint64_t offset) {
  auto* at = static_cast<char*>(into);
  while (size > 0) {
    const ssize_t n = pread(fd, at, size, static_cast<off_t>(offset));
    if (n <= 0) return false;
    at += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {
  // Segments small enough that dropping or freeing one is a fraction of the whole.
  options_.segment_bytes =
      std::min(options_.segment_bytes, std::max<uint64_t>(options_.max_bytes / 8, 64));
  recover();
}

Spool::~Spool() {
  try {
    sync();
  } catch (const std::exception&) {
    // The next run re-sends from the last recorded position: duplicates, never losses.
  }
}

fs::path Spool::segment_path(uint64_t number) const {
  return options_.directory / (std::to_string(number) + ".seg");
}

// Reads records from `from` while they check out; returns where the readable part ends.
uint64_t Spool::scan(const Segment& segment, uint64_t from, uint64_t* records) {
  const base::UniqueFd fd(open(segment_path(segment.number).c_str(), O_RDONLY | O_CLOEXEC));
  *records = 0;
  if (!fd) return from;
  uint64_t at = from;
  std::string payload;
  for (;;) {
    std::array<uint32_t, 2> header{};
    if (!read_exact(fd.get(), header.data(), kHeader, at)) break;
    if (header[0] > kMaxRecord) break;
    payload.resize(header[0]);
    if (!read_exact(fd.get(), payload.data(), header[0], at + kHeader)) break;
    if (crc_of(payload) != header[1]) break;
    at += kHeader + header[0];
    (*records)++;
  }
  return at;
}

void Spool::recover() {
  std::error_code ec;
  fs::create_directories(options_.directory, ec);
  if (ec || chmod(options_.directory.c_str(), 0700) != 0) {
    throw EnvironmentError("spool " + options_.directory.string() +
                           ": cannot create it: " + (ec ? ec.message() : base::errno_text(errno)));
  }
  std::vector<uint64_t> numbers;
  for (const auto& entry : fs::directory_iterator(options_.directory)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.ends_with(".seg") &&
        std::all_of(name.begin(), name.end() - 4, [](char c) { return c >= '0' && c <= '9'; })) {
      numbers.push_back(std::stoull(name.substr(0, name.size() - 4)));
    }
  }
  std::sort(numbers.begin(), numbers.end());
  std::ifstream cursor(options_.directory / "cursor");
  if (!(cursor >> cursor_segment_ >> cursor_offset_)) {
    cursor_segment_ = numbers.empty() ? 1 : numbers.front();
    cursor_offset_ = 0;
  }
  for (const uint64_t number : numbers) {
    if (number < cursor_segment_) {
      fs::remove(segment_path(number), ec);  // acknowledged before the last run ended
      continue;
    }
    Segment segment{number, fs::file_size(segment_path(number), ec), 0};
    const uint64_t from = number == cursor_segment_ ? cursor_offset_ : 0;
    uint64_t records = 0;
    const uint64_t readable = scan(segment, from, &records);
    if (readable < segment.size) {
      stats_.corrupt++;  // a damaged or half-written tail: cut, so appends stay readable
      if (truncate(segment_path(number).c_str(), static_cast<off_t>(readable)) != 0) {
        throw EnvironmentError("spool " + segment_path(number).string() +
                               ": cannot cut its damaged tail: " + base::errno_text(errno));
      }
      segment.size = readable;
    }
    segment.records = records;
    stats_.entries += records;
    stats_.bytes += segment.size;
    segments_.push_back(segment);
  }
  if (segments_.empty() || segments_.front().number != cursor_segment_) {
    cursor_offset_ = 0;  // the cursor's segment is gone: start at the oldest there is
    if (!segments_.empty()) cursor_segment_ = segments_.front().number;
  }
  read_segment_ = cursor_segment_;
  read_offset_ = cursor_offset_;
  open_tail();
}

void Spool::open_tail() {
  if (segments_.empty()) segments_.push_back({cursor_segment_, 0, 0});
  const fs::path path = segment_path(segments_.back().number);
  tail_ = base::UniqueFd(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!tail_) {
    throw EnvironmentError("spool " + path.string() + ": cannot open: " + base::errno_text(errno));
  }
}

bool Spool::append(std::string_view payload) {
  const uint64_t size = kHeader + payload.size();
  if (payload.size() > kMaxRecord) {
    stats_.dropped_full++;
    return false;
  }
  if (options_.when_full == WhenFull::kDropOldest) {
    while (stats_.bytes + size > options_.max_bytes && segments_.size() > 1) drop_oldest_segment();
  }
  if (stats_.bytes + size > options_.max_bytes) {
    stats_.dropped_full++;
    return false;
  }
  if (segments_.back().size > 0 && segments_.back().size + size > options_.segment_bytes) {
    segments_.push_back({segments_.back().number + 1, 0, 0});
    open_tail();
  }
  const std::array<uint32_t, 2> header = {static_cast<uint32_t>(payload.size()), crc_of(payload)};
  std::string record(reinterpret_cast<const char*>(header.data()), kHeader);
  record.append(payload);
  // One write: a crash leaves the record whole or a tail the next open cuts.
  if (write(tail_.get(), record.data(), record.size()) != static_cast<ssize_t>(record.size())) {
    throw EnvironmentError("spool " + segment_path(segments_.back().number).string() +
                           ": cannot write: " + base::errno_text(errno));
  }
  segments_.back().size += size;
  segments_.back().records++;
  stats_.bytes += size;
  stats_.entries++;
  stats_.appended++;
  return true;
}

std::optional<Spool::Entry> Spool::next() {
  for (;;) {
    auto segment = std::find_if(segments_.begin(), segments_.end(),
                                [&](const Segment& s) { return s.number == read_segment_; });
    if (segment == segments_.end()) return std::nullopt;
    if (read_offset_ + kHeader > segment->size) {
      if (std::next(segment) == segments_.end()) return std::nullopt;  // the tail: all read
      read_segment_ = std::next(segment)->number;
      read_offset_ = 0;
      continue;
    }
    if (reader_segment_ != read_segment_) {
      reader_ = base::UniqueFd(open(segment_path(read_segment_).c_str(), O_RDONLY | O_CLOEXEC));
      reader_segment_ = read_segment_;
    }
    std::array<uint32_t, 2> header{};
    Entry entry{next_id_, {}};
    bool ok = reader_ && read_exact(reader_.get(), header.data(), kHeader, read_offset_) &&
              header[0] <= kMaxRecord;
    if (ok) {
      entry.payload.resize(header[0]);
      ok = read_exact(reader_.get(), entry.payload.data(), header[0], read_offset_ + kHeader) &&
           crc_of(entry.payload) == header[1];
    }
    if (!ok) {
      // Written by this run and checked at open: damage now is the disk's. The rest of this
      // segment cannot be trusted; count it and go on with the next.
      stats_.corrupt++;
      read_offset_ = segment->size;
      continue;
    }
    read_offset_ += kHeader + header[0];
    handed_out_.push_back({next_id_, read_segment_, read_offset_});
    next_id_++;
    return entry;
  }
}

void Spool::acknowledge(uint64_t id) {
  auto it = std::lower_bound(handed_out_.begin(), handed_out_.end(), id,
                             [](const HandedOut& h, uint64_t wanted) { return h.id < wanted; });
  if (it == handed_out_.end() || it->id != id) return;  // rewound or dropped meanwhile
  it->acknowledged = true;
  forget_acknowledged();
}

void Spool::forget_acknowledged() {
  while (!handed_out_.empty() && handed_out_.front().acknowledged) {
    cursor_segment_ = handed_out_.front().segment;
    cursor_offset_ = handed_out_.front().end;
    handed_out_.pop_front();
    stats_.entries--;
    stats_.acknowledged++;
    unsynced_++;
  }
  // Segments read and acknowledged to their end go (the tail stays: it is being written).
  while (segments_.size() > 1 && (segments_.front().number < cursor_segment_ ||
                                  (segments_.front().number == cursor_segment_ &&
                                   cursor_offset_ >= segments_.front().size))) {
    std::error_code ec;
    fs::remove(segment_path(segments_.front().number), ec);
    stats_.bytes -= segments_.front().size;
    segments_.pop_front();
    if (cursor_segment_ < segments_.front().number) {
      cursor_segment_ = segments_.front().number;
      cursor_offset_ = 0;
    }
    if (read_segment_ < segments_.front().number) {
      read_segment_ = segments_.front().number;
      read_offset_ = 0;
    }
  }
  // Everything acknowledged: the tail starts over, so that what was sent stops counting
  // against the spool's size.
  Segment& tail = segments_.back();
  if (segments_.size() == 1 && handed_out_.empty() && tail.size > 0 &&
      cursor_segment_ == tail.number && cursor_offset_ >= tail.size) {
    std::error_code ec;
    fs::remove(segment_path(tail.number), ec);
    stats_.bytes -= tail.size;
    const uint64_t number = tail.number + 1;
    segments_.back() = {number, 0, 0};
    cursor_segment_ = read_segment_ = number;
    cursor_offset_ = read_offset_ = 0;
    open_tail();
    write_cursor();
  }
  if (unsynced_ >= kSyncEvery) write_cursor();
}

void Spool::drop_oldest_segment() {
  const Segment oldest = segments_.front();
  uint64_t remaining = 0;
  scan(oldest, oldest.number == cursor_segment_ ? cursor_offset_ : 0, &remaining);
  std::error_code ec;
  fs::remove(segment_path(oldest.number), ec);
  segments_.pop_front();
  stats_.entries -= std::min(stats_.entries, remaining);
  stats_.dropped_full += remaining;
  stats_.bytes -= oldest.size;
  cursor_segment_ = segments_.front().number;
  cursor_offset_ = 0;
  while (!handed_out_.empty() && handed_out_.front().segment == oldest.number) {
    handed_out_.pop_front();
  }
  if (read_segment_ == oldest.number) {
    read_segment_ = cursor_segment_;
    read_offset_ = 0;
  }
  write_cursor();
}

void Spool::rewind() {
  handed_out_.clear();
  read_segment_ = cursor_segment_;
  read_offset_ = cursor_offset_;
}

void Spool::sync() {
  if (unsynced_ > 0) write_cursor();
}

void Spool::write_cursor() {
  std::ostringstream text;
  text << cursor_segment_ << ' ' << cursor_offset_ << '\n';
  base::write_file_atomically((options_.directory / "cursor").string(), text.str(), 0600);
  unsynced_ = 0;
}

}  // namespace palisade::exporters
