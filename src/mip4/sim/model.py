"""The simulator: mip4's own engines on one virtual clock, one event heap.

Theory of operation
-------------------
Every engine (``N`` :class:`~mip4.core.mobile_node.MobileNode`, ``M``
:class:`~mip4.core.foreign_agent.ForeignAgent`, ``K`` :class:`~mip4.core.home_agent.HomeAgent`
-- the daemons' engines, not models of them) has an index: nodes ``0..N-1``, foreign agents
``N..N+M-1``, home agents after them. One heap holds every future happening as a tuple
``(time, seq, kind, target, data, cell)``:

* ``TIMER``: an engine's ``next_deadline()``. Timers are lazy: after every call into an
  engine its deadline is read once and pushed only when it is earlier than the one pushed
  already (or none is); a later deadline waits for the entry pushed -- when that comes up,
  the deadline is read again and pushed if it is still ahead (a node's agent expiry moves
  later with every periodic advertisement: no push for each). An entry remembers the
  deadline it was pushed for and is skipped when an earlier one replaced it (so a timer
  costs at most one heap push per change, never a scan of the engines);
* ``DELIVER``: a datagram arriving at an engine (the ``UdpReceived``/``IcmpReceived`` event
  is built when it is sent, after the link's delay; the radio's loss is drawn then). A
  datagram over the radio carries the cell it was sent in and is lost if the node has left
  that cell when it arrives;
* ``MCAST``: a periodic advertisement to every node in a cell (one entry, fanned out on
  arrival to the cell's members at that time);
* ``MOVE``: a node's next cell-boundary crossing or leg end (:mod:`mip4.sim.mobility`);
  crossing into another cell gives the node ``LinkDown`` then ``LinkUp`` at once;
* ``ON``: a node is switched on (``LinkUp`` in its first cell); ``REBOOT``: an agent loses
  all its state (a fresh engine; a foreign agent gets ``LinkUp`` again); ``SAMPLE``: the
  binding-table size is recorded.

Actions are interpreted as the Linux executor would: ``SendUdp``/``SendIcmp`` become
deliveries (node <-> its cell's agent over the radio, agent <-> home agent over the core;
anything else is counted as undeliverable), ``InstallBinding``/``RemoveBinding`` update the
record of what each home agent accepted (for the invariants) and are counted, as are
``InstallVisitor``/``RemoveVisitor`` and every ``Log`` event name. ICMP errors are not
generated (the engines' retransmission and pending timeouts cover the losses).

Per node the simulator keeps a few array slots (cell, handoff start, accepted care-of
address and expiry) besides the engine itself; all randomness comes from the scenario's
seed (per-purpose ``random.Random`` objects, and each node's own mobility stream), and the
order of events is total (time, then a sequence number), so a run is reproducible. A
simulator may hold one share of the nodes (``worker``) with a replica of every agent:
:mod:`mip4.sim.workers` runs the shares in parallel and merges their reports.
``gc.freeze()`` after setup and at every sample keeps the garbage collector from
rescanning the engines, and the young generation's threshold is raised while running
(:data:`GC_THRESHOLD`).
"""

from __future__ import annotations

import gc
import heapq
import math
import random
import resource
import time
from array import array
from collections import Counter
from ipaddress import IPv4Address
from typing import Any, TextIO

from mip4.core.actions import (
    InstallBinding,
    Log,
    RemoveBinding,
    SendIcmp,
    SendUdp,
)
from mip4.core.events import Event, IcmpReceived, LinkDown, LinkUp, UdpReceived, udp_received
from mip4.core.fa_config import ForeignAgentConfig, VisitedLink
from mip4.core.foreign_agent import ForeignAgent
from mip4.core.home_agent import HomeAgent, HomeAgentConfig
from mip4.core.mobile_node import MobileNode, MobileNodeConfig
from mip4.security.sa import SecurityAssociation, SecurityAssociations
from mip4.wire.records import make_record

