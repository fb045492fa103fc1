"""The direct rtnetlink path (issue 13): a ``NETLINK_ROUTE`` socket of one namespace that
adds, replaces and deletes routes and (proxy) neighbour entries on the caller's thread,
sending what pyroute2 would send for the same arguments. Everything else netlink goes
through pyroute2 (:class:`mip4.io.nlthread.NetlinkThread`, which hands this module the
requests it takes)."""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Sequence
from typing import cast

from .undo import RT_TABLE_MAIN

NUD_PERMANENT = 0x80


#: one netlink request of :meth:`RtnlSocket.send_batch`: message type, command ("add",
#: "replace", "del"), body, and what an error names
Request = tuple[int, str, bytes, str]


class NetnsError(OSError):
    """A namespace operation failed (the message names the namespace and the operation)."""


class NetlinkRequestError(NetnsError):
    """The kernel refused a netlink request of the direct path (:class:`RtnlSocket`);
    ``code`` is the errno, as on pyroute2's ``NetlinkError``."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(code, f"{what}: {os.strerror(code)}")
        self.code = code


_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_RTMSG = struct.Struct(
    "=BBBBBBBBI"
)  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_RTATTR = struct.Struct("=HH")  # length, type
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_NLMSG_ERROR = 2
_RTM_NEWROUTE, _RTM_DELROUTE, _RTM_GETROUTE = 24, 25, 26
_RTM_NEWNEIGH, _RTM_DELNEIGH = 28, 29
_NLM_F_REQUEST, _NLM_F_ACK = 0x1, 0x4
_NLM_F_REPLACE, _NLM_F_EXCL, _NLM_F_CREATE = 0x100, 0x200, 0x400
#: pyroute2's flags for the commands the direct path takes
_COMMAND_FLAGS = {
    "add": _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL,
    "replace": _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_REPLACE,
    "del": _NLM_F_REQUEST | _NLM_F_ACK,
}
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PREFSRC, _RTA_TABLE = 1, 4, 5, 7, 15
_NDA_DST, _NDA_LLADDR = 1, 2
_RT_TABLE_COMPAT = 252
#: what pyroute2 fills in for a route it adds: static protocol, universe scope, unicast
_RTPROT_STATIC, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 4, 0, 1
_ROUTE_KEYS = frozenset(
    {"dst", "dst_len", "oif", "gateway", "table", "flags", "prefsrc", "proto", "scope"}
)
_NEIGH_KEYS = frozenset({"dst", "ifindex", "lladdr", "state", "flags"})


def _attr(kind: int, value: bytes) -> bytes:
    length = _RTATTR.size + len(value)
    return _RTATTR.pack(length, kind) + value + b"\0" * (-length % 4)


_NTF_PROXY = 0x08
#: the attribute headers of a 4-byte destination and output interface
_DST4_RTA = _RTATTR.pack(8, _RTA_DST)
_OIF_RTA = _RTATTR.pack(8, _RTA_OIF)
_DST4_NDA = _RTATTR.pack(8, _NDA_DST)


def _host_route_head(command: str) -> bytes:
    """What :meth:`RtnlSocket.route` puts before the destination of a /32 route in the
    main table (``rtmsg`` and ``RTA_TABLE``)."""
    adding = command != "del"
    return _RTMSG.pack(
        socket.AF_INET,
        32,
        0,
        0,
        RT_TABLE_MAIN,
        _RTPROT_STATIC if adding else 0,
        _RT_SCOPE_UNIVERSE,
        _RTN_UNICAST if adding else 0,
        0,
    ) + _attr(_RTA_TABLE, _U32.pack(RT_TABLE_MAIN))


_HOST_ROUTE_HEADS = {command: _host_route_head(command) for command in _COMMAND_FLAGS}


def _host_route_body(command: str, dst: bytes, oif: int) -> bytes:
    return _HOST_ROUTE_HEADS[command] + _DST4_RTA + dst + _OIF_RTA + _U32.pack(oif)


class RtnlSocket:
    """A ``NETLINK_ROUTE`` socket of one namespace, for the requests a registration makes
    (issue 13): a route or a (proxy) neighbour entry added, replaced or deleted is one
    ``send`` and one ``recv`` of the kernel's acknowledgement on the caller's thread -- no
    hop to pyroute2's thread and loop (~250 us of CPU each). The request carries what
    pyroute2 would send for the same arguments (its defaults included: a route it adds is
    ``proto static``, ``scope global``, ``unicast``; a neighbour entry ``permanent`` unless
    a state is given), so the kernel does the same (``tests/io/test_netns_direct.py``
    compares the objects with ``ip -d``, and the outcome of deletions). Thread-safe; the
    kernel answers a request before ``send`` returns, and a timeout bounds the wait all the
    same."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._seq = 0
        self._buf = bytearray(65536)

    @classmethod
    def open(cls) -> RtnlSocket:
        """A socket in the calling thread's namespace (open it inside :func:`entered`)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        try:
            sock.bind((0, 0))
            sock.settimeout(10.0)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    @staticmethod
    def takes(kind: str, command: str, kwargs: dict[str, object]) -> bool:
        """Whether the direct path builds this request (else pyroute2 does)."""
        if command not in _COMMAND_FLAGS:
            return False
        keys = _ROUTE_KEYS if kind == "route" else _NEIGH_KEYS if kind == "neigh" else None
        return (
            keys is not None
            and keys.issuperset(kwargs)
            and "/" not in str(kwargs.get("dst", "/"))  # an address, not a prefix
        )

    def route(self, command: str, **kw: object) -> None:
        dst_len = int(cast(int, kw.get("dst_len", 32)))
        table = int(cast(int, kw.get("table", RT_TABLE_MAIN)))
        # pyroute2 fills in protocol and type only for what it adds; a deletion leaves them
        # 0 (any), and its scope 0 unless given (255, RT_SCOPE_NOWHERE, is any)
        adding = command != "del"
        body = _RTMSG.pack(
            socket.AF_INET,
            dst_len,
            0,
            0,
            table if table < 256 else _RT_TABLE_COMPAT,
            int(cast(int, kw.get("proto", _RTPROT_STATIC if adding else 0))),
            int(cast(int, kw.get("scope", _RT_SCOPE_UNIVERSE))),
            _RTN_UNICAST if adding else 0,
            int(cast(int, kw.get("flags", 0))),
        )
        attrs = [_attr(_RTA_TABLE, _U32.pack(table))]
        if dst_len:
            attrs.append(_attr(_RTA_DST, socket.inet_aton(str(kw["dst"]))))
        if kw.get("oif") is not None:
            attrs.append(_attr(_RTA_OIF, _U32.pack(int(cast(int, kw["oif"])))))
        if kw.get("gateway") is not None:
            attrs.append(_attr(_RTA_GATEWAY, socket.inet_aton(str(kw["gateway"]))))
        if kw.get("prefsrc") is not None:
            attrs.append(_attr(_RTA_PREFSRC, socket.inet_aton(str(kw["prefsrc"]))))
        kind = _RTM_NEWROUTE if adding else _RTM_DELROUTE
        self._request(kind, command, body + b"".join(attrs), f"route {command}")

    def neigh(self, command: str, **kw: object) -> None:
        body = _NDMSG.pack(
            socket.AF_INET,
            int(cast(int, kw.get("ifindex", 0))),
            int(cast(int, kw.get("state", NUD_PERMANENT))),
            int(cast(int, kw.get("flags", 0))),
            0,
        )
        attrs = [_attr(_NDA_DST, socket.inet_aton(str(kw["dst"])))]
        if kw.get("lladdr") is not None:
            attrs.append(_attr(_NDA_LLADDR, bytes.fromhex(str(kw["lladdr"]).replace(":", ""))))
        kind = _RTM_DELNEIGH if command == "del" else _RTM_NEWNEIGH
        self._request(kind, command, body + b"".join(attrs), f"neigh {command}")

    # -- a registration's requests, from integers (issue 13) ------------------------------

    def host_route(self, command: str, dst: bytes, oif: int) -> None:
        """``route(command, dst=<dst>, dst_len=32, oif=oif)`` in the main table, from the
        address's 4 bytes: the same message (``tests/io/test_rtnl_fast.py`` compares the
        bytes), without the keyword arguments and the dotted-quad round trip."""
        self._request(
            _RTM_NEWROUTE if command != "del" else _RTM_DELROUTE,
            command,
            _host_route_body(command, dst, oif),
            f"route {command}",
        )

    def proxy_neighbour(self, command: str, dst: bytes, ifindex: int) -> None:
        """``neigh(command, dst=<dst>, ifindex=ifindex, flags=NTF_PROXY)`` from the
        address's 4 bytes: the same message."""
        self._request(
            _RTM_DELNEIGH if command == "del" else _RTM_NEWNEIGH,
            command,
            _NDMSG.pack(socket.AF_INET, ifindex, NUD_PERMANENT, _NTF_PROXY, 0) + _DST4_NDA + dst,
            f"neigh {command}",
        )

    # -- several requests in one message (issue 13) ---------------------------------------

    def host_route_request(self, command: str, dst: bytes, oif: int) -> Request:
        """What :meth:`host_route` sends, for :meth:`send_batch`."""
        kind = _RTM_NEWROUTE if command != "del" else _RTM_DELROUTE
        return (kind, command, _host_route_body(command, dst, oif), f"route {command}")

    def proxy_neighbour_request(self, command: str, dst: bytes, ifindex: int) -> Request:
        """What :meth:`proxy_neighbour` sends, for :meth:`send_batch`."""
        body = _NDMSG.pack(socket.AF_INET, ifindex, NUD_PERMANENT, _NTF_PROXY, 0) + _DST4_NDA + dst
        return (
            _RTM_DELNEIGH if command == "del" else _RTM_NEWNEIGH,
            command,
            body,
            f"neigh {command}",
        )

    #: the most requests in one ``send`` (their acknowledgements wait in the socket's
    #: receive buffer until they are read: an acknowledgement is a buffer of its own)
    BATCH_MAX = 64

    def send_batch(self, requests: Sequence[Request]) -> list[NetlinkRequestError | None]:
        """Send ``requests`` (from :meth:`host_route_request`, :meth:`proxy_neighbour_request`)
        -- each its own netlink message with its own sequence number -- in one ``send`` per
        :data:`BATCH_MAX` of them, then read the answers. The kernel handles the messages
        of a buffer one after the other, inside the ``send``, and goes on with the next
        after a failed one (``netlink_rcv_skb``); it answers a failed message whatever its
        flags, and a message that succeeded only when it asks for it (``NLM_F_ACK``). So
        only the last message asks: its answer comes after every other one's, and a batch
        that succeeds takes one ``send`` and one ``recv`` -- not one ``recv`` per request
        (each of which lets go of the GIL and takes it back: a thread sending route deletes
        beside a busy event loop, issue 13). The answer for each request, in order, is
        ``None`` (done) or the :class:`NetlinkRequestError` :meth:`host_route` would have
        raised for it alone."""
        out: list[NetlinkRequestError | None] = []
        for start in range(0, len(requests), self.BATCH_MAX):
            out += self._send_chunk(requests[start : start + self.BATCH_MAX])
        return out

    def _send_chunk(self, requests: Sequence[Request]) -> list[NetlinkRequestError | None]:
        n = len(requests)
        results: list[NetlinkRequestError | None] = [None] * n
        if not n:
            return results
        with self._lock:
            first = (self._seq + 1) & 0xFFFFFFFF
            parts = []
            pack = _NLMSGHDR.pack
            size = _NLMSGHDR.size
            for i, (kind, command, body, _what) in enumerate(requests):
                flags = _COMMAND_FLAGS[command]
                if i < n - 1:  # (only the last asks for an answer: send_batch's docstring)
                    flags &= ~_NLM_F_ACK
                parts.append(pack(size + len(body), kind, flags, (first + i) & 0xFFFFFFFF, 0))
                parts.append(body)
            self._seq = (first + n - 1) & 0xFFFFFFFF
            self._sock.send(b"".join(parts))
            buf = self._buf
            done = False
            while not done:
                got = self._sock.recv_into(buf)
                data = memoryview(buf)[:got]
                offset = 0
                while offset + _NLMSGHDR.size <= got:
                    length, mtype, _, mseq, _ = _NLMSGHDR.unpack_from(data, offset)
                    if length < _NLMSGHDR.size:
                        break
                    i = (mseq - first) & 0xFFFFFFFF
                    if mtype == _NLMSG_ERROR and i < n:
                        (error,) = _I32.unpack_from(data, offset + _NLMSGHDR.size)
                        if error:
                            results[i] = NetlinkRequestError(-error, requests[i][3])
                        done = done or i == n - 1
                    offset += (length + 3) & ~3  # an answer to an earlier request: skipped
        return results

    def _request(self, kind: int, command: str, body: bytes, what: str) -> None:
        mtype, msg = self._exchange(kind, _COMMAND_FLAGS[command], body)
        if mtype == _NLMSG_ERROR:
            (error,) = _I32.unpack_from(msg, _NLMSGHDR.size)
            if error:
                raise NetlinkRequestError(-error, what)

    def route_get(self, dst: bytes) -> tuple[int, int, bytes | None] | None:
        """``ip route get <dst>``: the kernel's route to the address of 4 bytes ``dst`` as
        (route type, output interface index, gateway's 4 bytes or ``None`` on a link),
        :class:`NetlinkRequestError` (its errno, e.g. ENETUNREACH) when the kernel has none,
        as pyroute2 raises its ``NetlinkError``. One ``RTM_GETROUTE`` on the caller's thread,
        the question pyroute2's ``route("get", dst=...)`` asks (issue 13: a home agent asks
        it once per new care-of address, ~0.7 ms through pyroute2 and its thread)."""
        body = _RTMSG.pack(socket.AF_INET, 32, 0, 0, 0, 0, 0, 0, 0) + _attr(_RTA_DST, dst)
        mtype, msg = self._exchange(_RTM_GETROUTE, _NLM_F_REQUEST, body)
        if mtype == _RTM_NEWROUTE:
            return _route_answer(msg)
        if mtype == _NLMSG_ERROR:
            (error,) = _I32.unpack_from(msg, _NLMSGHDR.size)
            if error:
                raise NetlinkRequestError(-error, "route get")
        return None  # an acknowledgement without the route

    def _exchange(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        """Send one request; the type and bytes (header included) of the kernel's first
        message answering it (an acknowledgement or error, or the answer asked for)."""
        with self._lock:
            self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
            self._sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body)
            buf = self._buf
            while True:
                # into one buffer kept for the socket: no 64 KiB object per answer
                size = self._sock.recv_into(buf)
                data = memoryview(buf)[:size]
                offset = 0
                while offset + _NLMSGHDR.size <= size:
                    length, mtype, _, mseq, _ = _NLMSGHDR.unpack_from(data, offset)
                    if length < _NLMSGHDR.size:
                        break
                    if mseq == seq:
                        return mtype, bytes(data[offset : offset + length])
                    offset += (length + 3) & ~3  # an answer to an earlier request: skipped

    def close(self) -> None:
        self._sock.close()


def _route_answer(msg: bytes) -> tuple[int, int, bytes | None]:
    """(type, RTA_OIF, RTA_GATEWAY) of one ``RTM_NEWROUTE`` message (header included)."""
    start = _NLMSGHDR.size
    rtype = msg[start + 7]
    oif, gateway = 0, None
    offset = start + _RTMSG.size
    while offset + _RTATTR.size <= len(msg):
        length, kind = _RTATTR.unpack_from(msg, offset)
        if length < _RTATTR.size:
            break
        value = msg[offset + _RTATTR.size : offset + length]
        if kind == _RTA_OIF and len(value) == 4:
            (oif,) = _U32.unpack_from(value)
        elif kind == _RTA_GATEWAY and len(value) == 4:
            gateway = bytes(value)
        offset += (length + 3) & ~3
    return rtype, oif, gateway
