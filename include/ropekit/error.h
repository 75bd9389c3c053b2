// ropekit/error.h — the exceptions ropekit throws.
//
// Every error ropekit reports is one of these types. Messages name what was wrong
// (a JSON path, a tensor and axis, an argument), what was expected, and the value found:
//
//   ConfigError:   rope_scaling.factor: expected a finite number >= 1, got -2
//   ArgumentError: [ropekit.apply] q.head_dim: expected 128 (the plan's head_dim), got 96
//
//   ropekit::Error (std::runtime_error)
//     ├── ConfigError       a model config or factory argument cannot give a correct rotation
//     ├── ArgumentError     an API call with bad shapes, strides, pointers, positions or dtypes
//     └── IoError           a file that cannot be read or written (.npy, config path)
#pragma once

#include <stdexcept>
#include <string>

namespace ropekit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A configuration error. `path()` is the JSON path of the offending key
// (e.g. "rope_scaling.long_factor[3]", or "" for the document itself).
class ConfigError : public Error {
 public:
  ConfigError(std::string path, const std::string& message)
      : Error(path.empty() ? message : path + ": " + message), path_(std::move(path)) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// A bad API argument: shape, stride, pointer, position or dtype. `what()` names the argument.
class ArgumentError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be opened, read, parsed (.npy) or written.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace ropekit
