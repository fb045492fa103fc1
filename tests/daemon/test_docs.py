"""docs/configuration.md documents every configuration key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mip4.daemon.docgen import BEGIN, END, SECTIONS, generate

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_doc_holds_the_generated_key_tables() -> None:
    text = DOC.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    start = text.index(BEGIN)
    current = text[start : text.index(END) + len(END)]
    assert current == generate(), "run: python -m mip4.daemon.docgen --write docs/configuration.md"


def test_every_field_of_every_section_has_a_documented_row() -> None:
    text = DOC.read_text()
    for name, cls in SECTIONS:
        section = text.split(f"### `{name}`", 1)[1].split("###", 1)[0]
        for f in dataclasses.fields(cls):
            row = re.search(rf"^\| `{f.name}` \|[^|]+\|[^|]+\| (.+) \|$", section, re.M)
            assert row is not None, f"{name}: {f.name} is not documented"
            assert len(row.group(1).strip()) > 10, f"{name}: {f.name} has no description"


def test_status_shape_is_documented() -> None:
    text = DOC.read_text()
    for key in ("bindings", "visitors", "pending", "care_of_address", "counters", "tunnel"):
        assert f'"{key}"' in text
