// The enforcement state that outlives the agent: maps and links pinned on bpffs under a
// directory versioned by the ABI, so that a restarted (or upgraded, same ABI) agent adopts them
// and enforcement never lapses.
#pragma once

#include <bpf/bpf.h>

#include <string>
#include <vector>

namespace palisade::agent {

// <pin_root>/enforce-v<ABI>.
std::string pin_directory(const std::string& pin_root);

// The labels of the permission wardens of the agent pinning under pin_dir (warden_link.h).
std::string exec_warden_label(const std::string& pin_dir);
std::string read_only_warden_label(const std::string& pin_dir);

// Mounts bpffs at pin_root's parent when it is not; throws when that fails.
void ensure_bpffs(const std::string& pin_root);

// Every key of a BPF hash map, taken before any is deleted (deleting while walking restarts it).
template <typename Key>
std::vector<Key> map_keys(int fd) {
  std::vector<Key> keys;
  Key key{};
  Key next{};
  const Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

}  // namespace palisade::agent
