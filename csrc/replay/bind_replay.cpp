// pybind11 bindings for the replay store: a narrow class, _C.ReplayStore, over the C++
// core (LockedStore). This layer only converts numpy <-> core types, validates sizes and
// releases the GIL; argument validation users see lives in amago_fast/replay (Python),
// the checks here only stop bad pointers/sizes from ever reaching memcpy.
//
// Threading: the core's mutex guards the store and is never held while Python objects are
// touched. The calls that copy data (add, sample, gather, cut, snapshot) release the GIL;
// the short ones (draws, lookups) keep it, as the core never needs the GIL under the lock,
// so a writer thread and a sampler thread can share a buffer without deadlock.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "replay/locked_store.h"
#include "replay/traj_arrays.h"

namespace py = pybind11;

namespace amago_fast {
namespace {

using I64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using NoGil = py::gil_scoped_release;

// Longest trajectory accepted from a caller: far beyond any memory, small enough that
// length + seq_len and (length + 1) * row_bytes arithmetic cannot overflow.
constexpr int64_t kMaxLength = int64_t{1} << 48;

// a * b * c for byte counts; an overflow or a negative factor is an argument error, so a
// wrapped product can never make a too-small array pass a size check.
int64_t nbytes_of(int64_t a, int64_t b, int64_t c, const char* what) {
  int64_t ab, abc;
  if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &ab) ||
      __builtin_mul_overflow(ab, c, &abc))
    throw std::invalid_argument(std::string(what) + ": size overflows int64");
  return abc;
}

uint8_t* writable_ptr(py::array a, int64_t nbytes, const char* what) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(what) + " must be C-contiguous");
  if (!a.writeable()) throw std::invalid_argument(std::string(what) + " must be writable");
  if (static_cast<int64_t>(a.nbytes()) != nbytes)
    throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(nbytes) +
                                " bytes, got " + std::to_string(a.nbytes()));
  return static_cast<uint8_t*>(a.mutable_data());
}

std::vector<int64_t> to_vec(const I64Array& a) {
  if (a.ndim() != 1) throw std::invalid_argument("expected a 1-d int64 array");
  return std::vector<int64_t>(a.data(), a.data() + a.shape(0));
}

