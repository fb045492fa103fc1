"""``mip4 bench forwarding``: the tunnel data planes (user space, tc-BPF) on the namespace lab.

What is measured
----------------
One lab (:class:`mip4.lab.Lab`, router ingress filter on), the real engines in their own
processes (home agent, FA1, mobile node, each a :class:`mip4.io.runtime.NodeIO` driven by
its engine; reverse tunnelling preferred, as in ``tests/lab/test_engines.py``), and, in the
same run:

* **direct**: the mobile node at home; CN → router → MN, no tunnel;
* **tunnel**: the mobile node registered through FA1; CN → router → HA (intercepts the home
  address, encapsulates IP in IP) → router → FA1 (decapsulates, delivers to the visitor's
  hardware address) → MN. With reverse tunnelling the MN's replies (TCP ACKs) come back
  MN → FA1 → HA → CN.
* **routed** (issue 12's "direct on the same veths"; :mod:`.routed`): the tunnelled path's
  hops with plain kernel IP forwarding and no Mobile IP. The node gets a second address on
  FA1's network, and policy routes (set up by the benchmark in its namespaces, removed
  after) send CN → router → HA → router → FA1 → MN and back MN → FA1 → router → HA → router
  → CN, the reverse-tunnelled path's hops; with ``--colocated`` also ``routed-colocated``,
  CN → router → HA → router → MN on network C and back. A UDP probe each way must arrive
  with TTL 64 - 4 (64 - 3 on C), and the home agent's and FA1's kernels must forward every
  datagram the node receives (``Ip: ForwDatagrams``), or the benchmark stops with an error.
  Each tunnelled path's ratios are printed against both direct and its routed baseline
  (``--no-routed``: direct only), and the table gives the data plane's own CPU per datagram:
  tunnelled minus routed.

With ``--planes bpf,userspace`` (issue 12) the node processes run once per plane, one
plane after the other, ``--rounds`` times (each figure is the best of the rounds): the
tunnelled path on the bpf plane is ``tunnel-bpf`` (every node with ``dataplane = "bpf"``:
the home agent encapsulates and decapsulates, FA1 decapsulates, delivers and
reverse-tunnels, in tc), on the user-space plane ``tunnel``. With ``--colocated`` the node
also moves to network C and registers its co-located care-of address: CN → router → HA →
router → MN (``colocated``, ``colocated-bpf``), replies reverse-tunnelled by the node
itself. ``--encapsulations ipip,gre`` runs one block per plane and encapsulation (the node
asks for it; paths ``tunnel-bpf-gre`` ...).

The UDP sender and receiver are, by default, a compiled program (``blaster.c``:
``sendmmsg``/``recvmmsg``, 64 datagrams per call), built by the benchmark with the system C
compiler into ``~/.cache/mip4/bench-forwarding/`` (:mod:`.build`); Python senders cannot
fill the bpf plane. ``--blaster python`` uses the Python workers instead. Besides each
forwarding process's CPU, the table gives the machine's busy CPU per delivered datagram
(``/proc/stat`` over the measurement: the bpf plane forwards in softirq, which no process's
counters see; sender and receiver are included, and so is any other load on the machine).

On each path: UDP with 64- and 1400-byte payloads (a sender in the CN namespace blasts, or
paces with ``--rate``, for ``--duration`` seconds and at most ``--count`` datagrams; a
receiver in the MN namespace counts what arrives), and TCP goodput (kernel TCP on both
ends, ``--tcp-duration`` seconds or ``--tcp-bytes``, whichever comes first). Senders and
receivers are separate processes, so no Python process carries two jobs. Then the same the
other way (``--directions``, default ``down,up``; issue 12: "both directions with reverse
tunnelling"): the mobile node sends from its home address (on the routed baseline, from its
routed address) to the correspondent -- through FA1 and the reverse tunnel to the home
agent, or its own reverse tunnel when co-located -- and the correspondent counts; those
rows are labelled ``up`` (traffic ``udp-up`` / ``tcp-up`` in JSON) and held against direct
and routed in the same direction.

The table gives, per path and payload: datagrams per second sent and delivered, loss, and
delivered payload Mbit/s; then tunnel ÷ direct ratios; then the per-packet cost the process
CPU counters show (``getrusage`` of the HA and FA1 processes over the measurement ÷ the
datagrams their forwarders handled), where datagrams were dropped (HA TUN queue, raw socket
receive queues, the receiver's socket buffer), and the pure encapsulation/decapsulation
cost of :mod:`mip4.dataplane` timed in this process.

The lab's switch namespace does not pass bridged frames through its (empty) netfilter hooks
during the benchmark (``bridge-nf-call-*`` = 0, :func:`.run.quiet_switch`; the header says
so): with ``br_netfilter`` loaded that costs ~0.55 us per bridge crossing, and the tunnelled
paths cross five bridges where the direct one crosses two. ``--switch-netfilter`` keeps the
kernel's default (the figures before 2026-12-05 17:00 UTC were taken with it).

The compiled sender and sink are measuring instruments, kept out of the path's cost (since
2026-12-05 23:10 UTC; benchmarks/README.md, "GRE against IP in IP"): on veth the sender's
CPU runs the whole path in its softirq, so (1) the sink never sleeps on its socket -- it
naps on a 200 us timer when the queue is empty, where a sink blocked in ``poll`` had to be
woken by the sender for a varying share of the datagrams (0.6-3.4 us per datagram on
average, from run to run); (2) the sender and the sink are pinned to a CPU each (the first
and the last; ``--no-pin`` leaves them to the scheduler, which ran the sink on the
sender's CPU for part of some measurements and all of others); (3) the sender reports its
own CPU (``getrusage``: its runtime, which includes the softirq it runs), printed per
datagram beside the machine's -- the path's cost, whatever else the machine runs. With
several rounds the blocks (plane, encapsulation) run in the given order
in even rounds and reversed in odd ones, and each GRE (minimal) path is printed against
the same path with IP in IP: best figures, each round's two blocks, and the sender's CPU.

Everything runs inside the lab's namespaces (unique id ``q`` + 4 hex digits, which no test
prefix, all hex, can be); every sending loop is bounded in count and time; the lab is torn
down on success, failure, Ctrl-C and SIGTERM. Not a unit test: the numbers depend on the
machine (2 shared cores here: four busy processes — sender, HA, FA1, receiver — share them).

Worker processes are this package again (``--worker ha|fa1|mn|udp-recv|udp-send|tcp-recv|
tcp-send``), started in their namespace with ``ip netns exec``; they speak JSON lines on
stdout and take commands (``stats``, ``quit``) on stdin.

Layout: :mod:`.workers` (the processes in the namespaces), :mod:`.run` (the orchestration and
the command line), :mod:`.report` (the measurements and the table), :mod:`.build` and
``blaster.c`` (the compiled UDP sender and receiver). ``MIP4_BENCH_LOG=1`` in the environment
puts the node processes' logs on stderr.
"""

from __future__ import annotations

from .report import Measurement, format_table, per_packet, plane_cost, ratios
from .run import Bench, BenchError, Options, add_arguments, codec_cost, main, options, register, run

__all__ = [
    "Bench",
    "BenchError",
    "Measurement",
    "Options",
    "add_arguments",
    "codec_cost",
    "format_table",
    "main",
    "options",
    "per_packet",
    "plane_cost",
    "ratios",
    "register",
    "run",
]
