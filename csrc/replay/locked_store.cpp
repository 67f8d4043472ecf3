// See locked_store.h: each method is one hold of the lock around the Store call(s).
#include "replay/locked_store.h"

namespace amago_fast {

void LockedStore::attach(int p, std::vector<uint8_t*> bases) {
  Lock lk(mu_);
  store_.attach(p, std::move(bases));
}

int64_t LockedStore::add(const std::vector<const uint8_t*>& src, int64_t T, bool is_protected,
                         std::vector<int64_t>* evicted) {
  Lock lk(mu_);
  return store_.add(src, T, is_protected, evicted);
}

void LockedStore::sample(int64_t B, int64_t L, Padding mode, bool by_length, const WindowOuts& outs,
                         int num_threads) {
  Lock lk(mu_);
  store_.gather(store_.draw_windows(B, L, mode, by_length), L, outs, num_threads);
}

void LockedStore::draw(int64_t B, int64_t L, Padding mode, bool by_length,
                       std::vector<int64_t>* ids, std::vector<int64_t>* raw_starts) {
  Lock lk(mu_);
  for (const WindowItem& it : store_.draw_windows(B, L, mode, by_length)) {
    ids->push_back(it.id);
    raw_starts->push_back(it.raw_start);
  }
}

std::vector<int64_t> LockedStore::draw_trajs(int64_t B, bool by_length) {
  std::vector<int64_t> ids;
  Lock lk(mu_);
  for (const TrajRec* r : store_.draw_trajs(B, by_length)) ids.push_back(r->id);
  return ids;
}

std::vector<int64_t> LockedStore::draw_starts(std::vector<int64_t> lengths, int64_t L,
                                              Padding mode) {
  Lock lk(mu_);
  for (auto& n : lengths) n = store_.draw_start(n, L, mode);
  return lengths;
}

uint64_t LockedStore::next_u64() {
  Lock lk(mu_);
  return store_.next_u64();
}

void LockedStore::gather(const std::vector<int64_t>& ids, const std::vector<int64_t>& raw_starts,
                         int64_t L, const WindowOuts& outs, int num_threads) {
  Lock lk(mu_);
  std::vector<WindowItem> items;
  items.reserve(ids.size());
  for (size_t b = 0; b < ids.size(); ++b) items.push_back(store_.item(ids[b], raw_starts[b]));
  store_.gather(items, L, outs, num_threads);
}

void LockedStore::cut(const TrajSources& trajs, std::vector<int64_t> raw_starts, int64_t L,
                      Padding mode, const WindowOuts& outs, int num_threads) {
  const size_t B = trajs.lengths.size(), F = static_cast<size_t>(store_.num_fields());
  std::vector<WindowSrc> srcs(B);
  Lock lk(mu_);
  if (raw_starts.empty()) {
    raw_starts.resize(B);
    for (size_t b = 0; b < B; ++b) raw_starts[b] = store_.draw_start(trajs.lengths[b], L, mode);
  }
  for (size_t b = 0; b < B; ++b)
    srcs[b] = {trajs.ptrs.data() + b * F, trajs.ids[b], trajs.lengths[b], raw_starts[b]};
  gather_windows(srcs, L, store_.row_bytes(), store_.obs_like(), outs, num_threads);
}

TrajLocation LockedStore::locate(int64_t id) {
  Lock lk(mu_);
  return store_.locate(id);
}

std::vector<TrajLocation> LockedStore::locate(const std::vector<int64_t>& ids) {
  std::vector<TrajLocation> out;
  out.reserve(ids.size());
  Lock lk(mu_);
  for (int64_t id : ids) out.push_back(store_.locate(id));
  return out;
}

PartitionIndex LockedStore::index(int p) {
  PartitionIndex out;
  Lock lk(mu_);
  const Partition& P = store_.partition(p);
  for (const auto& r : P.trajs) {
    out.ids.push_back(r.id);
    out.offsets.push_back(r.offset);
    out.lengths.push_back(r.length);
  }
  out.head = P.head;
  return out;
}

Snapshot LockedStore::snapshot(const std::vector<std::vector<int>>& fds, int64_t data_offset) {
  Lock lk(mu_);
  return write_snapshot(store_, fds, data_offset);
}

void LockedStore::restore(int p, const std::vector<TrajRec>& trajs, int64_t head, int64_t next_id) {
  Lock lk(mu_);
  store_.restore(p, trajs, head, next_id);
}

int64_t LockedStore::num_trajectories() {
  Lock lk(mu_);
  return store_.num_trajectories();
}

int64_t LockedStore::num_timesteps() {
  Lock lk(mu_);
  return store_.num_timesteps();
}

int64_t LockedStore::next_id() {
  Lock lk(mu_);
  return store_.next_id();
}

std::array<uint64_t, 4> LockedStore::rng_state() {
  Lock lk(mu_);
  return store_.rng_state();
}

void LockedStore::set_rng_state(const std::array<uint64_t, 4>& s) {
  Lock lk(mu_);
  store_.set_rng_state(s);
}

}  // namespace amago_fast
