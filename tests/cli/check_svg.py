#!/usr/bin/python3
"""Parses the SVG that `ropekit plot` writes as XML (standard library only: no numpy) and checks
one scaled series per requested curve, axis labels, a legend entry per series and the context
reference lines. Usage: check_svg.py ROPEKIT_BINARY SCRATCH_DIR"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def plot(binary, out, *models):
    r = subprocess.run([binary, "plot", *models, "-o", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ET.parse(out).getroot()  # raises ParseError when not well-formed


def series(root, kind):
    return [g for g in root.iter(SVG + "g")
            if g.get("class") == "series" and g.get("data-kind") == kind]


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    out = os.path.join(scratch, "check.svg")

    root = plot(binary, out, "llama-3.1-8b-instruct", "qwen2.5-7b-instruct-yarn",
                "gemma-3-4b-text", "deepseek-v3", "phi-4-mini-instruct")
    assert root.tag == SVG + "svg", root.tag
    scaled = series(root, "scaled")
    labels = [g.get("data-label") for g in scaled]
    assert labels == ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct-yarn",
                      "gemma-3-4b-text:full_attention", "gemma-3-4b-text:sliding_attention",
                      "deepseek-v3", "phi-4-mini-instruct"], labels
    for g in scaled:
        lines = g.findall(SVG + "polyline")
        assert lines, g.get("data-label")
        points = sum(len(p.get("points").split()) for p in lines)
        assert points >= 16, (g.get("data-label"), points)
    assert len(series(root, "unscaled")) == 5  # all but Gemma's plain sliding layers

    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    assert any("frequency index" in t for t in texts), texts
    assert any("wavelength" in t for t in texts), texts
    legend = [g for g in root.iter(SVG + "g") if g.get("class") == "legend"]
    assert len(legend) == 1
    legend_texts = ["".join(t.itertext()) for t in legend[0].iter(SVG + "text")]
    assert len(legend_texts) == len(scaled) + 5 + 1, legend_texts  # curves + "context length"
    refs = {float(g.get("data-tokens")) for g in root.iter(SVG + "g") if g.get("class") == "reference"}
    assert {4096.0, 8192.0, 131072.0, 163840.0} <= refs, refs

    one = plot(binary, out, "mistral-7b-v0.1")
    assert len(series(one, "scaled")) == 1 and not series(one, "unscaled")
    print("check_svg: 2 passed, 0 failed")


if __name__ == "__main__":
    main()
