// JSON shapes of the inventory's parts, shared by to_json(GuestInventory) and the before/after of
// changes. File records take the node agent's shape (palisade::fim::to_json(fim::FileRecord)).
#pragma once

#include <nlohmann/json.hpp>

#include "palisade/fim/fim.h"
#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor::inspect {

nlohmann::json json_of(const GuestUser& user);
nlohmann::json json_of(const GuestGroup& group);
nlohmann::json json_of(const SshKey& key);
nlohmann::json json_of(const CronEntry& entry);
nlohmann::json json_of(const SystemdUnit& unit);
nlohmann::json json_of(const Package& package);
nlohmann::json json_of(const fim::FileRecord& record);

fim::FileRecord file_record_from_json(const nlohmann::json& json);

}  // namespace palisade::hypervisor::inspect
