// Arrays handed to the extension: NumPy (and anything with the buffer protocol) through
// PEP 3118 buffers, torch (and anything else with `__dlpack__`) through DLPack. Nothing here
// links or imports torch: a torch.Tensor is only recognised by its `__dlpack__` method (and,
// when torch is already imported, its type, to call torch's C-level exporter directly).
#pragma once

#include <Python.h>

#include <cstdint>
#include <string>

namespace ropekit_py {

// ---- the DLPack ABI (https://dmlc.github.io/dlpack/latest/c_api.html), v0.x ----------------
struct DLDevice {
  std::int32_t device_type;  // kDLCPU = 1
  std::int32_t device_id;
};
struct DLDataType {
  std::uint8_t code;  // kDLInt 0, kDLUInt 1, kDLFloat 2, kDLBfloat 4
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // elements; NULL: compact row-major
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

enum class Elem { kF32, kF16, kBF16, kI32, kI64 };
const char* elem_name(Elem e);

// One acquired array: data pointer, shape and strides in elements. Move-only; releases the
// buffer / calls the DLPack deleter when destroyed (with the GIL held).
class Array {
 public:
  static constexpr int kMaxDims = 8;
  Array() = default;
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  Array(Array&& o) noexcept;
  Array& operator=(Array&& o) noexcept;
  ~Array();

  void* data = nullptr;
  Elem elem = Elem::kF32;
  int ndim = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t strides[kMaxDims] = {};
  bool readonly = false;

  std::int64_t size() const;
  bool c_contiguous() const;
  std::string shape_str() const;

 private:
  friend Array acquire_array(PyObject* obj, const char* name, bool writable);
  void release();
  Py_buffer buf_{};
  bool has_buf_ = false;
  DLManagedTensor* managed_ = nullptr;
};

// Acquires `obj` (argument `name`, for messages). writable: the caller will write into it
// (read-only buffers are refused with ValueError). Throws pybind11 exceptions: TypeError for
// what is not an array of a supported dtype, ValueError for a non-CPU device or read-only data.
Array acquire_array(PyObject* obj, const char* name, bool writable);

}  // namespace ropekit_py
