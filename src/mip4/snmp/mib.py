"""The Mobile IP MIB (MIP-MIB, RFC 4295) as a view over a daemon's status snapshot.

Theory of operation
-------------------
:func:`view` turns the dict ``mip4 status --json`` prints (``mip4.daemon.status.snapshot``)
into a :class:`MibView`: the instances this role can answer, sorted by OID, each with its
SMI type and value. Only objects the snapshot really holds are served; an object mip4 does
not track (per-node service counters, advertisement contents, security violations) is
absent, so a Get answers ``noSuchObject`` rather than an invented value. The view is
rebuilt for each request from a fresh snapshot, so it is always as current as
``mip4 status``.

:meth:`MibView.get`, :meth:`MibView.get_next` and :meth:`MibView.get_bulk` implement the
AgentX search semantics (RFC 2741 §7.2.3): a search range ``[start, end)`` with an
``include`` flag, ``endOfMibView`` past the last instance in range.

Object identifiers: ``mipMIB`` is ``mib-2 44`` (``1.3.6.1.2.1.44``). Every OID below was
checked against the RFC 2006 module text and two independent compilations of MIP-MIB; not
against the RFC 4295 text itself (``docs/mib.md``). The module text is not in the
repository.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .agentx import Oid, SearchRange, VarBind, VarType

__all__ = [
    "MIP_AUTH_FAILURE",
    "MIP_MIB",
    "OBJECTS",
    "MibView",
    "ViolationReason",
    "auth_failure",
    "view",
]

#: mipMIB ::= { mib-2 44 }
MIP_MIB: Oid = (1, 3, 6, 1, 2, 1, 44)
_O = (*MIP_MIB, 1)  # mipMIBObjects
MIP_SYSTEM = (*_O, 1)
MIP_MN = (*_O, 3)
MIP_MA = (*_O, 4)
MIP_FA = (*_O, 5)
MIP_HA = (*_O, 6)

#: object name -> OID (scalars without their ``.0``; columns without an index). Only the
#: objects this module serves.
OBJECTS: dict[str, Oid] = {
    # mipSystem
    "mipEntities": (*MIP_SYSTEM, 1),
    "mipEnable": (*MIP_SYSTEM, 2),
    "mipEncapsulationSupported": (*MIP_SYSTEM, 3),
    # mipMN / mnSystem
    "mnState": (*MIP_MN, 1, 1),
    "mnHomeAddress": (*MIP_MN, 1, 2),
    "mnCurrentHA": (*MIP_MN, 1, 3, 1, 2),
    "mnHAStatus": (*MIP_MN, 1, 3, 1, 3),
    # mnDiscovery
    "mnSolicitationsSent": (*MIP_MN, 2, 3),
    # mnRegistration: mnRegistrationTable, index (mnRegAgentAddress, mnRegCOA)
    "mnRegAgentAddress": (*MIP_MN, 3, 1, 1, 1),
    "mnRegCOA": (*MIP_MN, 3, 1, 1, 2),
    "mnRegTimeRequested": (*MIP_MN, 3, 1, 1, 6),
    "mnRegTimeRemaining": (*MIP_MN, 3, 1, 1, 7),
    "mnRegIsAccepted": (*MIP_MN, 3, 1, 1, 9),
    "mnCOAIsLocal": (*MIP_MN, 3, 1, 1, 10),
    "mnRegRequestsSent": (*MIP_MN, 3, 2),
    "mnRegRepliesRecieved": (*MIP_MN, 3, 4),  # sic, the MIB's spelling
    "mnRegRequestsAccepted": (*MIP_MN, 3, 14),
    "mnRegRequestsDeniedByHA": (*MIP_MN, 3, 15),
    "mnRegRequestsDeniedByFA": (*MIP_MN, 3, 16),
    "mnRegRequestsDeniedByHADueToID": (*MIP_MN, 3, 17),
    # mipMA / maAdvertisement
    "maAdvertisementsSent": (*MIP_MA, 2, 2),
    "maAdvsSentForSolicitation": (*MIP_MA, 2, 3),
    # mipFA / faSystem: faCOATable, index faSupportedCOA
    "faCOAStatus": (*MIP_FA, 1, 1, 1, 2),
    # faAdvertisement
    "faIsBusy": (*MIP_FA, 2, 1),
    # faRegistration: faVisitorTable, index faVisitorIPAddress
    "faVisitorIPAddress": (*MIP_FA, 3, 1, 1, 1),
    "faVisitorHomeAddress": (*MIP_FA, 3, 1, 1, 2),
    "faVisitorHomeAgentAddress": (*MIP_FA, 3, 1, 1, 3),
    "faVisitorTimeGranted": (*MIP_FA, 3, 1, 1, 4),
    "faVisitorTimeRemaining": (*MIP_FA, 3, 1, 1, 5),
    "faVisitorRegFlags": (*MIP_FA, 3, 1, 1, 6),
    "faVisitorRegIsAccepted": (*MIP_FA, 3, 1, 1, 9),
    "faRegRequestsRelayed": (*MIP_FA, 3, 3),
    "faReasonUnspecified": (*MIP_FA, 3, 4),
    "faAdmProhibited": (*MIP_FA, 3, 5),
    "faInsufficientResource": (*MIP_FA, 3, 6),
    "faMNAuthenticationFailure": (*MIP_FA, 3, 7),
    "faRegLifetimeTooLong": (*MIP_FA, 3, 8),
    "faPoorlyFormedRequests": (*MIP_FA, 3, 9),
    "faEncapsulationUnavailable": (*MIP_FA, 3, 10),
    "faVJCompressionUnavailable": (*MIP_FA, 3, 11),
    "faHAUnreachable": (*MIP_FA, 3, 12),
    "faRegRepliesRelayed": (*MIP_FA, 3, 14),
    "faHAAuthenticationFailure": (*MIP_FA, 3, 15),
    "faPoorlyFormedReplies": (*MIP_FA, 3, 16),
    # mipHA / haRegistration: haMobilityBindingTable, index (haMobilityBindingMN, ...COA)
    "haMobilityBindingMN": (*MIP_HA, 3, 1, 1, 1),
    "haMobilityBindingCOA": (*MIP_HA, 3, 1, 1, 2),
    "haMobilityBindingSourceAddress": (*MIP_HA, 3, 1, 1, 3),
    "haMobilityBindingRegFlags": (*MIP_HA, 3, 1, 1, 4),
    "haMobilityBindingRegIDLow": (*MIP_HA, 3, 1, 1, 5),
    "haMobilityBindingRegIDHigh": (*MIP_HA, 3, 1, 1, 6),
    "haMobilityBindingTimeGranted": (*MIP_HA, 3, 1, 1, 7),
    "haMobilityBindingTimeRemaining": (*MIP_HA, 3, 1, 1, 8),
    "haRegistrationAccepted": (*MIP_HA, 3, 3),
    "haMultiBindingUnsupported": (*MIP_HA, 3, 4),
    "haReasonUnspecified": (*MIP_HA, 3, 5),
    "haAdmProhibited": (*MIP_HA, 3, 6),
    "haInsufficientResource": (*MIP_HA, 3, 7),
    "haMNAuthenticationFailure": (*MIP_HA, 3, 8),
    "haFAAuthenticationFailure": (*MIP_HA, 3, 9),
    "haIDMismatch": (*MIP_HA, 3, 10),
    "haPoorlyFormedRequest": (*MIP_HA, 3, 11),
    "haTooManyBindings": (*MIP_HA, 3, 12),
    "haUnknownHA": (*MIP_HA, 3, 13),
}

#: mipMIBNotifications (mipMIBNotificationPrefix 0) and the one notification the MIB
#: defines, mipAuthFailure; it carries mipSecViolatorAddress, mipSecRecentViolationSPI,
#: mipSecRecentViolationIDLow, ...IDHigh and ...Reason, in that order (mipSecViolationTable
#: columns 1, 3, 5, 6, 7).
MIP_NOTIFICATIONS: Oid = (*MIP_MIB, 2, 0)
MIP_AUTH_FAILURE: Oid = (*MIP_NOTIFICATIONS, 1)

#: mipSecViolationTable (mipSecurity 3) columns a mipAuthFailure carries
MIP_SEC_VIOLATION_ENTRY: Oid = (*_O, 2, 3, 1)
SEC_VIOLATOR_ADDRESS = (*MIP_SEC_VIOLATION_ENTRY, 1)
SEC_RECENT_VIOLATION_SPI = (*MIP_SEC_VIOLATION_ENTRY, 3)
SEC_RECENT_VIOLATION_ID_LOW = (*MIP_SEC_VIOLATION_ENTRY, 5)
SEC_RECENT_VIOLATION_ID_HIGH = (*MIP_SEC_VIOLATION_ENTRY, 6)
SEC_RECENT_VIOLATION_REASON = (*MIP_SEC_VIOLATION_ENTRY, 7)


class ViolationReason(IntEnum):
    """mipSecRecentViolationReason (RFC 4295)."""

    NO_MOBILITY_SECURITY_ASSOCIATION = 1
    BAD_AUTHENTICATOR = 2
    BAD_IDENTIFIER = 3
    BAD_SPI = 4
    MISSING_SECURITY_EXTENSION = 5
    OTHER = 6


def auth_failure(
    violator: str, spi: int, identification: int, reason: ViolationReason
) -> tuple[Oid, tuple[VarBind, ...]]:
    """The mipAuthFailure notification (RFC 4295 mipMIBNotifications 1) for a message from
    ``violator`` that failed authentication: ``(trap OID, varbinds)`` for
    :meth:`mip4.snmp.session.Subagent.notify`. The objects are instances of the
    mipSecViolationTable row of the violator (index: its address)."""
    index = ip_index(violator)
    return MIP_AUTH_FAILURE, (
        VarBind(VarType.IP_ADDRESS, (*SEC_VIOLATOR_ADDRESS, *index), _ip(violator)[1]),
        VarBind(VarType.INTEGER, (*SEC_RECENT_VIOLATION_SPI, *index), _int32(spi)),
        VarBind(VarType.INTEGER, (*SEC_RECENT_VIOLATION_ID_LOW, *index), _int32(identification)),
        VarBind(
            VarType.INTEGER, (*SEC_RECENT_VIOLATION_ID_HIGH, *index), _int32(identification >> 32)
        ),
        VarBind(VarType.INTEGER, (*SEC_RECENT_VIOLATION_REASON, *index), int(reason)),
    )


#: reply code (RFC 5944 §3.4, §3.7.2) -> the counter that counts it
HA_DENIED = {
    128: "haReasonUnspecified",
    129: "haAdmProhibited",
    130: "haInsufficientResource",
    131: "haMNAuthenticationFailure",
    132: "haFAAuthenticationFailure",
    133: "haIDMismatch",
    134: "haPoorlyFormedRequest",
    135: "haTooManyBindings",
    136: "haUnknownHA",
}
FA_DENIED = {
    64: "faReasonUnspecified",
    65: "faAdmProhibited",
    66: "faInsufficientResource",
    67: "faMNAuthenticationFailure",
    68: "faHAAuthenticationFailure",
    69: "faRegLifetimeTooLong",
    70: "faPoorlyFormedRequests",
    71: "faPoorlyFormedReplies",
    72: "faEncapsulationUnavailable",
    73: "faVJCompressionUnavailable",
    # home agent unreachable: "Codes 80-95" (home network / host / port unreachable, 88...)
    **dict.fromkeys(range(80, 96), "faHAUnreachable"),
}

#: RegistrationFlags TC (RFC 4295): BITS vjCompression(0) gre(1) minEnc(2)
#: decapsulationbyMN(3) broadcastDatagram(4) simultaneousBindings(5); from mip4's flag
#: letters (RFC 5944 §3.3: V/r, G, M, D, B, S)
REG_FLAG_BITS = {"R": 0, "G": 1, "M": 2, "D": 3, "B": 4, "S": 5}
#: mipEncapsulationSupported BITS ipInIp(0) gre(1) minEnc(2) other(3): mip4 does all four
#: (the "other" is the UDP tunnel of RFC 3519)
ENCAPSULATION_SUPPORTED = (0, 1, 2, 3)
#: mnState: home(1) registered(2) pending(3) isolated(4) unknown(5)
MN_HOME, MN_REGISTERED, MN_PENDING, MN_ISOLATED, MN_UNKNOWN = 1, 2, 3, 4, 5
TRUE, FALSE = 1, 2  # TruthValue
ACTIVE = 1  # RowStatus
GAUGE_MAX = 0xFFFFFFFF


def bits(positions: Iterable[int]) -> bytes:
    """An SMI BITS value: bit 0 is the most significant bit of the first octet."""
    ps = list(positions)
    out = bytearray((max(ps) // 8 + 1) if ps else 1)
    for p in ps:
        out[p // 8] |= 0x80 >> (p % 8)
    return bytes(out)


def ip_index(address: str) -> Oid:
    return tuple(ipaddress.IPv4Address(address).packed)


def _ip(address: str) -> tuple[VarType, bytes]:
    return VarType.IP_ADDRESS, ipaddress.IPv4Address(address).packed


def _int32(v: int) -> int:
    """An unsigned 32-bit quantity as Integer32 (the MIB types identification halves so)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _gauge(remaining: float | None) -> int:
    return GAUGE_MAX if remaining is None else min(GAUGE_MAX, int(remaining))


