# SIMD backend (Highway, runtime dispatch). Included from src/CMakeLists.txt after add_library.
# No -march flags here, on purpose: Highway compiles each target with function attributes, and
# -march=native makes Highway 1.0.3 fail ("best baseline should be included in dynamic targets").
target_sources(ropekit PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/rope_f32.cc
  ${CMAKE_CURRENT_LIST_DIR}/rope_f16.cc
  ${CMAKE_CURRENT_LIST_DIR}/rope_bf16.cc
  ${CMAKE_CURRENT_LIST_DIR}/simd_misc.cc)
