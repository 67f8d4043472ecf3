// pybind11 bindings for the replay store: a narrow class, _C.ReplayStore. Argument
// validation users see lives in amago_fast/replay (Python); the checks here only stop
// bad pointers/sizes from ever reaching memcpy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "replay/store.h"

namespace py = pybind11;

namespace amago_fast {
namespace {

using I64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

uint8_t* writable_ptr(py::array a, int64_t nbytes, const char* what) {
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(what) + " must be C-contiguous");
  if (!a.writeable()) throw std::invalid_argument(std::string(what) + " must be writable");
  if (static_cast<int64_t>(a.nbytes()) != nbytes)
    throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(nbytes) +
                                " bytes, got " + std::to_string(a.nbytes()));
  return static_cast<uint8_t*>(a.mutable_data());
}

class PyStore {
 public:
  PyStore(std::vector<int64_t> row_bytes, std::vector<bool> obs_like, int64_t capacity,
          int64_t rows, int64_t protected_capacity, int64_t protected_rows, uint64_t seed)
      : store_(row_bytes, obs_like, capacity, rows, protected_capacity, protected_rows, seed),
        obs_like_(obs_like) {}

  void attach(int p, std::vector<py::array> arenas) {
    if (p != 0 && p != 1) throw std::invalid_argument("partition must be 0 or 1");
    if (static_cast<int>(arenas.size()) != store_.num_fields())
      throw std::invalid_argument("attach: one arena per field is required");
    std::vector<uint8_t*> bases;
    const int64_t rows = store_.partition(p).rows;
    for (int f = 0; f < store_.num_fields(); ++f)
      bases.push_back(writable_ptr(arenas[f], rows * store_.row_bytes(f), "arena"));
    store_.attach(p, bases);
    keep_[p] = arenas;  // the arrays own the memory: keep them alive
  }

  py::tuple add(std::vector<py::array> data, int64_t T, bool is_protected) {
    if (static_cast<int>(data.size()) != store_.num_fields())
      throw std::invalid_argument("add: one array per field is required");
    std::vector<const uint8_t*> src;
    for (int f = 0; f < store_.num_fields(); ++f) {
      const py::array& a = data[f];
      const int64_t rows = obs_like_[f] ? T + 1 : T;
      if (!(a.flags() & py::array::c_style)) throw std::invalid_argument("add: arrays must be C-contiguous");
      if (static_cast<int64_t>(a.nbytes()) != rows * store_.row_bytes(f))
        throw std::invalid_argument("add: field " + std::to_string(f) + " has " +
                                    std::to_string(a.nbytes()) + " bytes, expected " +
                                    std::to_string(rows * store_.row_bytes(f)));
      src.push_back(static_cast<const uint8_t*>(a.data()));
    }
    std::vector<int64_t> evicted;
    int64_t id;
    {
      py::gil_scoped_release nogil;
      id = store_.add(src, T, is_protected, &evicted);
    }
    return py::make_tuple(id, evicted);
  }

  // Draw B windows (trajectories first, then starts) and gather them.
  void sample_into(int64_t B, int64_t L, const std::string& padding, bool by_length,
                   std::vector<py::array> outs, py::array mask, py::array ids,
                   py::array starts, int num_threads) {
    check_bl(B, L);
    const Padding mode = parse_padding(padding);
    auto recs = store_.draw_trajs(B, by_length);
    std::vector<WindowItem> items(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      const TrajRec* r = recs[b];
      items[b] = {nullptr, r->id, r->offset, r->length, store_.draw_start(r->length, L, mode)};
    }
    for (int64_t b = 0; b < B; ++b) items[b].part = part_of(recs[b]);
    run_gather(items, L, outs, mask, ids, starts, num_threads);
  }

  py::tuple draw(int64_t B, int64_t L, const std::string& padding, bool by_length) {
    check_bl(B, L);
    const Padding mode = parse_padding(padding);
    auto recs = store_.draw_trajs(B, by_length);
    I64Array ids(B), starts(B);
    auto pi = ids.mutable_unchecked<1>();
    auto ps = starts.mutable_unchecked<1>();
    for (int64_t b = 0; b < B; ++b) pi(b) = recs[b]->id;
    for (int64_t b = 0; b < B; ++b) ps(b) = store_.draw_start(recs[b]->length, L, mode);
    return py::make_tuple(ids, starts);
  }

  I64Array draw_trajs(int64_t B, bool by_length) {
    check_bl(B, 1);
    auto recs = store_.draw_trajs(B, by_length);
    I64Array ids(B);
    auto pi = ids.mutable_unchecked<1>();
    for (int64_t b = 0; b < B; ++b) pi(b) = recs[b]->id;
    return ids;
  }

