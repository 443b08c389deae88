"""The architecture drawn in docs/architecture.md, checked: no module imports a layer it must not, lazily or not.

    cli ──┐
    web ──┼──> runtime ──> worker ──> service ──> platform · store · vault · storage
    jobs ─┘                                       (store may use vault's sealed values; nothing below imports up)
    sandbox: imports nothing of filmroll's but itself
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "filmroll"
EDGES = ("filmroll.cli", "filmroll.web")
UPPER = (*EDGES, "filmroll.runtime", "filmroll.settings", "filmroll.sandbox")
# module prefix -> the prefixes it must never import
FORBIDDEN = {
    "filmroll.platform": (*UPPER, "filmroll.worker", "filmroll.service", "filmroll.store", "filmroll.vault",
                          "filmroll.passwords", "filmroll.storage"),
    "filmroll.vault": (*UPPER, "filmroll.worker", "filmroll.service", "filmroll.store", "filmroll.platform"),
    "filmroll.store": (*UPPER, "filmroll.worker", "filmroll.service", "filmroll.platform", "filmroll.storage"),
    "filmroll.storage": (*UPPER, "filmroll.worker", "filmroll.service", "filmroll.store", "filmroll.platform",
                         "filmroll.vault"),
    "filmroll.service": (*UPPER, "filmroll.worker"),
    "filmroll.worker": UPPER,
    "filmroll.runtime": (*EDGES, "filmroll.sandbox"),
    "filmroll.settings": (*EDGES, "filmroll.runtime", "filmroll.worker", "filmroll.service", "filmroll.store"),
    "filmroll.web": ("filmroll.cli", "filmroll.sandbox"),
    "filmroll.cli": ("filmroll.web.admin", "filmroll.web.oauth", "filmroll.web.deps", "filmroll.web.security"),
}
# The small shared ground every layer stands on: it imports nothing but itself.
GROUND = ("filmroll.errors", "filmroll.secret", "filmroll.clock", "filmroll.vocabulary", "filmroll.passwords",
          "filmroll.faults", "filmroll.eventloop")


def _module(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "filmroll"}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


MODULES = sorted(SOURCE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module(p))
def test_no_module_imports_a_layer_above_it(path):
    module = _module(path)
    imported = _imports(path)
    if _under(module, "filmroll.sandbox"):
        assert {name for name in imported if not _under(name, "filmroll.sandbox")} == set(), \
            "the sandbox must not use filmroll's own code: the two keep each other honest"
        return
    if module in GROUND:
        allowed = {"filmroll", *GROUND}
        assert {n for n in imported if not any(_under(n, g) for g in allowed)} == set()
        return
    for layer, forbidden in FORBIDDEN.items():
        if _under(module, layer):
            wrong = sorted(n for n in imported if any(_under(n, f) for f in forbidden) and not _under(n, layer))
            assert wrong == [], f"{module} imports {wrong}, which docs/architecture.md does not allow"


def test_the_check_sees_a_forbidden_import(tmp_path):
    """The check is not vacuous: an upward import in a store module is caught."""
    leaky = tmp_path / "leaky.py"
    leaky.write_text("def f():\n    from filmroll.service.sync import Syncer\n")
    assert "filmroll.service.sync" in _imports(leaky)
    assert any(_under(n, f) for n in _imports(leaky) for f in FORBIDDEN["filmroll.store"])
