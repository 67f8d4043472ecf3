// Shared pieces of the hindsight relabeling kernels: goal matching, draw -> integer
// mapping and a tiny thread pool. The Python reference (amago_fast/relabel/reference.py)
// mirrors every function here operation for operation, which is what makes the two
// produce bit-identical outputs.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace amago_fast {
namespace relabel {

// True when every coordinate of `a` is within `tol` of `g` (L-infinity ball).
// Integers are compared exactly in int64 (tol 0 means equality); floats in double, so
// NaN never matches.
template <typename S>
inline bool within(const S* a, const S* g, int64_t dim, double tol) {
  for (int64_t j = 0; j < dim; ++j) {
    if constexpr (std::is_integral_v<S>) {
      int64_t diff = static_cast<int64_t>(a[j]) - static_cast<int64_t>(g[j]);
      if (diff < 0) diff = -diff;
      if (!(static_cast<double>(diff) <= tol)) return false;
    } else {
      double diff = std::fabs(static_cast<double>(a[j]) - static_cast<double>(g[j]));
      if (!(diff <= tol)) return false;
    }
  }
  return true;
}

// `within` for a compile-time goal dimension (the common 1..4): the loop unrolls.
template <typename S, int D>
inline bool within_fixed(const S* a, const S* g, double tol) {
  for (int j = 0; j < D; ++j)
    if (!within(a + j, g + j, 1, tol)) return false;
  return true;
}

// First row t in [from, T] whose achieved value (rows of `d` values) is within `tol` of
// `goal`, or T + 1 if none: the scan every relabel kernel spends its time in.
template <typename S>
inline int64_t first_within(const S* ach, int64_t d, int64_t from, int64_t T, const S* goal,
                            double tol) {
  switch (d) {
    case 1:
      for (int64_t t = from; t <= T; ++t)
        if (within_fixed<S, 1>(ach + t, goal, tol)) return t;
      return T + 1;
    case 2:
      for (int64_t t = from; t <= T; ++t)
        if (within_fixed<S, 2>(ach + 2 * t, goal, tol)) return t;
      return T + 1;
    case 3:
      for (int64_t t = from; t <= T; ++t)
        if (within_fixed<S, 3>(ach + 3 * t, goal, tol)) return t;
      return T + 1;
    case 4:
      for (int64_t t = from; t <= T; ++t)
        if (within_fixed<S, 4>(ach + 4 * t, goal, tol)) return t;
      return T + 1;
    default:
      for (int64_t t = from; t <= T; ++t)
        if (within(ach + d * t, goal, d, tol)) return t;
      return T + 1;
  }
}

// floor(u * n) clamped to [0, n-1]: a uniform integer in {0..n-1} from u ~ U[0, 1).
// The clamp only matters if a caller hands in u == 1.0.
inline int64_t uniform_index(double u, int64_t n) {
  int64_t r = static_cast<int64_t>(std::floor(u * static_cast<double>(n)));
  if (r < 0) r = 0;
  if (r > n - 1) r = n - 1;
  return r;
}

// Threads worth starting for `rows` time steps of relabeling work: one per ~64k rows
// (about 0.1 ms of work), so small batches never pay thread start-up or wait on a
// descheduled worker on a busy machine.
inline int useful_threads(int64_t rows, int num_threads) {
  constexpr int64_t kRowsPerThread = 1 << 16;
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(num_threads, 1 + rows / kRowsPerThread)));
}

// Runs fn(i) for i in [0, n) on up to `num_threads` std::threads (the caller releases
// the GIL). The first exception thrown by a worker is re-thrown on the calling thread.
template <typename Fn>
void parallel_for(int64_t n, int num_threads, Fn&& fn) {
  int workers = static_cast<int>(std::min<int64_t>(std::max(num_threads, 1), n));
  if (workers <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&]() {
    try {
      for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(n);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace relabel
}  // namespace amago_fast
