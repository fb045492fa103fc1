"""Every package imports only the layers below it (STYLE.md: sans-IO core, thin I/O shell).

The allowed import graph is data (:data:`LAYERS`): package -> the mip4 packages it may
import. Every module under ``src/mip4`` is parsed and each import it makes is checked --
at any depth in the file (imports inside functions too), relative or absolute,
``from mip4 import wire`` as well as ``import mip4.wire.messages``, and the constant module
names given to ``importlib.import_module``. A module of a package the table does not know
fails the test, so a new package has to be placed in the graph. The pure layers
(:data:`PURE`) also import no I/O module of the standard library or pyroute2.

Because every module is checked and the graph has no cycle, the rule holds transitively.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import mip4

SRC = Path(mip4.__file__).parent

#: mip4 package (or top-level module) -> the mip4 packages it may import besides itself.
#: Read bottom-up: wire is the codec, cli the command line over everything.
LAYERS: dict[str, frozenset[str]] = {
    # the package root: ``__version__`` only
    "__init__": frozenset(),
    # the exception root (``Mip4Error``): stdlib only, every layer may import it (ANYONE)
    "errors": frozenset(),
    "wire": frozenset(),
    "security": frozenset({"wire"}),
    "dataplane": frozenset({"wire"}),
    "aaa": frozenset({"security", "wire"}),
    # the engines emit AAA requests and take AAA answers as the typed data of mip4.aaa
    # (pure, below core: it imports only security and wire)
    "core": frozenset({"wire", "security", "dataplane", "aaa"}),
    # mip4 sim drives the engines (core) and what they need, nothing with I/O
    "sim": frozenset({"core", "aaa", "security", "wire", "dataplane"}),
    # the Mobile IP MIB (RFC 4295) and the AgentX codec/session: pure, and stdlib only (it
    # reads the status snapshot, plain data, not the engines)
    "snmp": frozenset(),
    "io": frozenset({"snmp", "aaa", "core", "dataplane", "security", "wire"}),
    # persistent stores behind core's table interfaces (issue 15): files (sqlite3), so I/O
    "store": frozenset({"core", "aaa", "dataplane", "security", "wire"}),
    "daemon": frozenset({"store", "io", "snmp", "aaa", "core", "dataplane", "security", "wire"}),
    # the demo's instruments (traffic generators, probe, report, plot) run inside the lab's
    # namespaces as ``python -m mip4.demo.*`` and need nothing of mip4: stdlib only
    "demo": frozenset(),
    "lab": frozenset(
        {"daemon", "store", "io", "snmp", "aaa", "demo", "core", "dataplane", "security", "wire"}
    ),
    # the tools sit above lab: ``mip4 bench forwarding`` (tools/bench_forwarding/) drives
    # the namespace lab (``Lab``, ``lab_engine``, ``lab_node_io``) with demo's traffic
    # generators; the decoder (decode, pcap, render, sample, bench codec) needs only wire
    # and security, plus ``daemon.validate``'s checks on input files; nothing imports tools
    "tools": frozenset(
        {
            "lab",
            "daemon",
            "store",
            "demo",
            "io",
            "snmp",
            "aaa",
            "core",
            "dataplane",
            "security",
            "wire",
        }
    ),
    # the command line registers every subcommand
    "cli": frozenset(
        {
            "tools",
            "lab",
            "daemon",
            "store",
            "demo",
            "io",
            "snmp",
            "aaa",
            "core",
            "dataplane",
            "security",
            "wire",
            "sim",
        }
    ),
}
#: what every package may import
ANYONE = frozenset({"__init__", "errors"})
#: layers that must stay sans-IO: no module of :data:`FORBIDDEN`
PURE = frozenset({"errors", "wire", "security", "dataplane", "core", "aaa", "snmp"})
FORBIDDEN = {
    "socket", "asyncio", "select", "selectors", "os", "subprocess", "threading",
    "time", "signal", "fcntl", "pyroute2", "ssl", "shutil", "tempfile", "mmap",
}  # fmt: skip


def _module_name(path: Path, src: Path) -> tuple[str, str]:
    """(dotted module name, the package that relative imports start from)."""
    rel = path.relative_to(src.parent).with_suffix("")
    parts = rel.parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def _layer_of(module: str) -> str:
    """``mip4.wire.messages`` -> ``wire``; ``mip4`` -> ``__init__``; ``mip4.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, with its line: for ``from X import a, b``, ``X`` and,
    when ``X`` is a package, ``X.a`` and ``X.b`` (they may be submodules)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            yield node.lineno, mod
            if mod == "mip4":  # from mip4 import wire, __version__
                for alias in node.names:
                    if alias.name in LAYERS or (path.parent / alias.name).is_dir():
                        yield node.lineno, f"mip4.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def violations(
    src: Path = SRC,
    layers: Mapping[str, Set[str]] = LAYERS,
    pure: Set[str] = PURE,
) -> list[str]:
    bad: list[str] = []
    for path in sorted(src.rglob("*.py")):
        module, package = _module_name(path, src)
        layer = _layer_of(module)
        rel = path.relative_to(src.parent)
        if layer not in layers:
            bad.append(f"{rel}: package {layer!r} is not in the layer graph (LAYERS)")
            continue
        allowed = layers[layer] | ANYONE | {layer}
        for line, mod in _imports(path, package):
            top = mod.split(".")[0]
            if top in FORBIDDEN and layer in pure:
                bad.append(f"{rel}:{line} ({layer}, pure) imports I/O module {mod}")
            elif top == "mip4" and _layer_of(mod) not in allowed:
                bad.append(f"{rel}:{line} ({layer}) imports {mod}")
    return bad


