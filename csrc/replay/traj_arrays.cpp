// See traj_arrays.h. Plain CPython dict lookups (borrowed references) keep the per-field
// cost to a few pointer checks; this runs once per trajectory per sample.
#include "replay/traj_arrays.h"

#include <stdexcept>

namespace amago_fast {

namespace {

const char kObsPrefix[] = "obs/";

// The array at `key` if it matches (rows, *shape) or (rows, *shape, 1) exactly.
const uint8_t* match(PyObject* dict, const FieldSpec& f, py::ssize_t rows, py::object* keep) {
  PyObject* v = PyDict_GetItem(dict, f.key.ptr());  // borrowed; NULL if missing
  if (v == nullptr || !py::isinstance<py::array>(v)) return nullptr;
  auto a = py::reinterpret_borrow<py::array>(v);
  if (!(a.flags() & py::array::c_style) || (!a.dtype().is(f.dtype) && !a.dtype().equal(f.dtype)))
    return nullptr;
  const py::ssize_t nd = a.ndim(), ns = static_cast<py::ssize_t>(f.shape.size());
  if (nd != ns + 1 && !(nd == ns + 2 && a.shape(nd - 1) == 1)) return nullptr;
  if (a.shape(0) != rows) return nullptr;
  for (py::ssize_t i = 0; i < ns; ++i)
    if (a.shape(i + 1) != f.shape[i]) return nullptr;
  if (static_cast<int64_t>(a.nbytes()) != rows * f.row_bytes) return nullptr;  // belt and braces
  *keep = a;
  return static_cast<const uint8_t*>(a.data());
}

// One trajectory into out->src.ptrs / src.lengths / keep at index b; false if not an exact match.
bool extract_one(py::handle t, const std::vector<FieldSpec>& spec, const py::str& obs_key,
                 size_t n_obs, int t_field, py::ssize_t b, TrajArrays* out) {
  const size_t F = spec.size();
  if (!PyDict_Check(t.ptr())) return false;
  PyObject* obs = PyDict_GetItem(t.ptr(), obs_key.ptr());
  if (obs == nullptr || !PyDict_Check(obs) || static_cast<size_t>(PyDict_Size(obs)) != n_obs)
    return false;
  // T from the first transition field's leading dimension.
  PyObject* tv = PyDict_GetItem(t.ptr(), spec[t_field].key.ptr());
  if (tv == nullptr || !py::isinstance<py::array>(tv)) return false;
  auto ta = py::reinterpret_borrow<py::array>(tv);
  // (a broadcast view can claim any length: bound it before T + 1 is computed)
  if (ta.ndim() < 1 || ta.shape(0) < 1 || ta.shape(0) > (py::ssize_t{1} << 48)) return false;
  const py::ssize_t T = ta.shape(0);
  for (size_t f = 0; f < F; ++f) {
    const FieldSpec& s = spec[f];
    const size_t i = static_cast<size_t>(b) * F + f;
    const uint8_t* p = match(s.in_obs ? obs : t.ptr(), s, s.obs_like ? T + 1 : T, &out->keep[i]);
    if (p == nullptr) return false;
    out->src.ptrs[i] = p;
  }
  out->src.lengths[b] = T;
  return true;
}

}  // namespace

std::vector<FieldSpec> make_field_specs(const std::vector<std::string>& names,
                                        const std::vector<py::dtype>& dtypes,
                                        const std::vector<std::vector<py::ssize_t>>& shapes,
                                        const std::vector<bool>& obs_like,
                                        const std::vector<int64_t>& row_bytes) {
  const size_t F = row_bytes.size();
  if (names.size() != F || dtypes.size() != F || shapes.size() != F)
    throw std::invalid_argument("name_fields: one name, dtype and shape per field is required");
  std::vector<FieldSpec> out;
  for (size_t f = 0; f < F; ++f) {
    int64_t n = dtypes[f].itemsize();
    for (auto s : shapes[f]) n *= s;
    if (n != row_bytes[f])
      throw std::invalid_argument("name_fields: field '" + names[f] + "' has " + std::to_string(n) +
                                  " bytes per row, the store " + std::to_string(row_bytes[f]));
    const bool in_obs = names[f].rfind(kObsPrefix, 0) == 0;
    const std::string key = in_obs ? names[f].substr(sizeof(kObsPrefix) - 1) : names[f];
    out.push_back({py::str(key), in_obs, obs_like[f], dtypes[f], shapes[f], row_bytes[f]});
  }
  return out;
}

std::vector<int64_t> extract_trajs(const py::sequence& trajs, const std::vector<FieldSpec>& spec,
                                   TrajArrays* out) {
  const size_t F = spec.size();
  const py::ssize_t B = static_cast<py::ssize_t>(py::len(trajs));
  size_t n_obs = 0;
  int t_field = -1;  // a transition field: its row count is T
  for (size_t f = 0; f < F; ++f) {
    n_obs += spec[f].in_obs;
    if (!spec[f].obs_like && t_field < 0) t_field = static_cast<int>(f);
  }
  if (t_field < 0) throw std::logic_error("extract_trajs: no transition field");
  const py::str obs_key("obs");
  out->src.ptrs.assign(static_cast<size_t>(B) * F, nullptr);
  out->src.lengths.assign(static_cast<size_t>(B), 0);
  out->keep.assign(static_cast<size_t>(B) * F, py::object());
  std::vector<int64_t> bad;
  for (py::ssize_t b = 0; b < B; ++b) {
    py::object t = trajs[b];
    if (!extract_one(t, spec, obs_key, n_obs, t_field, b, out)) bad.push_back(b);
  }
  return bad;
}

py::list make_traj_views(const std::vector<TrajLocation>& locs,
                         const std::vector<py::array> (&bases)[2],
                         const std::vector<FieldSpec>& spec) {
  const py::str obs_key("obs");
  py::list out;
  for (const TrajLocation& l : locs) {
    py::dict d, obs;
    d[obs_key] = obs;
    for (size_t f = 0; f < spec.size(); ++f) {
      const FieldSpec& s = spec[f];
      // base[offset : offset + rows]: numpy's own slicing is the cheapest way to make a
      // view (about half the cost of constructing one through pybind11).
      const int64_t rows = s.obs_like ? l.length + 1 : l.length;
      py::object sl = py::reinterpret_steal<py::object>(
          PySlice_New(py::int_(l.offset).ptr(), py::int_(l.offset + rows).ptr(), nullptr));
      if (!sl) throw py::error_already_set();
      py::object v = py::reinterpret_steal<py::object>(
          PyObject_GetItem(bases[l.partition][f].ptr(), sl.ptr()));
      if (!v) throw py::error_already_set();
      (s.in_obs ? obs : d)[s.key] = v;
    }
    out.append(d);
  }
  return out;
}

}  // namespace amago_fast
