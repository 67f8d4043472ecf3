// The _C extension module. Each component registers its classes and functions through
// its own bind_* function so this file stays a table of contents.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace amago_fast {
void bind_replay(py::module_& m);
void bind_relabel(py::module_& m);
}  // namespace amago_fast

PYBIND11_MODULE(_C, m) {
  m.doc() = "amago_fast native kernels: replay store, window sampler, hindsight relabeling";
  amago_fast::bind_replay(m);
  amago_fast::bind_relabel(m);
}
