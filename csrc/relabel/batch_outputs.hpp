// Output arrays for a whole batch: one numpy allocation per field, handed out as
// per-trajectory views (each view keeps the batch buffer alive through its base).
// One large allocation instead of 4 small ones per trajectory avoids a malloc/free and,
// more importantly, the page faults of freshly trimmed heap on every call.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

namespace amago_fast {
namespace relabel {
namespace {  // internal linkage: pybind11's types are hidden, so must this be

class BatchField {
 public:
  // `counts[b]` elements of `dtype` for trajectory b.
  BatchField(const pybind11::dtype& dtype, const std::vector<int64_t>& counts)
      : dtype_(dtype), offsets_(counts.size() + 1, 0) {
    for (size_t b = 0; b < counts.size(); ++b) offsets_[b + 1] = offsets_[b] + counts[b];
    buffer_ = pybind11::array(dtype_, std::vector<pybind11::ssize_t>{offsets_.back()});
    base_ = static_cast<char*>(buffer_.mutable_data());
  }

  void* data(size_t b) const { return base_ + offsets_[b] * dtype_.itemsize(); }

  // A C-contiguous view of trajectory b's elements with the given shape.
  pybind11::array view(size_t b, std::vector<pybind11::ssize_t> shape) const {
    return pybind11::array(dtype_, std::move(shape), data(b), buffer_);
  }

 private:
  pybind11::dtype dtype_;
  std::vector<int64_t> offsets_;
  pybind11::array buffer_;
  char* base_ = nullptr;
};

}  // namespace
}  // namespace relabel
}  // namespace amago_fast
