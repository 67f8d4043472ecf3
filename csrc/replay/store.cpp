// Trajectory store: insertion, FIFO eviction, lookups and random draws.
// The window gather lives in gather.cpp.
#include "replay/store.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace amago_fast {

Padding parse_padding(const std::string& s) {
  if (s == "none") return Padding::kNone;
  if (s == "both") return Padding::kBoth;
  if (s == "left") return Padding::kLeft;
  if (s == "right") return Padding::kRight;
  throw std::invalid_argument("padded_sampling must be one of none/both/left/right, got '" + s +
                              "'");
}

const TrajRec* Partition::find(int64_t id) const {
  auto it = std::lower_bound(trajs.begin(), trajs.end(), id,
                             [](const TrajRec& r, int64_t v) { return r.id < v; });
  return (it != trajs.end() && it->id == id) ? &*it : nullptr;
}

Store::Store(std::vector<int64_t> row_bytes, std::vector<bool> obs_like, int64_t capacity,
             int64_t rows, int64_t protected_capacity, int64_t protected_rows, uint64_t seed)
    : row_bytes_(std::move(row_bytes)), obs_like_(std::move(obs_like)), rng_(seed) {
  if (row_bytes_.size() != obs_like_.size() || row_bytes_.empty())
    throw std::invalid_argument("row_bytes and obs_like must be non-empty and equally long");
  for (auto rb : row_bytes_)
    if (rb <= 0) throw std::invalid_argument("every field needs a positive row size");
  // rows - 1 (not capacity + 1): no overflow whatever the caller passes
  if (capacity < 1 || rows < 2 || capacity > rows - 1)
    throw std::invalid_argument("capacity must be >= 1 and rows >= capacity + 1");
  if (protected_capacity < 0 ||
      (protected_capacity > 0 && (protected_rows < 2 || protected_capacity > protected_rows - 1)))
    throw std::invalid_argument("protected_rows must be >= protected_capacity + 1");
  part_[0].ring = true;
  part_[0].capacity = capacity;
  part_[0].rows = rows;
  part_[1].ring = false;
  part_[1].capacity = protected_capacity;
  part_[1].rows = protected_capacity > 0 ? protected_rows : 0;
}

void Store::attach(int p, std::vector<uint8_t*> bases) {
  if (p != 0 && p != 1) throw std::invalid_argument("partition must be 0 or 1");
  if (bases.size() != row_bytes_.size())
    throw std::invalid_argument("attach: one arena per field is required");
  part_[p].arena = std::move(bases);
}

void Store::evict_for(Partition& P, int64_t T, int64_t* offset, std::vector<int64_t>* evicted) {
  const int64_t need = T + 1;
  if (!P.ring) {  // protected: append only
    if (P.transitions + T > P.capacity || P.head + need > P.rows)
      throw std::length_error(
          "protected partition is full (protected_capacity=" + std::to_string(P.capacity) + ")");
    *offset = P.head;
    return;
  }
  if (T > P.capacity)
    throw std::invalid_argument("trajectory of " + std::to_string(T) +
                                " transitions exceeds capacity " + std::to_string(P.capacity));
  if (P.trajs.empty()) P.head = 0;
  // A trajectory never wraps (views stay zero-copy): if it does not fit before the end,
  // it goes to row 0 and the tail is skipped.
  const bool wrap = P.head + need > P.rows;
  const int64_t off = wrap ? 0 : P.head;
  // In ring order the oldest trajectories come right after head, so everything the new
  // rows overlap is a prefix of the deque. Unroll offsets so "after head" is monotone.
  const int64_t need_end = wrap ? P.rows + need : P.head + need;
  while (!P.trajs.empty()) {
    const TrajRec& f = P.trajs.front();
    const int64_t o = f.offset >= P.head ? f.offset : f.offset + P.rows;
    if (o >= need_end && P.transitions + T <= P.capacity) break;
    if (evicted) evicted->push_back(f.id);
    P.transitions -= f.length;
    P.trajs.pop_front();
  }
  *offset = off;
}

int64_t Store::add(const std::vector<const uint8_t*>& src, int64_t T, bool is_protected,
                   std::vector<int64_t>* evicted) {
  if (T < 1) throw std::invalid_argument("a trajectory needs at least one transition");
  if (src.size() != row_bytes_.size())
    throw std::invalid_argument("add: one source array per field is required");
  Partition& P = part_[is_protected ? 1 : 0];
  if (P.arena.size() != row_bytes_.size())
    throw std::logic_error("add: arena memory is not attached");
  int64_t off = 0;
  evict_for(P, T, &off, evicted);
  for (size_t f = 0; f < row_bytes_.size(); ++f) {
    const int64_t rb = row_bytes_[f];
    uint8_t* dst = P.arena[f] + off * rb;
    const int64_t n = obs_like_[f] ? T + 1 : T;
    std::memcpy(dst, src[f], static_cast<size_t>(n * rb));
    // The unused last row of a transition field is zeroed so snapshots are deterministic.
    if (!obs_like_[f]) std::memset(dst + T * rb, 0, static_cast<size_t>(rb));
  }
  const int64_t id = next_id_++;
  P.trajs.push_back({id, off, T});
  P.transitions += T;
  P.head = off + T + 1;
  cumsum_dirty_ = true;
  return id;
}

