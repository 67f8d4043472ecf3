// Trajectory store: per-field arenas (memory owned by the Python side: numpy arrays or
// memory-mapped files) plus a trajectory index table. Pure C++, no Python types.
//
// Every trajectory of T transitions takes T+1 consecutive rows in every field's arena:
// observation-like fields (obs, rl2s, time_idxs) fill all T+1 rows, transition fields
// (actions, rews, dones) the first T. One shared offset per trajectory keeps the index
// table small and lets Python hand out zero-copy views of a stored trajectory.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "replay/rng.h"

namespace amago_fast {

struct TrajRec {
  int64_t id;      // global, increasing in insertion order
  int64_t offset;  // first arena row
  int64_t length;  // T transitions (T+1 rows)
};

// One partition: FIFO (a ring of rows, oldest trajectories evicted) or protected
// (append-only, never evicted, an error when full).
struct Partition {
  bool ring = true;
  int64_t capacity = 0;         // max stored transitions
  int64_t rows = 0;             // arena rows (>= capacity + 1)
  std::vector<uint8_t*> arena;  // one base pointer per field, rows * row_bytes[f] bytes
  std::deque<TrajRec> trajs;    // oldest first
  int64_t head = 0;             // next free row
  int64_t transitions = 0;      // sum of lengths

  const TrajRec* find(int64_t id) const;
};

enum class Padding { kNone = 0, kBoth = 1, kLeft = 2, kRight = 3 };

// Where a drawn window lies (raw start before clipping at 0, as in DESIGN.md).
struct WindowItem {
  const Partition* part;
  int64_t id, offset, length, raw_start;
};

// Where a stored trajectory lies: partition (0 = fifo, 1 = protected), first arena row, T.
struct TrajLocation {
  int partition;
  int64_t offset, length;
};

// Caller-owned outputs of one batch of B windows of length L (sizes checked by the caller):
// fields[f] is (B, L+1 or L, row) bytes, mask (B, L+1), ids and starts (B,).
struct WindowOuts {
  std::vector<uint8_t*> fields;
  bool* mask = nullptr;
  int64_t* ids = nullptr;
  int64_t* starts = nullptr;  // clipped at 0
};

class Store {
 public:
  Store(std::vector<int64_t> row_bytes, std::vector<bool> obs_like, int64_t capacity, int64_t rows,
        int64_t protected_capacity, int64_t protected_rows, uint64_t seed);

  // Bind arena memory for partition p (0 = fifo, 1 = protected): one pointer per field.
  void attach(int p, std::vector<uint8_t*> bases);

  // Copy one trajectory in (src[f] holds T+1 or T rows); evicts whole oldest FIFO
  // trajectories as needed. Returns the new id; evicted ids are appended to *evicted.
  int64_t add(const std::vector<const uint8_t*>& src, int64_t T, bool is_protected,
              std::vector<int64_t>* evicted);

  // Draws (calling thread only): B trajectories, uniformly or proportionally to length.
  std::vector<const TrajRec*> draw_trajs(int64_t B, bool by_length);
  int64_t draw_start(int64_t n, int64_t L, Padding mode);
  uint64_t next_u64() { return rng_.next(); }
  // B windows: all trajectories first, then all starts (the reference's draw order).
  std::vector<WindowItem> draw_windows(int64_t B, int64_t L, Padding mode, bool by_length);

  // Resolve an id (throws std::out_of_range if not stored).
  WindowItem item(int64_t id, int64_t raw_start) const;
  TrajLocation locate(int64_t id) const;

  // Cut the windows into preallocated outputs. Touches no Python object.
  void gather(const std::vector<WindowItem>& items, int64_t L, const WindowOuts& outs,
              int num_threads) const;

  int num_fields() const { return static_cast<int>(row_bytes_.size()); }
  int64_t row_bytes(int f) const { return row_bytes_[f]; }
  const std::vector<int64_t>& row_bytes() const { return row_bytes_; }
  const std::vector<bool>& obs_like() const { return obs_like_; }
  int64_t num_trajectories() const {
    return static_cast<int64_t>(part_[0].trajs.size() + part_[1].trajs.size());
  }
  int64_t num_timesteps() const { return part_[0].transitions + part_[1].transitions; }
  const Partition& partition(int p) const { return part_[p]; }

  // Persistence hooks: the whole index table and RNG state.
  std::array<uint64_t, 4> rng_state() const { return rng_.state(); }
  void set_rng_state(const std::array<uint64_t, 4>& s) { rng_.set_state(s); }
  int64_t next_id() const { return next_id_; }
  void restore(int p, std::vector<TrajRec> trajs, int64_t head, int64_t next_id);

 private:
  void evict_for(Partition& P, int64_t T, int64_t* offset, std::vector<int64_t>* evicted);
  void rebuild_cumsum();

  std::vector<int64_t> row_bytes_;
  std::vector<bool> obs_like_;
  Partition part_[2];
  Xoshiro256 rng_;
  int64_t next_id_ = 0;
  std::vector<int64_t> cumsum_;  // prefix lengths over (fifo, protected), for by_length
  bool cumsum_dirty_ = true;
};

Padding parse_padding(const std::string& s);

// One window to cut from any memory (the store's arenas or caller-owned arrays):
// src[f] is row 0 of field f of a trajectory of `length` transitions whose rows are
// row_bytes[f] apart (obs-like fields length+1 rows, the others length).
struct WindowSrc {
  const uint8_t* const* src;  // num_fields pointers
  int64_t id, length, raw_start;
};

// Caller-owned trajectories to cut windows from (e.g. relabeled copies): B * num_fields
// row-0 pointers, trajectory-major, and one id and length (transitions) per trajectory.
struct TrajSources {
  std::vector<const uint8_t*> ptrs;
  std::vector<int64_t> ids, lengths;
};

// The window cut shared by the store and the relabeled path: copies each window's rows
// into the preallocated outputs, zeroes the padding, writes mask, ids and starts. Threads
// split the items; touches no Python object, so callers run it with the GIL released.
void gather_windows(const std::vector<WindowSrc>& items, int64_t L,
                    const std::vector<int64_t>& row_bytes, const std::vector<bool>& obs_like,
                    const WindowOuts& outs, int num_threads);

}  // namespace amago_fast
