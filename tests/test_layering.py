"""Data flows one way: cli -> ledger service -> policy engine and store; the service feeds the trace.

Walks every import of the package with `ast` and fails when one goes against that flow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tenge_ledger"

# package -> the packages of tenge_ledger it must never import
FORBIDDEN = {
    "core": {"ledger", "store", "policy", "privacy", "trace", "client", "app", "bench", "lab"},
    "store": {"ledger", "policy", "privacy", "client", "app", "bench", "lab"},
    "policy": {"ledger", "store", "privacy", "client", "app", "bench", "lab"},
    "trace": {"ledger", "policy", "privacy", "client", "app", "bench", "lab"},
    "ledger": {"policy", "privacy", "client", "app", "bench", "lab"},
    "client": {"policy", "privacy", "app", "bench", "lab"},
    # the privacy runtime (modes, keys, sealing, views, access) is fed by the ledger service: it never drives one
    "privacy": {"lab", "app", "bench"},
    # the measurement lab drives ledgers in every mode: above the ledger and the privacy runtime, below the CLI
    "lab": {"app", "bench"},
}
# modules the privacy runtime must not import even though their package is allowed (it sits under the ledger)
PRIVACY_NEVER = ("tenge_ledger.ledger.service", "tenge_ledger.client.wallet")


def _imports(path: Path) -> list[tuple[int, str]]:
    """The tenge_ledger packages a module imports, resolved from absolute and relative imports."""
    return [
        (line, name.split(".")[1] if name.startswith("tenge_ledger.") else "cli")
        for line, name in _modules(path)
    ]


def _modules(path: Path) -> list[tuple[int, str]]:
    """The tenge_ledger modules (dotted) and cli modules a module imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.relative_to(ROOT.parent).with_suffix("").parts  # ('tenge_ledger', 'ledger', 'service')
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("tenge_ledger.") or name.split(".")[0] in ("cli", "tenge_cli"):
                found.append((node.lineno, name))
    return found


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_flow__per_module(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0].removesuffix(".py")
    forbidden = FORBIDDEN.get(package, set()) | {"cli"}
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for line, target in _imports(path)
        if target in forbidden
    ]
    assert not bad, "; ".join(bad)


def test_layering_test_sees_imports__relative_and_absolute() -> None:
    found = {t for _, t in _imports(ROOT / "ledger" / "service.py")}
    assert {"core", "store", "trace"} <= found


CLI = Path(__file__).resolve().parent.parent / "cli"


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_cli_command_modules__do_not_import_main(path: Path) -> None:
    """main.py imports the command modules to register them; a command module importing main would make the
    cycle that registration-on-import needed. They share cli/context.py instead."""
    if path.name == "main.py":
        return
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            assert not (node.level and module == "main"), f"{path.name}:{node.lineno} imports .main"
            assert module not in ("cli.main", "tenge_cli.main"), f"{path.name}:{node.lineno} imports main"
            assert not (node.level and not module and any(a.name == "main" for a in node.names))


def test_privacy_runtime_never_drives_a_ledger() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "privacy").rglob("*.py"))
        for line, name in _modules(path)
        if any(name == m or name.startswith(m + ".") for m in PRIVACY_NEVER)
    ]
    assert not bad, "; ".join(bad)


def test_lab_is_its_own_package_above_the_privacy_runtime() -> None:
    lab = {p.stem for p in (ROOT / "lab").glob("*.py")}
    assert {"pilot", "matrix", "report", "sandbox", "metrics", "detectors"} <= lab
    assert not {"pilot", "matrix", "report", "sandbox"} & {p.stem for p in (ROOT / "privacy").glob("*.py")}
    assert "privacy" in {t for path in (ROOT / "lab").glob("*.py") for _, t in _imports(path)}
