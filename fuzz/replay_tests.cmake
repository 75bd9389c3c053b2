# Replay executables of the fuzz targets (no libFuzzer: fuzz/replay_main.cc), built with any
# compiler, and ctest tests replaying every kept crash (fuzz/regressions/<target>/) and the seed
# corpus (fuzz/corpus/<target>/, plus models/ and tests/data/mlx-lm/ for the config target). Included from tests/CMakeLists.txt (and fuzz/CMakeLists.txt).
#   include(${PROJECT_SOURCE_DIR}/fuzz/replay_tests.cmake)
set(_ropekit_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
foreach(_target IN ITEMS fuzz_config fuzz_apply_differential fuzz_gguf)
  if(TARGET ${_target}_replay)
    continue()
  endif()
  add_executable(${_target}_replay ${_ropekit_fuzz_dir}/${_target}.cc ${_ropekit_fuzz_dir}/replay_main.cc)
  target_include_directories(${_target}_replay PRIVATE ${_ropekit_fuzz_dir})
  target_link_libraries(${_target}_replay PRIVATE ropekit::ropekit)
  target_compile_features(${_target}_replay PRIVATE cxx_std_20)
  if(COMMAND ropekit_warnings)
    ropekit_warnings(${_target}_replay)
  endif()
  string(REPLACE "fuzz_" "" _short ${_target})  # config, apply_differential
  string(REPLACE "_differential" "" _short ${_short})
  set(_seeds ${_ropekit_fuzz_dir}/corpus/${_short})
  if(_short STREQUAL "config")  # the real configs seed the config fuzzer (fuzz/README.md)
    list(APPEND _seeds ${PROJECT_SOURCE_DIR}/models ${PROJECT_SOURCE_DIR}/tests/data/mlx-lm)
  endif()
  add_test(NAME fuzz_replay_${_short}
           COMMAND ${_target}_replay ${_ropekit_fuzz_dir}/regressions/${_short} ${_seeds})
  set_tests_properties(fuzz_replay_${_short} PROPERTIES TIMEOUT 900 LABELS fuzz)
endforeach()
