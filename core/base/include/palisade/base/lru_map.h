// A map with a hard size limit that forgets its least recently used entries: the agent's caches
// (executable hashes, cgroup paths) must stay bounded whatever the host does. Not thread-safe:
// callers lock as they need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace palisade::base {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruMap {
 public:
  explicit LruMap(size_t capacity) : capacity_(capacity) {}

  // The value, now the most recently used; null when absent.
  const Value* find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // Inserts or replaces; evicts beyond the capacity (counted in evictions()).
  void put(const Key& key, Value value) {
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    while (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
      evictions_++;
    }
  }

  // Removes every entry for which pred(key, value) holds; returns how many. Not counted as
  // evictions: those measure pressure on the capacity, this is invalidation.
  template <typename Pred>
  size_t erase_if(Pred pred) {
    size_t erased = 0;
    for (auto it = order_.begin(); it != order_.end();) {
      if (pred(it->first, it->second)) {
        index_.erase(it->first);
        it = order_.erase(it);
        erased++;
      } else {
        ++it;
      }
    }
    return erased;
  }

  // Keeps the eviction count: it is a lifetime counter.
  void clear() {
    index_.clear();
    order_.clear();
  }

  size_t size() const { return index_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  using Order = std::list<std::pair<Key, Value>>;
  size_t capacity_;
  Order order_;  // most recently used first
  std::unordered_map<Key, typename Order::iterator, Hash> index_;
  uint64_t evictions_ = 0;
};

}  // namespace palisade::base
