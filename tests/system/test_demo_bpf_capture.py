"""Issue 12 acceptance 3: a capture of the demo's moves with EVERY role on the tc-BPF plane
(home agent, both foreign agents, the co-located mobile node), decoded by tshark.

The mobile node goes home → A (FA1) → B (FA2) → C (co-located) → home with reverse
tunnelling; at each stop the correspondent and the node exchange ICMP echoes with chosen
TOS and DF bits, both ways through the tunnels. tshark (with IP header checksum
verification on) then checks, on every link of the lab:

* no malformed packet and no expert error anywhere in the capture, and no ICMP redirect
  (the home agent forwards a decapsulated datagram out of the interface it came in on);
* every tunnelled frame (IP in IP, GRE): outer and inner IPv4 header checksums good; outer
  TOS and DF copied from the inner header (RFC 2003 §3.1); outer TTL the encapsulator's
  default (64) on the encapsulator's own link, one less past the router; the inner TTL one
  less than the sender's when an agent forwarded it into the tunnel (home agent: the
  correspondent's 64, minus the router, minus the agent; foreign agent, reverse tunnel:
  the node's 64 minus the agent) and untouched when the co-located node encapsulated its
  own datagram (RFC 2003 §3.1);
* an oversize datagram with DF sent into a tunnel gets ICMP "fragmentation needed" (RFC
  2003 §4, RFC 1191): the home agent's fast path leaves a datagram that does not fit once
  encapsulated to the slow path (``slow_too_big``) and the kernel answers from the tunnel
  device's MTU, an MTU that does fit once encapsulated (a datagram of exactly that size is
  then tunnelled and answered); the same for the node's datagram at FA1's reverse tunnel.

Minimal encapsulation (protocol 55) is left out: tshark 4.0 has no dissector for it (its
fields are checked byte by byte by tests/bpf through BPF_PROG_TEST_RUN)."""

from __future__ import annotations

import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

import mip4.lab.configs as lab_configs_module
from mip4.io.netns import run_in_netns
from mip4.lab.build import Lab
from mip4.lab.capture import Capture
from mip4.lab.configs import with_lab_dataplane
from mip4.lab.daemons import DaemonBackend
from mip4.lab.demo import ROUTE
from mip4.lab.scenario import Scenario, Settings
from mip4.wire.packets import icmp_with_checksum

from .helpers import lab_id

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.oracle]

CN = IPv4Address("198.51.100.10")
MN = IPv4Address("10.1.0.100")
HA = IPv4Address("10.1.0.2")
FA1 = IPv4Address("10.2.0.2")
CO_LOCATED = IPv4Address("10.4.0.100")
OVERHEAD = {"ipip": 20, "gre": 24}
LINK_MTU = 1500

IP_MTU_DISCOVER = 10  # <linux/in.h>
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_DO = 2

FIELDS = (
    "frame.number", "frame.interface_name", "ip.src", "ip.dst", "ip.proto", "ip.ttl",
    "ip.dsfield", "ip.flags.df", "ip.checksum.status", "ip.len", "icmp.type", "icmp.code",
    "icmp.mtu",
)  # fmt: skip


@dataclass(frozen=True)
class Frame:
    number: int
    link: str
    #: one value per IPv4 header in the frame, outermost first
    src: list[str]
    dst: list[str]
    proto: list[str]
    ttl: list[int]
    ds: list[int]
    df: list[str]
    checksum: list[str]
    length: list[int]
    icmp_type: list[str]
    icmp_code: list[str]
    icmp_mtu: list[str]


def _ints(cell: str) -> list[int]:
    return [int(v, 0) for v in cell.split(",") if v]


def _strs(cell: str) -> list[str]:
    return [v for v in cell.split(",") if v]