def _codes(counts: Mapping[str, int]) -> dict[int, int]:
    """``{"133 ha_identification_mismatch": 2}`` -> ``{133: 2}``."""
    out: dict[int, int] = {}
    for key, n in counts.items():
        try:
            code = int(key.split()[0])
        except (ValueError, IndexError):
            continue
        out[code] = out.get(code, 0) + int(n)
    return out


def _c32(n: int) -> tuple[VarType, int]:
    return VarType.COUNTER32, n & 0xFFFFFFFF


@dataclass(frozen=True)
class MibView:
    """Instances (OID with index) -> (type, value), sorted by OID."""

    oids: tuple[Oid, ...]
    values: tuple[tuple[VarType, int | bytes], ...]

    @classmethod
    def build(cls, items: Mapping[Oid, tuple[VarType, int | bytes]]) -> MibView:
        ordered = sorted(items)
        return cls(tuple(ordered), tuple(items[o] for o in ordered))

    def as_dict(self) -> dict[Oid, tuple[VarType, int | bytes]]:
        return dict(zip(self.oids, self.values, strict=True))

    def _bind(self, i: int) -> VarBind:
        t, v = self.values[i]
        return VarBind(t, self.oids[i], v)

    def get(self, oid: Oid) -> VarBind:
        i = bisect.bisect_left(self.oids, oid)
        if i < len(self.oids) and self.oids[i] == oid:
            return self._bind(i)
        known = any(oid[: len(o)] == o for o in OBJECTS.values())
        return VarBind(VarType.NO_SUCH_INSTANCE if known else VarType.NO_SUCH_OBJECT, oid)

    def get_next(self, r: SearchRange) -> VarBind:
        """The first instance in ``r`` (RFC 2741 §7.2.3.2)."""
        if r.include:
            i = bisect.bisect_left(self.oids, r.start)
        else:
            i = bisect.bisect_right(self.oids, r.start)
        if i < len(self.oids) and (not r.end or self.oids[i] < r.end):
            return self._bind(i)
        return VarBind(VarType.END_OF_MIB_VIEW, r.start)

    def get_bulk(
        self, ranges: Iterable[SearchRange], non_repeaters: int, max_repetitions: int
    ) -> list[VarBind]:
        """RFC 2741 §7.2.3.3: one GetNext for each of the first ``non_repeaters`` ranges,
        then up to ``max_repetitions`` rounds over the rest, each from where it stopped."""
        rs = list(ranges)
        out = [self.get_next(r) for r in rs[:non_repeaters]]
        rest = rs[non_repeaters:]
        for _ in range(max_repetitions if rest else 0):
            row = [self.get_next(r) for r in rest]
            out += row
            if all(vb.type is VarType.END_OF_MIB_VIEW for vb in row):
                break
            rest = [
                r if vb.type is VarType.END_OF_MIB_VIEW else SearchRange(vb.name, r.end)
                for r, vb in zip(rest, row, strict=True)
            ]
        return out