I64Array to_array(const std::vector<int64_t>& v) {
  I64Array a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

void check_bl(int64_t B, int64_t L) {
  if (B < 1) throw std::invalid_argument("batch_size must be >= 1");
  if (L < 1 || L > (int64_t{1} << 40)) throw std::invalid_argument("seq_len must be in [1, 2**40]");
}

int check_p(int p) {
  if (p != 0 && p != 1) throw std::invalid_argument("partition must be 0 or 1");
  return p;
}

class PyStore {
 public:
  PyStore(std::vector<int64_t> row_bytes, std::vector<bool> obs_like, int64_t capacity,
          int64_t rows, int64_t protected_capacity, int64_t protected_rows, uint64_t seed)
      : core_(std::move(row_bytes), std::move(obs_like), capacity, rows, protected_capacity,
              protected_rows, seed) {}

  void attach(int p, std::vector<py::array> arenas) {
    check_p(p);
    if (static_cast<int>(arenas.size()) != core_.num_fields())
      throw std::invalid_argument("attach: one arena per field is required");
    std::vector<uint8_t*> bases;
    const int64_t rows = core_.arena_rows(p);
    for (int f = 0; f < core_.num_fields(); ++f)
      bases.push_back(
          writable_ptr(arenas[f], nbytes_of(rows, core_.row_bytes(f), 1, "arena"), "arena"));
    core_.attach(p, bases);
    keep_[p] = arenas;  // the arrays own the memory: keep them alive
    // Read-only views of the arenas: bases for the trajectory views handed to relabelers
    // (numpy copies the base's flags, so those views cannot write into the store).
    ro_[p].clear();
    for (auto& a : arenas) {
      py::array v = a.attr("view")();
      v.attr("flags").attr("writeable") = false;
      ro_[p].push_back(v);
    }
  }

  // Field names ("obs/<key>", "rl2s", ...), dtypes and per-row shapes, for views() and
  // cut_into(), which read and build trajectory dicts.
  void name_fields(std::vector<std::string> names, std::vector<py::dtype> dtypes,
                   std::vector<std::vector<py::ssize_t>> shapes) {
    specs_ = make_field_specs(names, dtypes, shapes, core_.obs_like(), core_.row_bytes());
  }

  // Zero-copy read-only views of stored trajectories, one dict per id (the layout of
  // ReplayBuffer.trajectory): one call instead of a Python loop of slices.
  py::list views(I64Array traj_ids) {
    const std::vector<int64_t> tid = to_vec(traj_ids);
    need_specs();
    return make_traj_views(core_.locate(tid), ro_, specs_);
  }

  // Cut windows from trajectory dicts (not in the store), e.g. relabeled copies: one start
  // per trajectory from the store's generator unless raw_starts is given. Returns [] or the
  // indices of the trajectories that are not exact dicts of C-contiguous arrays of the
  // stored dtypes and shapes; then nothing is drawn or written.
  std::vector<int64_t> cut_into(py::sequence trajs, int64_t L, const std::string& padding,
                                I64Array traj_ids, py::object raw_starts,
                                std::vector<py::array> outs, py::array mask, py::array ids,
                                py::array starts, int num_threads) {
    const int64_t B = static_cast<int64_t>(py::len(trajs));
    check_bl(B, L);
    const Padding mode = parse_padding(padding);
    need_specs();
    std::vector<int64_t> tid = to_vec(traj_ids);
    if (static_cast<int64_t>(tid.size()) != B)
      throw std::invalid_argument("cut_into: one traj_id per trajectory is required");
    std::vector<int64_t> st;
    if (!raw_starts.is_none()) {
      st = to_vec(raw_starts.cast<I64Array>());
      if (static_cast<int64_t>(st.size()) != B)
        throw std::invalid_argument("cut_into: one raw start per trajectory is required");
    }
    const WindowOuts o = outputs(B, L, outs, mask, ids, starts);
    TrajArrays ta;
    std::vector<int64_t> bad = extract_trajs(trajs, specs_, &ta);
    if (!bad.empty()) return bad;
    ta.src.ids = std::move(tid);
    NoGil nogil;
    core_.cut(ta.src, std::move(st), L, mode, o, num_threads);
    return {};
  }

  py::tuple add(std::vector<py::array> data, int64_t T, bool is_protected) {
    if (static_cast<int>(data.size()) != core_.num_fields())
      throw std::invalid_argument("add: one array per field is required");
    std::vector<const uint8_t*> src;
    if (T < 1 || T > kMaxLength) throw std::invalid_argument("add: length must be in [1, 2**48]");
    for (int f = 0; f < core_.num_fields(); ++f) {
      const py::array& a = data[f];
      const int64_t rows = core_.obs_like()[f] ? T + 1 : T;
      if (!(a.flags() & py::array::c_style))
        throw std::invalid_argument("add: arrays must be C-contiguous");
      const int64_t want = nbytes_of(rows, core_.row_bytes(f), 1, "add");
      if (static_cast<int64_t>(a.nbytes()) != want)
        throw std::invalid_argument("add: field " + std::to_string(f) + " has " +
                                    std::to_string(a.nbytes()) + " bytes, expected " +
                                    std::to_string(want));
      src.push_back(static_cast<const uint8_t*>(a.data()));
    }
    std::vector<int64_t> evicted;
    int64_t id;
    {
      NoGil nogil;
      id = core_.add(src, T, is_protected, &evicted);
    }
    return py::make_tuple(id, to_array(evicted));
  }

  void sample_into(int64_t B, int64_t L, const std::string& padding, bool by_length,
                   std::vector<py::array> outs, py::array mask, py::array ids, py::array starts,
                   int num_threads) {
    check_bl(B, L);
    const Padding mode = parse_padding(padding);
    const WindowOuts o = outputs(B, L, outs, mask, ids, starts);
    NoGil nogil;
    core_.sample(B, L, mode, by_length, o, num_threads);
  }

  py::tuple draw(int64_t B, int64_t L, const std::string& padding, bool by_length) {
    check_bl(B, L);
    const Padding mode = parse_padding(padding);
    std::vector<int64_t> ids, starts;
    core_.draw(B, L, mode, by_length, &ids, &starts);
    return py::make_tuple(to_array(ids), to_array(starts));
  }

  I64Array draw_trajs(int64_t B, bool by_length) {
    check_bl(B, 1);
    return to_array(core_.draw_trajs(B, by_length));
  }

  I64Array draw_starts(I64Array lengths, int64_t L, const std::string& padding) {
    check_bl(1, L);
    const Padding mode = parse_padding(padding);
    std::vector<int64_t> v = to_vec(lengths);
    for (int64_t n : v)
      if (n < 1 || n > kMaxLength) throw std::invalid_argument("lengths must be in [1, 2**48]");
    return to_array(core_.draw_starts(std::move(v), L, mode));
  }

  uint64_t next_u64() { return core_.next_u64(); }

  void gather_into(I64Array traj_ids, I64Array raw_starts, int64_t L, std::vector<py::array> outs,
                   py::array mask, py::array ids, py::array starts, int num_threads) {
    const std::vector<int64_t> tid = to_vec(traj_ids), st = to_vec(raw_starts);
    if (tid.size() != st.size()) throw std::invalid_argument("ids and starts differ in length");
    const int64_t B = static_cast<int64_t>(tid.size());
    check_bl(B, L);
    const WindowOuts o = outputs(B, L, outs, mask, ids, starts);
    NoGil nogil;
    core_.gather(tid, st, L, o, num_threads);
  }

  py::tuple index(int p) {
    const PartitionIndex ix = core_.index(check_p(p));
    return py::make_tuple(to_array(ix.ids), to_array(ix.offsets), to_array(ix.lengths), ix.head);
  }

  // A point-in-time snapshot (ReplayBuffer.save), written by the core under one hold of the
  // lock with pwrite to fds[p][f] from byte data_offset (see replay/snapshot.h). Returns
  // ([(ids, offsets, lengths, rows)] * 2, rng_state, next_id, (errno, p, f)); errno is 0
  // unless a write failed (then the files are incomplete and must be discarded).
  py::tuple snapshot(std::vector<std::vector<int>> fds, int64_t data_offset) {
    const int F = core_.num_fields();
    if (fds.size() != 2 || static_cast<int>(fds[0].size()) != F ||
        static_cast<int>(fds[1].size()) != F)
      throw std::invalid_argument("snapshot: one file descriptor per field and partition");
    if (data_offset < 0) throw std::invalid_argument("snapshot: data_offset must be >= 0");
    Snapshot s;
    {
      NoGil nogil;
      s = core_.snapshot(fds, data_offset);
    }
    py::list parts;
    for (const PartitionSnapshot& p : s.part)
      parts.append(
          py::make_tuple(to_array(p.ids), to_array(p.offsets), to_array(p.lengths), p.rows));
    return py::make_tuple(parts, s.rng_state, s.next_id,
                          py::make_tuple(s.error, s.error_partition, s.error_field));
  }

  void restore(int p, I64Array ids, I64Array offsets, I64Array lengths, int64_t head,
               int64_t next_id) {
    const auto a = to_vec(ids), o = to_vec(offsets), l = to_vec(lengths);
    if (a.size() != o.size() || a.size() != l.size())
      throw std::invalid_argument("restore: index arrays differ in length");
    std::vector<TrajRec> recs;
    for (size_t i = 0; i < a.size(); ++i) recs.push_back({a[i], o[i], l[i]});
    core_.restore(check_p(p), recs, head, next_id);
  }

  py::tuple locate(int64_t id) {
    const TrajLocation l = core_.locate(id);
    return py::make_tuple(l.partition, l.offset, l.length);
  }

  int64_t num_trajectories() { return core_.num_trajectories(); }
  int64_t num_timesteps() { return core_.num_timesteps(); }
  int64_t next_id() { return core_.next_id(); }
  std::array<uint64_t, 4> rng_state() { return core_.rng_state(); }
  void set_rng_state(std::array<uint64_t, 4> s) { core_.set_rng_state(s); }

 private:
  void need_specs() const {
    if (specs_.empty()) throw std::logic_error("ReplayStore: name_fields() was not called");
  }

  WindowOuts outputs(int64_t B, int64_t L, std::vector<py::array>& outs, py::array& mask,
                     py::array& ids, py::array& starts) {
    if (static_cast<int>(outs.size()) != core_.num_fields())
      throw std::invalid_argument("one output per field is required");
    WindowOuts o;
    for (int f = 0; f < core_.num_fields(); ++f)
      o.fields.push_back(writable_ptr(
          outs[f], nbytes_of(B, core_.obs_like()[f] ? L + 1 : L, core_.row_bytes(f), "output"),
          "output"));
    o.mask = reinterpret_cast<bool*>(writable_ptr(mask, nbytes_of(B, L + 1, 1, "mask"), "mask"));
    o.ids = reinterpret_cast<int64_t*>(writable_ptr(ids, nbytes_of(B, 8, 1, "ids"), "ids"));
    o.starts =
        reinterpret_cast<int64_t*>(writable_ptr(starts, nbytes_of(B, 8, 1, "starts"), "starts"));
    return o;
  }

  LockedStore core_;
  std::vector<py::array> keep_[2];
  std::vector<py::array> ro_[2];  // read-only views of keep_
  std::vector<FieldSpec> specs_;
};

}  // namespace
void bind_replay(py::module_& m) {
  py::class_<PyStore>(m, "ReplayStore",
                      "Native trajectory store and window sampler (use amago_fast.ReplayBuffer).")
      .def(py::init<std::vector<int64_t>, std::vector<bool>, int64_t, int64_t, int64_t, int64_t,
                    uint64_t>(),
           py::arg("row_bytes"), py::arg("obs_like"), py::arg("capacity"), py::arg("rows"),
           py::arg("protected_capacity"), py::arg("protected_rows"), py::arg("seed"))
      .def("attach", &PyStore::attach, py::arg("partition"), py::arg("arenas"))
      .def("add", &PyStore::add, py::arg("arrays"), py::arg("length"), py::arg("protected"))
      .def("sample_into", &PyStore::sample_into, py::arg("batch_size"), py::arg("seq_len"),
           py::arg("padding"), py::arg("by_length"), py::arg("outs"), py::arg("mask"),
           py::arg("ids"), py::arg("starts"), py::arg("num_threads"))
      .def("draw", &PyStore::draw, py::arg("batch_size"), py::arg("seq_len"), py::arg("padding"),
           py::arg("by_length"))
      .def("draw_trajs", &PyStore::draw_trajs, py::arg("batch_size"), py::arg("by_length"))
      .def("draw_starts", &PyStore::draw_starts, py::arg("lengths"), py::arg("seq_len"),
           py::arg("padding"))
      .def("next_u64", &PyStore::next_u64)
      .def("name_fields", &PyStore::name_fields, py::arg("names"), py::arg("dtypes"),
           py::arg("shapes"))
      .def("views", &PyStore::views, py::arg("traj_ids"))
      .def("cut_into", &PyStore::cut_into, py::arg("trajs"), py::arg("seq_len"), py::arg("padding"),
           py::arg("traj_ids"), py::arg("raw_starts"), py::arg("outs"), py::arg("mask"),
           py::arg("ids"), py::arg("starts"), py::arg("num_threads"))
      .def("gather_into", &PyStore::gather_into, py::arg("traj_ids"), py::arg("raw_starts"),
           py::arg("seq_len"), py::arg("outs"), py::arg("mask"), py::arg("ids"), py::arg("starts"),
           py::arg("num_threads"))
      .def("index", &PyStore::index, py::arg("partition"))
      .def("restore", &PyStore::restore, py::arg("partition"), py::arg("ids"), py::arg("offsets"),
           py::arg("lengths"), py::arg("head"), py::arg("next_id"))
      .def("locate", &PyStore::locate, py::arg("traj_id"))
      .def("snapshot", &PyStore::snapshot, py::arg("fds"), py::arg("data_offset"))
      .def_property_readonly("num_trajectories", &PyStore::num_trajectories)
      .def_property_readonly("num_timesteps", &PyStore::num_timesteps)
      .def_property_readonly("next_id", &PyStore::next_id)
      .def_property("rng_state", &PyStore::rng_state, &PyStore::set_rng_state);
}

}  // namespace amago_fast
