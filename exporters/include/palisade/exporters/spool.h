// A bounded first-in-first-out log on disk for one exporter: what its destination has not
// acknowledged yet. Entries are appended at the tail and handed out in order; an entry leaves
// the spool only once acknowledged, so a crash, a restart or a destination that is down for a
// while loses nothing the spool accepted (handing out again after a restart may repeat an entry
// whose acknowledgement was not yet recorded: destinations deduplicate by the event's uid).
//
// Layout: DIR/<n>.seg segment files of records [u32 length][u32 crc32][payload], and DIR/cursor
// (segment, offset of the first unacknowledged record), rewritten atomically. A record whose
// CRC or length does not check out ends its segment's readable part: counted, never trusted.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "palisade/base/unique_fd.h"

namespace palisade::exporters {

enum class WhenFull {
  kDropNewest,  // refuse what arrives (the oldest unsent events are kept)
  kDropOldest,  // make room by dropping the oldest segment (the newest events are kept)
};

struct SpoolOptions {
  std::filesystem::path directory;
  uint64_t max_bytes = 256ULL << 20;
  WhenFull when_full = WhenFull::kDropNewest;
  uint64_t segment_bytes = 4ULL << 20;
};

struct SpoolStats {
  uint64_t entries = 0;  // held: not acknowledged
  uint64_t bytes = 0;    // on disk
  uint64_t appended = 0;
  uint64_t acknowledged = 0;
  uint64_t dropped_full = 0;  // refused, or dropped to make room (by when_full)
  uint64_t corrupt = 0;       // records found damaged when the spool was opened
};

class Spool {
 public:
  // Opens (or creates, mode 0700) the directory and recovers what a previous run left.
  // Throws palisade::Error naming the directory when it cannot.
  explicit Spool(SpoolOptions options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // False when the spool is full and refuses it (kDropNewest); counted.
  bool append(std::string_view payload);
  struct Entry {
    uint64_t id;  // increasing; acknowledge with it
    std::string payload;
  };
  // The oldest entry not handed out yet, in append order.
  std::optional<Entry> next();
  // The destination has it. Acknowledgements may come out of order; the spool forgets an
  // entry once it and everything before it are acknowledged.
  void acknowledge(uint64_t id);
  // Everything handed out but not acknowledged is handed out again (after a reconnect).
  void rewind();
  // Records the acknowledged position now (done by itself every few hundred acknowledgements
  // and when the spool closes).
  void sync();
  bool empty() const { return stats_.entries == 0; }
  const SpoolStats& stats() const { return stats_; }

 private:
  struct Segment {
    uint64_t number;
    uint64_t size;     // bytes written
    uint64_t records;  // complete records in it
  };
  struct HandedOut {
    uint64_t id;
    uint64_t segment;
    uint64_t end;  // offset after the record
    bool acknowledged = false;
  };
  std::filesystem::path segment_path(uint64_t number) const;
  void recover();
  uint64_t scan(const Segment& segment, uint64_t from, uint64_t* records);
  void open_tail();
  void drop_oldest_segment();
  void forget_acknowledged();
  void write_cursor();

  SpoolOptions options_;
  std::deque<Segment> segments_;  // oldest first; the last is the tail being appended to
  base::UniqueFd tail_;
  // Read position: the next record to hand out.
  uint64_t read_segment_ = 0;
  uint64_t read_offset_ = 0;
  base::UniqueFd reader_;
  uint64_t reader_segment_ = UINT64_MAX;
  // Acknowledged position: everything before it is gone.
  uint64_t cursor_segment_ = 0;
  uint64_t cursor_offset_ = 0;
  std::deque<HandedOut> handed_out_;
  uint64_t next_id_ = 1;
  uint64_t unsynced_ = 0;
  SpoolStats stats_;
};

}  // namespace palisade::exporters
