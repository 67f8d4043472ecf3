// Defensive checks on arrays handed to the relabel kernels. The Python wrappers validate
// everything first with friendlier messages; these checks only guarantee that a direct
// caller of amago_fast._C can never make the kernels read out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace amago_fast {
namespace relabel {

inline void require(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);  // -> ValueError in Python
}

inline bool is_c_contiguous(const pybind11::array& a) {
  return (a.flags() & pybind11::array::c_style) != 0;
}

// Element type codes shared by the goal kernels: 0 float32, 1 float64, 2 int32, 3 int64.
inline int goal_dtype_code(const pybind11::array& a) {
  const auto dt = a.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return 0;
  if (kind == 'f' && size == 8) return 1;
  if (kind == 'i' && size == 4) return 2;
  if (kind == 'i' && size == 8) return 3;
  throw std::invalid_argument("goal arrays must be float32, float64, int32 or int64");
}

inline void check_float32(const pybind11::array& a, const std::string& name) {
  require(a.dtype().kind() == 'f' && a.dtype().itemsize() == 4, name + " must be float32");
  require(is_c_contiguous(a), name + " must be C-contiguous");
}

inline void check_bool(const pybind11::array& a, const std::string& name) {
  require(a.dtype().kind() == 'b' && a.dtype().itemsize() == 1, name + " must be bool");
  require(is_c_contiguous(a), name + " must be C-contiguous");
}

// Draws must be uniforms in [0, 1]: anything else (NaN above all) would make the
// draw -> index map undefined.
inline void check_uniforms(const pybind11::array& draws) {
  const double* u = static_cast<const double*>(draws.data());
  for (pybind11::ssize_t i = 0; i < draws.size(); ++i)
    require(u[i] >= 0.0 && u[i] <= 1.0, "draws must lie in [0, 1]");
}

}  // namespace relabel
}  // namespace amago_fast
