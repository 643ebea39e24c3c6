// authorized_keys files: which keys open which account, with the fingerprint ssh-keygen -l shows
// ("SHA256:" and the unpadded base64 of the SHA-256 of the key blob).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor::inspect {

// The keys of one authorized_keys file; a line that is not a key (bad base64, no type) is
// counted in malformed.
std::vector<SshKey> parse_authorized_keys(std::string_view text, const std::string& user,
                                          const std::string& file, size_t& malformed);

// "SHA256:..." for a base64 key blob; empty when the text is not base64.
std::string ssh_fingerprint(std::string_view base64_blob);

}  // namespace palisade::hypervisor::inspect
