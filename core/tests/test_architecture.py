"""The layers hold: the import contracts in .importlinter are kept, and they really catch a
forbidden import (each contract is shown broken by one injected import), and no import inside a
function reaches another of our packages."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("algomirror", "accounts", "marketdata", "trading", "strategies", "risk", "api", "core", "openalgo_client")

# Run in a clean interpreter: classes patched by libraries a Django test process has loaded
# (zope.interface's __provides__) trip import-linter's option check.
_PROBE = """
import json, sys
from importlinter import configuration
from importlinter.application import use_cases
from importlinter.application.app_config import settings

configuration.configure()
use_cases._register_built_in_contract_types()  # what `lint-imports` does before checking
extra = json.loads(sys.argv[2])
real = settings.GRAPH_BUILDER


class WithExtra:
    def build(self, **kwargs):
        graph = real.build(**kwargs)
        for importer, imported in extra:
            graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="import x")
        return graph


settings.configure(GRAPH_BUILDER=WithExtra())
report = use_cases.create_report(use_cases.read_user_options(config_filename=sys.argv[1]), cache_dir=None)
print(json.dumps({c.name: check.kept for c, check in report.get_contracts_and_checks()}))
"""


def _report(*extra: tuple[str, str]) -> dict[str, bool]:
    """Check every contract against the real import graph plus `extra` (importer, imported) edges."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / ".importlinter"), json.dumps(extra)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def _name(results: dict[str, bool], start: str) -> str:
    return next(name for name in results if name.startswith(start))


def test_every_contract_is_kept_today():
    results = _report()
    assert len(results) >= 4
    assert all(results.values()), [name for name, kept in results.items() if not kept]


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("accounts.services", "trading.models", "Apps depend one way"),
        ("marketdata.selectors", "strategies", "Apps depend one way"),
        ("core.realtime", "accounts.events", "Apps depend one way"),
        ("brokersim.engine", "core.redis", "brokersim"),
        ("trading.pnl", "django.db", "The pure core"),
        ("openalgo_client.rest", "django.conf", "The pure core"),
        ("trading.views", "accounts.models", "Another app's models"),
    ],
)
def test_a_forbidden_import_is_caught(importer, imported, contract):
    results = _report((importer, imported))
    assert results[_name(results, contract)] is False
    assert all(kept for name, kept in results.items() if not name.startswith(contract))


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name) for alias in node.names)
    return found


# The only function-level imports of another package that are allowed, each with its reason.
FUNCTION_LEVEL_ALLOWED = {
    # Celery's worker_init runs before Django is set up; the project layer may import any app, so
    # no cycle can hide here.
    ("algomirror/celery.py", "accounts.keycheck"),
}


def test_no_import_inside_a_function_reaches_another_of_our_packages():
    """A function-level import is how a cycle between apps hides from the contracts' reader."""
    offenders = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            for line, module in _function_level_imports(path):
                top = module.split(".")[0]
                if (
                    top in OURS
                    and top != package
                    and (str(path.relative_to(ROOT)), module) not in FUNCTION_LEVEL_ALLOWED
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_the_documented_import_graph_is_the_real_one():
    out = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "import_graph.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert out in doc, f"docs/architecture.md's import graph is out of date; it is now:\n{out}"