def _system(entities: int) -> dict[Oid, tuple[VarType, int | bytes]]:
    return {
        (*OBJECTS["mipEntities"], 0): (VarType.OCTET_STRING, bits([entities])),
        (*OBJECTS["mipEnable"], 0): (VarType.INTEGER, 1),  # enabled(1)
        (*OBJECTS["mipEncapsulationSupported"], 0): (
            VarType.OCTET_STRING,
            bits(ENCAPSULATION_SUPPORTED),
        ),
    }


def _scalar(name: str, value: tuple[VarType, int | bytes]) -> tuple[Oid, Any]:
    return (*OBJECTS[name], 0), value


def _advertiser(events: Mapping[str, int]) -> dict[Oid, tuple[VarType, int | bytes]]:
    out: dict[Oid, tuple[VarType, int | bytes]] = {}
    for name, key in (
        ("maAdvertisementsSent", "advertisements_sent"),
        ("maAdvsSentForSolicitation", "solicitations_answered"),
    ):
        if key in events:
            oid, v = _scalar(name, _c32(events[key]))
            out[oid] = v
    return out


def _home_agent(ha: Mapping[str, Any], counters: Mapping[str, Any]) -> dict[Oid, Any]:
    out: dict[Oid, Any] = {}
    for b in ha["bindings"]:
        index = (*ip_index(b["home_address"]), *ip_index(b["care_of_address"]))

        def col(name: str, value: tuple[VarType, int | bytes], index: Oid = index) -> None:
            out[(*OBJECTS[name], *index)] = value

        col("haMobilityBindingMN", _ip(b["home_address"]))
        col("haMobilityBindingCOA", _ip(b["care_of_address"]))
        if b.get("source"):
            col("haMobilityBindingSourceAddress", _ip(b["source"]))
        positions = [REG_FLAG_BITS[f] for f in b.get("flags", []) if f in REG_FLAG_BITS]
        col("haMobilityBindingRegFlags", (VarType.OCTET_STRING, bits(positions)))
        ident = b.get("identification")
        if ident is not None:
            col("haMobilityBindingRegIDLow", (VarType.INTEGER, _int32(ident)))
            col("haMobilityBindingRegIDHigh", (VarType.INTEGER, _int32(ident >> 32)))
        col("haMobilityBindingTimeGranted", (VarType.INTEGER, int(b["lifetime"])))
        col("haMobilityBindingTimeRemaining", (VarType.GAUGE32, _gauge(b["remaining"])))
    accepted = _codes(counters.get("accepted", {}))
    denied = _codes(counters.get("denied", {}))
    for name, n in (
        ("haRegistrationAccepted", accepted.get(0, 0)),
        ("haMultiBindingUnsupported", accepted.get(1, 0)),
    ):
        oid, v = _scalar(name, _c32(n))
        out[oid] = v
    for code, name in HA_DENIED.items():
        oid, v = _scalar(name, _c32(denied.get(code, 0)))
        out[oid] = v
    out.update(_advertiser(counters.get("events", {})))
    return out


