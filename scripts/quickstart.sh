#!/usr/bin/env bash
# ropekit quick start: installs what is missing (Debian packages), builds, then
#   run   shows a built-in model's RoPE and writes a plot (the main job)
#   test  runs the whole test suite
# Usage: bash scripts/quickstart.sh run|test   (from anywhere; builds in ./build)
set -euo pipefail
mode=${1:-run}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ROPEKIT_BUILD_DIR:-$root/build}
jobs=${ROPEKIT_JOBS:-$(nproc)}

packages=(cmake ninja-build g++ pkg-config libhwy-dev nlohmann-json3-dev libcli11-dev libfmt-dev
          libgtest-dev libbenchmark-dev python3 librsvg2-dev
          python3-dev python3-numpy python3-torch pybind11-dev python3-pytest python3-venv
          python3-pip python3-setuptools python3-wheel binutils)
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

echo "== configuring and building in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DROPEKIT_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs"

case "$mode" in
  run)
    echo "== ropekit show llama-3.1-8b-instruct"
    "$build/ropekit" show llama-3.1-8b-instruct
    "$build/ropekit" plot llama-3.1-8b-instruct qwen2.5-7b-instruct-yarn gpt-oss-20b gemma-3-4b-text \
      -o "$build/rope-wavelengths.svg"
    echo "== wrote $build/rope-wavelengths.svg"
    if [ -d "$build/python/ropekit" ]; then
      echo "== Python: ropekit.load('llama-3.1-8b-instruct') (PYTHONPATH=$build/python)"
      PYTHONPATH="$build/python" /usr/bin/python3 -c 'import ropekit, numpy as np
rope = ropekit.load("llama-3.1-8b-instruct").default
print(rope, "attention_factor", rope.attention_factor)
print("q[1, 0, :4] at position 1:", rope.apply(np.ones((2, 1, 128), np.float32), positions=0)[1, 0, :4])'
    fi
    ;;
  test)
    echo "== ctest"
    ctest --test-dir "$build" --output-on-failure -j "$jobs"
    ;;
  *) echo "usage: $0 run|test" >&2; exit 1 ;;
esac
