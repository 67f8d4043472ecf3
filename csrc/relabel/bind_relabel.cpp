// Placeholder until the relabel kernels land (issue 5).
#include <pybind11/pybind11.h>
namespace amago_fast {
void bind_relabel(pybind11::module_& m) {}
}  // namespace amago_fast
