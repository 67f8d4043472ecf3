// Window gather: copy each window's rows into the preallocated batch, zero the padding,
// write the mask. Items are split across std::threads; each thread writes disjoint
// output rows, so no locking is needed.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "replay/store.h"

namespace amago_fast {
namespace {

// Below this many gathered bytes a single thread wins (thread start-up costs ~10us).
constexpr int64_t kMinBytesPerThread = 1 << 20;

}  // namespace

void gather_windows(const std::vector<WindowSrc>& items, int64_t L,
                    const std::vector<int64_t>& row_bytes, const std::vector<bool>& obs_like,
                    const WindowOuts& outs, int num_threads) {
  const int64_t B = static_cast<int64_t>(items.size());
  const size_t F = row_bytes.size();
  if (outs.fields.size() != F)
    throw std::invalid_argument("gather: one output per field is required");
  for (const auto& it : items) {
    if (it.length < 1 || it.raw_start < -L + 1 ||
        it.raw_start > std::max<int64_t>(it.length - 1, 0))
      throw std::invalid_argument("gather: start " + std::to_string(it.raw_start) +
                                  " is outside the trajectory of length " +
                                  std::to_string(it.length));
  }
  int64_t bytes_per_item = 0;
  for (size_t f = 0; f < F; ++f) bytes_per_item += row_bytes[f] * (L + 1);

  auto work = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const WindowSrc& it = items[b];
      const int64_t s = std::max<int64_t>(it.raw_start, 0);
      const int64_t stop = it.raw_start + L;
      const int64_t n_obs = std::min(stop + 1, it.length + 1) - s;  // rows [s, s + n_obs)
      for (size_t f = 0; f < F; ++f) {
        const int64_t rb = row_bytes[f];
        const int64_t out_rows = obs_like[f] ? L + 1 : L;
        const int64_t n = obs_like[f] ? n_obs : n_obs - 1;
        uint8_t* dst = outs.fields[f] + b * out_rows * rb;
        std::memcpy(dst, it.src[f] + s * rb, static_cast<size_t>(n * rb));
        std::memset(dst + n * rb, 0, static_cast<size_t>((out_rows - n) * rb));
      }
      bool* m = outs.mask + b * (L + 1);
      std::fill(m, m + n_obs, true);
      std::fill(m + n_obs, m + L + 1, false);
      outs.ids[b] = it.id;
      outs.starts[b] = s;
    }
  };

  int64_t T = std::min<int64_t>(std::max(num_threads, 1), B);
  T = std::min<int64_t>(T, std::max<int64_t>(1, B * bytes_per_item / kMinBytesPerThread));
  if (T <= 1) {
    work(0, B);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(T - 1));
  const int64_t chunk = (B + T - 1) / T;
  for (int64_t t = 1; t < T; ++t) {
    const int64_t b0 = t * chunk, b1 = std::min(B, b0 + chunk);
    if (b0 < b1) pool.emplace_back(work, b0, b1);
  }
  work(0, std::min(B, chunk));
  for (auto& th : pool) th.join();
}

void Store::gather(const std::vector<WindowItem>& items, int64_t L, const WindowOuts& outs,
                   int num_threads) const {
  const size_t F = row_bytes_.size();
  // Row 0 of every window's trajectory in every field's arena, then the shared cut.
  std::vector<const uint8_t*> ptrs(items.size() * F);
  std::vector<WindowSrc> srcs(items.size());
  for (size_t b = 0; b < items.size(); ++b) {
    const WindowItem& it = items[b];
    if (it.part->arena.size() != F) throw std::logic_error("gather: arena memory is not attached");
    for (size_t f = 0; f < F; ++f) ptrs[b * F + f] = it.part->arena[f] + it.offset * row_bytes_[f];
    srcs[b] = {ptrs.data() + b * F, it.id, it.length, it.raw_start};
  }
  gather_windows(srcs, L, row_bytes_, obs_like_, outs, num_threads);
}

}  // namespace amago_fast
