"""The daemons' manual pages (issue 15): generated from the configuration dataclasses and
the command line, shipped in ``mip4/data``, and rendered by groff without a warning."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

from mip4.daemon import manpage


def test_shipped_pages_are_what_the_generator_makes() -> None:
    for name, text in manpage.generate().items():
        shipped = manpage.DATA / name
        assert shipped.read_text() == text, (
            f"run: python -m mip4.daemon.manpage --write {manpage.DATA}"
        )


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
def test_every_key_of_the_roles_file_is_on_its_page(role: str) -> None:
    text = manpage.page(role)
    sections = manpage.sections_of(role)
    names = [n for n, _ in sections]
    assert names[0] == {"ha": "[home_agent]", "fa": "[foreign_agent]", "mn": "[mobile_node]"}[role]
    assert ("[store]" in names) == (role != "mn")
    for name, cls in sections:
        part = text.split(f".SS {manpage._esc(name)}\n", 1)[1].split(".SS ", 1)[0]
        for f in dataclasses.fields(cls):
            assert f".B {manpage._esc(f.name)}\n" in part, (name, f.name)
    assert ".B \\-\\-config, \\-c FILE" in text and ".B \\-\\-check" in text


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
def test_groff_renders_the_page_without_warnings(role: str) -> None:
    groff = shutil.which("groff")
    assert groff is not None, "groff is missing: run scripts/setup.sh"
    r = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z"],
        input=manpage.page(role),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = subprocess.run(
        [groff, "-man", "-Tascii"], input=manpage.page(role), capture_output=True, text=True,
        timeout=60,
    ).stdout  # fmt: skip
    out = re.sub(".\x08", "", out)  # overstruck bold and underline
    assert f"mip4 {role} - run a" in out and "EXIT STATUS" in out
