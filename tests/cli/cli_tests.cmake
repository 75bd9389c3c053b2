# Tests of the ropekit command (cli/): included from tests/CMakeLists.txt.
#   cli_helpers_test   the helpers that need no process (names, tables, SVG writer)
#   cli_commands_test  every subcommand run as a process: exit codes, JSON shapes, tables vs API
#   cli_plot_svg_xml   the plot parsed as XML by Python's standard library
if(NOT TARGET ropekit_cli)
  return()  # ROPEKIT_BUILD_CLI=OFF
endif()
find_package(fmt 9 REQUIRED)  # imported targets are directory-scoped: cli/ found it for itself

set(ROPEKIT_CLI_TEST_SCRATCH ${CMAKE_CURRENT_BINARY_DIR}/cli_scratch)

add_executable(cli_helpers_test
  ${CMAKE_CURRENT_LIST_DIR}/cli_helpers_test.cc
  ${PROJECT_SOURCE_DIR}/cli/suggest.cc
  ${PROJECT_SOURCE_DIR}/cli/text_table.cc
  ${PROJECT_SOURCE_DIR}/cli/svg_plot.cc)
target_include_directories(cli_helpers_test PRIVATE ${PROJECT_SOURCE_DIR}/cli)
target_link_libraries(cli_helpers_test PRIVATE ropekit::ropekit fmt::fmt GTest::gtest GTest::gtest_main)
ropekit_warnings(cli_helpers_test)
gtest_discover_tests(cli_helpers_test DISCOVERY_TIMEOUT 60)

add_executable(cli_commands_test
  ${CMAKE_CURRENT_LIST_DIR}/cli_commands_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/cli_run.cc)
target_include_directories(cli_commands_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(cli_commands_test PRIVATE ropekit::ropekit GTest::gtest GTest::gtest_main
                      nlohmann_json::nlohmann_json)
target_compile_definitions(cli_commands_test PRIVATE
  ROPEKIT_CLI="$<TARGET_FILE:ropekit_cli>"
  ROPEKIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  ROPEKIT_CLI_TEST_SCRATCH="${ROPEKIT_CLI_TEST_SCRATCH}")
add_dependencies(cli_commands_test ropekit_cli)  # the tests run the command
ropekit_warnings(cli_commands_test)
gtest_discover_tests(cli_commands_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME cli_plot_svg_xml
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_LIST_DIR}/check_svg.py
                   $<TARGET_FILE:ropekit_cli> ${ROPEKIT_CLI_TEST_SCRATCH}/svg_xml)
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
  add_executable(cli_png_test ${CMAKE_CURRENT_LIST_DIR}/cli_png_test.cc ${CMAKE_CURRENT_LIST_DIR}/cli_run.cc)
  target_include_directories(cli_png_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(cli_png_test PRIVATE PkgConfig::ROPEKIT_TEST_CAIRO GTest::gtest GTest::gtest_main)
  target_compile_definitions(cli_png_test PRIVATE
    ROPEKIT_CLI="$<TARGET_FILE:ropekit_cli>"
    ROPEKIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    ROPEKIT_CLI_TEST_SCRATCH="${ROPEKIT_CLI_TEST_SCRATCH}")
  add_dependencies(cli_png_test ropekit_cli)
  ropekit_warnings(cli_png_test)
  gtest_discover_tests(cli_png_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
endif()

# Hostile inputs, environments and failing outputs (issue 19): every case checks the exit code,
# the message, that nothing (no output, no temporary file) is left on failure and that inputs are
# unchanged. Label `hostile`: ctest -L hostile.
add_executable(cli_hostile_test
  ${CMAKE_CURRENT_LIST_DIR}/cli_hostile_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/cli_run.cc
  ${PROJECT_SOURCE_DIR}/cli/npy.cc
  ${PROJECT_SOURCE_DIR}/cli/file_io.cc)
target_include_directories(cli_hostile_test PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/cli)
target_link_libraries(cli_hostile_test PRIVATE ropekit::ropekit fmt::fmt GTest::gtest GTest::gtest_main)
target_compile_definitions(cli_hostile_test PRIVATE
  ROPEKIT_CLI="$<TARGET_FILE:ropekit_cli>"
  ROPEKIT_CLI_TEST_SCRATCH="${ROPEKIT_CLI_TEST_SCRATCH}")
if(ROPEKIT_SANITIZE)  # address-space limits cannot be combined with sanitizer shadow memory
  target_compile_definitions(cli_hostile_test PRIVATE ROPEKIT_TEST_SANITIZED=1)
endif()
add_dependencies(cli_hostile_test ropekit_cli)
ropekit_warnings(cli_hostile_test)
gtest_discover_tests(cli_hostile_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 LABELS hostile)
