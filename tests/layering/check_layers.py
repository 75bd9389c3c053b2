#!/usr/bin/env python3
"""Fails when an #include crosses ropekit's layers the wrong way.

Usage: check_layers.py REPO_ROOT          check the repository against tests/layering/layers.txt
       check_layers.py --self-test         check that the checker catches wrong-way includes

A quoted include "a/b.h" is resolved like the build does: beside the including file, then under
include/, then under src/ (the ropekit::internal include path), then under the including file's
own top folder (cli/, tests/, ...). An include that resolves to a file of the repository must
point into a folder the including file's layer may use. Public headers (include/ropekit) may
include only "ropekit/..." headers and standard headers (<name> without a '.' or '/').
Standard library only: runs on any Python 3.
"""
import os
import re
import sys
import tempfile

SOURCE_EXTENSIONS = (".h", ".hpp", ".cc", ".cpp", ".inl")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
SKIP_DIRS = {".git", "build", "shared", ".gl", ".whl"}


def read_layers(path):
    layers = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            folder, *allowed = line.split()
            layers[folder] = allowed
    return layers


def layer_of(rel_path, layers):
    best = None
    for folder in layers:
        if rel_path == folder or rel_path.startswith(folder + "/"):
            if best is None or len(folder) > len(best):
                best = folder
    return best


def resolve(root, rel_file, target):
    here = os.path.dirname(rel_file)
    top = rel_file.split("/", 1)[0]
    for base in (here, "include", "src", top):
        candidate = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(root, candidate)):
            return candidate.replace(os.sep, "/")
    return None


def check(root, layers):
    problems = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")]
        for name in filenames:
            if not name.endswith(SOURCE_EXTENSIONS):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            layer = layer_of(rel, layers)
            with open(full, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    kind, target = m.groups()
                    where = f"{rel}:{number}: #include {kind}{target}{'>' if kind == '<' else kind}"
                    if layer == "include/ropekit":
                        if kind == "<" and ("." in target or "/" in target):
                            problems.append(f"{where}: public headers include only the standard library")
                            continue
                    resolved = resolve(root, rel, target) if kind == '"' else None
                    if resolved is None:
                        if layer == "include/ropekit" and kind == '"':
                            problems.append(f"{where}: not a ropekit public header")
                        continue
                    target_layer = layer_of(resolved, layers)
                    if target_layer == layer:
                        continue
                    allowed = layers.get(layer, []) if layer else []
                    if not any(resolved == a or resolved.startswith(a + "/") for a in allowed):
                        problems.append(f"{where}: layer {layer or rel.split('/')[0]} may not include "
                                        f"{resolved} (layer {target_layer}); see tests/layering/layers.txt")
    return problems


def self_test():
    layers = read_layers(os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.txt"))
    cases = {
        "src/simd/rope.cc": ('#include "apply/boundary.h"\n', True),     # backend -> boundary
        "src/freq/plan.cc": ('#include "config/json_access.h"\n', True),  # math -> JSON front-end
        "include/ropekit/a.h": ('#include <nlohmann/json.hpp>\n', True),  # third party in public
        "src/apply/apply.cc": ('#include "kernel/job.h"\n', False),       # boundary -> contract
        "cli/main.cc": ('#include "ropekit/apply.h"\n#include <vector>\n', False),
    }
    files = {"src/apply/boundary.h": "", "src/config/json_access.h": "", "src/kernel/job.h": "",
             "include/ropekit/apply.h": ""}
    failures = 0
    for path, (text, should_fail) in cases.items():
        with tempfile.TemporaryDirectory() as root:
            for p, body in list(files.items()) + [(path, text)]:
                os.makedirs(os.path.join(root, os.path.dirname(p)), exist_ok=True)
                with open(os.path.join(root, p), "w", encoding="utf-8") as f:
                    f.write(body)
            found = check(root, layers)
            if bool(found) != should_fail:
                failures += 1
                print(f"self-test: {path} with {text.strip()!r}: expected "
                      f"{'a violation' if should_fail else 'none'}, got {found}")
    print(f"self-test: {len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2:
        print(__doc__)
        return 2
    root = os.path.abspath(argv[1])
    layers = read_layers(os.path.join(root, "tests", "layering", "layers.txt"))
    problems = check(root, layers)
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} wrong-way include(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
