// Placeholder until the replay store lands (issue 2).
#include <pybind11/pybind11.h>
namespace amago_fast {
void bind_replay(pybind11::module_& m) {}
}  // namespace amago_fast
