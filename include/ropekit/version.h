// ropekit/version.h — the library's version, written here only: CMake's project() reads these
// three numbers (CMakeLists.txt), so the package version and kVersion cannot disagree.
#pragma once

#define ROPEKIT_VERSION_MAJOR 0
#define ROPEKIT_VERSION_MINOR 1
#define ROPEKIT_VERSION_PATCH 0

#define ROPEKIT_VERSION_STR2(x) #x
#define ROPEKIT_VERSION_STR(x) ROPEKIT_VERSION_STR2(x)

namespace ropekit {
// "MAJOR.MINOR.PATCH"
inline constexpr const char* kVersion =
    ROPEKIT_VERSION_STR(ROPEKIT_VERSION_MAJOR) "." ROPEKIT_VERSION_STR(
        ROPEKIT_VERSION_MINOR) "." ROPEKIT_VERSION_STR(ROPEKIT_VERSION_PATCH);
}  // namespace ropekit