def _foreign_agent(fa: Mapping[str, Any], counters: Mapping[str, Any]) -> dict[Oid, Any]:
    out: dict[Oid, Any] = {}
    for link in fa["links"]:
        for coa in link["care_of_addresses"]:
            out[(*OBJECTS["faCOAStatus"], *ip_index(coa))] = (VarType.INTEGER, ACTIVE)
    out[(*OBJECTS["faIsBusy"], 0)] = (VarType.INTEGER, FALSE)
    rows: list[tuple[Mapping[str, Any], bool]] = [(v, True) for v in fa["visitors"]]
    seen = {v["home_address"] for v in fa["visitors"]}
    # a request relayed and not yet answered: a visitor list entry with
    # faVisitorRegIsAccepted false (RFC 4295), unless the node is already a visitor
    rows += [(p, False) for p in fa["pending"] if p["home_address"] not in seen]
    for v, accepted in rows:
        index = ip_index(v["home_address"])

        def col(name: str, value: tuple[VarType, int | bytes], index: Oid = index) -> None:
            out[(*OBJECTS[name], *index)] = value

        col("faVisitorIPAddress", _ip(v["home_address"]))
        col("faVisitorHomeAddress", _ip(v["home_address"]))
        col("faVisitorHomeAgentAddress", _ip(v["home_agent"]))
        if accepted:
            col("faVisitorTimeGranted", (VarType.INTEGER, int(v["lifetime"])))
            col("faVisitorTimeRemaining", (VarType.GAUGE32, _gauge(v["remaining"])))
            positions = [REG_FLAG_BITS[f] for f in v.get("flags", []) if f in REG_FLAG_BITS]
            col("faVisitorRegFlags", (VarType.OCTET_STRING, bits(positions)))
        else:
            col("faVisitorTimeGranted", (VarType.INTEGER, 0))
            col("faVisitorTimeRemaining", (VarType.GAUGE32, 0))
        col("faVisitorRegIsAccepted", (VarType.INTEGER, TRUE if accepted else FALSE))
    events = counters.get("events", {})
    denied = _codes(counters.get("denied", {}))
    totals: dict[str, int] = dict.fromkeys(FA_DENIED.values(), 0)
    for code, name in FA_DENIED.items():
        totals[name] += denied.get(code, 0)
    totals["faRegRequestsRelayed"] = events.get("relayed_requests", 0)
    totals["faRegRepliesRelayed"] = events.get("relayed_replies", 0)
    for name, n in totals.items():
        oid, value = _scalar(name, _c32(n))
        out[oid] = value
    out.update(_advertiser(events))
    return out


