// The store behind one mutex, as the Python binding uses it: every call holds the lock for
// its whole duration, so a writer thread and a sampler thread can share a buffer and a
// sample never sees a trajectory evicted halfway through its copy. Pure C++, no Python
// types: the binding releases the GIL before calling in, so the lock is never held with
// the GIL (no lock-order deadlock between the two).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "replay/snapshot.h"
#include "replay/store.h"

namespace amago_fast {

// A partition's index table: ids, arena offsets and lengths, oldest first; the next free row.
struct PartitionIndex {
  std::vector<int64_t> ids, offsets, lengths;
  int64_t head = 0;
};

class LockedStore {
 public:
  LockedStore(std::vector<int64_t> row_bytes, std::vector<bool> obs_like, int64_t capacity,
              int64_t rows, int64_t protected_capacity, int64_t protected_rows, uint64_t seed)
      : store_(std::move(row_bytes), std::move(obs_like), capacity, rows, protected_capacity,
               protected_rows, seed) {}

  // Fixed at construction: readable without the lock.
  int num_fields() const { return store_.num_fields(); }
  int64_t row_bytes(int f) const { return store_.row_bytes(f); }
  const std::vector<int64_t>& row_bytes() const { return store_.row_bytes(); }
  const std::vector<bool>& obs_like() const { return store_.obs_like(); }
  int64_t arena_rows(int p) const { return store_.partition(p).rows; }

  void attach(int p, std::vector<uint8_t*> bases);
  int64_t add(const std::vector<const uint8_t*>& src, int64_t T, bool is_protected,
              std::vector<int64_t>* evicted);

  // Draw B windows (trajectories, then starts) and gather them.
  void sample(int64_t B, int64_t L, Padding mode, bool by_length, const WindowOuts& outs,
              int num_threads);
  // The draws of sample() alone: traj ids and raw starts, (B,) each.
  void draw(int64_t B, int64_t L, Padding mode, bool by_length, std::vector<int64_t>* ids,
            std::vector<int64_t>* raw_starts);
  std::vector<int64_t> draw_trajs(int64_t B, bool by_length);
  std::vector<int64_t> draw_starts(std::vector<int64_t> lengths, int64_t L, Padding mode);
  uint64_t next_u64();

  // Gather given windows of stored trajectories (no draws).
  void gather(const std::vector<int64_t>& ids, const std::vector<int64_t>& raw_starts, int64_t L,
              const WindowOuts& outs, int num_threads);
  // Cut one window per caller-owned trajectory; raw starts are drawn from the store's
  // generator (draw_starts' rules and order) when raw_starts is empty. Under the lock like
  // sample(): unrelabeled fields are often views of the arenas, so a concurrent add() must
  // not overwrite rows in the middle of the copy.
  void cut(const TrajSources& trajs, std::vector<int64_t> raw_starts, int64_t L, Padding mode,
           const WindowOuts& outs, int num_threads);

  TrajLocation locate(int64_t id);
  std::vector<TrajLocation> locate(const std::vector<int64_t>& ids);
  PartitionIndex index(int p);
  Snapshot snapshot(const std::vector<std::vector<int>>& fds, int64_t data_offset);
  void restore(int p, const std::vector<TrajRec>& trajs, int64_t head, int64_t next_id);

  int64_t num_trajectories();
  int64_t num_timesteps();
  int64_t next_id();
  std::array<uint64_t, 4> rng_state();
  void set_rng_state(const std::array<uint64_t, 4>& s);

 private:
  using Lock = std::lock_guard<std::mutex>;
  Store store_;
  std::mutex mu_;
};

}  // namespace amago_fast