from . import links
from .mobility import RandomWaypoint
from .report import Report
from .scenario import Scenario

TIMER, DELIVER, MCAST, MOVE, ON, REBOOT, SAMPLE = range(7)
#: engines' clocks start here (Unix time of simulated second 0, for timestamp replay)
UNIX0 = 1_700_000_000.0
MN_SPI = 1000
_NONE = -1.0
_MN_IF, _FA_IF, _HA_IF = "mn0", "fa0", "ha0"
#: the clock engine calls are timed with: this process's CPU time, so that the figures do
#: not count the time other processes had the CPU (a machine shared with other work)
_clock = time.process_time
#: one engine call in this many is timed (the clock is a system call, ~1.5-5 us, more
#: than many engine calls); the others are counted, and the cost of each (role, input)
#: is its calls times the mean of its timed ones (the choice is by call number: the same
#: run times the same calls). Not sparser: a timed call runs just after a system call
#: (colder caches and TLB), so the sparser the sampling, the more the mean of the timed
#: calls overstates the others (2,000 nodes, 600 s: engines 1.53 s of 1.89 s CPU at 8,
#: 1.79 s of 1.69 s -- more than the whole -- at 32)
COST_SAMPLE = 8
#: the collector's thresholds during a run: the engines' garbage is almost all freed by
#: reference counting; young collections every 50,000 allocations, not 700
GC_THRESHOLD = (50_000, 20, 100)
#: first byte of a UDP / ICMP payload -> what the engine is handed
_KINDS = {1: "request", 3: "reply", 9: "advertisement", 10: "solicitation"}
#: a binding may outlive its expiry by this much before it counts as stale (the engines'
#: timers fire at the deadline; a bounded-work expiry may spread a burst)
STALE_GRACE = 1.0
_BROADCAST = 0xFFFFFFFF


def _is_group(address: int) -> bool:
    """224.0.0.0/4 (multicast) or the limited broadcast."""
    return address >> 28 == 14 or address == _BROADCAST


def icmp_received(
    payload: bytes,
    src: IPv4Address,
    dst: IPv4Address,
    interface: str,
    link_src: bytes | None,
    ttl: int,
) -> IcmpReceived:
    """``IcmpReceived(...)`` built as one record."""
    return make_record(
        IcmpReceived,
        {
            "payload": payload,
            "src": src,
            "dst": dst,
            "interface": interface,
            "link_src": link_src,
            "ttl": ttl,
        },
    )


def share(nodes: int, w: int, workers: int) -> tuple[int, int]:
    """The nodes ``[lo, hi)`` worker ``w`` of ``workers`` simulates (consecutive shares
    whose sizes differ by at most one)."""
    return nodes * w // workers, nodes * (w + 1) // workers


