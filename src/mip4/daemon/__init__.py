"""mip4.daemon: the home agent, foreign agent and mobile node daemons.

==============================  =============================================================
:mod:`mip4.daemon.config`       the TOML files: typed sections, checked, errors name the key
:mod:`mip4.daemon.logs`         one line per log record: ``key=value`` text or JSON lines
:mod:`mip4.daemon.status`       the status snapshot of each role (``mip4 status``)
:mod:`mip4.daemon.control`      the control socket: one JSON request, one JSON response
:mod:`mip4.daemon.run`          the daemon: engine + :class:`mip4.io.runtime.NodeIO` + signals
:mod:`mip4.daemon.cli`          ``mip4 ha|fa|mn --config FILE`` and ``mip4 status``
==============================  =============================================================

See ``docs/configuration.md`` for every key and the status JSON.
"""
