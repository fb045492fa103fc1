"""``mip4 bench registrations``: how many registrations a real ``mip4 ha`` serves.

What is measured
----------------
A compiled load generator (``loadgen.c``: sendmmsg/recvmmsg, ``--window`` requests
outstanding, HMAC-MD5-signed Registration Requests with the MN-HA authentication extension
and timestamp Identifications, one security association per simulated node) in namespace
``<prefix>g`` drives a real ``mip4 ha --config FILE`` in namespace ``<prefix>h`` over one
veth pair; the generator's address is every node's co-located care-of address. The home
agent's configuration is generated with one MN-HA security association per node, in a
subscriber table (CSV, ``[subscribers] file``, :mod:`.nodes`); the generator derives the
same keys from the same seed.

In one run, alternating, ``--rounds`` times, best kept:

* **echo**: the same 46-byte datagrams to a plain asyncio UDP echo server in the home
  agent's namespace (the baseline: what Python's event loop does with no work per datagram);
* **first**: each of ``--nodes`` nodes registers once with no binding at the home agent;
* **renew**: the nodes re-register again and again while bound;
* **fa_renew** (unless ``--no-fa``): the same renewals relayed by a real ``mip4 fa`` in a
  third namespace ``<prefix>f`` (the generator on its visited link, the FA's address as
  care-of address, D flag clear), after one unmeasured pass that moves every node there.
* **flood_renew** (unless ``--no-flood``; issue 13's "a flood of forged requests at the
  rate the kernel delivers them leaves valid registrations served at >= 0.5x their normal
  rate"): right after the round's renewals, with the bindings in place, a second generator
  process (``--mode forge``, its own source address ``198.18.0.3`` and port) sends forged
  renewals for the same nodes (right SPIs, keys of another seed: each costs the home agent
  its MAC check and earns a code 131) open loop, as fast as sendmmsg goes (or
  ``--flood-rate``), starting 0.3 s before and ending 0.5 s after the usual renewals, which
  run for ``--duration`` and send a lost request again after 0.2 s. Reported: valid renewals
  served per second (accepting replies, late ones included; the home agent's own count
  beside it), x the same round's renewals alone (the target: >= 0.5x), the flood's offered
  rate and how many 131s came back, and the home agent namespace's UDP counters
  (``/proc/net/snmp``: datagrams in, ``RcvbufErrors``: dropped at its full socket buffer).

* **first_sources** (unless ``--sources 0``; issue 13): after the round's deregistrations,
  each node registers once more, from its own source address (``--sources`` addresses,
  default ``--nodes``: node j from the ``j % N``-th of a fresh block of ``198.19.0.0/16``,
  made local to the generator's namespace with ``ip route add local ... dev lo``), which is
  its co-located care-of address. None was ever sent an accepting reply by this home agent,
  so flood steering reads each first request from its general socket (8 per pass) rather
  than the trusted one (64). Reported: x the same round's first registrations from one
  source, the datagrams the home agent read from each socket (``mip4 status``
  ``steering.read_trusted``/``read_general``, before and after; also for the one-source
  first registrations), and replies not sent to their request's source (RFC 5944
  §3.8.3.1), which the generator checks with ``IP_PKTINFO``.
* **flood_first_sources** (unless ``--no-flood`` or ``--sources 0``): the same from
  another fresh block under the same forged flood as **flood_renew** (a lost request sent
  again after 0.2 s): the documented limit of steering, new sources compete with the flood
  on the general socket. Served rate: nodes accepted over the time all took, or over
  ``--duration``; x one source and x the many sources alone, of the same round.

After each round the nodes deregister (lifetime 0, not measured), directly and through the
foreign agent (the many-sources ones from their own addresses). The whole sequence runs
once per ``--sas`` count (one home agent start each, its startup time reported: loading a
million SAs takes a while). Per measurement: accepted replies per second (code 0 or 1, as the
generator counts them), the ratio to the echo rate, and the server's CPU time per accepted
reply (the process's CPU clock, nanoseconds; for relayed requests the foreign agent's too).

Every generator loop is bounded by ``--duration`` and ``--max`` requests; traffic stays in
the two namespaces; the daemon and the echo server are stopped by process id and the
namespaces deleted on success, failure, Ctrl-C and SIGTERM. The generator is compiled from
source with ``cc`` on first use into ``~/.cache/mip4/bench-registrations/`` (:mod:`.build`).

Layout: :mod:`.nodes` (keys, SPIs, home addresses, the HA configuration), :mod:`.build`
(compiling the generator), :mod:`.echo` (the baseline server), :mod:`.run` (orchestration,
command line), :mod:`.report` (the table).
"""

from __future__ import annotations

from .build import BuildError, build
from .nodes import Nodes, ha_config
from .report import format_report
from .run import Bench, BenchError, Options, add_arguments, main, options, register, run

__all__ = [
    "Bench",
    "BenchError",
    "BuildError",
    "Nodes",
    "Options",
    "add_arguments",
    "build",
    "format_report",
    "ha_config",
    "main",
    "options",
    "register",
    "run",
]
