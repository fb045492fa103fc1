"""The RFC 4295 objects over status snapshots of real engines, and the AgentX search
semantics (Get, GetNext, GetBulk) over the view."""

from __future__ import annotations

import copy
from typing import Any

from mip4.snmp.agentx import SearchRange, VarType
from mip4.snmp.mib import (
    MIP_AUTH_FAILURE,
    MIP_MIB,
    OBJECTS,
    ViolationReason,
    auth_failure,
    bits,
    mn_state,
    view,
)

from .snapshots import role_snapshots

M = MIP_MIB


def ip(a: str) -> tuple[int, ...]:
    return tuple(int(x) for x in a.split("."))


def test_object_identifiers() -> None:
    """Pinned against the MIP-MIB module text and two compilations of it (docs/mib.md): a
    few of each group, written out in full."""
    assert M == (1, 3, 6, 1, 2, 1, 44)
    expected = {
        "mipEntities": "1.3.6.1.2.1.44.1.1.1",
        "mipEncapsulationSupported": "1.3.6.1.2.1.44.1.1.3",
        "mnState": "1.3.6.1.2.1.44.1.3.1.1",
        "mnHomeAddress": "1.3.6.1.2.1.44.1.3.1.2",
        "mnRegIsAccepted": "1.3.6.1.2.1.44.1.3.3.1.1.9",
        "mnRegRequestsDeniedByHADueToID": "1.3.6.1.2.1.44.1.3.3.17",
        "maAdvertisementsSent": "1.3.6.1.2.1.44.1.4.2.2",
        "faVisitorHomeAgentAddress": "1.3.6.1.2.1.44.1.5.3.1.1.3",
        "faRegRepliesRelayed": "1.3.6.1.2.1.44.1.5.3.14",
        "haMobilityBindingCOA": "1.3.6.1.2.1.44.1.6.3.1.1.2",
        "haMobilityBindingTimeRemaining": "1.3.6.1.2.1.44.1.6.3.1.1.8",
        "haIDMismatch": "1.3.6.1.2.1.44.1.6.3.10",
        "haUnknownHA": "1.3.6.1.2.1.44.1.6.3.13",
    }
    for name, dotted in expected.items():
        assert ".".join(map(str, OBJECTS[name])) == dotted, name
    assert ".".join(map(str, MIP_AUTH_FAILURE)) == "1.3.6.1.2.1.44.2.0.1"
    assert len(set(OBJECTS.values())) == len(OBJECTS)
    assert all(o[: len(M)] == M for o in OBJECTS.values())


def test_bits() -> None:
    assert bits([]) == b"\x00"
    assert bits([0]) == b"\x80"
    assert bits([2]) == b"\x20"
    assert bits([0, 1, 2, 3]) == b"\xf0"
    assert bits([9]) == b"\x00\x40"


def test_home_agent_view_matches_status() -> None:
    s = role_snapshots()["ha"]
    v = view(s).as_dict()
    (b,) = s["home_agent"]["bindings"]
    index = (*ip(b["home_address"]), *ip(b["care_of_address"]))
    col = {name: (*OBJECTS[name], *index) for name in OBJECTS if name.startswith("haMobility")}
    assert v[(*OBJECTS["mipEntities"], 0)] == (VarType.OCTET_STRING, b"\x20")  # homeAgent(2)
    assert v[col["haMobilityBindingMN"]] == (VarType.IP_ADDRESS, bytes(ip(b["home_address"])))
    assert v[col["haMobilityBindingCOA"]][1] == bytes(ip(b["care_of_address"]))
    assert v[col["haMobilityBindingSourceAddress"]][1] == bytes(ip(b["source"]))
    assert v[col["haMobilityBindingTimeGranted"]] == (VarType.INTEGER, b["lifetime"])
    assert v[col["haMobilityBindingTimeRemaining"]] == (VarType.GAUGE32, int(b["remaining"]))
    ident = b["identification"]
    low = v[col["haMobilityBindingRegIDLow"]][1]
    high = v[col["haMobilityBindingRegIDHigh"]][1]
    assert isinstance(low, int) and isinstance(high, int)
    assert ((high & 0xFFFFFFFF) << 32 | (low & 0xFFFFFFFF)) == ident
    assert v[(*OBJECTS["haRegistrationAccepted"], 0)] == (VarType.COUNTER32, 1)
    assert v[(*OBJECTS["haIDMismatch"], 0)] == (VarType.COUNTER32, 0)


