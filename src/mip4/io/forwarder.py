"""The user-space tunnel: TUN device ⇄ :mod:`mip4.dataplane` ⇄ raw IP sockets.

Theory of operation
-------------------
The kernel here has no ipip/gre modules, so every node that tunnels runs a
:class:`Forwarder`:

* **Into the tunnel.** Routes (installed by the executor) send the datagrams that must be
  tunnelled into a TUN device: at the home agent a host route per registered home address
  (RFC 5944 §4.2.3), at a foreign agent or a co-located mobile node a policy rule for a
  reverse-tunnelled source (RFC 3024). The forwarder reads them, looks the **destination**
  up in the bindings, else the **source** in the reverse tunnels, encapsulates with
  :mod:`mip4.dataplane` (RFC 2003 TTL/TOS/DF rules, RFC 2004, RFC 2784) and sends the
  result on the raw socket of that IP protocol to the tunnel exit.
* **Out of the tunnel.** A raw socket per protocol (4, 47, 55) receives tunnelled datagrams
  addressed to this node, outer header included. The outer source must be a known peer
  (RFC 2003 §6.2, unless ``accept_any_peer``). The inner datagram goes to a visitor's
  hardware address when its destination is a registered visitor (foreign agent, RFC 5944
  §4.2.2: no ARP on behalf of the visitor), and otherwise back into the TUN device, from
  which the kernel delivers or forwards it.

* **Broadcasts (B bit, RFC 5944 §4.3).** For a home address whose binding asked for them,
  the home agent picks up the broadcast frames on the home link (an AF_PACKET socket per
  home interface, opened on first use) and tunnels a copy of each IPv4 broadcast to the care-of
  address: as it is to a co-located care-of address, otherwise first inside a unicast
  IP-in-IP datagram to the home address, so the foreign agent delivers it to the node and the
  node decapsulates it.

* **Accounting (RFC 2866, foreign agent).** Per visitor home address, cumulative counts of
  the datagrams reverse-tunnelled from it (input) and delivered to it out of the tunnel
  (output), in packets and inner-datagram octets (:meth:`Forwarder.visitor_traffic`): one
  dict look-up and two additions per datagram. The RADIUS shell
  (:class:`mip4.io.radius.AaaShell`) turns them into each session's counts.

Path MTU (RFC 2003 §5.1): the TUN device's MTU (1472 by default) leaves room for the
largest outer header on a 1500-byte path. With a larger TUN MTU, set ``tunnel_mtu``: a DF
datagram that does not fit once encapsulated is dropped and its sender gets ICMP
"fragmentation needed" with the tunnel MTU minus the overhead.

TTL: the kernel has already decremented the TTL of a datagram it *forwarded* into the TUN
device, so the forwarder encapsulates with ``forwarding=False`` and never decrements twice.

Batching and copies: each wake-up drains its descriptor until ``EAGAIN`` (at most
``batch`` datagrams, so one busy direction cannot starve the other); reads go into one
preallocated buffer per descriptor (``readv``/``recv_into``) and are handled as
``memoryview`` slices. Encapsulation makes the one copy it must (new outer header);
IP-in-IP and GRE decapsulation make none. Delivery to a visitor goes out on an
AF_PACKET ``SOCK_RAW`` socket bound to the visitor's interface, with the Ethernet header
built once per visitor and sent by ``sendmsg([header, inner])`` (no copy): an addressed
``sendto`` on a packet socket would cost an extra ``SIOCGIFINDEX`` ioctl per datagram
(CPython resolves the interface name on every call).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

from mip4.dataplane.common import Encapsulation, Tunnel, complete_transport_checksum
from mip4.dataplane.errors import PacketTooBig, TunnelError
from mip4.dataplane.icmp import fragmentation_needed
from mip4.dataplane.ipip import encapsulate_ipip
from mip4.dataplane.offload import needs_repair, repair_offloaded
from mip4.dataplane.table import TunnelEntry, TunnelTable, codecs
from mip4.wire.addr import ipv4_from_int
from mip4.wire.errors import DecodeError
from mip4.wire.ip import Bytes

from .edge import EdgeTunnels
from .netns import entered
from .rawsock import (
    ETH_P_IP,
    hardware_address,
    open_packet_sender,
    open_tunnel_socket,
    send_to_link,
)
from .tun import Tun

log = logging.getLogger(__name__)

#: visitor counters kept before those of departed visitors are dropped
MAX_TRAFFIC_ENTRIES = 65536

SOL_PACKET = 263
PACKET_AUXDATA = 8
#: ``tpacket_auxdata.tp_status``: the checksum is to be completed by the hardware
TP_STATUS_CSUMNOTREADY = 1 << 3
#: room for one ``struct tpacket_auxdata`` (20 bytes) control message
_AUXDATA_SPACE = socket.CMSG_SPACE(20)


def _checksum_not_ready(ancillary: list[tuple[int, int, bytes]]) -> bool:
    """Whether a packet socket's ``PACKET_AUXDATA`` says the frame's checksum is still to
    be completed (``tp_status``, the first field, in host byte order)."""
    return any(
        level == SOL_PACKET
        and kind == PACKET_AUXDATA
        and len(aux) >= 4
        and int.from_bytes(aux[:4], sys.byteorder) & TP_STATUS_CSUMNOTREADY
        for level, kind, aux in ancillary
    )


class Forwarder:
    """Moves datagrams between ``tun`` and the raw sockets of ``protocols`` according to
    ``table``. Sockets are opened in namespace ``netns`` (``None``: the current one).
    :meth:`attach` registers it with an asyncio loop; :meth:`pump_tun` and
    :meth:`pump_raw` can also be called directly (tests, benchmarks)."""

    def __init__(
        self,
        tun: Tun,
        table: TunnelTable | None = None,
        *,
        netns: str | None = None,
        protocols: tuple[int, ...] = (Encapsulation.IPIP, Encapsulation.GRE, Encapsulation.MINIMAL),
        accept_any_peer: bool = False,
        tunnel_mtu: int | None = None,
        batch: int = 256,
        bufsize: int = 65535,
        segment_mtu: int = 1500,
    ) -> None:
        self.tun = tun
        self.netns = netns
        #: the path MTU towards tunnel exits (RFC 2003 §5.1): a DF datagram that does not
        #: fit once encapsulated is answered with ICMP "fragmentation needed" carrying
        #: ``tunnel_mtu`` minus the encapsulation overhead. ``None``: no check (the TUN
        #: MTU already leaves room for the largest header).
        self.tunnel_mtu = tunnel_mtu
        #: decapsulated datagrams longer than this (a sender's GSO super-packets, read whole
        #: by the raw sockets) are cut into TCP segments that fit (:mod:`mip4.dataplane.offload`)
        self.segment_mtu = segment_mtu
        self._icmp: socket.socket | None = None
        self.table = table if table is not None else TunnelTable()
        self.accept_any_peer = accept_any_peer
        self.batch = batch
        self.codecs = codecs()
        self.stats: Counter[str] = Counter()
        self.raw: dict[int, socket.socket] = {}
        #: per visitor interface: a bound AF_PACKET SOCK_RAW socket and its hardware address
        self._links: dict[str, tuple[socket.socket, bytes]] = {}
        #: per (interface, visitor hardware address): (socket's sendmsg, Ethernet header)
        self._frames: dict[tuple[str, bytes], tuple[Callable[..., int], bytes]] = {}
        self._bufs: dict[int, tuple[bytearray, memoryview]] = {}
        #: per home interface: the AF_PACKET socket that picks up its broadcasts
        self._broadcast_socks: dict[str, socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: edge tunnels and arrival buffers (handovers, :mod:`mip4.io.edge`), made on use
        self.edge: EdgeTunnels | None = None
        #: per visitor home address (as an integer): [input octets, output octets, input
        #: packets, output packets], cumulative (:meth:`visitor_traffic`)
        self._traffic: dict[int, list[int]] = {}
        try:
            for proto in protocols:
                self.raw[proto] = open_tunnel_socket(proto, netns)
                buf = bytearray(bufsize)
                self._bufs[proto] = (buf, memoryview(buf))
            self.link = open_packet_sender(netns)
        except BaseException:
            self.close()
            raise

    # -- lifecycle --------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        self._loop = loop
        loop.add_reader(self.tun.fileno(), self.pump_tun)
        for proto, sock in self.raw.items():
            loop.add_reader(sock.fileno(), self.pump_raw, proto)
        for interface, sock in self._broadcast_socks.items():
            loop.add_reader(sock.fileno(), self.pump_broadcast, interface)

    def detach(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.tun.fileno())
        for sock in [*self.raw.values(), *self._broadcast_socks.values()]:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
        self._loop = None

    def close(self) -> None:
        """Close the sockets (not the TUN device, which the caller owns)."""
        self.detach()
        for sock in self.raw.values():
            sock.close()
        self.raw.clear()
        for sock in getattr(self, "_broadcast_socks", {}).values():
            sock.close()
        if hasattr(self, "_broadcast_socks"):
            self._broadcast_socks.clear()
        for sock, _mac in getattr(self, "_links", {}).values():
            sock.close()
        if hasattr(self, "_links"):
            self._links.clear()
            self._frames.clear()
        link = getattr(self, "link", None)
        if link is not None:
            link.close()
        if getattr(self, "_icmp", None) is not None:
            assert self._icmp is not None
            self._icmp.close()
            self._icmp = None

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- into the tunnel --------------------------------------------------------------

    def pump_tun(self) -> int:
        """Drain the TUN device (at most ``batch`` datagrams); returns how many were read."""
        n = 0
        stats = self.stats
        bindings, reverse = self.table.bindings, self.table.reverse
        visitors = self.table.visitors
        for pkt in self.tun.read_views(self.batch):
            n += 1
            if len(pkt) < 20:
                stats["tun_runt"] += 1
                continue
            dst = int.from_bytes(pkt[16:20], "big")
            entries = bindings.get(dst)
            if entries is None:
                src = int.from_bytes(pkt[12:16], "big")
                entry = reverse.get(src)
                if entry is None and self.edge is not None:
                    entry = self.edge.reverse_entry(src)
                if entry is None:
                    stats["tun_no_tunnel"] += 1
                    continue
                # reverse-tunnelled from a visitor (RFC 3024): its accounting input
                if self._transmit(pkt, entry) and src in visitors:
                    c = self._traffic.get(src) or self._new_traffic(src)
                    c[0] += len(pkt)
                    c[2] += 1
                continue
            for entry in entries:
                self._transmit(pkt, entry)
        stats["tun_read"] += n
        return n

    def _send(self, pkt: memoryview, entry: TunnelEntry) -> None:
        """Encapsulate ``pkt`` for ``entry`` and send it."""
        self._transmit(pkt, entry)

    def _transmit(self, pkt: memoryview, entry: TunnelEntry) -> bool:
        """Encapsulate ``pkt`` for ``entry`` and send it; whether it left."""
        codec = self.codecs.get(entry.encapsulation)
        sock = self.raw.get(entry.encapsulation)
        if codec is None or sock is None:
            self.stats[f"encap_unsupported_{int(entry.encapsulation)}"] += 1
            return False
        try:
            outer = codec[0](pkt, entry.tunnel, self.tunnel_mtu)
        except PacketTooBig as exc:
            self.stats["encap_drop_too-big"] += 1
            self._fragmentation_needed(pkt, entry, exc)
            return False
        except TunnelError as exc:
            self.stats[f"encap_drop_{exc.reason.value}"] += 1
            return False
        except DecodeError:
            self.stats["encap_malformed"] += 1
            return False
        try:
            sock.sendto(outer, (entry.dst, 0))
        except BlockingIOError:
            self.stats["raw_send_full"] += 1
        except OSError as exc:
            self.stats[f"raw_send_{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
        else:
            self.stats["encapsulated"] += 1
            return True
        return False

    # -- accounting (RFC 2866; mip4.io.radius.AaaShell) -------------------------------

    def _new_traffic(self, home: int) -> list[int]:
        """The counters of visitor ``home``, made on its first datagram. Counters outlive
        the visitor entry (the Stop record of a deregistration is built after the entry is
        gone); past :data:`MAX_TRAFFIC_ENTRIES` those of addresses no longer visiting are
        dropped first."""
        traffic = self._traffic
        if len(traffic) >= MAX_TRAFFIC_ENTRIES:
            visitors = self.table.visitors
            for gone in [h for h in traffic if h not in visitors]:
                del traffic[gone]
        c = traffic[home] = [0, 0, 0, 0]
        return c

    def visitor_traffic(self, home: IPv4Address) -> tuple[int, int, int, int] | None:
        """What the visitor with home address ``home`` has sent and received through this
        foreign agent's tunnels, cumulative since this forwarder started, as
        ``(input octets, output octets, input packets, output packets)``
        (:data:`mip4.io.radius.Traffic`); ``None``: never seen.

        Input (RFC 2866 §5.3, "received from the port") is what the visitor sent that this
        forwarder reverse-tunnelled to its home agent (RFC 3024); output (§5.4) is what
        arrived through the tunnel for it and was delivered to it (RFC 5944 §4.2.2). An
        octet count is the sum of the inner IP datagrams' total lengths: what the visitor
        sent or received at the IP layer, without link-layer or tunnel headers. A
        datagram counts once it has left (``sendto`` or the delivery succeeded); drops
        do not count. Datagrams a visitor sends that are not reverse-tunnelled (no T bit:
        the kernel routes them) never pass through here and are not counted. Only
        visitors count (the ``visitors`` table): a co-located node's own reverse tunnel
        or a home agent's bindings add nothing."""
        c = self._traffic.get(int(home))
        return (c[0], c[1], c[2], c[3]) if c is not None else None

    def visitors_traffic(self) -> dict[str, tuple[int, int, int, int]]:
        """Every visitor's counters (:meth:`visitor_traffic`), by home address."""
        return {str(ipv4_from_int(h)): (c[0], c[1], c[2], c[3]) for h, c in self._traffic.items()}

    def _fragmentation_needed(self, pkt: memoryview, entry: TunnelEntry, exc: PacketTooBig) -> None:
        """RFC 2003 §5.1 / RFC 1191: tell the sender the tunnel's MTU. Sent from the tunnel
        entry point's address on a send-only raw socket (written into the TUN device it
        would be dropped: a local source arriving from outside is a martian)."""
        reply = fragmentation_needed(
            pkt, exc.tunnel_mtu, entry.tunnel.src, overhead=exc.tunnel_mtu - exc.next_hop_mtu
        )
        if reply is None:
            return
        if self._icmp is None:
            with entered(self.netns):
                self._icmp = socket.socket(
                    socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_RAW
                )
            self._icmp.setblocking(False)
        try:
            self._icmp.sendto(reply, (str(ipv4_from_int(int.from_bytes(pkt[12:16], "big"))), 0))
            self.stats["icmp_frag_needed"] += 1
        except OSError:
            self.stats["icmp_send_failed"] += 1

    # -- broadcasts (RFC 5944 §4.3) ---------------------------------------------------

    def watch_broadcasts(self, interface: str) -> None:
        """Pick up the broadcast frames on ``interface`` (the home link) from now on."""
        if interface in self._broadcast_socks:
            return
        with entered(self.netns):
            sock = socket.socket(
                socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.htons(ETH_P_IP)
            )
        try:
            sock.bind((interface, ETH_P_IP))
            sock.setblocking(False)
            # tells which frames still lack their transport checksum (offload)
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        except BaseException:
            sock.close()
            raise
        self._broadcast_socks[interface] = sock
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self.pump_broadcast, interface)

    def pump_broadcast(self, interface: str) -> int:
        """Drain the broadcast socket of ``interface`` (at most ``batch`` frames) and tunnel
        each IPv4 broadcast to the bindings that asked for them."""
        sock = self._broadcast_socks.get(interface)
        if sock is None:
            return 0
        n = 0
        for _ in range(self.batch):
            try:
                data, ancillary, _flags, addr = sock.recvmsg(65535, _AUXDATA_SPACE)
            except BlockingIOError:
                break
            n += 1
            # only link-layer broadcasts others sent (our own are PACKET_OUTGOING)
            if addr[2] != socket.PACKET_BROADCAST or len(data) < 20 or data[0] >> 4 != 4:
                continue
            pkt = bytearray(data)
            if _checksum_not_ready(ancillary):
                # sent by a host on this machine with checksum offload: the transport
                # checksum is only the pseudo-header part so far
                complete_transport_checksum(pkt)
                self.stats["broadcast_checksum_completed"] += 1
            self.forward_broadcast(memoryview(pkt))
        return n

    def forward_broadcast(self, pkt: memoryview) -> None:
        """Tunnel a copy of the broadcast datagram ``pkt`` to every binding that asked."""
        bindings = self.table.bindings
        for home, coas in self.table.broadcast.items():
            for entry in bindings.get(home, ()):
                nested = coas.get(entry.tunnel.dst_int)
                if nested is None:
                    continue
                if nested:
                    to_home = Tunnel(entry.tunnel.src, ipv4_from_int(home))
                    try:
                        inner = encapsulate_ipip(pkt, to_home, forwarding=False)
                    except (TunnelError, DecodeError):
                        self.stats["broadcast_malformed"] += 1
                        continue
                    self._send(memoryview(inner), entry)
                else:
                    self._send(pkt, entry)
                self.stats["broadcast_forwarded"] += 1

    # -- out of the tunnel ------------------------------------------------------------

    def _link_sender(self, interface: str, link_dst: bytes) -> tuple[Callable[..., int], bytes]:
        """``(sendmsg, ethernet_header)`` for delivering to ``link_dst`` on ``interface``
        (socket opened and header built on first use)."""
        link = self._links.get(interface)
        if link is None:
            with entered(self.netns):
                sock = socket.socket(
                    socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0
                )  # protocol 0: receives nothing
            try:
                sock.bind((interface, 0))
                sock.setblocking(False)
                link = (sock, hardware_address(sock, interface))
            except BaseException:
                sock.close()
                raise
            self._links[interface] = link
        sender = (link[0].sendmsg, link_dst + link[1] + ETH_P_IP.to_bytes(2, "big"))
        if len(self._frames) > 4096:
            self._frames.clear()
        self._frames[interface, link_dst] = sender
        return sender

    def _forget_link(self, interface: str) -> None:
        """Drop the bound socket of ``interface`` (gone or changed); reopened on next use."""
        link = self._links.pop(interface, None)
        if link is not None:
            link[0].close()
        for key in [k for k in self._frames if k[0] == interface]:
            del self._frames[key]

    def pump_raw(self, proto: int) -> int:
        """Drain the raw socket of ``proto`` (at most ``batch`` datagrams)."""
        sock = self.raw[proto]
        buf, view = self._bufs[proto]
        decap = self.codecs[proto][1] if proto in self.codecs else None
        stats = self.stats
        peers, visitors = self.table.peers, self.table.visitors
        bindings = self.table.bindings
        frames = self._frames
        traffic = self._traffic
        tun_fd = self.tun.fileno()
        segment_mtu = self.segment_mtu
        edge = self.edge
        n = 0
        for _ in range(self.batch):
            try:
                size = sock.recv_into(buf)
            except BlockingIOError:
                break
            n += 1
            if decap is None:
                stats[f"decap_unsupported_{proto}"] += 1
                continue
            try:
                d = decap(view[:size])
            except TunnelError as exc:
                stats[f"decap_drop_{exc.reason.value}"] += 1
                continue
            except DecodeError:
                stats["decap_malformed"] += 1
                continue
            if not self.accept_any_peer and int(d.outer_src) not in peers:
                stats["decap_unknown_peer"] += 1  # RFC 2003 §6.2
                continue
            inner = d.inner
            inner_dst = int.from_bytes(inner[16:20], "big")
            visitor = visitors.get(inner_dst)
            if visitor is None and bindings and not self.accept_any_peer:
                # a home agent decapsulates a reverse tunnel only for a source bound to
                # that care-of address (RFC 3024 §4.3; the bpf plane's decap_not_bound)
                entries = bindings.get(int.from_bytes(inner[12:16], "big"))
                outer_src = int(d.outer_src)
                if entries is None or all(int(e.tunnel.dst) != outer_src for e in entries):
                    stats["decap_not_bound"] += 1
                    continue
            packets: Sequence[Bytes] = (inner,)
            if needs_repair(inner, segment_mtu):
                # a sender's offloads left it unfinished: a raw socket cannot tell
                packets = repair_offloaded(inner, segment_mtu)
                stats["offload_repaired"] += 1
            if edge is not None:  # handovers: what the edge tunnels take (io/edge.py)
                outer_src = int(d.outer_src)
                packets = [p for p in packets if not edge.intercept(p, outer_src)]
            try:
                for pkt in packets:
                    if visitor is not None and visitor.link_address is not None:
                        key = (visitor.interface, visitor.link_address)
                        sender = frames.get(key) or self._link_sender(*key)
                        try:
                            sender[0]((sender[1], pkt))
                        except OSError as exc:
                            if isinstance(exc, BlockingIOError):
                                raise
                            # the interface went away or changed: resolve it by name again
                            self._forget_link(visitor.interface)
                            send_to_link(self.link, visitor.interface, visitor.link_address, pkt)
                        stats["delivered_link"] += 1
                    else:
                        os.write(tun_fd, pkt)
                        stats["delivered_tun"] += 1
                    if visitor is not None:  # delivered to a visitor: its accounting output
                        c = traffic.get(inner_dst) or self._new_traffic(inner_dst)
                        c[1] += len(pkt)
                        c[3] += 1
            except BlockingIOError:
                stats["deliver_full"] += 1
            except OSError as exc:
                stats[f"deliver_{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
        stats["raw_read"] += n
        stats[f"raw_read_{proto}"] += n
        return n

    # -- handovers (RFC 4881, RFC 4988; mip4.io.edge) ---------------------------------

    def edge_tunnels(self) -> EdgeTunnels:
        """The edge tunnels and arrival buffers of this forwarder (made on first use)."""
        if self.edge is None:
            self.edge = EdgeTunnels(self.table, self._send, self.deliver, self.to_kernel)
        return self.edge

    def deliver(self, interface: str, link_address: bytes | None, pkt: memoryview) -> None:
        """Deliver ``pkt`` to ``link_address`` on ``interface`` (no ARP, RFC 5944 §4.2.2);
        without a hardware address hand it to the kernel."""
        if link_address is None:
            self.to_kernel(pkt)
            return
        try:
            sender = self._frames.get((interface, link_address)) or self._link_sender(
                interface, link_address
            )
            try:
                sender[0]((sender[1], pkt))
            except OSError as exc:
                if isinstance(exc, BlockingIOError):
                    raise
                self._forget_link(interface)
                send_to_link(self.link, interface, link_address, pkt)
            self.stats["delivered_link"] += 1
            home = int.from_bytes(pkt[16:20], "big")
            if home in self.table.visitors:  # a buffered arrival (handover) delivered
                c = self._traffic.get(home) or self._new_traffic(home)
                c[1] += len(pkt)
                c[3] += 1
        except BlockingIOError:
            self.stats["deliver_full"] += 1
        except OSError as exc:
            self.stats[f"deliver_{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1

    def to_kernel(self, pkt: memoryview) -> None:
        """Hand ``pkt`` to the kernel (written into the TUN device)."""
        try:
            os.write(self.tun.fileno(), pkt)
            self.stats["delivered_tun"] += 1
        except BlockingIOError:
            self.stats["deliver_full"] += 1
        except OSError as exc:
            self.stats[f"deliver_{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
