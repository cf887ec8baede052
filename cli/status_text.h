// `noloco status --node`: the live snapshot of GET /status (cli/status_model.h, docs/status.md)
// as lines for a person. Pure: the snapshot in, text out; ages are taken against the snapshot's
// own `now_unix_ms`, so the reader's clock plays no part.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace noloco::cli {

// kCorrupt when `snapshot` lacks a field the text needs or has it with another type.
Result<std::string> live_status_text(const nlohmann::json& snapshot);

// "12 s ago", "3 min ago", "2 h ago" for an age in milliseconds; "just now" under a second.
std::string age_text(int64_t age_ms);

}  // namespace noloco::cli