void Store::rebuild_cumsum() {
  cumsum_.clear();
  int64_t acc = 0;
  for (int p = 0; p < 2; ++p)
    for (const auto& r : part_[p].trajs) cumsum_.push_back(acc += r.length);
  cumsum_dirty_ = false;
}

std::vector<const TrajRec*> Store::draw_trajs(int64_t B, bool by_length) {
  const int64_t n = num_trajectories();
  if (n == 0) throw std::invalid_argument("cannot sample from an empty replay buffer");
  const int64_t nf = static_cast<int64_t>(part_[0].trajs.size());
  if (by_length && cumsum_dirty_) rebuild_cumsum();
  std::vector<const TrajRec*> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    int64_t idx;
    if (by_length) {
      const uint64_t u = rng_.below(static_cast<uint64_t>(cumsum_.back()));
      idx = std::upper_bound(cumsum_.begin(), cumsum_.end(), static_cast<int64_t>(u)) -
            cumsum_.begin();
    } else {
      idx = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(n)));
    }
    out[b] = idx < nf ? &part_[0].trajs[idx] : &part_[1].trajs[idx - nf];
  }
  return out;
}

int64_t Store::draw_start(int64_t n, int64_t L, Padding mode) {
  if (n <= L) return 0;  // the whole trajectory fits: start at 0, right-pad
  int64_t lo = 0, hi = 0;
  switch (mode) {
    case Padding::kNone:
      lo = 0;
      hi = n - L;
      break;
    case Padding::kBoth:
      lo = -L + 1;
      hi = n - 2;
      break;
    case Padding::kLeft:
      lo = -L + 1;
      hi = n - L;
      break;
    case Padding::kRight:
      lo = 0;
      hi = n - 2;
      break;
  }
  return lo + static_cast<int64_t>(rng_.below(static_cast<uint64_t>(hi - lo + 1)));
}

std::vector<WindowItem> Store::draw_windows(int64_t B, int64_t L, Padding mode, bool by_length) {
  const std::vector<const TrajRec*> recs = draw_trajs(B, by_length);
  std::vector<WindowItem> items(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const TrajRec* r = recs[b];
    const Partition& P = part_[0].find(r->id) == r ? part_[0] : part_[1];
    items[b] = {&P, r->id, r->offset, r->length, 0};
  }
  for (auto& it : items) it.raw_start = draw_start(it.length, L, mode);
  return items;
}

WindowItem Store::item(int64_t id, int64_t raw_start) const {
  for (int p = 0; p < 2; ++p) {
    if (const TrajRec* r = part_[p].find(id))
      return {&part_[p], r->id, r->offset, r->length, raw_start};
  }
  throw std::out_of_range("trajectory id " + std::to_string(id) + " is not stored");
}

TrajLocation Store::locate(int64_t id) const {
  const WindowItem it = item(id, 0);
  return {it.part == &part_[1] ? 1 : 0, it.offset, it.length};
}

void Store::restore(int p, std::vector<TrajRec> trajs, int64_t head, int64_t next_id) {
  if (p != 0 && p != 1) throw std::invalid_argument("partition must be 0 or 1");
  Partition& P = part_[p];
  std::vector<TrajRec> by_off = trajs;
  std::sort(by_off.begin(), by_off.end(),
            [](const TrajRec& a, const TrajRec& b) { return a.offset < b.offset; });
  int64_t end = 0, total = 0;
  // Every value comes from a file: compare by subtraction so nothing can overflow.
  // r.offset >= end >= 0, 1 <= r.length <= rows - 1 and r.offset <= rows - 1 - r.length.
  for (const auto& r : by_off) {
    if (r.length < 1 || r.offset < end || r.length > P.rows - 1 || r.offset > P.rows - 1 - r.length)
      throw std::invalid_argument("corrupt index table: bad offset/length for trajectory " +
                                  std::to_string(r.id));
    end = r.offset + r.length + 1;
    total += r.length;  // <= rows: the rows of different trajectories do not overlap
  }
  for (size_t i = 0; i < trajs.size(); ++i) {
    if (trajs[i].id < 0 || trajs[i].id >= next_id)
      throw std::invalid_argument("corrupt index table: id " + std::to_string(trajs[i].id) +
                                  " is outside [0, next_id=" + std::to_string(next_id) + ")");
    if (i > 0 && trajs[i].id <= trajs[i - 1].id)
      throw std::invalid_argument("corrupt index table: ids are not increasing");
    if (part_[1 - p].find(trajs[i].id) != nullptr)
      throw std::invalid_argument("corrupt index table: id " + std::to_string(trajs[i].id) +
                                  " is stored in both partitions");
  }
  if (total > P.capacity) throw std::invalid_argument("corrupt index table: over capacity");
  if (head < 0 || head > P.rows) throw std::invalid_argument("corrupt index table: bad head");
  P.trajs.assign(trajs.begin(), trajs.end());
  P.transitions = total;
  P.head = head;
  next_id_ = std::max(next_id_, next_id);
  cumsum_dirty_ = true;
}

}  // namespace amago_fast
