"""``mip4``'s command line: a command imports only the module that adds it, and the table
saying which module adds which command is what the modules really add."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from mip4.cli import COMMANDS, build_parser, modules_for


def subcommands(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return tuple(action.choices)


@pytest.mark.parametrize("module", list(COMMANDS))
def test_each_module_adds_the_commands_the_table_names(module: str) -> None:
    assert subcommands(build_parser((module,))) == COMMANDS[module]


def test_the_whole_parser_has_every_command_once_in_table_order() -> None:
    every = [name for names in COMMANDS.values() for name in names]
    assert subcommands(build_parser()) == tuple(every)
    assert len(set(every)) == len(every)


def test_a_named_command_takes_only_its_module() -> None:
    assert modules_for(["ha", "--config", "x"]) == ("mip4.daemon.cli",)
    assert modules_for(["status", "--json"]) == ("mip4.daemon.cli",)
    assert modules_for(["decode", "x.pcap"]) == ("mip4.tools.decode_cmd",)
    assert modules_for(["lab", "up"]) == ("mip4.lab.cli",)
    # help, version, nothing, an unknown word: everything, so that help and errors list all
    for argv in ([], ["--help"], ["--version"], ["nonsense"], ["-x", "ha"]):
        assert modules_for(argv) == tuple(COMMANDS)


def test_a_daemon_start_does_not_import_the_tools() -> None:
    """``mip4 ha --config`` on a missing file fails after parsing; by then neither the
    decoder, the benchmarks, the lab, the simulation nor prometheus_client (imported only
    with [metrics]) has been imported."""
    code = (
        "import sys\n"
        "from mip4.cli import main\n"
        "status = main(['ha', '--config', '/nonexistent/ha.toml'])\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('mip4.tools', 'mip4.lab',"
        " 'mip4.sim', 'mip4.demo', 'prometheus_client')))\n"
        "print(status, heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout == "2 []\n", (r.stdout, r.stderr)


def test_unknown_command_lists_every_command() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mip4.cli", "nonsense"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    # argparse's "invalid choice: 'nonsense' (choose from 'decode', 'demo', ...)"
    choices = r.stderr.rsplit("(choose from ", 1)[1].split(")", 1)[0]
    every = [name for names in COMMANDS.values() for name in names]
    assert choices == ", ".join(f"'{name}'" for name in every), r.stderr
