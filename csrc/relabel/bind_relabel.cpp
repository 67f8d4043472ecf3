// Hindsight relabeling kernels (issue 5): multi-goal instructions and single-goal HER.
#include <pybind11/pybind11.h>

namespace amago_fast {
namespace relabel {
void bind_multigoal(pybind11::module_& m);
void bind_her(pybind11::module_& m);
}  // namespace relabel

void bind_relabel(pybind11::module_& m) {
  relabel::bind_multigoal(m);
  relabel::bind_her(m);
}
}  // namespace amago_fast