def test_two_bindings_are_ordered_by_index() -> None:
    s = copy.deepcopy(role_snapshots()["ha"])
    (b,) = s["home_agent"]["bindings"]
    other = dict(b, home_address="10.0.0.3", care_of_address="192.168.9.9", remaining=None)
    other["flags"] = ["S", "G", "T"]
    s["home_agent"]["bindings"].append(other)
    s["counters"]["denied"] = {"133 ha_identification_mismatch": 4, "129 x": 1}
    v = view(s)
    column = OBJECTS["haMobilityBindingMN"]
    rows = [o[len(column) :] for o in v.oids if o[: len(column)] == column]
    assert rows == [(10, 0, 0, 3, 192, 168, 9, 9), (10, 0, 0, 5, 192, 168, 1, 1)]
    d = v.as_dict()
    idx = (10, 0, 0, 3, 192, 168, 9, 9)
    # infinite lifetime: the Gauge32 maximum; S and G are bits 5 and 1, T has no bit
    assert d[(*OBJECTS["haMobilityBindingTimeRemaining"], *idx)][1] == 0xFFFFFFFF
    assert d[(*OBJECTS["haMobilityBindingRegFlags"], *idx)] == (VarType.OCTET_STRING, b"\x44")
    assert d[(*OBJECTS["haIDMismatch"], 0)][1] == 4
    assert d[(*OBJECTS["haAdmProhibited"], 0)][1] == 1


def test_foreign_agent_view_matches_status() -> None:
    s = role_snapshots()["fa"]
    d = view(s).as_dict()
    (vis,) = s["foreign_agent"]["visitors"]
    idx = ip(vis["home_address"])
    assert d[(*OBJECTS["mipEntities"], 0)][1] == b"\x40"  # foreignAgent(1)
    assert d[(*OBJECTS["faVisitorHomeAgentAddress"], *idx)][1] == bytes(ip(vis["home_agent"]))
    assert d[(*OBJECTS["faVisitorTimeGranted"], *idx)][1] == vis["lifetime"]
    assert d[(*OBJECTS["faVisitorRegIsAccepted"], *idx)][1] == 1  # true
    coa = s["foreign_agent"]["links"][0]["care_of_addresses"][0]
    assert d[(*OBJECTS["faCOAStatus"], *ip(coa))] == (VarType.INTEGER, 1)  # active
    events = s["counters"]["events"]
    assert d[(*OBJECTS["faRegRequestsRelayed"], 0)][1] == events["relayed_requests"]
    assert d[(*OBJECTS["faRegRepliesRelayed"], 0)][1] == events["relayed_replies"]
    assert d[(*OBJECTS["maAdvertisementsSent"], 0)][1] == events["advertisements_sent"]


def test_foreign_agent_pending_request_is_an_unaccepted_visitor() -> None:
    s = copy.deepcopy(role_snapshots()["fa"])
    s["foreign_agent"]["pending"] = [
        {
            "home_address": "10.0.0.9",
            "home_agent": "10.0.0.1",
            "care_of_address": "192.168.1.1",
            "interface": "fa1-a",
            "requested_lifetime": 600,
            "age": 0.5,
            "expires_in": 6.5,
        }
    ]
    d = view(s).as_dict()
    assert d[(*OBJECTS["faVisitorRegIsAccepted"], 10, 0, 0, 9)][1] == 2  # false


def test_mobile_node_view_matches_status() -> None:
    s = role_snapshots()["mn"]
    d = view(s).as_dict()
    mn = s["mobile_node"]
    assert d[(*OBJECTS["mipEntities"], 0)][1] == b"\x80"  # mobileNode(0)
    assert d[(*OBJECTS["mnState"], 0)] == (VarType.INTEGER, 2)  # registered
    assert d[(*OBJECTS["mnHomeAddress"], 0)][1] == bytes(ip(mn["home_address"]))
    assert d[(*OBJECTS["mnCurrentHA"], *ip(mn["home_agent"]))][1] == 1
    idx = (*ip(mn["agent"]), *ip(mn["care_of_address"]))
    assert d[(*OBJECTS["mnRegIsAccepted"], *idx)][1] == 1
    assert d[(*OBJECTS["mnRegTimeRequested"], *idx)][1] == mn["binding"]["lifetime"]
    assert d[(*OBJECTS["mnCOAIsLocal"], *idx)][1] == 2  # false: through a foreign agent
    # mn_replies {0: 1, 133: 2, 66: 1}
    assert d[(*OBJECTS["mnRegRequestsAccepted"], 0)][1] == 1
    assert d[(*OBJECTS["mnRegRequestsDeniedByHA"], 0)][1] == 2
    assert d[(*OBJECTS["mnRegRequestsDeniedByHADueToID"], 0)][1] == 2
    assert d[(*OBJECTS["mnRegRequestsDeniedByFA"], 0)][1] == 1
    assert d[(*OBJECTS["mnRegRepliesRecieved"], 0)][1] == 4
    assert d[(*OBJECTS["mnRegRequestsSent"], 0)][1] == s["counters"]["events"]["requests"]


