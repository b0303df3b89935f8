"""The import rules of ARCHITECTURE.md's table, read from the source with ast: what each
layer may import, and no cycle among coobill's modules (lazy imports inside functions count:
an import moved into a function to dodge a cycle still is one)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import coobill

ROOT = Path(coobill.__file__).parent

# ARCHITECTURE.md's table: a package (or top-level module) and what it may import of coobill.
MAY_IMPORT: dict[str, set[str]] = {
    "rating": set(),
    "money": {"errors", "text_memo"},
    "text_memo": set(),
    "errors": set(),
    "tally": set(),
    "config": {"errors"},
    "formatting": {"money"},
    "storage": {"money", "errors"},
    "migrations": {"storage"},
    "services": {"rating", "storage", "money", "errors", "config", "tally", "formatting",
                 "text_memo"},
    "agi": {"services", "errors"},
    "ami": {"services", "errors", "config", "tally"},
    "web": {"services", "errors", "money", "formatting", "config"},
    "cli": {"services", "errors", "money", "formatting", "config"},
}
# Single modules beyond their package's rule, each for a reason.
EXCEPTIONS: dict[str, set[str]] = {
    # the portal's process builds its own context and logging (as the daemon does)
    "coobill.web.process": {"bootstrap", "storage", "logs"},
    # `coobill run` and `coobill doctor` are the CLI's entry points to the daemon and the
    # checks, and every command checks the schema first; `coobill migrate` upgrades it;
    # `coobill extension sync` asks the PBX for its endpoints over AMI
    # (ami.session.pbx_endpoints)
    "coobill.cli.commands": {"bootstrap", "storage", "daemon", "doctor"},
    "coobill.cli.commands.ledger": {"storage"},
    "coobill.cli.commands.extension": {"ami"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every coobill module `module` imports, at the top or inside a function."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("coobill"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("coobill"):
                continue
            for alias in node.names:  # `from coobill.services import holds` imports a module
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return frozenset(m for m in found if m in MODULES and m != module)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "coobill"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) in MAY_IMPORT))
def test_each_module_imports_only_what_its_layer_may(module: str) -> None:
    allowed = MAY_IMPORT[layer(module)] | EXCEPTIONS.get(module, set()) | {layer(module)}
    wrong = sorted(m for m in imports_of(module) if layer(m) not in allowed)
    assert not wrong, f"{module} may not import {wrong} (ARCHITECTURE.md, the layers' table)"


def test_the_api_does_not_import_the_pages_nor_the_portal_the_cli() -> None:
    for module in MODULES:
        for target in imports_of(module):
            if module.startswith("coobill.web.api"):
                assert not target.startswith("coobill.web.pages"), (module, target)
            if module.startswith("coobill.web"):
                assert not target.startswith("coobill.cli"), (module, target)


def test_no_module_imports_itself_through_others() -> None:
    """No cycle among coobill's modules (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in imports_of(node):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_the_reader_sees_lazy_imports_and_relative_ones() -> None:
    """The rules above read every import: the CLI's lazy `from coobill.daemon import ...`."""
    assert "coobill.daemon" in imports_of("coobill.cli.commands")
    assert "coobill.services.holds" in imports_of("coobill.services.gate")


# The three names settings were once read by: gone, and kept so.
OLD_SETTINGS_NAMES = {"read_settings", "settings_now", "get_settings"}


def test_settings_are_read_one_way() -> None:
    """Every module reads the billing settings with `billing_settings`."""
    wrong = []
    for module, path in sorted(MODULES.items()):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "coobill.services.settings":
                wrong += [(module, a.name) for a in node.names if a.name in OLD_SETTINGS_NAMES]
            elif isinstance(node, ast.Attribute) and node.attr in OLD_SETTINGS_NAMES:
                wrong.append((module, node.attr))
    assert not wrong, wrong
