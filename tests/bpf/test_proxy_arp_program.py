"""Proxy ARP in ``mip4_agent`` (RFC 5944 §4.6), through BPF_PROG_TEST_RUN.

While a mobile node is away, its home agent answers ARP requests for the node's home
address on the home link with its own hardware address. With the bpf plane the program
answers from ``mip4_proxy`` (address, interface) -> the interface's hardware address, as
the kernel answers for a proxy neighbour entry (``arp_process``, net/ipv4/arp.c):

* only an Ethernet/IPv4 ARP request (RFC 826: htype 1, ptype 0x0800, hlen 6, plen 4, op 1)
  that arrived on the entry's interface, for this host or broadcast;
* never a probe (sender address 0: RFC 5227 §2.1.1, only the address's owner answers) nor a
  gratuitous request (sender = target);
* the reply: op 2, sender = (the interface's hardware address, the target address), target
  = the requester (its hardware and protocol addresses); Ethernet to the requester's
  hardware address from the interface's; sent back out of the interface it came in on.

Everything else goes on untouched (``TC_ACT_OK``, the frame as it was), as before the
program answered anything; its IPv4 paths do not change. The requests are built by scapy
and the replies are checked against bytes laid out here from RFC 826 and decoded by scapy:
two oracles independent of the program.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address as A

import pytest

from mip4.dataplane import Tunnel as PyTunnel
from mip4.dataplane import encapsulate_gre
from mip4.io.bpf.plane import (
    TC_ACT_OK,
    TC_ACT_REDIRECT,
    BpfPlane,
    Encap,
    Event,
    Program,
    Tunnel,
)

from .frames import CN, COA, HA, HOME, frame, inner, ip_of

scapy_l2 = pytest.importorskip("scapy.layers.l2")
Ether, ARP = scapy_l2.Ether, scapy_l2.ARP

LO = 1  #: the interface the test runs' requests "arrive on" (skb->ingress_ifindex)
OTHER = 2  #: another interface of the agent
HA_MAC = bytes.fromhex("020000001234")  #: the home agent's interface
ASKER_MAC = bytes.fromhex("02000000abcd")  #: a host on the home link
ASKER = A("10.0.0.9")
BROADCAST = b"\xff" * 6


def mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def request(
    *,
    target: A = HOME,
    sender: A = ASKER,
    dst: bytes = BROADCAST,
    op: int = 1,
    hwtype: int = 1,
    ptype: int = 0x0800,
    hwlen: int = 6,
    plen: int = 4,
    pad: int = 0,
) -> bytes:
    """An ARP request from the asker (scapy), ``pad`` zero bytes after it (Ethernet's
    minimum frame: 60 bytes without the FCS)."""
    pkt = Ether(dst=mac(dst), src=mac(ASKER_MAC)) / ARP(
        hwtype=hwtype,
        ptype=ptype,
        hwlen=hwlen,
        plen=plen,
        op=op,
        hwsrc=mac(ASKER_MAC),
        psrc=str(sender),
        hwdst="00:00:00:00:00:00",
        pdst=str(target),
    )
    return bytes(pkt) + b"\0" * pad


def rfc826_reply(target: A = HOME, pad: int = 0) -> bytes:
    """The reply RFC 826 describes, laid out by hand: Ethernet to the requester from us,
    then hardware 1 / protocol 0x0800 / lengths 6 and 4 / op 2, sender = (our hardware
    address, the target address asked for), target = (the requester's hardware and
    protocol addresses)."""
    eth = ASKER_MAC + HA_MAC + b"\x08\x06"
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
    arp += HA_MAC + target.packed + ASKER_MAC + ASKER.packed
    return eth + arp + b"\0" * pad


def proxied(plane: BpfPlane, address: A = HOME, ifindex: int = LO) -> None:
    assert plane.set_proxy(address, ifindex, HA_MAC)


@pytest.mark.parametrize("pad", [0, 18], ids=["42-bytes", "padded-to-60"])
def test_a_request_for_a_proxied_address_is_answered(plane: BpfPlane, pad: int) -> None:
    proxied(plane)
    r = plane.test_run(Program.AGENT, request(pad=pad), ingress_ifindex=LO)
    assert r.retval == TC_ACT_REDIRECT  # bpf_redirect(the ingress interface, egress)
    assert r.data == rfc826_reply(pad=pad)
    reply = Ether(r.data)
    assert (reply.dst, reply.src, reply.type) == (mac(ASKER_MAC), mac(HA_MAC), 0x0806)
    arp = reply[ARP]
    assert (arp.op, arp.hwsrc, arp.psrc) == (2, mac(HA_MAC), str(HOME))
    assert (arp.hwdst, arp.pdst) == (mac(ASKER_MAC), str(ASKER))
    ev = plane.events()
    assert ev[Event.PROXY_ARP] == 1 and ev[Event.NOT_OURS] == 0


def test_a_unicast_request_to_the_interface_is_answered(plane: BpfPlane) -> None:
    """A neighbour confirming a cached entry asks the cached hardware address (RFC 1122
    §2.3.2.1): the test run's device is the loopback, whose address is all zeros."""
    proxied(plane)
    r = plane.test_run(Program.AGENT, request(dst=bytes(6)), ingress_ifindex=LO)
    assert (r.retval, r.data) == (TC_ACT_REDIRECT, rfc826_reply())


