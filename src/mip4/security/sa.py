"""Mobility security associations (RFC 5944 §1.6, §3.5.1, §5.1).

Theory of operation
-------------------
A *mobility security association* is what two nodes share to authenticate Mobile IP
messages to each other: a Security Parameter Index (SPI) naming the association, an
authentication algorithm and mode, a secret key, and a style of replay protection
(RFC 5944 §1.6 "Mobility Security Association"). The receiver of an authentication
extension looks the association up by *(peer, SPI)* -- the SPI alone is only unique per peer.

:class:`SecurityAssociation` is the immutable value; :class:`SecurityAssociations` is a
small in-memory store keyed by ``(peer, spi)``. :class:`SecurityAssociationStore` is the
protocol a persistent store (a file, a database, a RADIUS-backed cache) implements so the
engines do not care which store they are given.

SPI values 0--255 are reserved (RFC 5944 §1.6 and §3.5.1: "SPI values 0 through 255 are
reserved and MUST NOT be used in any Mobility Security Association"); a configured
association must use an SPI of 256 or more. Low SPIs seen *on the wire* have a meaning of
their own in the MIP4-AAA world (SPI 2 = CHAP_SPI for the MN-AAA authenticator, RFC 4721
§7); those are not security associations in this table's sense, see
:mod:`mip4.security.auth`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mip4.wire.addr import ipv4_from_int as _address

if TYPE_CHECKING:
    from .sa_rows import RowAssociation, TableRows

_md5 = hashlib.md5


def _md5_constructor() -> Any:
    """CPython's own MD5 (``_md5``): its state lives inside the object (~128 bytes, no
    OpenSSL allocations behind it), so making, copying and freeing one is a small
    allocation and a copy; ``hashlib.md5`` (OpenSSL's) when the build has no ``_md5``."""
    try:
        from _md5 import md5  # type: ignore[import-not-found]

        md5(b"")
        return md5
    except (ImportError, ValueError):
        return _md5


_md5_state = _md5_constructor()
#: RFC 2104's inner and outer pads, as 64-byte integers (MD5's block is 64 bytes)
_IPAD = int.from_bytes(b"\x36" * 64, "big")
_OPAD = int.from_bytes(b"\x5c" * 64, "big")


def _keyed_hmac_md5(key: bytes) -> tuple[Any, Any]:
    """HMAC-MD5 with ``key`` absorbed (RFC 2104): the MD5 states after the inner pad and
    after the outer pad (``SecurityAssociation.authenticator`` finishes copies of them)."""
    if len(key) > 64:
        key = _md5(key).digest()  # RFC 2104 §2: a key longer than a block is hashed first
    k = int.from_bytes(key, "big") << (8 * (64 - len(key)))
    return _md5_state((k ^ _IPAD).to_bytes(64, "big")), _md5_state((k ^ _OPAD).to_bytes(64, "big"))


def _one_shot() -> Any:
    """OpenSSL's one-shot HMAC (``_hashlib.hmac_digest``), else :func:`hmac.digest`."""
    try:
        from _hashlib import hmac_digest

        hmac_digest(b"k", b"", "md5")  # MD5 may be disabled (FIPS)
        return hmac_digest
    except (ImportError, ValueError):
        return hmac.digest


_hmac_digest = _one_shot()
#: HMAC-MD5 key -> its keyed states (``_keyed_hmac_md5``) for the last few keys used: a
#: home agent verifies a request and signs its reply with the same key, one right after
#: the other (and a relayed one's FA-HA key in between). Small on purpose (issue 13):
#: with a million nodes each renews once per lifetime, so a table that kept keys from
#: one request to the next would hit only in a small deployment and make a large one
#: pay for its misses -- new OpenSSL contexts, the table emptied -- on cold memory
#: (measured: 1 M bindings 0.84x of 1,000 with 1,024 OpenSSL contexts kept). Absorbing
#: a key into two CPython MD5 states costs about as much as one OpenSSL context copy.
_CONTEXTS: dict[bytes, tuple[Any, Any]] = {}
CONTEXTS_MAX = 8


#: Lowest SPI a security association may use; 0--255 are reserved (RFC 5944 §1.6/§3.5.1).
MIN_SPI = 256
MAX_SPI = 0xFFFFFFFF
#: The default replay tolerance in seconds for timestamps (RFC 5944 §5.7.1 leaves the
#: tolerance to the security association; 7 s is the common default, e.g. Juniper).
DEFAULT_REPLAY_TOLERANCE = 7.0


class Algorithm(IntEnum):
    """Authentication algorithm of a security association. The numbers are the key
    algorithm identifiers used by Solaris ``mipagent`` (``KEY_ALG_*``)."""

    #: RFC 2002 / RFC 3344 "prefix+suffix" keyed MD5: ``MD5(key || data || key)``.
    #: Vulnerable (RFC 3220 §5.1); offered only for backward compatibility with old peers.
    KEYED_MD5 = 2
    #: HMAC-MD5 (RFC 2104), the RFC 5944 §3.5.1 default, 128-bit key.
    HMAC_MD5 = 3


class ReplayMethod(Enum):
    """Replay protection style (RFC 5944 §5.7)."""

    #: RFC 5944 §5.7.1: NTP-format timestamps (mandatory to implement).
    TIMESTAMPS = "timestamps"
    #: RFC 5944 §5.7.2: high 32 bits = the home agent's nonce, low 32 bits = the mobile
    #: node's nonce (optional).
    NONCES = "nonces"


def _authenticator(sa: Any, data: bytes) -> bytes:
    """The authenticator of ``data`` (the exact covered bytes) with ``sa``'s key and
    algorithm (RFC 5944 §3.5.1: HMAC-MD5, RFC 2104; or RFC 2002's keyed MD5, the key
    before and after the data). The ``authenticator`` method of both
    :class:`SecurityAssociation` and :class:`~mip4.security.sa_rows.RowAssociation`
    (one body, and no second call in a renewal's path: ~0.3 us each there, issue 13):
    HMAC-MD5 finishes copies of the keyed states ``sa._keyed`` holds, else those of the
    table of the last keys used."""
    keyed = sa._keyed
    if keyed is None:
        key = sa.key
        if sa.algorithm is not Algorithm.HMAC_MD5:
            h = _md5_state(key)
            h.update(data)
            h.update(key)
            return h.digest()  # type: ignore[no-any-return]
        keyed = _CONTEXTS.get(key)
        if keyed is None:
            if len(_CONTEXTS) >= CONTEXTS_MAX:
                _CONTEXTS.clear()
            keyed = _CONTEXTS[key] = _keyed_hmac_md5(key)
    inner, outer = keyed
    h = inner.copy()
    h.update(data)
    o = outer.copy()
    o.update(h.digest())
    return o.digest()  # type: ignore[no-any-return]


def check_spi(spi: int) -> int:
    """Return ``spi`` if it may name a security association, else raise ``ValueError``."""
    if not isinstance(spi, int) or isinstance(spi, bool):
        raise ValueError(f"SPI must be an integer, not {type(spi).__name__}")
    if not 0 <= spi <= MAX_SPI:
        raise ValueError(f"SPI {spi} does not fit in 32 bits")
    if spi < MIN_SPI:
        raise ValueError(
            f"SPI {spi} is reserved: SPIs 0-255 MUST NOT be used in a mobility security "
            "association (RFC 5944 §1.6, §3.5.1); use 256 or more"
        )
    return spi


@dataclass(frozen=True, slots=True)
class SecurityAssociation:
    """One mobility security association (RFC 5944 §1.6).

    Its HMAC-MD5 authenticator finishes copies of the key's inner and outer MD5 states
    (RFC 2104): the ones a store gives the associations that share a key
    (:class:`SecurityAssociations`), else the key's entry in a small table of the last
    keys used (``_CONTEXTS``: a request's check and its reply's signature share one), so
    no association keeps ~260 bytes of states of its own (issue 13)."""

    #: Security Parameter Index; 256..2**32-1.
    spi: int
    #: The shared secret. RFC 5944 §3.5.1: 128 bits for HMAC-MD5 by default; any
    #: non-empty length is accepted (HMAC handles longer and shorter keys).
    key: bytes
    algorithm: Algorithm = Algorithm.HMAC_MD5
    replay: ReplayMethod = ReplayMethod.TIMESTAMPS
    #: For timestamps: how far (seconds, either way) the Identification's time may be from
    #: the receiver's clock (RFC 5944 §5.7.1).
    replay_tolerance: float = DEFAULT_REPLAY_TOLERANCE
    #: Whether the authenticator covers this extension's SPI (RFC 3344 and RFC 5944 §3.5.1:
    #: yes). ``False`` is the RFC 2002 §3.5.1 coverage -- Type and Length only -- that some
    #: old mobile nodes use (Qualcomm's default unless its "2002bis" option is set). Applies
    #: to the MN-HA, MN-FA and FA-HA extensions.
    spi_covered: bool = True
    #: the HMAC-MD5 states shared by the associations of one key in a store (not a
    #: field that compares or prints; ``None``: the table of the last keys used)
    _keyed: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_spi(self.spi)
        if not isinstance(self.key, bytes | bytearray):
            raise ValueError(f"SA {self.spi}: key must be bytes, not {type(self.key).__name__}")
        if not self.key:
            raise ValueError(f"SA {self.spi}: key must not be empty")
        if isinstance(self.key, bytearray):
            object.__setattr__(self, "key", bytes(self.key))
        try:
            object.__setattr__(self, "algorithm", Algorithm(self.algorithm))
        except ValueError:
            raise ValueError(
                f"SA {self.spi}: unknown authentication algorithm {self.algorithm!r} "
                f"(known: {', '.join(f'{a.name}={a.value}' for a in Algorithm)})"
            ) from None
        if not isinstance(self.replay, ReplayMethod):
            raise ValueError(f"SA {self.spi}: replay must be a ReplayMethod, not {self.replay!r}")
        if not self.replay_tolerance >= 0:  # also rejects NaN
            raise ValueError(
                f"SA {self.spi}: replay_tolerance must be >= 0, not {self.replay_tolerance}"
            )

    #: this association's authenticator of ``data`` (the exact covered bytes)
    authenticator = _authenticator

    def share_context(self, keyed: Any) -> None:
        """Use ``keyed`` (this key's HMAC-MD5 states, ``_keyed_hmac_md5``) from now on."""
        if self.algorithm is Algorithm.HMAC_MD5:
            object.__setattr__(self, "_keyed", keyed)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle/copy by fields only (the cached HMAC state is rebuilt by __post_init__).
        return (
            type(self),
            (
                self.spi,
                self.key,
                self.algorithm,
                self.replay,
                self.replay_tolerance,
                self.spi_covered,
            ),
        )

    def __repr__(self) -> str:  # never print the key
        return (
            f"SecurityAssociation(spi={self.spi}, key=<{len(self.key)} bytes>, "
            f"algorithm={self.algorithm.name}, replay={self.replay.name}, "
            f"replay_tolerance={self.replay_tolerance}"
            + ("" if self.spi_covered else ", spi_covered=False")
            + ")"
        )


@runtime_checkable
class SecurityAssociationStore(Protocol):
    """What the engines need from a store of security associations keyed by
    ``(peer, spi)``. ``peer`` is whatever identifies the other end: its IPv4 address
    (home address of a mobile node, address of an agent) or its NAI."""

    def add(self, peer: Hashable, sa: SecurityAssociation) -> None: ...

    def get(self, peer: Hashable, spi: int) -> SecurityAssociation | None: ...

    def remove(self, peer: Hashable, spi: int) -> SecurityAssociation | None: ...

    def for_peer(self, peer: Hashable) -> list[SecurityAssociation]: ...

    def __iter__(self) -> Iterator[tuple[Hashable, SecurityAssociation]]: ...

    def __len__(self) -> int: ...


class SecurityAssociations:
    """In-memory :class:`SecurityAssociationStore`, sized for a million mobile nodes.

    One dict, by peer (an :class:`~ipaddress.IPv4Address` peer by its integer: no address
    object kept per peer, and no ``hex()`` to hash one; iteration gives the address back):
    a peer's association itself when it has one (a mobile node), a ``{spi: association}``
    dict when it has several. ``get`` and ``for_peer`` are index
    lookups, never a scan, whatever the number of associations (a foreign agent's FA-HA
    association among a million MN-HA ones). Associations that share an HMAC-MD5 key
    share one pair of keyed HMAC-MD5 states (an FA-HA key configured for many agents, a
    fleet with one key); an association whose key is its own uses the small table of the
    last keys used. Iteration goes peer by peer, in the order the peers were first added.

    A subscriber table's rows are not objects here: :meth:`add_row` appends them to the
    store's :class:`~mip4.security.sa_rows.TableRows` (columns, ~40 bytes a row instead of
    ~250; issue 13), which ``get`` and ``for_peer`` consult after the dict, making the
    association when asked. Rows stay as parsed (the configuration shares them); a row
    removed or replaced here is only marked gone (a replacement then lives in the dict).
    Iteration gives the dict's peers first, then the rows, in table order."""

    __slots__ = ("_by_peer", "_count", "_gone", "_keys", "_table")

    def __init__(self, items: list[tuple[Hashable, SecurityAssociation]] | None = None) -> None:
        #: peer (an IPv4Address's integer) -> its association, or {spi: association} when
        #: it has several
        self._by_peer: dict[Hashable, SecurityAssociation | dict[int, SecurityAssociation]] = {}
        self._count = 0
        #: HMAC-MD5 key -> the one association using it, or [shared context, users]
        self._keys: dict[bytes, SecurityAssociation | list[Any]] = {}
        #: a subscriber table's rows, and those of its rows removed or replaced since
        self._table: TableRows | None = None
        self._gone: set[int] = set()
        for peer, sa in items or ():
            self.add(peer, sa)

    @property
    def table(self) -> TableRows | None:
        """The subscriber table's rows this store holds (``None``: none)."""
        return self._table

    def attach(self, table: TableRows) -> None:
        """Hold ``table``'s rows as associations too (a store has at most one table; the
        caller knows none of its (peer, SPI) pairs is in the dict already)."""
        if self._table is not None:
            raise ValueError("this store holds a subscriber table already")
        self._table = table
        self._gone = set()

    def retable(self, table: TableRows | None) -> None:
        """Hold ``table``'s rows instead of the ones held (a reload's new subscriber
        table; ``None``: none): the old rows go, the dict's associations stay (the caller
        brings those to the new configuration's, :meth:`objects`)."""
        self._table = table
        self._gone = set()

    def objects(self) -> Iterator[tuple[Hashable, SecurityAssociation]]:
        """The associations held as objects (not the table's rows), as ``__iter__``
        gives them."""
        for key, per in list(self._by_peer.items()):
            peer = _address(key) if type(key) is int else key
            if isinstance(per, SecurityAssociation):
                yield peer, per
            else:
                for sa in list(per.values()):
                    yield peer, sa

    def add_row(self, peer: IPv4Address, sa: SecurityAssociation) -> None:
        """Add ``sa`` for ``peer`` as a row of the store's table (made on the first row):
        what ``add(peer, sa, share_key=False)`` does, in ~40 bytes."""
        if self.get(peer, sa.spi) is not None:
            raise ValueError(f"peer {peer}: SPI {sa.spi} already has a security association")
        table = self._table
        if table is None:
            from .sa_rows import TableRows

            table = self._table = TableRows()
        table.append(peer._ip, sa)  # type: ignore[attr-defined]

    def _row(self, peer: Hashable, spi: int) -> int:
        """The live table row of ``(peer, spi)`` (``peer`` already an integer when it is an
        address); -1 when there is none."""
        table = self._table
        if table is None or type(peer) is not int:
            return -1
        r = table.find(peer, spi)
        return -1 if r < 0 or r in self._gone else r

    def _use_key(self, sa: SecurityAssociation) -> None:
        if sa.algorithm is not Algorithm.HMAC_MD5:
            return
        key = sa.key
        user = self._keys.get(key)
        if user is None:
            self._keys[key] = sa
        elif isinstance(user, SecurityAssociation):
            keyed = _keyed_hmac_md5(key)
            user.share_context(keyed)
            sa.share_context(keyed)
            self._keys[key] = [keyed, 2]
        else:
            sa.share_context(user[0])
            user[1] += 1

    def _release_key(self, sa: SecurityAssociation) -> None:
        user = self._keys.get(sa.key)
        if user is sa:
            del self._keys[sa.key]
        elif isinstance(user, list) and sa._keyed is user[0]:
            user[1] -= 1
            if user[1] == 0:
                del self._keys[sa.key]

    def add(self, peer: Hashable, sa: SecurityAssociation, *, share_key: bool = True) -> None:
        """Add ``sa`` for ``peer``; replacing an association with the same SPI is an error
        (remove it first) so that a configuration with duplicate SPIs is caught.
        ``share_key=False``: not indexed by its key (a subscriber table's rows, one key per
        node as a rule: ~52 bytes each, issue 13); if it shares a key after all, it uses the
        table of the last keys used, as an association whose key is its own does."""
        if not isinstance(sa, SecurityAssociation):
            raise TypeError(f"expected a SecurityAssociation, not {type(sa).__name__}")
        if self.get(peer, sa.spi) is not None:
            raise ValueError(f"peer {peer}: SPI {sa.spi} already has a security association")
        self.replace(peer, sa, share_key=share_key)

    def replace(self, peer: Hashable, sa: SecurityAssociation, *, share_key: bool = True) -> None:
        """Add or replace the association ``(peer, sa.spi)`` (rekeying)."""
        if type(peer) is IPv4Address:
            peer = peer._ip  # type: ignore[attr-defined]  # the address's integer
        per = self._by_peer.get(peer)
        old: SecurityAssociation | None = None
        row = self._row(peer, sa.spi)
        if row >= 0:  # a table row: marked gone, its replacement kept in the dict
            self._gone.add(row)
        if per is None:
            self._by_peer[peer] = sa
        elif isinstance(per, SecurityAssociation):
            if per.spi == sa.spi:
                old = per
                self._by_peer[peer] = sa
            else:
                self._by_peer[peer] = {per.spi: per, sa.spi: sa}
        else:
            old = per.get(sa.spi)
            per[sa.spi] = sa
        if old is not None:
            self._release_key(old)
        else:
            self._count += 1
        if share_key:
            self._use_key(sa)

    def _find(self, peer: Hashable, spi: int) -> SecurityAssociation | int | None:
        """The association of ``(peer, spi)`` held as an object, else its live table row
        (an ``int``), else ``None``."""
        if type(peer) is IPv4Address:
            peer = peer._ip  # type: ignore[attr-defined]
        per = self._by_peer.get(peer)
        if per is not None:
            if isinstance(per, SecurityAssociation):
                if per.spi == spi:
                    return per
            else:
                sa = per.get(spi)
                if sa is not None:
                    return sa
        r = self._row(peer, spi)
        return r if r >= 0 else None

    def get(self, peer: Hashable, spi: int) -> SecurityAssociation | None:
        found = self._find(peer, spi)
        if isinstance(found, int):
            return self._table.association(found)  # type: ignore[union-attr]
        return found

    def get_fields(self, peer: Hashable, spi: int) -> SecurityAssociation | RowAssociation | None:
        """``get``, but a table row comes as its fields, its HMAC-MD5 key absorbed (a
        :class:`~mip4.security.sa_rows.RowAssociation`, a tuple made in one call) rather
        than as an association object (seven slots filled, and the key looked up in the
        table of the last keys used: ~2.5 us of a renewal's ~17 in the home agent's fast
        path, issue 13). For a caller that checks and signs with it and keeps nothing;
        ``get`` gives what to keep."""
        found = self._find(peer, spi)
        if isinstance(found, int):
            return self._table.fields(found)  # type: ignore[union-attr]
        return found

    def remove(self, peer: Hashable, spi: int) -> SecurityAssociation | None:
        """Remove and return the association, or ``None`` if there was none."""
        if type(peer) is IPv4Address:
            peer = peer._ip  # type: ignore[attr-defined]
        per = self._by_peer.get(peer)
        row = -1 if per is not None and self._in_dict(per, spi) else self._row(peer, spi)
        if row >= 0:
            assert self._table is not None
            self._gone.add(row)
            return self._table.association(row)
        if per is None:
            return None
        if isinstance(per, SecurityAssociation):
            if per.spi != spi:
                return None
            sa = per
            del self._by_peer[peer]
        else:
            one = per.pop(spi, None)
            if one is None:
                return None
            sa = one
            if len(per) == 1:
                (self._by_peer[peer],) = per.values()
        self._count -= 1
        self._release_key(sa)
        return sa

    def for_peer(self, peer: Hashable) -> list[SecurityAssociation]:
        """The peer's associations, oldest first (an index lookup, not a scan)."""
        if type(peer) is IPv4Address:
            peer = peer._ip  # type: ignore[attr-defined]
        per = self._by_peer.get(peer)
        out = (
            []
            if per is None
            else [per]
            if isinstance(per, SecurityAssociation)
            else list(per.values())
        )
        table = self._table
        if table is not None and type(peer) is int:
            gone = self._gone
            out += [table.association(r) for r in table.rows_of(peer) if r not in gone]
        return out

    def first_for(self, peer: Hashable) -> SecurityAssociation | None:
        """``for_peer(peer)[0]``, or ``None`` when the peer has none -- without the list
        (the home agent's renewal fast path asks it of every relaying agent: whether it
        shares an FA-HA association with this agent, RFC 5944 §3.8.2.1)."""
        if type(peer) is IPv4Address:
            peer = peer._ip  # type: ignore[attr-defined]
        per = self._by_peer.get(peer)
        if per is not None:
            return per if isinstance(per, SecurityAssociation) else next(iter(per.values()))
        table = self._table
        if table is None or type(peer) is not int or not table.lowest <= peer <= table.highest:
            return None
        r = table.first_row(peer)
        if r < 0:
            return None
        gone = self._gone
        if r in gone:  # (rare: a row removed or replaced) the peer's next live row
            r = next((r for r in table.rows_of(peer) if r not in gone), -1)
            if r < 0:
                return None
        return table.association(r)

    @staticmethod
    def _in_dict(per: SecurityAssociation | dict[int, SecurityAssociation], spi: int) -> bool:
        return per.spi == spi if isinstance(per, SecurityAssociation) else spi in per

    def keyed_contexts(self) -> int:
        """How many keyed HMAC contexts the associations here hold (one per HMAC-MD5 key
        that several of them share)."""
        return sum(isinstance(user, list) for user in self._keys.values())

    def lookup(self, peer: Hashable) -> _Lookup:
        """A ``spi -> SecurityAssociation | None`` callable bound to ``peer``, the shape
        :func:`mip4.security.auth.verify` takes."""
        return _Lookup(self, peer)

    def __iter__(self) -> Iterator[tuple[Hashable, SecurityAssociation]]:
        yield from self.objects()
        table = self._table
        if table is not None:
            gone = self._gone
            for row in range(len(table)):
                if row not in gone:
                    yield _address(table.peer(row)), table.association(row)

    def __len__(self) -> int:
        if self._table is not None:
            return self._count + len(self._table) - len(self._gone)
        return self._count

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[1], int):
            return False
        return self.get(key[0], key[1]) is not None

    def __repr__(self) -> str:
        return f"SecurityAssociations({len(self)} association(s))"


class _Lookup:
    __slots__ = ("_peer", "_store")

    def __init__(self, store: SecurityAssociationStore, peer: Hashable) -> None:
        self._store = store
        self._peer = peer

    def __call__(self, spi: int) -> SecurityAssociation | None:
        return self._store.get(self._peer, spi)


def lookup_for(store: SecurityAssociationStore, peer: Hashable) -> _Lookup:
    """A ``spi -> SecurityAssociation | None`` callable over any store, bound to ``peer``."""
    return _Lookup(store, peer)


__all__ = [
    "DEFAULT_REPLAY_TOLERANCE",
    "MAX_SPI",
    "MIN_SPI",
    "Algorithm",
    "ReplayMethod",
    "SecurityAssociation",
    "SecurityAssociationStore",
    "SecurityAssociations",
    "check_spi",
    "lookup_for",
]
