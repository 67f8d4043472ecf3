// Point-in-time snapshot of a store (ReplayBuffer.save): the index tables, the generator
// state and every field's live rows written to files. Pure C++, no Python types.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "replay/store.h"

namespace amago_fast {

// One partition in a snapshot: its trajectories oldest first, offsets compacted (the rows
// lie back to back in the files), and the number of rows written per field.
struct PartitionSnapshot {
  std::vector<int64_t> ids, offsets, lengths;
  int64_t rows = 0;
};

struct Snapshot {
  PartitionSnapshot part[2];
  std::array<uint64_t, 4> rng_state{};
  int64_t next_id = 0;
  // errno of the first failed write and where it happened; 0 (and -1, -1) on success.
  // After a failure the files are incomplete and must be discarded.
  int error = 0, error_partition = -1, error_field = -1;
};

// Writes field f of partition p to fds[p][f] from byte data_offset with pwrite (one call
// per run of adjacent trajectories). fds must hold 2 x num_fields descriptors. The caller
// holds whatever lock keeps the store still.
Snapshot write_snapshot(const Store& store, const std::vector<std::vector<int>>& fds,
                        int64_t data_offset);

}  // namespace amago_fast
