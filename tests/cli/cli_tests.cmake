# Tests of the ropekit command (cli/), included from tests/CMakeLists.txt; all in this folder,
# all running the command through the one runner cli_run.{h,cc} (.npy inputs: npy_test_file.h):
#   cli_helpers_test        the helpers that need no process (names, tables, SVG writer,
#                           the bench's statistics and baselines, the CPU description)
#   cli_commands_test       every subcommand: exit codes, JSON shapes, tables vs the API
#   cli_freqs_apply_test    freqs / apply output equals the library's plan and rotation
#   cli_errors_test         the error catalogue: usage errors exit 1, bad input exits 2
#   cli_png_test            PNG charts decoded with cairo (where librsvg is built in)
#   cli_hostile_test        hostile inputs, full disks, closed stdout (label hostile)
#   cli_plot_svg_xml        the plot parsed as XML by Python's standard library
if(NOT TARGET ropekit_cli)
  return()  # ROPEKIT_BUILD_CLI=OFF
endif()
find_package(fmt 9 REQUIRED)  # imported targets are directory-scoped: cli/ found it for itself

ropekit_add_test(cli_helpers_test LABELS cli LIBS fmt::fmt
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_helpers_test.cc
          ${PROJECT_SOURCE_DIR}/cli/bench_loops.cc
          ${PROJECT_SOURCE_DIR}/cli/bench_stats.cc
          ${PROJECT_SOURCE_DIR}/cli/machine_info.cc
          ${PROJECT_SOURCE_DIR}/cli/suggest.cc
          ${PROJECT_SOURCE_DIR}/cli/text_table.cc
          ${PROJECT_SOURCE_DIR}/cli/svg_plot.cc)
target_include_directories(cli_helpers_test PRIVATE ${PROJECT_SOURCE_DIR}/cli)

foreach(_name IN ITEMS cli_commands_test cli_freqs_apply_test cli_errors_test cli_gguf_test)
  ropekit_add_test(${_name} LABELS cli
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${_name}.cc ${CMAKE_CURRENT_LIST_DIR}/cli_run.cc)
  target_include_directories(${_name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
endforeach()

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME cli_plot_svg_xml
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_LIST_DIR}/check_svg.py
                   $<TARGET_FILE:ropekit_cli> ${ROPEKIT_CLI_TEST_SCRATCH}/svg_xml)
  set_tests_properties(cli_plot_svg_xml PROPERTIES LABELS cli)
else()
  message(STATUS "python3 not found: cli_plot_svg_xml (SVG parsed as XML) is not run")
endif()

# PNG charts: only where the command was built with librsvg (cli/CMakeLists.txt: not in
# sanitizer builds); the PNG is decoded with cairo.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND AND NOT ROPEKIT_SANITIZE)
  pkg_check_modules(ROPEKIT_TEST_CAIRO QUIET IMPORTED_TARGET librsvg-2.0 cairo)
endif()
if(ROPEKIT_TEST_CAIRO_FOUND)
  ropekit_add_test(cli_png_test LABELS cli LIBS PkgConfig::ROPEKIT_TEST_CAIRO
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_png_test.cc ${CMAKE_CURRENT_LIST_DIR}/cli_run.cc)
  target_include_directories(cli_png_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
endif()

# Hostile inputs, environments and failing outputs: every case checks the exit code, the message,
# that nothing (no output, no temporary file) is left on failure and that inputs are unchanged.
# Label `hostile`: ctest -L hostile.
ropekit_add_test(cli_hostile_test LABELS hostile LIBS fmt::fmt
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_hostile_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/cli_run.cc
          ${PROJECT_SOURCE_DIR}/cli/npy.cc
          ${PROJECT_SOURCE_DIR}/cli/file_io.cc)
target_include_directories(cli_hostile_test PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/cli)
if(ROPEKIT_SANITIZE)  # address-space limits cannot be combined with sanitizer shadow memory
  target_compile_definitions(cli_hostile_test PRIVATE ROPEKIT_TEST_SANITIZED=1)
endif()