def mn_state(mn: Mapping[str, Any]) -> int:
    """mnState from the status object (RFC 4295: home, registered, pending, isolated)."""
    if mn["at_home"]:
        return MN_HOME
    if mn["registered"]:
        return MN_REGISTERED
    if mn["pending"] is not None:
        return MN_PENDING
    if mn["attachment"] is None:
        return MN_ISOLATED
    return MN_UNKNOWN


def _mobile_node(mn: Mapping[str, Any], counters: Mapping[str, Any]) -> dict[Oid, Any]:
    out: dict[Oid, Any] = {}
    out[(*OBJECTS["mnState"], 0)] = (VarType.INTEGER, mn_state(mn))
    out[(*OBJECTS["mnHomeAddress"], 0)] = _ip(mn["home_address"])
    ha = ip_index(mn["home_agent"])
    out[(*OBJECTS["mnCurrentHA"], *ha)] = (VarType.INTEGER, TRUE)
    out[(*OBJECTS["mnHAStatus"], *ha)] = (VarType.INTEGER, ACTIVE)
    att = mn["attachment"]
    colocated = att is not None and att["kind"] == "co-located"
    # mnRegistrationTable: the current binding and the request in flight; the agent is the
    # foreign agent registered through, or the home agent with a co-located care-of address
    agent = mn["agent"] or mn["home_agent"]
    regs: list[tuple[str, int, float | None, bool]] = []
    if mn["binding"] is not None:
        b = mn["binding"]
        regs.append((b["care_of_address"], b["lifetime"], b["remaining"], True))
    p = mn["pending"]
    if p is not None and not p["deregistration"]:
        regs.append((p["care_of_address"], p["lifetime"], None, False))
    for coa, requested, remaining, accepted in regs:
        index = (*ip_index(agent), *ip_index(coa))
        if (*OBJECTS["mnRegAgentAddress"], *index) in out:
            continue  # a re-registration to the same place: the accepted row stays
        out[(*OBJECTS["mnRegAgentAddress"], *index)] = _ip(agent)
        out[(*OBJECTS["mnRegCOA"], *index)] = _ip(coa)
        out[(*OBJECTS["mnRegTimeRequested"], *index)] = (VarType.INTEGER, int(requested))
        rem = 0 if remaining is None and not accepted else _gauge(remaining)
        out[(*OBJECTS["mnRegTimeRemaining"], *index)] = (VarType.GAUGE32, rem)
        out[(*OBJECTS["mnRegIsAccepted"], *index)] = (
            VarType.INTEGER,
            TRUE if accepted else FALSE,
        )
        out[(*OBJECTS["mnCOAIsLocal"], *index)] = (
            VarType.INTEGER,
            TRUE if colocated else FALSE,
        )
    events = counters.get("events", {})
    accepted_codes = _codes(counters.get("accepted", {}))
    denied = _codes(counters.get("denied", {}))
    scalars = {
        "mnSolicitationsSent": events.get("solicitations", 0),
        "mnRegRequestsSent": events.get("requests", 0),
        "mnRegRepliesRecieved": sum(accepted_codes.values()) + sum(denied.values()),
        "mnRegRequestsAccepted": sum(accepted_codes.values()),
        "mnRegRequestsDeniedByHA": sum(n for c, n in denied.items() if c >= 128),
        "mnRegRequestsDeniedByFA": sum(n for c, n in denied.items() if 64 <= c < 128),
        "mnRegRequestsDeniedByHADueToID": denied.get(133, 0),
    }
    for name, n in scalars.items():
        oid, value = _scalar(name, _c32(n))
        out[oid] = value
    return out


def view(snapshot: Mapping[str, Any]) -> MibView:
    """The MIP-MIB instances of one daemon, from its status snapshot."""
    counters: Mapping[str, Any] = snapshot.get("counters", {})
    items: dict[Oid, Any] = {}
    if "home_agent" in snapshot:
        items |= _system(2)  # homeAgent(2)
        items |= _home_agent(snapshot["home_agent"], counters)
    elif "foreign_agent" in snapshot:
        items |= _system(1)  # foreignAgent(1)
        items |= _foreign_agent(snapshot["foreign_agent"], counters)
    elif "mobile_node" in snapshot:
        items |= _system(0)  # mobileNode(0)
        items |= _mobile_node(snapshot["mobile_node"], counters)
    return MibView.build(items)
