#include "dlpack_array.h"

#include <pybind11/pybind11.h>

#include <cstring>
#include <string>
#include <utility>

namespace py = pybind11;

namespace ropekit_py {
namespace {

[[noreturn]] void type_error(const char* name, const std::string& expected,
                             const std::string& got) {
  throw py::type_error(std::string(name) + ": expected " + expected + ", got " + got);
}
[[noreturn]] void value_error(const char* name, const std::string& expected,
                              const std::string& got) {
  throw py::value_error(std::string(name) + ": expected " + expected + ", got " + got);
}

const char* kSupported = "a float32, float16 or bfloat16 array or tensor";

std::string type_name(PyObject* obj) { return Py_TYPE(obj)->tp_name; }

// Element type of a PEP 3118 format string ("<f", "=e", "H", ...).
bool elem_from_format(const char* fmt, Py_ssize_t itemsize, Elem& e) {
  if (fmt == nullptr) return false;
  while (*fmt == '<' || *fmt == '=' || *fmt == '@' || *fmt == '!' || *fmt == '>') {
    if (*fmt == '>' || *fmt == '!') return false;  // big-endian data
    ++fmt;
  }
  if (fmt[0] == '\0' || fmt[1] != '\0') return false;
  switch (fmt[0]) {
    case 'f':
      e = Elem::kF32;
      return itemsize == 4;
    case 'e':
      e = Elem::kF16;
      return itemsize == 2;
    case 'H':
      e = Elem::kBF16;
      return itemsize == 2;  // bfloat16 bits (NumPy has no bfloat16)
    case 'i':
    case 'l':
    case 'q':
    case 'I':
      if (itemsize == 4 && fmt[0] != 'I') {
        e = Elem::kI32;
        return true;
      }
      if (itemsize == 8 && fmt[0] != 'I') {
        e = Elem::kI64;
        return true;
      }
      return false;
    default:
      return false;
  }
}

bool elem_from_dl(const DLDataType& t, Elem& e) {
  if (t.lanes != 1) return false;
  if (t.code == 2 && t.bits == 32) {
    e = Elem::kF32;
    return true;
  }
  if (t.code == 2 && t.bits == 16) {
    e = Elem::kF16;
    return true;
  }
  if (t.code == 4 && t.bits == 16) {
    e = Elem::kBF16;
    return true;
  }
  if (t.code == 0 && t.bits == 32) {
    e = Elem::kI32;
    return true;
  }
  if (t.code == 0 && t.bits == 64) {
    e = Elem::kI64;
    return true;
  }
  return false;
}

std::string dl_type_str(const DLDataType& t) {
  const char* kind = t.code == 0   ? "int"
                     : t.code == 1 ? "uint"
                     : t.code == 2 ? "float"
                     : t.code == 4 ? "bfloat"
                     : t.code == 6 ? "bool"
                                   : "code";
  return std::string(kind) + std::to_string(t.bits);
}

// torch's own exporter (torch._C._to_dlpack), when torch is imported; never imports it.
PyObject* g_torch_tensor_type = nullptr;
PyObject* g_torch_to_dlpack = nullptr;

bool torch_fast_path(PyObject* obj, PyObject** capsule) {
  if (g_torch_tensor_type == nullptr) {
    PyObject* modules = PyImport_GetModuleDict();
    PyObject* torch = PyDict_GetItemString(modules, "torch");  // borrowed
    if (torch == nullptr || torch == Py_None) return false;
    PyObject* tensor = PyObject_GetAttrString(torch, "Tensor");
    PyObject* c_mod = PyObject_GetAttrString(torch, "_C");
    PyObject* fn = c_mod ? PyObject_GetAttrString(c_mod, "_to_dlpack") : nullptr;
    Py_XDECREF(c_mod);
    if (tensor == nullptr || fn == nullptr || !PyType_Check(tensor)) {
      PyErr_Clear();
      Py_XDECREF(tensor);
      Py_XDECREF(fn);
      return false;
    }
    g_torch_tensor_type = tensor;  // kept for the process lifetime
    g_torch_to_dlpack = fn;
  }
  if (!PyObject_TypeCheck(obj, reinterpret_cast<PyTypeObject*>(g_torch_tensor_type))) return false;
  *capsule = PyObject_CallOneArg(g_torch_to_dlpack, obj);
  return true;
}

}  // namespace

const char* elem_name(Elem e) {
  switch (e) {
    case Elem::kF32:
      return "float32";
    case Elem::kF16:
      return "float16";
    case Elem::kBF16:
      return "bfloat16";
    case Elem::kI32:
      return "int32";
    case Elem::kI64:
      return "int64";
  }
  return "?";
}

Array::Array(Array&& o) noexcept { *this = std::move(o); }

Array& Array::operator=(Array&& o) noexcept {
  if (this == &o) return *this;
  release();
  data = o.data;
  elem = o.elem;
  ndim = o.ndim;
  std::memcpy(shape, o.shape, sizeof(shape));
  std::memcpy(strides, o.strides, sizeof(strides));
  readonly = o.readonly;
  buf_ = o.buf_;
  has_buf_ = o.has_buf_;
  managed_ = o.managed_;
  o.has_buf_ = false;
  o.managed_ = nullptr;
  return *this;
}

Array::~Array() { release(); }

void Array::release() {
  if (has_buf_) {
    PyBuffer_Release(&buf_);
    has_buf_ = false;
  }
  if (managed_ != nullptr) {
    if (managed_->deleter) managed_->deleter(managed_);
    managed_ = nullptr;
  }
}

std::int64_t Array::size() const {
  std::int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

bool Array::c_contiguous() const {
  std::int64_t expect = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

std::string Array::shape_str() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Array acquire_array(PyObject* obj, const char* name, bool writable) {
  Array a;
  if (obj == nullptr || obj == Py_None) type_error(name, kSupported, "None");
  PyObject* capsule = nullptr;
  const bool torch = torch_fast_path(obj, &capsule);
  if (!torch && PyObject_CheckBuffer(obj)) {
    const int flags = PyBUF_RECORDS_RO;  // strides + format, read-only allowed
    if (PyObject_GetBuffer(obj, &a.buf_, flags | (writable ? PyBUF_WRITABLE : 0)) != 0) {
      PyErr_Clear();
      if (writable && PyObject_GetBuffer(obj, &a.buf_, flags) == 0) {
        PyBuffer_Release(&a.buf_);
        value_error(name, "a writable array (it is written in place)", "a read-only array");
      }
      PyErr_Clear();
      type_error(name, kSupported,
                 "an object whose buffer cannot be read (" + type_name(obj) + ")");
    }
    a.has_buf_ = true;
    a.readonly = a.buf_.readonly != 0;
    if (!elem_from_format(a.buf_.format, a.buf_.itemsize, a.elem))
      type_error(name, kSupported + std::string(" (uint16 holds bfloat16 bits)"),
                 std::string("a buffer of format '") + (a.buf_.format ? a.buf_.format : "B") +
                     "' (" + type_name(obj) + ")");
    if (a.buf_.ndim > Array::kMaxDims)
      value_error(name, "at most 8 dimensions", std::to_string(a.buf_.ndim));
    a.ndim = a.buf_.ndim;
    a.data = a.buf_.buf;
    for (int i = 0; i < a.ndim; ++i) {
      a.shape[i] = a.buf_.shape[i];
      const Py_ssize_t st = a.buf_.strides ? a.buf_.strides[i] : 0;
      if (st % a.buf_.itemsize != 0)
        value_error(name, "strides that are whole elements", std::to_string(st) + " bytes");
      a.strides[i] = st / a.buf_.itemsize;
    }
    if (a.buf_.strides == nullptr) {  // C-contiguous
      std::int64_t s = 1;
      for (int i = a.ndim - 1; i >= 0; --i) {
        a.strides[i] = s;
        s *= a.shape[i];
      }
    }
    return a;
  }
  if (!torch) {
    PyObject* method = PyObject_GetAttrString(obj, "__dlpack__");
    if (method == nullptr) {
      PyErr_Clear();
      type_error(name, kSupported + std::string(" (NumPy array, torch tensor, or DLPack)"),
                 type_name(obj));
    }
    capsule = PyObject_CallNoArgs(method);
    Py_DECREF(method);
  }
  if (capsule == nullptr) {
    // e.g. torch refusing to export a tensor that requires grad, or a conjugate view
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    std::string msg = "(unknown error)";
    if (ev) {
      PyObject* s = PyObject_Str(ev);
      if (s) {
        msg = PyUnicode_AsUTF8(s);
        Py_DECREF(s);
      }
    }
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    value_error(name, "an array exportable through DLPack", type_name(obj) + " (" + msg + ")");
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (managed == nullptr) {
    PyErr_Clear();
    Py_DECREF(capsule);
    type_error(name, "a DLPack capsule named 'dltensor'", "another capsule");
  }
  PyCapsule_SetName(capsule, "used_dltensor");  // consumed: the capsule no longer deletes it
  Py_DECREF(capsule);
  a.managed_ = managed;
  const DLTensor& t = managed->dl_tensor;
  if (t.device.device_type != 1)
    value_error(name, "a CPU tensor (ropekit runs on the CPU)",
                "a tensor on DLPack device type " + std::to_string(t.device.device_type) +
                    (t.device.device_type == 2 ? " (CUDA)" : ""));
  if (!elem_from_dl(t.dtype, a.elem)) type_error(name, kSupported, dl_type_str(t.dtype));
  if (t.ndim > Array::kMaxDims) value_error(name, "at most 8 dimensions", std::to_string(t.ndim));
  a.ndim = t.ndim;
  const int es = t.dtype.bits / 8;
  a.data = static_cast<char*>(t.data) + t.byte_offset;
  std::int64_t s = 1;
  for (int i = a.ndim - 1; i >= 0; --i) {
    a.shape[i] = t.shape[i];
    a.strides[i] = t.strides ? t.strides[i] : s;
    s *= t.shape[i];
  }
  (void)es;
  a.readonly = false;
  return a;
}

}  // namespace ropekit_py
