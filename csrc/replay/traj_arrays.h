// Trajectory dicts <-> stored rows: views of stored trajectories as dicts, and dicts ->
// raw row pointers for the native window cut (relabeled path).
// Only an exact fast-path match is accepted by extract_trajs; anything else (another dtype, a
// torch tensor, a missing key, a strided array) is reported back by index, so that the
// Python side can convert it or raise a clear error naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "replay/store.h"

// pybind11 types are hidden in the module; structs holding them must be hidden too.
#if defined(__GNUC__) && !defined(_WIN32)
#define AMAGO_FAST_HIDDEN __attribute__((visibility("hidden")))
#else
#define AMAGO_FAST_HIDDEN
#endif

namespace amago_fast {

namespace py = pybind11;

// How one stored field appears in a trajectory dict.
struct AMAGO_FAST_HIDDEN FieldSpec {
  py::str key;                     // dict key (without the "obs/" prefix)
  bool in_obs;                     // found under traj["obs"] (else at the top level)
  bool obs_like;                   // T+1 rows (else T)
  py::dtype dtype;                 // exact dtype expected
  std::vector<py::ssize_t> shape;  // per-row shape; a trailing unit axis is also accepted
  int64_t row_bytes;
};

// Arrays of a batch of trajectories that passed the fast-path check.
struct AMAGO_FAST_HIDDEN TrajArrays {
  TrajSources src;               // ptrs and lengths (ids are the caller's to fill in)
  std::vector<py::object> keep;  // the arrays, alive while the GIL is released
};

// Build specs from the buffer's field names ("obs/<key>", "rl2s", ...), dtypes and shapes.
std::vector<FieldSpec> make_field_specs(const std::vector<std::string>& names,
                                        const std::vector<py::dtype>& dtypes,
                                        const std::vector<std::vector<py::ssize_t>>& shapes,
                                        const std::vector<bool>& obs_like,
                                        const std::vector<int64_t>& row_bytes);

// Needs the GIL. Fills *out and returns the indices of the trajectories that are not a
// dict of C-contiguous arrays of exactly the expected dtypes and shapes with T >= 1
// (empty: every trajectory was extracted).
std::vector<int64_t> extract_trajs(const py::sequence& trajs, const std::vector<FieldSpec>& spec,
                                   TrajArrays* out);

// Needs the GIL. One dict per location, in the layout of ReplayBuffer.trajectory
// ({"obs": {key: (T+1, ...)}, "rl2s", ...}), of views sliced from bases[partition][f]
// (read-only arrays of whole arenas, so the views cannot write into the store).
py::list make_traj_views(const std::vector<TrajLocation>& locs,
                         const std::vector<py::array> (&bases)[2],
                         const std::vector<FieldSpec>& spec);

}  // namespace amago_fast
