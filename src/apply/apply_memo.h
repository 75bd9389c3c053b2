// Internal: apply_rope's per-thread memo of validated calls (src/apply/apply.cc), seen from the
// tests.
#pragma once

#include <cstdint>

namespace ropekit::detail {

// How many apply_rope calls of this thread the memo has served (each ran only the per-call
// checks), since the thread started.
std::uint64_t apply_memo_hits();

}  // namespace ropekit::detail
