"""The layer rules for api.py, a module that import-linter cannot take as a root package.

The packages' rules are import-linter contracts in pyproject.toml (`lint-imports`, run by
`make test`); these are the same rules for the HTTP face's assembly: it imports the domain
(and verify's report rendering), never signing or keys, and nothing below it imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BELOW_THE_HTTP_FACE = ("routes", "econtract", "signing", "verify", "keys")


def _imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth (imports inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_api_reaches_signing_and_keys_only_through_the_domain() -> None:
    assert _imported_packages(ROOT / "api.py") & {"signing", "keys"} == set()


def test_nothing_below_the_http_face_imports_api() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for package in BELOW_THE_HTTP_FACE
        for path in sorted((ROOT / package).rglob("*.py"))
        if "api" in _imported_packages(path)
    ]
    assert importers == []
