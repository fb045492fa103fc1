"""Batched datagram system calls for the UDP 434 control sockets (issue 13): one
``recvmmsg(2)`` reads the datagrams of a wakeup, one ``sendmmsg(2)`` sends a foreign agent's
relays of one read -- through the C library with :mod:`ctypes` (Python 3.11's ``socket``
has neither call).

Theory of operation
-------------------
A relaying foreign agent reads two datagrams and sends two per registration; under load a
wakeup finds tens of them waiting. One system call per datagram (and one more answering
``EAGAIN``) was a third of its cost. :class:`BatchReceiver` and :class:`BatchSender` make
their message headers, addresses, control buffers and datagram slots once (the slots in
anonymous memory: only the pages the kernel writes are resident) and reuse them; each
datagram is read from or written into them with a few ``struct`` operations.

What goes in and out is exactly what :mod:`mip4.io.rawsock`'s per-datagram functions give
and take (:func:`~mip4.io.rawsock.recv_udp`'s ``recvmsg`` loop, :func:`~mip4.io.rawsock.send_udp`):
the same bytes, source and destination addresses, ports, arrival interface, TTL and
``IP_PKTINFO`` / ``IP_TTL`` control messages, the same bound per read, the same errors
(``tests/io/test_batch_receiver.py``, ``tests/io/test_batch_sender.py``). Where the C library
has neither call, nothing here can be made and the callers keep the per-datagram calls.
The structure layouts are LP64 Linux's.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
from ipaddress import IPv4Address

from mip4.wire.addr import ipv4_int as _int

from . import rawsock as _rawsock
from .rawsock import (
    _ADDRESSES_MAX,
    _CMSG_SPACE,
    _INT,
    IP_PKTINFO,
    IP_TTL,
    PKTINFO,
    _address,
    _ancillary,
    send_udp,
)

__all__ = ["BatchReceiver", "BatchSender"]

#: ``recvmmsg(2)`` from the C library (``None``: not there; :class:`BatchReceiver` then
#: cannot be made and :func:`recv_udp` reads with ``recvmsg``, one call per datagram)
_recvmmsg: ctypes._NamedFuncPointer | None
_sendmmsg: ctypes._NamedFuncPointer | None
try:
    if ctypes.sizeof(ctypes.c_void_p) != 8:  # pragma: no cover - the layouts below are LP64's
        raise OSError(errno.ENOSYS, "not an LP64 system")
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _recvmmsg = _LIBC.recvmmsg
    # no argtypes: the arguments are given as C types already (a conversion per call, ~0.3
    # us, spared): int, a c_void_p, int, int, NULL
    _recvmmsg.restype = ctypes.c_int
    _sendmmsg = _LIBC.sendmmsg  # (no argtypes either: int, a c_void_p, int, int)
    _sendmmsg.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - not glibc / not Linux
    _recvmmsg = _sendmmsg = None
MSG_DONTWAIT = 0x40
#: struct mmsghdr (x86-64 and every LP64 Linux): msg_name, msg_namelen, msg_iov,
#: msg_iovlen, msg_control, msg_controllen, msg_flags, msg_len
_MMSGHDR = struct.Struct("=QI4xQQQQi4xI4x")
#: what the kernel writes back into one, read from its msg_namelen: msg_namelen,
#: msg_controllen, msg_len
_MMSG_OUT = struct.Struct("=I28xQ8xI")
_IOVEC = struct.Struct("=QQ")
#: struct sockaddr_in: port, address (network order)
_SOCKADDR_IN = struct.Struct("!2xH4s")
#: the control messages as the kernel lays them out for open_udp_control's options (an
#: IP_PKTINFO, then an IP_TTL: ip_cmsg_recv_offset's order): their lengths, levels and
#: types, the in_pktinfo (index, spec_dst, addr) and the TTL
_CMSG_PKTINFO_TTL = struct.Struct("=Qiii4s4s4xQiii")
_CMSG_HDR = struct.Struct("=Qii")
_CMSG_PKTINFO_LEN = socket.CMSG_LEN(PKTINFO.size)
_CMSG_TTL_LEN = socket.CMSG_LEN(_INT.size)
#: the largest datagram read, as recvmsg(65535, ...) reads it
_DATAGRAM_MAX = 65535


def _address_of(buffer: bytearray | mmap.mmap) -> int:
    return ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))


class _Messages:
    """``slots`` message headers (struct mmsghdr) for one ``recvmmsg`` or ``sendmmsg``,
    each pointing at its own address (16 bytes), control buffer (``_CMSG_SPACE``), and
    datagram buffer of 65,535 bytes (anonymous memory: only the pages written are ever
    resident; a bytearray would be zeroed, all of it resident -- 4 MiB for 64 slots)
    through its own iovec. ``receive``: the iovecs and control lengths are the whole
    buffers (the kernel fills them); else 0, set per datagram by the sender."""

    __slots__ = ("control", "data", "headers", "iov", "names")

    def __init__(self, slots: int, *, receive: bool) -> None:
        space = _CMSG_SPACE
        self.headers = bytearray(_MMSGHDR.size * slots)
        self.names = bytearray(16 * slots)
        self.control = bytearray(space * slots)
        self.data = mmap.mmap(-1, _DATAGRAM_MAX * slots)
        self.iov = bytearray(_IOVEC.size * slots)
        names, control = _address_of(self.names), _address_of(self.control)
        data, iov = _address_of(self.data), _address_of(self.iov)
        length, controllen = (_DATAGRAM_MAX, space) if receive else (0, 0)
        for i in range(slots):
            _IOVEC.pack_into(self.iov, _IOVEC.size * i, data + _DATAGRAM_MAX * i, length)
            _MMSGHDR.pack_into(
                self.headers,
                _MMSGHDR.size * i,
                names + 16 * i,
                16,
                iov + _IOVEC.size * i,
                1,
                control + space * i,
                controllen,
                0,
                0,
            )


class BatchReceiver:
    """Reads the datagrams of one wakeup from a :func:`open_udp_control` socket with one
    ``recvmmsg(2)`` (issue 13: a relaying foreign agent reads two datagrams per
    registration, ~64 per wakeup under load) instead of one ``recvmsg`` per datagram and
    one more answering ``EAGAIN``: the message headers, addresses, control buffers and
    ``slots`` datagram buffers of 65,535 bytes (anonymous memory: only the pages the kernel
    writes are ever resident) are made once and reused, and each datagram is taken from them
    with a few ``struct`` reads. :meth:`read` gives what :func:`recv_udp`'s ``recvmsg``
    loop gives: per datagram its bytes, the arrival interface index, the destination
    address (``IP_PKTINFO``), the TTL (``IP_TTL``; 0 without it), the source address and
    port; an error other than ``EAGAIN`` is raised as that loop's ``recvmsg`` raises it
    (a batch that met one after its first datagram is returned, and the error is the next
    call's, as the kernel keeps it)."""

    def __init__(self, sock: socket.socket, slots: int = 64) -> None:
        if _recvmmsg is None:  # pragma: no cover - not glibc / not Linux
            raise OSError(errno.ENOSYS, "recvmmsg is not available")
        self.sock = sock
        self.slots = slots
        m = _Messages(slots, receive=True)
        self._headers, self._names, self._control = m.headers, m.names, m.control
        self._data, self._iov = m.data, m.iov
        #: the headers as made: the kernel writes lengths and flags into the ones it used
        self._pristine = bytes(self._headers)
        self._vector = ctypes.c_void_p(_address_of(self._headers))
        self._view = memoryview(self._data)

    def read(self, limit: int) -> list[tuple[bytes, int, bytes, int, IPv4Address, int]]:
        """At most ``limit`` (and :attr:`slots`) datagrams, as they were read."""
        n = min(limit, self.slots)
        if n <= 0:
            return []
        assert _recvmmsg is not None
        got = _recvmmsg(self.sock.fileno(), self._vector, n, MSG_DONTWAIT, None)
        if got <= 0:
            if got == 0:
                return []
            e = ctypes.get_errno()
            if e in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return []
            raise OSError(e, os.strerror(e))
        headers, names, control, view = self._headers, self._names, self._control, self._view
        out_of, name_of, cmsgs = (
            _MMSG_OUT.unpack_from,
            _SOCKADDR_IN.unpack_from,
            _CMSG_PKTINFO_TTL.unpack_from,
        )
        known = _rawsock._ADDRESSES.get  # (the module's table, as _address keeps it)
        space, size = _CMSG_SPACE, _MMSGHDR.size
        usual = (
            _CMSG_PKTINFO_LEN,
            socket.IPPROTO_IP,
            IP_PKTINFO,
            _CMSG_TTL_LEN,
            socket.IPPROTO_IP,
            IP_TTL,
        )
        out: list[tuple[bytes, int, bytes, int, IPv4Address, int]] = []
        append = out.append
        for i in range(got):
            _namelen, controllen, length = out_of(headers, size * i + 8)
            sport, host = name_of(names, 16 * i)
            o = space * i
            if controllen == space:
                l1, v1, t1, ifindex, _spec, dst, l2, v2, t2, ttl = cmsgs(control, o)
                if (l1, v1, t1, l2, v2, t2) != usual:
                    ifindex, dst, ttl = _control_messages(control, o, controllen)
            else:
                ifindex, dst, ttl = _control_messages(control, o, controllen)
            o = _DATAGRAM_MAX * i
            append(
                (
                    view[o : o + length].tobytes(),
                    ifindex,
                    dst,
                    ttl,
                    known(host) or _address(host),
                    sport,
                )
            )
        # the headers the kernel wrote into made again for the next call
        headers[: size * got] = self._pristine[: size * got]
        return out

    def close(self) -> None:
        """Let go of the buffers (the socket is the caller's)."""
        self._view.release()


def _control_messages(buffer: bytearray, offset: int, length: int) -> tuple[int, bytes, int]:
    """(interface index, destination, TTL) from the control messages in ``buffer[offset:
    offset + length]``, as :func:`recv_udp`'s loop reads them from ``recvmsg``'s list:
    the ones of another level or type skipped, (0, 0.0.0.0, 0) for what is missing."""
    ifindex, dst, ttl = 0, b"\0\0\0\0", 0
    pos, end = offset, offset + length
    while pos + _CMSG_HDR.size <= end:
        cmsg_len, level, kind = _CMSG_HDR.unpack_from(buffer, pos)
        if cmsg_len < _CMSG_HDR.size or pos + cmsg_len > end:
            break
        data = pos + _CMSG_HDR.size
        if level == socket.IPPROTO_IP:
            if kind == IP_PKTINFO and cmsg_len >= _CMSG_PKTINFO_LEN:
                ifindex, _spec, dst = PKTINFO.unpack_from(buffer, data)
            elif kind == IP_TTL and cmsg_len >= _CMSG_TTL_LEN:
                ttl = _INT.unpack_from(buffer, data)[0]
        pos += (cmsg_len + 7) & ~7
    return ifindex, dst, ttl


#: struct sockaddr_in as sendmsg takes it: family (host order), port and address (network)
_SOCKADDR_IN_OUT = struct.Struct("=H2s4s8x")
_CMSG_OUT = struct.Struct("=Qii")
#: msg_controllen of one struct mmsghdr (at its offset 40), and iov_len of one iovec (8)
_CONTROLLEN = struct.Struct("=Q")
#: (destination << 16 | port) -> its sockaddr_in; (source, interface, TTL) -> the control
#: messages send_udp passes for them, laid out as the kernel reads them (bounded tables)
_SOCKADDRS: dict[int, bytes] = {}
_CONTROL: dict[tuple[int, int, int | None], bytes] = {}


def _control_bytes(src: IPv4Address | None, ifindex: int, ttl: int | None) -> bytes:
    """:func:`_ancillary`'s control messages as ``sendmsg`` lays them out (each header and
    its data padded to CMSG_SPACE)."""
    key = (_int(src) if src is not None else -1, ifindex, ttl)
    out = _CONTROL.get(key)
    if out is None:
        out = b""
        for level, kind, data in _ancillary(src, ifindex, ttl):
            cmsg = _CMSG_OUT.pack(socket.CMSG_LEN(len(data)), level, kind) + data
            out += cmsg.ljust(socket.CMSG_SPACE(len(data)), b"\0")
        if len(_CONTROL) >= 4096:
            _CONTROL.clear()
        _CONTROL[key] = out
    return out


class BatchSender:
    """Datagrams for one UDP socket gathered and sent with one ``sendmmsg(2)`` (issue 13:
    a foreign agent relays tens of requests to its home agents per read), each exactly as
    :func:`send_udp` sends it -- destination, port, and the same ``IP_PKTINFO`` /
    ``IP_TTL`` control messages for its source, interface and TTL. :meth:`add` copies the
    payload into a slot (made once, reused; anonymous memory) with the item it stands
    for; :meth:`flush` sends what was added, in order, and answers the items whose
    datagram failed, each with the error ``sendmsg`` would have raised for it (the kernel
    reports a failure at the first datagram it did not send: that one is counted failed
    and the send goes on from the next). A datagram longer than a slot is not added."""

    def __init__(self, slots: int = 64) -> None:
        if _sendmmsg is None:  # pragma: no cover - not glibc / not Linux
            raise OSError(errno.ENOSYS, "sendmmsg is not available")
        self.slots = slots
        self.sock: socket.socket | None = None
        self.items: list[object] = []
        m = _Messages(slots, receive=False)
        self._headers, self._names, self._control = m.headers, m.names, m.control
        self._data, self._iov = m.data, m.iov
        self._vector = _address_of(self._headers)
        self._first = ctypes.c_void_p(self._vector)
        #: per slot, the address and the control messages written in it (bytes objects
        #: of the bounded tables, compared by identity)
        self._written: list[bytes | None] = [None] * slots
        self._written_control: list[bytes | None] = [b""] * slots
        #: the last datagram's destination, port, source, interface, TTL, address, control
        self._last: (
            tuple[IPv4Address, int, IPv4Address | None, int, int | None, bytes, bytes] | None
        ) = None
        #: what :meth:`add` gathered, copied into the slots by :meth:`flush`
        self._datagrams: list[
            tuple[bytes, IPv4Address, int, IPv4Address | None, int, int | None]
        ] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(
        self,
        sock: socket.socket,
        item: object,
        payload: bytes,
        dst: IPv4Address,
        dport: int,
        src: IPv4Address | None = None,
        ifindex: int = 0,
        ttl: int | None = None,
    ) -> bool:
        """Gather ``payload`` for ``sock`` (as :func:`send_udp` would send it); ``False``
        (nothing gathered) when the batch is full, is for another socket, or the payload
        does not fit a slot. Nothing is copied yet: a batch of one goes out as
        :func:`send_udp` sends it, no slot written."""
        items = self.items
        i = len(items)
        if i >= self.slots or len(payload) > _DATAGRAM_MAX or (i and sock is not self.sock):
            return False
        items.append(item)
        self._datagrams.append((payload, dst, dport, src, ifindex, ttl))
        self.sock = sock
        return True

    def _fill(self) -> None:
        """The gathered datagrams into their slots."""
        written, written_control = self._written, self._written_control
        names, control_area, headers = self._names, self._control, self._headers
        data, iov = self._data, self._iov
        pack = _CONTROLLEN.pack_into
        last = self._last
        for i, (payload, dst, dport, src, ifindex, ttl) in enumerate(self._datagrams):
            if (
                last is not None
                and last[0] is dst
                and last[1] == dport
                and last[2] is src
                and last[3] == ifindex
                and last[4] == ttl
            ):
                name, control = last[5], last[6]
            else:  # (a relaying agent's datagrams: the same few destinations and sources)
                key = _int(dst) << 16 | dport
                found = _SOCKADDRS.get(key)
                if found is None:
                    found = _SOCKADDR_IN_OUT.pack(
                        socket.AF_INET, dport.to_bytes(2, "big"), dst.packed
                    )
                    if len(_SOCKADDRS) >= _ADDRESSES_MAX:
                        _SOCKADDRS.clear()
                    _SOCKADDRS[key] = found
                name, control = found, _control_bytes(src, ifindex, ttl)
                last = self._last = (dst, dport, src, ifindex, ttl, name, control)
            # a slot keeps its address and control messages: written when they change
            if written[i] is not name:
                o = 16 * i
                names[o : o + 16] = name
                written[i] = name
            if written_control[i] is not control:
                o = _CMSG_SPACE * i
                control_area[o : o + len(control)] = control
                pack(headers, _MMSGHDR.size * i + 40, len(control))
                written_control[i] = control
            n = len(payload)
            o = _DATAGRAM_MAX * i
            data[o : o + n] = payload
            pack(iov, _IOVEC.size * i + 8, n)

    def flush(self) -> list[tuple[object, OSError]]:
        """Send what was gathered, in order; the items whose datagram failed."""
        items, sock = self.items, self.sock
        if not items or sock is None:
            return []
        self.items = []
        failed: list[tuple[object, OSError]] = []
        if len(items) == 1:  # one system call either way: sendmsg's, no slot to fill
            ((payload, dst, dport, src, ifindex, ttl),) = self._datagrams
            self._datagrams = []
            try:
                send_udp(sock, payload, dst, dport, src=src, ifindex=ifindex, ttl=ttl)
            except OSError as e:
                failed.append((items[0], e))
            return failed
        self._fill()
        self._datagrams = []
        assert _sendmmsg is not None
        fd, size, count, i = sock.fileno(), _MMSGHDR.size, len(items), 0
        while i < count:
            vector = self._first if i == 0 else ctypes.c_void_p(self._vector + size * i)
            sent = _sendmmsg(fd, vector, count - i, 0)
            if sent > 0:
                i += sent
                continue
            code = ctypes.get_errno() if sent < 0 else errno.EIO
            if code == errno.EINTR:
                continue
            failed.append((items[i], OSError(code, os.strerror(code))))
            i += 1
        return failed
