"""Builds the Python package `ropekit` with CMake (the library + the pybind11 extension).

Install from a clone, into the active Python environment, without network:

    python3 -m pip install --no-build-isolation --no-deps .

Needs CMake, a C++20 compiler, Highway, nlohmann-json, pybind11 (Debian: pybind11-dev) and NumPy
(see scripts/quickstart.sh for the Debian packages). The CMake build directory is
build-pip/ (ROPEKIT_PIP_BUILD_DIR overrides it); ccache is used when installed.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        target = os.path.abspath(self.get_ext_fullpath(ext.name))
        build_dir = os.environ.get("ROPEKIT_PIP_BUILD_DIR", os.path.join(ROOT, "build-pip"))
        cfg = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
               "-DROPEKIT_BUILD_CLI=OFF", "-DROPEKIT_BUILD_TESTS=OFF",
               "-DROPEKIT_BUILD_PYTHON=ON", f"-DPython3_EXECUTABLE={sys.executable}"]
        if shutil.which("ninja") and not os.path.exists(os.path.join(build_dir, "Makefile")):
            cfg += ["-G", "Ninja"]
        if shutil.which("ccache"):
            cfg += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
        jobs = os.environ.get("ROPEKIT_JOBS", str(os.cpu_count() or 2))
        subprocess.check_call(cfg)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "ropekit_python",
                               "-j", jobs])
        built = glob.glob(os.path.join(build_dir, "python", "ropekit", "_ropekit*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one built extension in {build_dir}, found {built}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)
        # package data: the built-in model configs (models/*.json), loadable by name
        models = os.path.join(os.path.dirname(target), "models")
        os.makedirs(models, exist_ok=True)
        for f in glob.glob(os.path.join(ROOT, "models", "*.json")):
            shutil.copyfile(f, os.path.join(models, os.path.basename(f)))


def version():
    with open(os.path.join(ROOT, "include", "ropekit", "version.h")) as f:
        text = f.read()
    parts = [re.search(r"#define ROPEKIT_VERSION_%s (\d+)" % k, text).group(1)
             for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)  # version.h is the one place the version is written


setup(
    name="ropekit",
    version=version(),
    description="Rotary positional embeddings (RoPE) for LLMs: configs, exact frequencies, "
                "fast CPU kernels, NumPy and PyTorch",
    packages=["ropekit"],
    package_dir={"": "python"},
    ext_modules=[CMakeExtension("ropekit._ropekit")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.8",
    install_requires=["numpy"],
    zip_safe=False,
)