class Simulator:
    """Build the engines of ``scenario``; :meth:`run` plays it and returns a
    :class:`~mip4.sim.report.Report`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        progress: TextIO | None = None,
        worker: tuple[int, int] = (0, 1),
    ) -> None:
        """``progress``: a stream that gets one line per binding-table sample (simulated
        time, wall time, events, bindings, peak RSS) while running. ``worker``: ``(w,
        W)`` simulates only the ``w``-th of ``W`` consecutive shares of the nodes
        (:func:`share`), with a replica of every agent (:mod:`mip4.sim.workers`)."""
        self.s = s = scenario
        self.progress = progress
        w, workers = worker
        if not 0 <= w < workers:
            raise ValueError(f"sim: worker {w} of {workers}")
        self.worker = worker
        #: this simulator's nodes are ``lo .. lo + n - 1`` of the population; engine
        #: index ``i < n`` is node ``lo + i``
        self.lo, hi = share(s.nodes, w, workers)
        n, m, k = hi - self.lo, s.foreign_agents, s.home_agents
        self.n, self.m, self.k = n, m, k
        self.width, self.height = s.grid
        self.cells = self.width * self.height
        seeds = random.Random(s.seed)
        self._net_rng = random.Random(seeds.getrandbits(64))
        self._mn_rng = random.Random(seeds.getrandbits(64))
        self._fa_rng = random.Random(seeds.getrandbits(64))
        self._ha_rng = random.Random(seeds.getrandbits(64))
        self._reboot_rng = random.Random(seeds.getrandbits(64))
        self.mobility = RandomWaypoint(
            n,
            self.width,
            self.height,
            speed_min=s.speed_min / s.cell_size,
            speed_max=s.speed_max / s.cell_size,
            dwell=s.dwell,
            key=seeds.getrandbits(64),
            first=self.lo,
        )
        self._sas = [
            SecurityAssociation(spi=MN_SPI, key=random.Random(s.seed * 31 + j).randbytes(16))
            for j in range(k)
        ]
        self._ha_addr = [IPv4Address(links.ha_address(j)) for j in range(k)]
        self._fa_addr = [IPv4Address(links.fa_address(j)) for j in range(m)]
        self._fa_int = [links.fa_address(j) for j in range(m)]
        if s.advertisement_interval > 0:
            adv = {
                "advertisement_interval": s.advertisement_interval,
                "advertisement_lifetime": min(0xFFFF, max(1, int(3 * s.advertisement_interval))),
            }
        else:  # solicitations only: an advertisement stays valid for a long time
            adv = {"advertise": False, "advertisement_lifetime": 9000}
        self._fa_configs = [
            ForeignAgentConfig(
                links=(VisitedLink(_FA_IF, self._fa_addr[j], links.FA_PREFIX_LEN),),
                max_lifetime=max(s.lifetime, 1800),
                max_visitors=s.nodes,
                max_pending=s.nodes,
                **adv,  # type: ignore[arg-type]
            )
            for j in range(m)
        ]
        self._ha_configs = [
            HomeAgentConfig(
                address=self._ha_addr[j],
                home_network=links.ha_network(j),
                interface=_HA_IF,
                max_lifetime=max(s.lifetime, 1800),
                max_bindings=s.nodes + 1,
            )
            for j in range(k)
        ]
        self.engines: list[Any] = [self._make_mn(i) for i in range(n)]
        self.engines += [self._make_fa(j) for j in range(m)]
        self.engines += [self._make_ha(j) for j in range(k)]
        total = n + m + k
        #: the deadline each engine's live TIMER entry was pushed for (-1: none)
        self._sched = array("d", [_NONE]) * total
        #: each node's cell (-1: switched off)
        self.cell = array("i", [-1]) * n
        self.members: list[set[int]] = [set() for _ in range(self.cells)]
        #: when the node's current attachment began (-1: registered since), and whether
        #: it was its first one
        self._attach_t = array("d", [_NONE]) * n
        self._first = bytearray(n)
        #: what the node's home agent last accepted: care-of address, expiry (-1: none)
        self.acc_coa = array("I", [0]) * n
        self.acc_exp = array("d", [_NONE]) * n
        self.heap: list[tuple[float, int, int, int, Any, int]] = []
        self._seq = 0
        self.now = 0.0
        # figures
        self.report = Report.empty(s)
        self.codes: Counter[int] = Counter()
        self.logs: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.per_second = array("I", [0]) * (int(s.duration) + 1)
        self.ha_accepts = array("I", [0]) * (int(s.duration) + 1)
        #: handoff and first-registration latencies (simulated seconds)
        self.handoff = array("d")
        self.first = array("d")
        self.samples: list[tuple[float, int, int]] = []
        self.reboots: Counter[str] = Counter()
        #: seconds of wall time spent inside each role's engine calls, and call counts
        self.engine_time = [0.0, 0.0, 0.0]
        self.engine_calls = [0, 0, 0]
        #: (role, input) -> [calls, seconds]: the input is the message type (request,
        #: reply, advertisement, solicitation), an event class, or "timer" (seconds
        #: estimated from the timed calls, :data:`COST_SAMPLE`, when the run ends)
        self.costs: dict[tuple[int, str], list[float]] = {}
        #: while running: (role, input) -> [calls, timed calls, seconds of the timed ones]
        self._timed: dict[tuple[int, str], list[float]] = {}
        #: calls until the next timed one
        self._countdown = 1
        self.rss_after_setup = 0
        #: garbage collections during the run: count, total seconds, longest pause
        self.gc_pauses = [0.0, 0.0, 0.0]
        self._gc_t0 = 0.0
        self._wall0 = 0.0
        self.events = 0

    # -- engines -------------------------------------------------------------------------

    def _make_mn(self, i: int) -> MobileNode:
        g = self.lo + i  # its number in the population: its addresses
        k = g % self.k
        cfg = MobileNodeConfig(
            home_address=IPv4Address(links.home_address(g, self.k)),
            home_agent=self._ha_addr[k],
            home_prefix_len=links.HOME_PREFIX_LEN,
            lifetime=self.s.lifetime,
            colocated_allowed=False,
        )
        return MobileNode(cfg, self._sas[k], UNIX0, rng=self._mn_rng)

    def _make_fa(self, j: int) -> ForeignAgent:
        return ForeignAgent(self._fa_configs[j], SecurityAssociations(), UNIX0, rng=self._fa_rng)

    def _make_ha(self, j: int) -> HomeAgent:
        sas = links.SubscriberAssociations(links.ha_network(j), self._sas[j])
        return HomeAgent(self._ha_configs[j], sas, UNIX0, rng=self._ha_rng)

    def _role(self, idx: int) -> int:
        return 0 if idx < self.n else 1 if idx < self.n + self.m else 2

    # -- the heap ------------------------------------------------------------------------

    def _push(self, t: float, kind: int, target: int, data: Any = None, cell: int = -1) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, kind, target, data, cell))

    def _arm(self, idx: int) -> None:
        """Push engine ``idx``'s deadline if it has none pushed or an earlier one (a
        later deadline waits for the pushed entry: popped early, it re-arms)."""
        d = self.engines[idx].next_deadline()
        if d is not None:
            pushed = self._sched[idx]
            if pushed == _NONE or d < pushed:
                self._sched[idx] = d
                self._push(max(d, self.now), TIMER, idx, d)

    def _call(self, idx: int, event: Event | None) -> None:
        """One call into engine ``idx`` (``None``: its timer), then its actions."""
        engine = self.engines[idx]
        now = self.now
        role = 0 if idx < self.n else 1 if idx < self.n + self.m else 2
        if event is None:
            what = "timer"
        else:
            cls = type(event)
            if cls is UdpReceived or cls is IcmpReceived:
                payload = event.payload  # type: ignore[union-attr]
                what = _KINDS.get(payload[0], "other") if payload else "other"
            else:
                what = cls.__name__
        key = (role, what)
        cost = self._timed.get(key)
        if cost is None:
            cost = self._timed[key] = [0, 0, 0.0]
        cost[0] += 1
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = COST_SAMPLE
            t0 = _clock()
            acts = engine.handle_timer(now) if event is None else engine.handle(event, now)
            cost[2] += _clock() - t0
            cost[1] += 1
        else:
            acts = engine.handle_timer(now) if event is None else engine.handle(event, now)
        for a in acts:
            cls = type(a)
            if cls is SendUdp or cls is SendIcmp:
                self._send(idx, a)
            elif cls is Log:
                self.logs[a.event] += 1
            elif cls is InstallBinding:
                self._installed(a)
            elif cls is RemoveBinding:
                self._removed(a)
            else:
                self.actions[cls.__name__] += 1
        d = engine.next_deadline()  # _arm, inline
        if d is not None:
            pushed = self._sched[idx]
            if pushed == _NONE or d < pushed:
                self._sched[idx] = d
                self._push(d if d > now else now, TIMER, idx, d)

    def settle_costs(self) -> None:
        """:attr:`costs`, :attr:`engine_time` and :attr:`engine_calls` from the calls
        counted and timed (an input never timed -- rare -- gets the mean of its role's
        timed calls)."""
        role_mean = [0.0, 0.0, 0.0]
        for r in range(3):
            timed = [(n, s) for (role, _), (_, n, s) in self._timed.items() if role == r and n]
            n = sum(t for t, _ in timed)
            role_mean[r] = sum(s for _, s in timed) / n if n else 0.0
        self.costs = {}
        self.engine_time = [0.0, 0.0, 0.0]
        self.engine_calls = [0, 0, 0]
        for (role, what), (calls, timed_calls, secs) in self._timed.items():
            mean = secs / timed_calls if timed_calls else role_mean[role]
            self.costs[(role, what)] = [calls, calls * mean]
            self.engine_time[role] += calls * mean
            self.engine_calls[role] += int(calls)

    def _installed(self, a: InstallBinding) -> None:
        self.actions["InstallBinding"] += 1
        self.ha_accepts[min(int(self.now), len(self.ha_accepts) - 1)] += 1
        i = links.node_of_home(int(a.home_address), self.k) - self.lo
        if 0 <= i < self.n:
            self.acc_coa[i] = int(a.care_of_address)
            self.acc_exp[i] = math.inf if a.expires is None else a.expires

    def _removed(self, a: RemoveBinding) -> None:
        self.actions["RemoveBinding"] += 1
        i = links.node_of_home(int(a.home_address), self.k) - self.lo
        if 0 <= i < self.n and (
            a.care_of_address is None or int(a.care_of_address) == self.acc_coa[i]
        ):
            self.acc_exp[i] = _NONE

    # -- links ---------------------------------------------------------------------------

    def _send(self, idx: int, a: SendUdp | SendIcmp) -> None:
        s, n, now = self.s, self.n, self.now
        if idx < n:  # a mobile node: only its cell's agent hears it
            cell = self.cell[idx]
            if cell < 0:
                self.dropped["node off"] += 1
                return
            dst = a.dst
            d = int(dst)
            if not (d == self._fa_int[cell] or _is_group(d)):
                self.dropped["undeliverable"] += 1
                return
            if s.radio_loss and self._net_rng.random() < s.radio_loss:
                self.dropped["radio loss"] += 1
                return
            src = a.src or self.engines[idx].config.home_address
            mac = links.node_mac(self.lo + idx)
            ev: Event
            if isinstance(a, SendUdp):
                ttl = a.ttl if a.ttl is not None else 64
                ev = udp_received(a.payload, src, dst, a.sport, a.dport, _FA_IF, mac, ttl)
            else:
                ev = icmp_received(a.payload, src, dst, _FA_IF, mac, a.ttl)
            self._push(now + s.radio_delay, DELIVER, n + cell, ev, cell)
        elif idx < n + self.m:  # a foreign agent: its cell's nodes, or a home agent
            j = idx - n
            mac = links.agent_mac(j)
            src = a.src or self._fa_addr[j]
            if a.link_dst is not None or _is_group(int(a.dst)):
                if j >= self.cells:
                    self.dropped["agent without a cell"] += 1
                    return
                if isinstance(a, SendUdp):
                    ttl = a.ttl if a.ttl is not None else 64
                    ev = udp_received(a.payload, src, a.dst, a.sport, a.dport, _MN_IF, mac, ttl)
                else:
                    ev = icmp_received(a.payload, src, a.dst, _MN_IF, mac, a.ttl)
                if a.link_dst is None:
                    self._push(now + s.radio_delay, MCAST, j, ev, j)
                    return
                i = links.node_of_mac(a.link_dst) - self.lo
                if i < 0 or i >= n:
                    self.dropped["undeliverable"] += 1
                    return
                if s.radio_loss and self._net_rng.random() < s.radio_loss:
                    self.dropped["radio loss"] += 1
                    return
                self._push(now + s.radio_delay, DELIVER, i, ev, j)
                return
            h = links.ha_of_address(int(a.dst), self.k)
            if h < 0 or type(a) is not SendUdp:
                self.dropped["undeliverable"] += 1
                return
            if s.core_loss and self._net_rng.random() < s.core_loss:
                self.dropped["core loss"] += 1
                return
            ttl = (a.ttl if a.ttl is not None else 64) - 1
            ev = udp_received(a.payload, src, a.dst, a.sport, a.dport, _HA_IF, None, ttl)
            self._push(now + s.core_delay, DELIVER, n + self.m + h, ev)
        else:  # a home agent: foreign agents (care-of addresses)
            h = idx - n - self.m
            j = links.fa_of_address(int(a.dst), self.m)
            if j < 0 or type(a) is not SendUdp:
                self.dropped["undeliverable"] += 1
                return
            if s.core_loss and self._net_rng.random() < s.core_loss:
                self.dropped["core loss"] += 1
                return
            src = a.src or self._ha_addr[h]
            ttl = (a.ttl if a.ttl is not None else 64) - 1
            ev = udp_received(a.payload, src, a.dst, a.sport, a.dport, _FA_IF, None, ttl)
            self._push(now + s.core_delay, DELIVER, n + j, ev)

    def _to_node(self, i: int, ev: Event, cell: int) -> None:
        """Deliver over the radio to node ``i`` if it is still in ``cell``."""
        if self.cell[i] != cell:
            self.dropped["moved away"] += 1
            return
        payload = ev.payload if isinstance(ev, UdpReceived) else b""
        reply = len(payload) > 1 and payload[0] == 3
        self._call(i, ev)
        if reply:
            self.codes[payload[1]] += 1
            if payload[1] <= 1 and self.engines[i].registered:
                now = self.now
                self.per_second[min(int(now), len(self.per_second) - 1)] += 1
                t = self._attach_t[i]
                if t >= 0:
                    (self.first if self._first[i] else self.handoff).append(now - t)
                    self._attach_t[i] = _NONE

    # -- mobility and reboots ------------------------------------------------------------

    def _attach(self, i: int, cell: int, *, first: bool) -> None:
        old = self.cell[i]
        if old >= 0:
            self.members[old].discard(i)
            self.cell[i] = -1
            self._call(i, LinkDown(_MN_IF))
        self.cell[i] = cell
        self.members[cell].add(i)
        self._attach_t[i] = self.now
        self._first[i] = first
        self._call(i, LinkUp(_MN_IF, None, None))

    def _move(self, i: int) -> None:
        mob = self.mobility
        mob.advance(i, self.now)
        cell = mob.cell(i)
        if cell != self.cell[i]:
            self._attach(i, cell, first=False)
        t = mob.next_change(i)
        if t <= self.s.duration:
            self._push(t, MOVE, i)

    def _reboot(self, idx: int) -> None:
        n, m = self.n, self.m
        if idx < n + m:
            j = idx - n
            self.engines[idx] = self._make_fa(j)
            self.reboots["foreign agent"] += 1
            self._sched[idx] = _NONE
            self._call(idx, LinkUp(_FA_IF, self._fa_addr[j], links.FA_PREFIX_LEN))
        else:
            h = idx - n - m
            self.engines[idx] = self._make_ha(h)
            self.reboots["home agent"] += 1
            self._sched[idx] = _NONE
            # the bindings are gone with it
            for i in range((h - self.lo) % self.k, n, self.k):
                self.acc_exp[i] = _NONE
            self._arm(idx)
        self._schedule_reboot(idx)

    def _schedule_reboot(self, idx: int) -> None:
        rate = self.s.reboot_rate / 3600.0
        if rate > 0:
            t = self.now + self._reboot_rng.expovariate(rate)
            if t <= self.s.duration:
                self._push(t, REBOOT, idx)

    def attach_times(self) -> array[float]:
        """When each node's current attachment began, if not registered since (-1)."""
        return self._attach_t

    def bindings(self) -> int:
        return sum(len(self.engines[self.n + self.m + h].bindings) for h in range(self.k))

    def visitors(self) -> int:
        return sum(len(self.engines[self.n + j].visitors) for j in range(self.m))

    # -- running -------------------------------------------------------------------------

    def setup(self) -> None:
        s, n, m = self.s, self.n, self.m
        # the switch-on times of the whole population, in node order (the same for a
        # node whichever worker simulates it)
        ramp = random.Random(s.seed ^ 0x5EED)
        for _ in range(self.lo):
            ramp.random()
        for j in range(m):
            self._call(n + j, LinkUp(_FA_IF, self._fa_addr[j], links.FA_PREFIX_LEN))
        for h in range(self.k):
            self._arm(n + m + h)
        for i in range(n):
            self._push(ramp.random() * s.ramp, ON, i)
        for idx in range(n, n + m + self.k):
            self._schedule_reboot(idx)
        t = 0.0
        while t <= s.duration:
            self._push(t, SAMPLE, 0)
            t += s.sample_interval
        gc.collect()
        gc.freeze()

    def _compact(self) -> None:
        """Drop the TIMER entries engines have since moved (each reschedule leaves one
        behind until its time comes: renewals are minutes away)."""
        sched = self._sched
        self.heap[:] = [e for e in self.heap if e[2] != TIMER or sched[e[3]] == e[4]]
        heapq.heapify(self.heap)

    def _progress(self, events: int) -> None:
        assert self.progress is not None
        wall = time.perf_counter() - self._wall0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t, bindings, visitors = self.samples[-1]
        print(
            f"sim {t:8.0f} s  wall {wall:8.1f} s  events {events:>11,}  "
            f"bindings {bindings:>9,}  visitors {visitors:>9,}  peak RSS {rss:,.0f} MiB",
            file=self.progress,
            flush=True,
        )

    def _gc_callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_t0
        # what survived one collection is engine state (bindings, visitors, agents): keep
        # it out of every later one, so that each object is scanned once
        gc.freeze()
        self.gc_pauses[0] += 1
        self.gc_pauses[1] += pause
        self.gc_pauses[2] = max(self.gc_pauses[2], pause)

    def run(self) -> Report:
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        self.setup()
        setup_wall = time.perf_counter() - wall0
        self.rss_after_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        wall1 = self._wall0 = time.perf_counter()
        gc.callbacks.append(self._gc_callback)
        threshold = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLD)
        try:
            self._loop()
        finally:
            gc.set_threshold(*threshold)
            gc.callbacks.remove(self._gc_callback)
        wall = time.perf_counter() - wall1
        self.settle_costs()
        rusage = resource.getrusage(resource.RUSAGE_SELF)
        return self.report.fill(
            self,
            wall=wall,
            setup_wall=setup_wall,
            cpu=time.process_time() - cpu0,
            peak_rss=rusage.ru_maxrss * 1024,
        )

    def _loop(self) -> None:
        heap, end = self.heap, self.s.duration
        pop = heapq.heappop
        sched, engines = self._sched, self.engines
        events = 0
        while heap and heap[0][0] <= end:
            t, _, kind, target, data, cell = pop(heap)
            self.now = t
            if kind == TIMER:
                if sched[target] != data:
                    continue  # the engine moved its deadline since
                sched[target] = _NONE
                d = engines[target].next_deadline()
                if d is None:
                    continue
                if d > t:
                    self._arm(target)
                    continue
                self._call(target, None)
            elif kind == DELIVER:
                if target < self.n:
                    self._to_node(target, data, cell)
                else:
                    self._call(target, data)
            elif kind == MCAST:
                # the cell's members are the nodes in it: no "moved away" check, and an
                # advertisement is no reply to count (what _to_node adds)
                loss = self.s.radio_loss
                call = self._call
                for i in sorted(self.members[target]):
                    if loss and self._net_rng.random() < loss:
                        self.dropped["radio loss"] += 1
                        continue
                    call(i, data)
                    events += 1
            elif kind == MOVE:
                self._move(target)
            elif kind == ON:
                self.mobility.advance(target, t)
                self._attach(target, self.mobility.cell(target), first=True)
                nt = self.mobility.next_change(target)
                if nt <= end:
                    self._push(nt, MOVE, target)
            elif kind == REBOOT:
                self._reboot(target)
            elif kind == SAMPLE:
                self.samples.append((t, self.bindings(), self.visitors()))
                if len(heap) > 4 * len(engines):
                    self._compact()
                gc.freeze()  # what survived so far (bindings, visitors) is not rescanned
                if self.progress is not None:
                    self._progress(events)
            events += 1
        self.now = end
        self.events = events

    # -- invariants ----------------------------------------------------------------------

    def disagreements(self) -> int:
        """Nodes that believe they are registered (an unexpired binding for their current
        care-of address) while their home agent holds no binding for that care-of address
        and has not rebooted since: a figure, not an invariant (a node that returns to
        the cell of its previous registration before its new request was answered
        believes in the old binding)."""
        n, m, now = self.n, self.m, self.now
        count = 0
        for i in range(n):
            mn = self.engines[i]
            exp = mn.binding_expires
            if not mn.registered or exp is None or exp <= now or self.acc_exp[i] < 0:
                continue
            ha = self.engines[n + m + (self.lo + i) % self.k]
            hoa = IPv4Address(links.home_address(self.lo + i, self.k))
            if not any(
                b.care_of_address == mn.care_of_address for b in ha.bindings.bindings_of(hoa)
            ):
                count += 1
        return count

    def check_invariants(self) -> list[str]:
        """The engines' property-test invariants, over the whole population at the end."""
        bad: list[str] = []
        now, n, m = self.now, self.n, self.m
        held: dict[int, int] = {}
        for h in range(self.k):
            net = self._ha_configs[h].home_network
            for b in self.engines[n + m + h].bindings:
                hoa = int(b.home_address)
                g = links.node_of_home(hoa, self.k)
                i = g - self.lo
                if hoa in held:
                    bad.append(f"{b.home_address}: bound at home agents {held[hoa]} and {h}")
                held[hoa] = h
                if b.home_address not in net or g < 0 or g % self.k != h:
                    bad.append(f"{b.home_address}: bound at home agent {h}, not its own")
                    continue
                if not 0 <= i < n:
                    bad.append(f"{b.home_address}: bound at a replica of another worker")
                    continue
                exp = math.inf if b.expires is None else b.expires
                if self.acc_exp[i] < 0 or self.acc_coa[i] != int(b.care_of_address):
                    bad.append(f"{b.home_address}: binding without a valid registration")
                elif self.acc_exp[i] != exp:
                    bad.append(f"{b.home_address}: binding expiry differs from the accepted one")
                elif exp < now - STALE_GRACE:
                    bad.append(f"{b.home_address}: binding held {now - exp:.1f} s past expiry")
        for i in range(n):
            if self.acc_exp[i] > now and links.home_address(self.lo + i, self.k) not in held:
                bad.append(f"node {self.lo + i}: accepted registration not bound at its home agent")
        for name, count in self.logs.items():
            if name.endswith(("internal_error", "internal-error", "protocol_error")):
                bad.append(f"engines logged {name} {count} time(s)")
        return bad
