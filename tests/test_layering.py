"""The pure layers stay pure (STYLE.md: sans-IO core, thin I/O shell).

Every module under ``mip4.wire``, ``mip4.security``, ``mip4.core`` and ``mip4.dataplane`` is
parsed, and each import it makes (at any depth in the file, including inside functions) is
checked: no I/O module of the standard library, and within mip4 only the layers below it.
Because every pure module is checked, the rule holds transitively.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mip4

SRC = Path(mip4.__file__).parent
FORBIDDEN = {
    "socket", "asyncio", "select", "selectors", "os", "subprocess", "threading",
    "time", "signal", "fcntl", "pyroute2", "ssl", "shutil", "tempfile", "mmap",
}  # fmt: skip
#: which mip4 packages each pure layer may import
ALLOWED = {
    "wire": {"errors", "wire"},
    "security": {"errors", "wire", "security"},
    "dataplane": {"errors", "wire", "dataplane"},
    "core": {"errors", "wire", "security", "core", "dataplane"},
}


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
    return found


def violations(src: Path = SRC) -> list[str]:
    bad: list[str] = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((src / layer).rglob("*.py")):
            rel = path.relative_to(src.parent)
            package = ".".join(rel.with_suffix("").parts[:-1])
            if path.name == "__init__.py":
                package = ".".join(rel.parts[:-1])
            for line, mod in _imports(path, package):
                top = mod.split(".")[0]
                if top in FORBIDDEN:
                    bad.append(f"{rel}:{line} imports I/O module {mod}")
                elif top == "mip4":
                    parts = mod.split(".")
                    if len(parts) < 2 or parts[1] not in allowed:
                        bad.append(f"{rel}:{line} ({layer}) imports {mod}")
    return bad


def test_pure_layers_exist() -> None:
    assert (SRC / "wire" / "messages.py").exists()
    assert (SRC / "core" / "__init__.py").exists()


def test_pure_layers_import_no_io() -> None:
    assert violations() == []


def test_checker_catches_violations(tmp_path: Path) -> None:
    """The checker itself works: a planted I/O import and an upward import are both found."""
    root = tmp_path / "mip4"
    for layer in ALLOWED:
        (root / layer).mkdir(parents=True)
    (root / "wire" / "bad.py").write_text("def f():\n    import socket\n")
    (root / "core" / "up.py").write_text("from mip4.io import probe_target\n")
    (root / "security" / "rel.py").write_text("from ..core import x\n")
    (root / "core" / "ok.py").write_text("from ..security import y\nimport struct\n")
    found = violations(root)
    assert any("socket" in v for v in found)
    assert any("mip4.io" in v for v in found)
    assert any("mip4.core" in v for v in found)
    assert len(found) == 3
