# Warning flags for ropekit's own targets (never for dependencies). Not -Wdouble-promotion:
# float → double promotion is exact, and this library promotes on purpose (the reference).
function(ropekit_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
      -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
      -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 at -O3 reports -Wrestrict inside std::string concatenation (libstdc++ inlining;
      # GCC bug 105329), a false positive on code that never overlaps.
      target_compile_options(${target} PRIVATE -Wno-restrict)
    endif()
    if(ROPEKIT_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