def test_mn_state() -> None:
    base: dict[str, Any] = {"at_home": False, "registered": False, "pending": None}
    assert mn_state({**base, "at_home": True, "attachment": {}}) == 1
    assert mn_state({**base, "registered": True, "attachment": {}}) == 2
    assert mn_state({**base, "pending": {}, "attachment": {}}) == 3
    assert mn_state({**base, "attachment": None}) == 4
    assert mn_state({**base, "attachment": {}}) == 5


def test_get_next_and_get_semantics() -> None:
    v = view(role_snapshots()["ha"])
    first = v.get_next(SearchRange(M))
    assert first.name == v.oids[0] == (*OBJECTS["mipEntities"], 0)
    # include: the start itself; exclude: the one after
    assert v.get_next(SearchRange(first.name, include=True)).name == first.name
    assert v.get_next(SearchRange(first.name)).name == v.oids[1]
    # the end of the range is exclusive
    assert v.get_next(SearchRange(first.name, v.oids[1])).type is VarType.END_OF_MIB_VIEW
    assert v.get_next(SearchRange(v.oids[-1])).type is VarType.END_OF_MIB_VIEW
    assert v.get(first.name) == first
    assert v.get((*OBJECTS["haMobilityBindingMN"], 1, 2, 3, 4, 5, 6, 7, 8)).type is (
        VarType.NO_SUCH_INSTANCE
    )
    assert v.get((*M, 1, 6, 3, 99, 0)).type is VarType.NO_SUCH_OBJECT


def test_get_bulk() -> None:
    v = view(role_snapshots()["ha"])
    out = v.get_bulk([SearchRange(M), SearchRange(M), SearchRange((*M, 1, 6, 3, 3))], 1, 3)
    # the non-repeater once, then three rounds over the two repeaters
    assert out[0].name == v.oids[0]
    assert [vb.name for vb in out[1::2]] == list(v.oids[:3])
    assert [vb.name for vb in out[2::2]] == [
        (*M, 1, 6, 3, 3, 0),
        (*M, 1, 6, 3, 4, 0),
        (*M, 1, 6, 3, 5, 0),
    ]
    everything = v.get_bulk([SearchRange(M)], 0, 1000)
    assert [vb.name for vb in everything[:-1]] == list(v.oids)
    assert everything[-1].type is VarType.END_OF_MIB_VIEW


def test_unknown_snapshot_serves_nothing() -> None:
    assert view({}).oids == ()


def test_auth_failure_notification_objects() -> None:
    """mipAuthFailure: instances of the violator's mipSecViolationTable row."""
    trap, vbs = auth_failure("192.0.2.99", 0x80000001, (1 << 63) | 5, ViolationReason.BAD_SPI)
    assert ".".join(map(str, trap)) == "1.3.6.1.2.1.44.2.0.1"
    entry = "1.3.6.1.2.1.44.1.2.3.1"
    got = {".".join(map(str, vb.name)): (vb.type, vb.value) for vb in vbs}
    # the order of the NOTIFICATION-TYPE's OBJECTS clause
    assert [vb.name[len(entry.split("."))] for vb in vbs] == [1, 3, 5, 6, 7]
    assert got == {
        f"{entry}.1.192.0.2.99": (VarType.IP_ADDRESS, bytes([192, 0, 2, 99])),
        f"{entry}.3.192.0.2.99": (VarType.INTEGER, -0x7FFFFFFF),  # Integer32 of 0x80000001
        f"{entry}.6.192.0.2.99": (VarType.INTEGER, -0x80000000),
        f"{entry}.5.192.0.2.99": (VarType.INTEGER, 5),
        f"{entry}.7.192.0.2.99": (VarType.INTEGER, 4),  # badSPI(4)
    }


def test_docs_list_every_object() -> None:
    """docs/mib.md names every object served, with its OID."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "mib.md").read_text()
    for name, oid in OBJECTS.items():
        assert f"| {name} | `{'.'.join(map(str, oid))}` |" in text, name


def test_home_agent_driven_through_handle() -> None:
    """Three bindings (two simultaneous ones of one node) and a 131 denial."""
    s = role_snapshots()["ha3"]
    d = view(s).as_dict()
    for b in s["home_agent"]["bindings"]:
        idx = (*ip(b["home_address"]), *ip(b["care_of_address"]))
        flags = d[(*OBJECTS["haMobilityBindingRegFlags"], *idx)][1]
        # S is simultaneousBindings(5): 0x04; G is gre(1): 0x40
        assert flags == {("S",): b"\x04", ("G",): b"\x40"}[tuple(b["flags"])]
    assert d[(*OBJECTS["haRegistrationAccepted"], 0)][1] == 3
    assert d[(*OBJECTS["haMNAuthenticationFailure"], 0)][1] == 1
