"""The package layers hold: ``lib`` is general (it never imports the domains under ``defs``),
the replay server ships without the domains and without what only tests use, and no shipped
module imports the test-only generators of ``mkt_platform.testing``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mkt_platform"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports are not used here)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


RULES = {
    # folder: module prefixes its files must not import
    "lib": ("mkt_platform.defs", "mkt_platform.testing", "tests"),
    "replay": ("mkt_platform.defs", "mkt_platform.testing", "tests"),
    "defs": ("mkt_platform.testing", "tests"),
}


@pytest.mark.parametrize("folder", sorted(RULES))
def test_layer_imports(folder):
    offending = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / folder).rglob("*.py")
        for name in imports(path)
        if name.startswith(RULES[folder])
    }
    assert not offending, sorted(offending)


def test_shipped_top_level_modules_do_not_import_test_helpers():
    for path in PACKAGE.glob("*.py"):
        assert not {n for n in imports(path) if n.startswith(("mkt_platform.testing", "tests"))}