def tshark(pcap: Path, display_filter: str, fields: tuple[str, ...] = FIELDS) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-o", "ip.check_checksum:TRUE"]
    argv += ["-Y", display_filter, "-T", "fields"]
    for f in fields:
        argv += ["-e", f]
    argv += ["-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = []
    for line in out.splitlines():
        cells = line.split("\t")
        rows.append(cells + [""] * (len(fields) - len(cells)))
    return rows


def frames(pcap: Path, display_filter: str) -> list[Frame]:
    out = []
    for c in tshark(pcap, display_filter):
        number, link = int(c[0]), c[1]
        src, dst, proto = _strs(c[2]), _strs(c[3]), _strs(c[4])
        ttl, ds, df, checksum, length = (
            _ints(c[5]),
            _ints(c[6]),
            _strs(c[7]),
            _strs(c[8]),
            _ints(c[9]),
        )
        icmp = (_strs(c[10]), _strs(c[11]), _strs(c[12]))
        out.append(Frame(number, link, src, dst, proto, ttl, ds, df, checksum, length, *icmp))
    return out


# ---- traffic: ICMP echoes with chosen size, TOS and DF (bounded) ---------------------------


@dataclass(frozen=True)
class Outcome:
    replies: int
    #: (source, next-hop MTU) of each ICMP "fragmentation needed" received
    frag_needed: list[tuple[str, int]]
    #: sends refused locally (EMSGSIZE: the path MTU learnt)
    refused: int


def echo(
    lab: Lab,
    node: str,
    dst: IPv4Address,
    *,
    size: int = 84,
    tos: int = 0,
    df: bool = True,
    count: int = 3,
    wait: float = 1.0,
    src: IPv4Address | None = None,
) -> Outcome:
    """``count`` (≤ 10) ICMP echo requests of ``size`` bytes (the whole IPv4 datagram) from
    ``node`` (from address ``src`` if given) to ``dst``, each waiting ``wait`` seconds at
    most for its answer."""

    def run() -> Outcome:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        replies, refused, frag = 0, 0, []
        try:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            mode = IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT
            s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, mode)
            if src is not None:
                s.bind((str(src), 0))
            ident = 0x4D34
            for seq in range(min(count, 10)):
                body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + bytes(size - 28)
                try:
                    s.sendto(icmp_with_checksum(body), (str(dst), 0))
                except OSError:
                    refused += 1
                    continue
                deadline = time.monotonic() + wait
                while (left := deadline - time.monotonic()) > 0:
                    if not select.select([s], [], [], left)[0]:
                        break
                    data = s.recv(65535)
                    hl = (data[0] & 0xF) * 4
                    typ, code = data[hl], data[hl + 1]
                    if typ == 0 and data[12:16] == dst.packed:
                        _, _, _, rid, rseq = struct.unpack_from("!BBHHH", data, hl)
                        if (rid, rseq) == (ident, seq):
                            replies += 1
                            break
                    elif typ == 3 and code == 4:  # RFC 1191: next-hop MTU in bytes 6-7
                        mtu = struct.unpack_from("!H", data, hl + 6)[0]
                        frag.append((str(IPv4Address(data[12:16])), mtu))
                        break
        finally:
            s.close()
        return Outcome(replies, frag, refused)

    return run_in_netns(lab.ns(node), run, timeout=count * wait + 10)


# ---- the test -----------------------------------------------------------------------------


