#!/usr/bin/env bash
# Robustness checks, run by .ci/run after the normal build and tests:
#
#   1. Clang 14 + AddressSanitizer + UndefinedBehaviorSanitizer: the whole project (library, CLI,
#      tests, and the libFuzzer targets, one build) and the whole ctest suite;
#   2. GCC 12 + ASan + UBSan: the whole project and the whole ctest suite (GCC and Clang
#      instrument different things: GCC's UBSan checks more builtins and object sizes, Clang's
#      ASan finds more stack-use-after-scope);
#   3. each fuzzer (fuzz/) for ROPEKIT_FUZZ_SECONDS on a copy of its seed corpus.
#
# -fno-sanitize-recover=all (cmake/RopekitSanitizers.cmake) makes every finding abort its test.
# Fails (exit 1) on any test failure, sanitizer report or fuzz finding, after running every step,
# and prints how long each step took. Works from a clean checkout on Debian (installs what is
# missing with apt-get).
#
# Environment:
#   ROPEKIT_JOBS                 build/test parallelism (default: nproc)
#   ROPEKIT_FUZZ_SECONDS         time per fuzzer (default 60)
#   ROPEKIT_SANITIZER_COMPILERS  "clang gcc" (default), "clang" or "gcc"
#   ROPEKIT_CLANG_BUILD_DIR      default ./build-fuzz  (Clang sanitizers + fuzzers)
#   ROPEKIT_GCC_BUILD_DIR        default ./build-asan  (GCC sanitizers)
# Fuzz findings are kept in $ROPEKIT_CLANG_BUILD_DIR/fuzz-findings/ (replay them with
# build/fuzz_*_replay FILE, see fuzz/README.md).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${ROPEKIT_JOBS:-$(nproc)}
fuzz_seconds=${ROPEKIT_FUZZ_SECONDS:-60}
compilers=${ROPEKIT_SANITIZER_COMPILERS:-clang gcc}
clang_dir=${ROPEKIT_CLANG_BUILD_DIR:-$root/build-fuzz}
gcc_dir=${ROPEKIT_GCC_BUILD_DIR:-$root/build-asan}
script_start=$(date +%s)

# ---- packages --------------------------------------------------------------------------------
packages=(cmake ninja-build g++-12 clang-14 libclang-rt-14-dev pkg-config libhwy-dev nlohmann-json3-dev
          libcli11-dev libfmt-dev libgtest-dev python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- sanitizer runtime options ------------------------------------------------------------------
# abort_on_error: a finding is a signal, never mistaken for a command's own exit code (the CLI
# tests check exit codes 1 and 2).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}

# ---- step bookkeeping ---------------------------------------------------------------------------
step_names=()
step_secs=()
step_status=()
failed=0
run_step() {  # run_step NAME COMMAND...
  local name=$1
  shift
  echo
  echo "=== robustness: $name"
  local start=$(date +%s)
  local rc=0
  "$@" || rc=$?
  local secs=$(( $(date +%s) - start ))
  step_names+=("$name")
  step_secs+=("$secs")
  if [ $rc -eq 0 ]; then
    step_status+=("ok")
  else
    step_status+=("FAILED (exit $rc)")
    failed=1
  fi
  echo "=== robustness: $name: ${step_status[-1]} in ${secs} s"
}

# Sanitizer builds are configured without -Werror: GCC 12 with -fsanitize=address reports
# false -Wmaybe-uninitialized in libstdc++ (std::function inside std::regex); the normal build
# of .ci/run checks the warnings.
configure() {  # configure DIR CC CXX EXTRA_CMAKE_ARGS...
  local dir=$1 cc=$2 cxx=$3
  shift 3
  CC=$cc CXX=$cxx cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DROPEKIT_SANITIZE="address;undefined" -DROPEKIT_WERROR=OFF "$@" >/dev/null
}
build() { cmake --build "$1" -j "$jobs"; }
# The package test builds a consumer of the installed (instrumented) library without the
# sanitizer runtime; it is run by the normal build.
test_suite() { ctest --test-dir "$1" -j "$jobs" --output-on-failure -LE package; }

for c in $compilers; do
  case $c in
    clang)
      run_step "clang-14 ASan+UBSan: configure" configure "$clang_dir" clang-14 clang++-14 -DROPEKIT_BUILD_FUZZERS=ON
      run_step "clang-14 ASan+UBSan: build (library, CLI, tests, fuzzers)" build "$clang_dir"
      run_step "clang-14 ASan+UBSan: ctest" test_suite "$clang_dir"
      ;;
    gcc)
      run_step "gcc-12 ASan+UBSan: configure" configure "$gcc_dir" gcc-12 g++-12
      run_step "gcc-12 ASan+UBSan: build" build "$gcc_dir"
      run_step "gcc-12 ASan+UBSan: ctest" test_suite "$gcc_dir"
      ;;
    *) echo "unknown compiler '$c' in ROPEKIT_SANITIZER_COMPILERS (clang, gcc)" >&2; failed=1 ;;
  esac