def test_each_address_is_answered_for_itself(plane: BpfPlane) -> None:
    other = A("10.0.0.6")
    proxied(plane, HOME)
    proxied(plane, other)
    for address in (HOME, other):
        r = plane.test_run(Program.AGENT, request(target=address), ingress_ifindex=LO)
        assert (r.retval, r.data) == (TC_ACT_REDIRECT, rfc826_reply(address))
    assert plane.events()[Event.PROXY_ARP] == 2


UNANSWERED = {
    "address-not-proxied": dict(target=A("10.0.0.6")),
    "probe-sender-0": dict(sender=A("0.0.0.0")),  # RFC 5227 §2.1.1
    "gratuitous": dict(sender=HOME),
    "reply": dict(op=2),
    "rarp-request": dict(op=3),
    "hlen-8": dict(hwlen=8),
    "plen-16": dict(plen=16),
    "htype-ieee802": dict(hwtype=6),
    "ptype-ipv6": dict(ptype=0x86DD),
    "for-another-host": dict(dst=bytes.fromhex("020000000099")),  # arp_rcv: OTHERHOST
}


@pytest.mark.parametrize("case", sorted(UNANSWERED))
def test_anything_else_goes_on_untouched(plane: BpfPlane, case: str) -> None:
    proxied(plane)
    frame_in = request(**UNANSWERED[case])  # type: ignore[arg-type]
    r = plane.test_run(Program.AGENT, frame_in, ingress_ifindex=LO)
    assert (r.retval, r.data) == (TC_ACT_OK, frame_in)
    ev = plane.events()
    assert ev[Event.PROXY_ARP] == 0 and ev[Event.NOT_OURS] == 1


def test_a_request_from_another_interface_is_not_answered(plane: BpfPlane) -> None:
    """The entry is the home link's: the same address asked on another interface of the
    agent is not answered (the kernel's proxy entries are per device too)."""
    proxied(plane, HOME, OTHER)
    r = plane.test_run(Program.AGENT, request(), ingress_ifindex=LO)
    assert (r.retval, r.data) == (TC_ACT_OK, request())
    r = plane.test_run(Program.AGENT, request(), ingress_ifindex=OTHER)
    assert r.retval == TC_ACT_REDIRECT
    assert r.data == rfc826_reply()


def test_a_truncated_request_goes_on_untouched(plane: BpfPlane) -> None:
    proxied(plane)
    short = request()[:41]
    r = plane.test_run(Program.AGENT, short, ingress_ifindex=LO)
    assert (r.retval, r.data) == (TC_ACT_OK, short)


def test_a_binding_alone_answers_no_arp(plane: BpfPlane) -> None:
    """What answers is ``mip4_proxy``: a tunnel for the address does not."""
    plane.set_binding(HOME, Tunnel(HA, COA, oif=LO, mtu=1500))
    r = plane.test_run(Program.AGENT, request(), ingress_ifindex=LO)
    assert (r.retval, r.data) == (TC_ACT_OK, request())


def test_the_ipv4_paths_do_not_change(plane: BpfPlane) -> None:
    """A proxied address's datagrams: untouched without a binding, tunnelled with one,
    byte for byte as the user-space plane does it."""
    proxied(plane)
    pkt = inner(src=CN, dst=HOME)
    r = plane.test_run(Program.AGENT, frame(pkt), ingress_ifindex=LO)
    assert (r.retval, r.data) == (TC_ACT_OK, frame(pkt))
    plane.set_binding(HOME, Tunnel(HA, COA, Encap.GRE, key=9, oif=LO, mtu=1500))
    r = plane.test_run(Program.AGENT, frame(pkt), ingress_ifindex=LO)
    assert r.retval == TC_ACT_REDIRECT
    assert ip_of(r.data) == encapsulate_gre(
        pkt, PyTunnel(HA, COA, gre_key=9), identification=0x1C46
    )
    ev = plane.events()
    assert ev[Event.ENCAP] == 1 and ev[Event.PROXY_ARP] == 0


def test_proxy_map_round_trip(plane: BpfPlane) -> None:
    proxied(plane, HOME, LO)
    proxied(plane, HOME, OTHER)
    assert plane.proxies() == {(HOME, LO): HA_MAC, (HOME, OTHER): HA_MAC}
    assert plane.del_proxy(HOME, OTHER) and not plane.del_proxy(HOME, OTHER)
    assert plane.proxies() == {(HOME, LO): HA_MAC}
    with pytest.raises(ValueError):
        plane.set_proxy(HOME, LO, b"\x02")
