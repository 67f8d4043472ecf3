// See snapshot.h.
#include "replay/snapshot.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace amago_fast {
namespace {

// Write all n bytes at file offset off (retrying short writes); 0 or the errno.
int pwrite_all(int fd, const uint8_t* p, int64_t n, int64_t off) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, static_cast<size_t>(std::min<int64_t>(n, 1 << 30)), off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w, n -= w, off += w;
  }
  return 0;
}

}  // namespace

Snapshot write_snapshot(const Store& store, const std::vector<std::vector<int>>& fds,
                        int64_t data_offset) {
  const int F = store.num_fields();
  Snapshot s;
  for (int p = 0; p < 2; ++p) {
    const Partition& P = store.partition(p);
    PartitionSnapshot& out = s.part[p];
    int64_t pos = 0;
    for (const auto& r : P.trajs) {
      out.ids.push_back(r.id);
      out.offsets.push_back(pos);
      out.lengths.push_back(r.length);
      pos += r.length + 1;
    }
    out.rows = pos;
    for (int f = 0; f < F && s.error == 0 && !P.trajs.empty(); ++f) {
      const int64_t rb = store.row_bytes(f);
      int64_t written = 0;  // rows
      // Runs of trajectories that lie back to back in the arena: one pwrite each.
      for (size_t i = 0; i < P.trajs.size() && s.error == 0;) {
        const int64_t start = P.trajs[i].offset;
        int64_t end = start + P.trajs[i].length + 1;
        for (++i; i < P.trajs.size() && P.trajs[i].offset == end; ++i) end += P.trajs[i].length + 1;
        s.error = pwrite_all(fds[p][f], P.arena[f] + start * rb, (end - start) * rb,
                             data_offset + written * rb);
        written += end - start;
      }
      if (s.error) s.error_partition = p, s.error_field = f;
    }
  }
  s.rng_state = store.rng_state();
  s.next_id = store.next_id();
  return s;
}

}  // namespace amago_fast
