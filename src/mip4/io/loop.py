"""Former home of :class:`~mip4.io.driver.EngineDriver` and
:class:`~mip4.io.executor.LinuxExecutor` (issue 8 §3 split it in two).

Kept only as import aliases so that branches written against the old module still merge;
new code imports from :mod:`mip4.io.driver` and :mod:`mip4.io.executor`. To be deleted once
nothing imports it.
"""

from __future__ import annotations

from .driver import Engine, EngineDriver, Executor
from .executor import REVERSE_TABLE, RULE_PRIORITY, LinuxExecutor, interface_network

__all__ = [
    "REVERSE_TABLE",
    "RULE_PRIORITY",
    "Engine",
    "EngineDriver",
    "Executor",
    "LinuxExecutor",
    "interface_network",
]
