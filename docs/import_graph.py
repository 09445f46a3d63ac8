"""Print which of our packages each package imports (tests left out), from grimp's graph.

`docs/architecture.md` shows this output; `core/tests/test_architecture.py` checks it still
matches. Run: `.venv/bin/python docs/import_graph.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "algomirror",
    "strategies",
    "risk",
    "trading",
    "marketdata",
    "accounts",
    "core",
    "openalgo_client",
    "brokersim",
]


def edges() -> dict[str, list[str]]:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    out = {}
    for package in PACKAGES:
        deps = set()
        for module in graph.find_descendants(package) | {package}:
            if ".tests" in module:
                continue
            for imported in graph.find_modules_directly_imported_by(module):
                top = imported.split(".")[0]
                if top in PACKAGES and top != package:
                    deps.add(top)
        out[package] = sorted(deps, key=PACKAGES.index)
    return out


def render() -> str:
    return "\n".join(f"{p:<16} -> {', '.join(d) or '(nothing of ours)'}" for p, d in edges().items())


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