def _module_graph(src: Path) -> dict[str, set[str]]:
    """module -> the mip4 modules it imports when it is loaded: top-level statements only
    (``if TYPE_CHECKING:`` blocks and imports inside functions do not run at import), and
    not its own parent packages (Python loads those first anyway)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(src.rglob("*.py")):
        module, package = _module_name(path, src)
        tree = ast.parse(path.read_text(), str(path))
        deps: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join([*base, node.module] if node.module else base)
                else:
                    mod = node.module or ""
                deps.add(mod)
                deps.update(f"{mod}.{a.name}" for a in node.names)
        parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        graph[module] = deps - parents - {module}
    return {m: {d for d in deps if d in graph} for m, deps in graph.items()}


def import_cycles(src: Path = SRC) -> list[list[str]]:
    """The module-level import cycles (strongly connected components of two or more)."""
    graph = _module_graph(src)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_pure_layers_exist() -> None:
    assert (SRC / "wire" / "messages.py").exists()
    assert (SRC / "core" / "__init__.py").exists()


def test_every_package_is_in_the_graph() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")}
    assert packages | modules <= set(LAYERS) | {"__main__"}, "add new packages to LAYERS"
    for layer in ("wire", "security", "dataplane", "core", "io", "daemon", "lab", "demo"):
        assert layer in packages


def test_graph_is_layered() -> None:
    """No cycle, and each layer may import what the layers it imports may import (so the
    table reads as layers, not as a list of exceptions)."""
    for layer, allowed in LAYERS.items():
        assert layer not in allowed
        for below in allowed:
            assert LAYERS[below] <= allowed, f"{layer} allows {below} but not all below it"
            assert layer not in LAYERS[below], f"cycle {layer} <-> {below}"


def test_imports_follow_the_graph() -> None:
    assert violations() == []


def test_no_import_cycles() -> None:
    """No module needs another that needs it back while loading (the wire extension registry
    is a list in ``extensions.py``, not bottom-of-file imports of the ``ext_*`` modules)."""
    assert import_cycles() == []


def _plant(root: Path, files: dict[str, str]) -> None:
    """Write ``files`` under ``root`` (a fake ``mip4``), with an ``__init__.py`` in every
    package directory."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for directory in (path.parent, *path.parent.parents):
            if not directory.is_relative_to(root):
                break
            (directory / "__init__.py").touch()
        path.write_text(text)


def test_checker_catches_violations(tmp_path: Path) -> None:
    """The checker itself works: each planted import below is found, and nothing else."""
    root = tmp_path / "mip4"
    _plant(
        root,
        {
            "wire/bad.py": "def f():\n    import socket\n",  # I/O in a pure layer
            "core/up.py": "from mip4.io import probe_target\n",  # core -> io
            "security/rel.py": "from ..core import x\n",  # relative, security -> core
            "io/up.py": "def f():\n    from mip4.daemon.run import run\n",  # io -> daemon
            "daemon/lab.py": "from mip4 import lab\n",  # daemon -> lab
            "demo/dyn.py": "import importlib\nimportlib.import_module('mip4.lab.build')\n",
            "mystery/x.py": "",  # a package the graph does not know
            # allowed: downward, own package, errors, the root, I/O outside the pure layers
            "core/ok.py": "from ..security import y\nimport struct\nfrom mip4.errors import E\n",
            "io/ok.py": "import socket\nfrom mip4 import __version__\nfrom . import ok\n",
            "lab/ok.py": "from mip4.daemon import run\nfrom mip4.demo import report\n",
            "errors.py": "",
            "cli.py": "import importlib\nimportlib.import_module('mip4.lab.cli')\n",
        },
    )
    found = violations(root)
    expected = [
        ("wire/bad.py", "socket"),
        ("core/up.py", "mip4.io"),
        ("security/rel.py", "mip4.core"),
        ("io/up.py", "mip4.daemon.run"),
        ("daemon/lab.py", "mip4.lab"),
        ("demo/dyn.py", "mip4.lab.build"),
        ("mystery/", "not in the layer graph"),
    ]
    for where, what in expected:
        assert any(where in v and what in v for v in found), (where, what, found)
    # mystery/__init__.py and mystery/x.py are both reported
    assert len(found) == len(expected) + 1, found


def test_cycle_finder_finds_cycles(tmp_path: Path) -> None:
    root = tmp_path / "mip4"
    _plant(
        root,
        {
            "wire/a.py": "from .b import x\n",
            "wire/b.py": "x = 1\nfrom . import a  # noqa: E402\n",  # bottom-of-file import
            "wire/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from .d import y\n",
            "wire/d.py": "from .c import z\ndef f():\n    from . import c\n",
        },
    )
    assert import_cycles(root) == [["mip4.wire.a", "mip4.wire.b"]]
