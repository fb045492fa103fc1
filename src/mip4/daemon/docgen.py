"""The key tables of ``docs/configuration.md``, generated from the configuration
dataclasses: names, types and defaults from :func:`dataclasses.fields`, descriptions from
the ``#:`` comments or attribute docstrings in their source.

``python -m mip4.daemon.docgen`` prints the tables (``--write docs/configuration.md``
updates them in place); ``tests/daemon/test_docs.py`` checks
that the document holds exactly them, so a field added to a core config dataclass cannot go
undocumented.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from enum import Enum

from mip4.core.fa_handoff import HandoffSettings
from mip4.core.foreign_agent import ForeignAgentConfig, VisitedLink
from mip4.core.home_agent import HomeAgentConfig
from mip4.core.mobile_node import MobileNodeConfig

from .aaa import AaaSection, AaaServerSection
from .config import (
    DaemonSection,
    HandoverSection,
    IOSection,
    MetricsSection,
    SecurityAssociationSection,
    SnmpSection,
    StoreSection,
    SubscribersSection,
)

#: (table name as written in TOML, dataclass), in document order.
SECTIONS: tuple[tuple[str, type], ...] = (
    ("[home_agent]", HomeAgentConfig),
    ("[foreign_agent]", ForeignAgentConfig),
    ("[[foreign_agent.links]]", VisitedLink),
    ("[handoff]", HandoffSettings),
    ("[mobile_node]", MobileNodeConfig),
    ("[handover]", HandoverSection),
    ("[io]", IOSection),
    ("[daemon]", DaemonSection),
    ("[[security_associations]]", SecurityAssociationSection),
    ("[subscribers]", SubscribersSection),
    ("[snmp]", SnmpSection),
    ("[metrics]", MetricsSection),
    ("[aaa]", AaaSection),
    ("[[aaa.servers]]", AaaServerSection),
    ("[store]", StoreSection),
)

BEGIN = "<!-- BEGIN GENERATED KEYS (python -m mip4.daemon.docgen) -->"
END = "<!-- END GENERATED KEYS -->"


def field_docs(cls: type) -> dict[str, str]:
    """Attribute name -> its description (``#:`` comment lines before it, or a string
    right after it)."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    tree = ast.parse(source)
    (node,) = tree.body
    assert isinstance(node, ast.ClassDef)
    docs: dict[str, str] = {}
    body = node.body
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        name = stmt.target.id
        comment: list[str] = []
        j = stmt.lineno - 2
        while j >= 0 and lines[j].strip().startswith("#:"):
            comment.insert(0, lines[j].strip()[2:].strip())
            j -= 1
        if not comment and i + 1 < len(body):
            nxt = body[i + 1]
            if (
                isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                comment = [" ".join(nxt.value.value.split())]
        docs[name] = " ".join(comment)
    return docs


def _type_name(tp: object) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (tuple, frozenset):
        inner = args[0]
        if isinstance(inner, type) and dataclasses.is_dataclass(inner):
            return "array of tables"
        return f"list of {_type_name(inner)}"
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(_type_name(a) for a in rest) + " (optional)"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "string: " + ", ".join(_enum_word(m) for m in tp)
    names = {
        "IPv4Address": "address",
        "IPv4Network": "network",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "str": "string",
    }
    name = getattr(tp, "__name__", str(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "array of tables"
    return names.get(name, name)


def _enum_word(m: Enum) -> str:
    return f'"{m.value}"' if isinstance(m.value, str) else f'"{m.name.lower().replace("_", "-")}"'


def _default(f: dataclasses.Field[object]) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "**required**"
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        return _enum_word(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | frozenset):
        return (
            "[" + ", ".join(_enum_word(v) if isinstance(v, Enum) else str(v) for v in value) + "]"
        )
    if isinstance(value, str):
        return f'"{value}"'
    if dataclasses.is_dataclass(value):
        return "(table)"
    return str(value)


def table(cls: type) -> str:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        text = docs.get(f.name, "").replace("|", "\\|")
        kind = _type_name(hints[f.name]).replace("|", "\\|")
        rows.append(f"| `{f.name}` | {kind} | {_default(f)} | {text} |")
    return "\n".join(rows)


def generate() -> str:
    parts = [BEGIN, ""]
    for name, cls in SECTIONS:
        parts += [f"### `{name}`", "", table(cls), ""]
    parts.append(END)
    return "\n".join(parts)


def update(path: str) -> bool:
    """Replace the generated part of the document at ``path``; whether it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + generate() + text[end:]
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:2] == ["--write"]:
        if len(sys.argv) != 3:
            sys.exit("usage: python -m mip4.daemon.docgen [--write docs/configuration.md]")
        print("updated" if update(sys.argv[2]) else "unchanged")
    else:
        print(generate())
