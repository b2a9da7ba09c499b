"""The registry is the only list of names: no second list of system, codec, task or channel
names in the code, and no code that takes a system's name apart to learn what it is (its
registry entry's metadata says so)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tosc import registry

REPO = Path(__file__).resolve().parents[1]
KINDS = ("system", "codec", "task", "channel")
SCANNED = [REPO / "src", REPO / "scripts", REPO / "benchmarks"]

# Literal name lists that are choices, not re-listings: which systems a demo or a benchmark runs.
# Each is checked below to name only registered parts, so a rename cannot leave them behind.
SELECTIONS = {
    "src/tosc/demo.py": "the systems and channels the demo evaluates",
    "benchmarks/scale_bench.py": "the systems the scaling benchmark times",
}
# Known second lists owned by work in progress elsewhere; each entry says why it is still here.
PENDING = {
}
STRING_METHODS = {"startswith", "endswith", "removeprefix", "removesuffix", "split", "rsplit", "partition"}


def _names() -> dict[str, str]:
    return {name: kind for kind in KINDS for name in registry.names(kind)}


def _python_files() -> list[Path]:
    return sorted(p for root in SCANNED for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _name_lists(tree: ast.AST, names: dict[str, str]) -> list[tuple[int, list[str]]]:
    """Collection literals with two or more elements that are registered names (or metric keys
    built from task names, such as "accuracy_classifier-mlp")."""
    tasks = [n for n, kind in names.items() if kind == "task"]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            elements = node.elts
        elif isinstance(node, ast.Dict):
            elements = [k for k in node.keys if k is not None]
        else:
            continue
        hits = [s for s in map(_string, elements) if s and (s in names or any(t in s for t in tasks))]
        if len(hits) >= 2:
            found.append((node.lineno, hits))
    return found


def _name_parsing(tree: ast.AST, systems: list[str]) -> list[tuple[int, str]]:
    """Calls such as ``name.split("+")``, ``name.endswith("+ideal")`` or ``name.startswith("tosc-sr")``:
    reading a system's link, measure or family out of its name."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in STRING_METHODS and node.args):
            continue
        arg = _string(node.args[0])
        if arg is None:
            continue
        method = node.func.attr
        if ("+" in arg or arg == "-payload"
                or (method in ("startswith", "removeprefix") and any(s.startswith(arg) and s != arg for s in systems)
                    and len(arg) > 2)):
            found.append((node.lineno, f"{method}({arg!r})"))
    return found


def test_no_second_list_of_names_outside_the_registry():
    names = _names()
    offenders = []
    for path in _python_files():
        rel = str(path.relative_to(REPO))
        if rel in SELECTIONS or rel in PENDING:
            continue
        for line, hits in _name_lists(ast.parse(path.read_text()), names):
            offenders.append(f"{rel}:{line}: {hits}")
    assert not offenders, ("names listed outside the registry (read them with registry.select(...) and "
                           "the entries' metadata instead):\n" + "\n".join(offenders))


def test_no_code_parses_system_names():
    systems = registry.names("system")
    offenders = [f"{path.relative_to(REPO)}:{line}: {call}" for path in _python_files()
                 for line, call in _name_parsing(ast.parse(path.read_text()), systems)]
    assert not offenders, "system names taken apart (use registry.get('system', name).meta):\n" + "\n".join(offenders)


@pytest.mark.parametrize("rel", sorted(SELECTIONS))
def test_selections_name_only_registered_parts(rel):
    names = _names()
    for line, hits in _name_lists(ast.parse((REPO / rel).read_text()), names):
        assert all(h in names for h in hits), f"{rel}:{line}: {hits}"


def test_the_scan_finds_what_it_looks_for():
    """The checks above would pass on an empty scan: show they catch the old patterns."""
    old = ast.parse('CLASSIC = ("jpeg", "webp", "vvc")\n'
                    'GEN = ("accuracy_classifier-mlp", "accuracy_classifier-resnet")\n'
                    'codec = system.split("+")[0]\nlink = s.endswith("+ideal")\nours = s.startswith("tosc-sr")\n')
    assert [line for line, _ in _name_lists(old, _names())] == [1, 2]
    assert sorted(line for line, _ in _name_parsing(old, registry.names("system"))) == [3, 4, 5]


def test_every_kind_loads_its_own_entries():
    """Asking the registry for a kind imports whatever registers it: the answer does not depend
    on what the caller happened to import first."""
    import subprocess
    import sys

    script = "from tosc import registry; print(len(registry.names('codec')), len(registry.names('task')))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    codecs, tasks = map(int, done.stdout.split())
    assert codecs >= 8 and tasks >= 4
