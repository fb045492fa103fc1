"""Sans-IO protocol engines: mobile node, foreign agent, home agent, agent discovery.

Every engine is driven by ``handle(event, now)`` and ``handle_timer(now)``, both returning a
list of typed :mod:`~mip4.core.actions`, and exposes ``next_deadline()``; it never reads a
clock, opens a socket or touches the kernel. See :mod:`mip4.core.events` and
:mod:`mip4.core.actions`.
"""