  I64Array draw_starts(I64Array lengths, int64_t L, const std::string& padding) {
    check_bl(1, L);
    const Padding mode = parse_padding(padding);
    auto pl = lengths.unchecked<1>();
    I64Array out(pl.shape(0));
    auto po = out.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < pl.shape(0); ++i) {
      if (pl(i) < 1) throw std::invalid_argument("lengths must be >= 1");
      po(i) = store_.draw_start(pl(i), L, mode);
    }
    return out;
  }

  void gather_into(I64Array traj_ids, I64Array raw_starts, int64_t L, std::vector<py::array> outs,
                   py::array mask, py::array ids, py::array starts, int num_threads) {
    auto pi = traj_ids.unchecked<1>();
    auto ps = raw_starts.unchecked<1>();
    if (pi.shape(0) != ps.shape(0)) throw std::invalid_argument("ids and starts differ in length");
    check_bl(pi.shape(0), L);
    std::vector<WindowItem> items;
    for (py::ssize_t b = 0; b < pi.shape(0); ++b) items.push_back(store_.item(pi(b), ps(b)));
    run_gather(items, L, outs, mask, ids, starts, num_threads);
  }

  py::tuple index(int p) const {
    const Partition& P = store_.partition(check_p(p));
    const auto n = static_cast<py::ssize_t>(P.trajs.size());
    I64Array ids(n), offsets(n), lengths(n);
    auto a = ids.mutable_unchecked<1>();
    auto o = offsets.mutable_unchecked<1>();
    auto l = lengths.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < n; ++i) {
      a(i) = P.trajs[i].id;
      o(i) = P.trajs[i].offset;
      l(i) = P.trajs[i].length;
    }
    return py::make_tuple(ids, offsets, lengths, P.head);
  }

  void restore(int p, I64Array ids, I64Array offsets, I64Array lengths, int64_t head,
               int64_t next_id) {
    auto a = ids.unchecked<1>();
    auto o = offsets.unchecked<1>();
    auto l = lengths.unchecked<1>();
    if (a.shape(0) != o.shape(0) || a.shape(0) != l.shape(0))
      throw std::invalid_argument("restore: index arrays differ in length");
    std::vector<TrajRec> recs;
    for (py::ssize_t i = 0; i < a.shape(0); ++i) recs.push_back({a(i), o(i), l(i)});
    store_.restore(check_p(p), recs, head, next_id);
  }

  py::tuple locate(int64_t id) const {
    const WindowItem it = store_.item(id, 0);
    return py::make_tuple(it.part == &store_.partition(1) ? 1 : 0, it.offset, it.length);
  }

  Store store_;

 private:
  static int check_p(int p) {
    if (p != 0 && p != 1) throw std::invalid_argument("partition must be 0 or 1");
    return p;
  }
  static void check_bl(int64_t B, int64_t L) {
    if (B < 1) throw std::invalid_argument("batch_size must be >= 1");
    if (L < 1) throw std::invalid_argument("seq_len must be >= 1");
  }
  const Partition* part_of(const TrajRec* r) const {
    const Partition& f = store_.partition(0);
    return (!f.trajs.empty() && f.find(r->id) == r) ? &f : &store_.partition(1);
  }
  void run_gather(const std::vector<WindowItem>& items, int64_t L, std::vector<py::array>& outs,
                  py::array& mask, py::array& ids, py::array& starts, int num_threads) {
    const int64_t B = static_cast<int64_t>(items.size());
    if (static_cast<int>(outs.size()) != store_.num_fields())
      throw std::invalid_argument("one output per field is required");
    std::vector<uint8_t*> optr;
    for (int f = 0; f < store_.num_fields(); ++f)
      optr.push_back(writable_ptr(outs[f], B * (obs_like_[f] ? L + 1 : L) * store_.row_bytes(f),
                                  "output"));
    bool* m = reinterpret_cast<bool*>(writable_ptr(mask, B * (L + 1), "mask"));
    auto* pi = reinterpret_cast<int64_t*>(writable_ptr(ids, B * 8, "ids"));
    auto* ps = reinterpret_cast<int64_t*>(writable_ptr(starts, B * 8, "starts"));
    py::gil_scoped_release nogil;
    store_.gather(items, L, optr, m, pi, ps, num_threads);
  }

  std::vector<bool> obs_like_;
  std::vector<py::array> keep_[2];
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
      .def("next_u64", [](PyStore& s) { return s.store_.next_u64(); })
      .def("gather_into", &PyStore::gather_into, py::arg("traj_ids"), py::arg("raw_starts"),
           py::arg("seq_len"), py::arg("outs"), py::arg("mask"), py::arg("ids"), py::arg("starts"),
           py::arg("num_threads"))
      .def("index", &PyStore::index, py::arg("partition"))
      .def("restore", &PyStore::restore, py::arg("partition"), py::arg("ids"), py::arg("offsets"),
           py::arg("lengths"), py::arg("head"), py::arg("next_id"))
      .def("locate", &PyStore::locate, py::arg("traj_id"))
      .def_property_readonly("num_trajectories", [](const PyStore& s) { return s.store_.num_trajectories(); })
      .def_property_readonly("num_timesteps", [](const PyStore& s) { return s.store_.num_timesteps(); })
      .def_property_readonly("next_id", [](const PyStore& s) { return s.store_.next_id(); })
      .def_property("rng_state", [](const PyStore& s) { return s.store_.rng_state(); },
                    [](PyStore& s, std::array<uint64_t, 4> st) { s.store_.set_rng_state(st); });
}

}  // namespace amago_fast