done

# ---- fuzz smoke runs ----------------------------------------------------------------------------
fuzz_one() {  # fuzz_one NAME MAX_LEN: runs fuzz_NAME on a copy of fuzz/corpus/<short name>
  local target=$1 max_len=$2
  local short=${target#fuzz_}
  short=${short%_differential}
  local bin="$clang_dir/fuzz/$target"
  local work="$clang_dir/fuzz-work/$short"
  local findings="$clang_dir/fuzz-findings"
  rm -rf "$work"
  mkdir -p "$work" "$findings"
  cp "$root/fuzz/corpus/$short/"* "$work/"
  if [ "$short" = config ]; then  # the real configs are seeds too (fuzz/README.md)
    cp "$root/models/"*.json "$root/tests/data/mlx-lm/"*.json "$work/"
  fi
  local rc=0
  "$bin" -max_total_time="$fuzz_seconds" -timeout=30 -rss_limit_mb=3072 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$findings/$short-" "$work" >"$clang_dir/fuzz-$short.log" 2>&1 || rc=$?
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$clang_dir/fuzz-$short.log" | tail -1)
  echo "$target: ${runs:-?} executions in ${fuzz_seconds} s, exit $rc"
  if [ $rc -ne 0 ]; then
    grep -E "FINDING|ERROR: |SUMMARY|runtime error|Test unit written" "$clang_dir/fuzz-$short.log" | head -20
    echo "full log: $clang_dir/fuzz-$short.log"
  fi
  return $rc
}
fuzz_both() {
  if [ ! -x "$clang_dir/fuzz/fuzz_config" ] || [ ! -x "$clang_dir/fuzz/fuzz_apply_differential" ] ||
     [ ! -x "$clang_dir/fuzz/fuzz_gguf" ]; then
    echo "fuzzers not built (the clang step failed or was skipped)" >&2
    return 1
  fi
  local rc=0
  if [ "$jobs" -ge 2 ]; then  # one core each, side by side
    fuzz_one fuzz_config 4096 & local p1=$!
    fuzz_one fuzz_apply_differential 512 & local p2=$!
    wait $p1 || rc=1
    wait $p2 || rc=1
  else
    fuzz_one fuzz_config 4096 || rc=1
    fuzz_one fuzz_apply_differential 512 || rc=1
  fi
  fuzz_one fuzz_gguf 4096 || rc=1  # the GGUF header reader (fuzz/corpus/gguf)
  return $rc
}
case " $compilers " in
  *" clang "*) run_step "fuzz smoke runs (${fuzz_seconds} s per fuzzer)" fuzz_both ;;
  *) echo "=== robustness: fuzz smoke runs skipped (they need the clang build)" ;;
esac

# ---- report ---------------------------------------------------------------------------------------
total=$(( $(date +%s) - script_start ))
echo
echo "=== robustness summary (jobs=$jobs)"
for i in "${!step_names[@]}"; do
  printf '  %-62s %6s s  %s\n' "${step_names[$i]}" "${step_secs[$i]}" "${step_status[$i]}"
done
printf '  %-62s %6s s\n' "total" "$total"
if [ $failed -ne 0 ]; then
  echo "=== robustness: FAILED"
  exit 1
fi
echo "=== robustness: ok"