@pytest.mark.parametrize("encapsulation", ["ipip", "gre"])
@pytest.mark.usefixtures("needs_bpf")
def test_capture_of_the_demo_on_the_bpf_plane(
    lab_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encapsulation: str
) -> None:
    original: Callable[..., dict[str, str]] = lab_configs_module.lab_configs

    def every_role_on_bpf(*args: Any, **kw: Any) -> dict[str, str]:
        return with_lab_dataplane(original(*args, **kw), "bpf")

    monkeypatch.setattr(lab_configs_module, "lab_configs", every_role_on_bpf)
    pcap = tmp_path / "bpf.pcapng"
    settings = Settings(lab_id(lab_prefix), encapsulation=encapsulation, reverse_tunnel=True)
    events: dict[str, dict[str, int]] = {}
    with Scenario(settings) as sc, Capture(sc.lab, pcap, duration=240) as cap:
        lab, agents = sc.lab, sc.agents
        assert isinstance(agents, DaemonBackend)
        for node in ("ha", "fa1", "fa2", "mn"):
            st = agents.status(node)
            assert st is not None and st["dataplane"] == "bpf", (node, st)
        big: dict[str, Outcome] = {}
        for net in ROUTE:
            assert sc.move(net).registered, net
            assert lab.wait_reachable("cn", MN, within=5), net
            if net == "home":
                continue
            assert echo(lab, "cn", MN, tos=0x28, df=True).replies == 3, net
            assert echo(lab, "cn", MN, tos=0x00, df=False).replies == 3, net
            # from the home address (at C the co-located address would be chosen)
            assert echo(lab, "mn", CN, tos=0x10, df=True, src=MN).replies == 3, net
            if net == "a":
                # too big once encapsulated: the correspondent's at the home agent, the
                # node's at FA1's reverse tunnel
                big["ha"] = echo(lab, "cn", MN, size=LINK_MTU, tos=0x28, count=2)
                big["fa1"] = echo(lab, "mn", CN, size=LINK_MTU, tos=0x10, count=2, src=MN)
                mtu = big["ha"].frag_needed[0][1] if big["ha"].frag_needed else 0
                big["fits"] = echo(lab, "cn", MN, size=mtu, tos=0x28, count=2)
        for node in ("ha", "fa1"):
            st = agents.status(node)
            assert st is not None
            events[node] = st["fast_path"]["events"]
        # dumpcap gets the frames from the kernel's capture ring a block at a time (when
        # the block fills or times out); what is still in an unfinished block when tshark
        # stops is lost: the traffic of the last move, in a fast run
        time.sleep(2.0)
    assert sc.exit_codes == {"mn": 0, "fa2": 0, "fa1": 0, "ha": 0}
    assert pcap.stat().st_size > 0

    # nothing malformed, no expert error (8388608: PI_ERROR), anywhere in the capture
    bad = tshark(pcap, "_ws.malformed || _ws.expert.severity >= 8388608", ("frame.number",))
    assert bad == [], bad

    # no ICMP redirect: the home agent forwards what it decapsulated out of the interface
    # the tunnel came in on, and must not tell the mobile node about it (the fast path
    # turns send_redirects off)
    redirects = tshark(pcap, "icmp.type == 5", ("frame.number", "ip.src", "ip.dst"))
    assert redirects == [], redirects

    # ICMP "fragmentation needed": from the home agent to the correspondent, from FA1 to
    # the node, each with an MTU that fits once encapsulated; the programs left the
    # datagrams to the slow path (the kernel sent the ICMP) and did not tunnel them
    overhead = OVERHEAD[encapsulation]
    ha_mtu = [m for src, m in big["ha"].frag_needed if src == str(HA)]
    fa_mtu = [m for src, m in big["fa1"].frag_needed if src == str(FA1)]
    assert ha_mtu and fa_mtu, big
    assert 1280 <= ha_mtu[0] <= LINK_MTU - overhead, big
    assert 1280 <= fa_mtu[0] <= LINK_MTU - overhead, big
    assert big["ha"].replies == big["fa1"].replies == 0, big
    assert big["fits"].replies == 2, big  # exactly the MTU announced: tunnelled, answered
    assert events["ha"].get("slow_too_big", 0) >= 1, events
    assert events["fa1"].get("slow_too_big", 0) >= 1, events
    icmp = frames(pcap, "icmp.type == 3 && icmp.code == 4")
    seen = {(f.src[0], f.dst[0], int(f.icmp_mtu[0])) for f in icmp if f.icmp_mtu}
    tshark_said = cap.stderr.decode(errors="replace")  # e.g. packets dropped
    assert (str(HA), str(CN), ha_mtu[0]) in seen, (seen, tshark_said)
    assert (str(FA1), str(MN), fa_mtu[0]) in seen, (seen, tshark_said)

    # every tunnelled frame, on every link
    proto = {"ipip": "4", "gre": "47"}[encapsulation]
    tunnelled = frames(pcap, f"ip.proto == {proto}")
    nets = {lab.bridge(n): n for n in lab.topology.net_keys()}
    subnet = {n: IPv4Network(lab.topology.network(n).subnet) for n in lab.topology.net_keys()}

    def net_of(addr: str) -> str:
        return next(n for n, s in subnet.items() if IPv4Address(addr) in s)

    senders: dict[str, int] = {}
    for f in tunnelled:
        where = (f.number, f.link, f.src, f.dst, f.ttl, f.ds, f.df, f.checksum)
        assert len(f.src) == 2 and f.proto[0] == proto, where  # outer + inner decoded
        assert f.checksum == ["1", "1"], where  # both header checksums good
        assert f.ds[0] == f.ds[1] and f.df[0] == f.df[1], where  # RFC 2003 §3.1
        assert f.length[0] == f.length[1] + overhead <= LINK_MTU, where
        outer_src, inner_src = f.src
        on_own_link = nets[f.link] == net_of(outer_src)
        assert f.ttl[0] == (64 if on_own_link else 63), where
        if outer_src == str(HA):  # the correspondent's 64, the router, the home agent
            assert (inner_src, f.ttl[1]) == (str(CN), 62), where
        elif outer_src == str(CO_LOCATED):  # the node's own datagram: untouched
            assert (inner_src, f.ttl[1]) == (str(MN), 64), where
        else:  # a foreign agent's reverse tunnel: the node's 64, the agent
            assert outer_src in ("10.2.0.2", "10.3.0.2"), where
            assert (inner_src, f.ttl[1]) == (str(MN), 63), where
        senders[outer_src] = senders.get(outer_src, 0) + 1
    # each encapsulator was seen at work: the home agent, both foreign agents (reverse),
    # the co-located node
    assert set(senders) == {str(HA), "10.2.0.2", "10.3.0.2", str(CO_LOCATED)}, senders
    assert all(n >= 3 for n in senders.values()), senders
    # both TOS values and both DF values went through, copied
    assert {f.ds[1] for f in tunnelled} >= {0x28, 0x00, 0x10}
    assert {f.df[1] for f in tunnelled} == {"1", "0"}
