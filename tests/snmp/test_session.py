"""The subagent's AgentX session as a state machine: a scripted master feeds it octets."""

from __future__ import annotations

import pytest

from mip4.snmp.agentx import (
    Close,
    CloseReason,
    Get,
    GetBulk,
    GetNext,
    Open,
    Ping,
    Register,
    Response,
    ResponseError,
    SearchRange,
    VarType,
    decode_pdu,
    encode_pdu,
)
from mip4.snmp.mib import MIP_MIB, MibView, view
from mip4.snmp.session import TRANSITIONS, SessionError, SessionState, Subagent

from .snapshots import role_snapshots

SNAP = role_snapshots()["ha"]


def ha_view() -> MibView:
    return view(SNAP)


def opened(sid: int = 42) -> Subagent:
    s = Subagent()
    assert isinstance(decode_pdu(s.start()), Open)
    reg = decode_pdu(s.receive(encode_pdu(Response(session_id=sid, packet_id=1)), ha_view))
    assert isinstance(reg, Register) and reg.subtree == MIP_MIB and reg.session_id == sid
    assert s.state is SessionState.REGISTERING
    assert s.receive(encode_pdu(Response(session_id=sid, packet_id=2)), ha_view) == b""
    assert s.state.value == "open"
    return s


def test_open_register_then_answer_get_next() -> None:
    s = opened()
    req = GetNext(session_id=42, transaction_id=5, packet_id=9, ranges=(SearchRange(MIP_MIB),))
    resp = decode_pdu(s.receive(encode_pdu(req), ha_view))
    assert isinstance(resp, Response)
    assert (resp.session_id, resp.transaction_id, resp.packet_id) == (42, 5, 9)
    assert resp.error == ResponseError.NO_ERROR
    assert resp.varbinds == (ha_view().get_next(SearchRange(MIP_MIB)),)


def test_get_and_bulk_and_ping() -> None:
    s = opened()
    oid = ha_view().oids[3]
    resp = decode_pdu(
        s.receive(encode_pdu(Get(session_id=42, ranges=(SearchRange(oid),))), ha_view)
    )
    assert isinstance(resp, Response) and resp.varbinds[0].name == oid
    bulk = GetBulk(session_id=42, max_repetitions=5, ranges=(SearchRange(MIP_MIB),))
    resp = decode_pdu(s.receive(encode_pdu(bulk), ha_view))
    assert isinstance(resp, Response) and len(resp.varbinds) == 5
    ping = decode_pdu(s.ping())
    assert isinstance(ping, Ping) and ping.session_id == 42 and s.pings_unanswered == 1
    s.receive(encode_pdu(Response(session_id=42, packet_id=ping.packet_id)), ha_view)
    assert s.pings_unanswered == 0


def test_pdus_split_and_joined_arbitrarily() -> None:
    s = opened()
    reqs = b"".join(
        encode_pdu(GetNext(session_id=42, packet_id=i, ranges=(SearchRange(MIP_MIB),)))
        for i in range(3)
    )
    out = b""
    for i in range(0, len(reqs), 7):
        out += s.receive(reqs[i : i + 7], ha_view)
    size = len(out) // 3
    assert [decode_pdu(out[i * size : (i + 1) * size]).packet_id for i in range(3)] == [0, 1, 2]


def test_view_is_built_once_per_request() -> None:
    s = opened()
    calls = []

    def counted() -> MibView:
        calls.append(1)
        return ha_view()

    req = GetNext(session_id=42, ranges=(SearchRange(MIP_MIB),) * 4)
    s.receive(encode_pdu(req), counted)
    assert calls == [1]


def test_test_set_is_refused_read_only() -> None:
    s = opened()
    test_set = bytes([1, 8, 0x10, 0]) + (42).to_bytes(4, "big") + bytes(8) + bytes(4)
    resp = decode_pdu(s.receive(test_set, ha_view))
    assert isinstance(resp, Response) and resp.error == ResponseError.NOT_WRITABLE


def test_refused_open_closes() -> None:
    s = Subagent()
    s.start()
    with pytest.raises(SessionError, match="open_failed"):
        s.receive(encode_pdu(Response(error=ResponseError.OPEN_FAILED)), ha_view)
    assert s.state is SessionState.CLOSED


def test_master_close_and_restart() -> None:
    s = opened()
    with pytest.raises(SessionError, match="shutdown"):
        s.receive(encode_pdu(Close(session_id=42, reason=CloseReason.SHUTDOWN)), ha_view)
    assert s.state is SessionState.CLOSED and s.ping() == b""
    opened_again = s
    assert isinstance(decode_pdu(opened_again.start()), Open)
    assert s.state.value == "opening"


def test_request_before_open_is_a_protocol_error() -> None:
    s = Subagent()
    s.start()
    with pytest.raises(SessionError, match="request"):
        s.receive(encode_pdu(GetNext(ranges=(SearchRange(MIP_MIB),))), ha_view)


def test_garbage_closes() -> None:
    s = opened()
    with pytest.raises(SessionError):
        s.receive(b"\x07" * 20, ha_view)
    assert s.state is SessionState.CLOSED


def test_notify_carries_uptime_and_trap_oid() -> None:
    s = opened()
    trap = (*MIP_MIB, 2, 0, 1)
    n = decode_pdu(s.notify(trap, (), uptime=77))
    assert n.session_id == 42
    assert [vb.type for vb in n.varbinds] == [  # type: ignore[union-attr]
        VarType.TIME_TICKS,
        VarType.OBJECT_IDENTIFIER,
    ]
    assert n.varbinds[1].value == trap  # type: ignore[union-attr]


def test_transition_table_covers_the_states() -> None:
    assert {s for s, _ in TRANSITIONS} == set(SessionState)


def test_a_failing_snapshot_answers_gen_err_and_the_session_stays_open() -> None:
    s = opened()

    def broken() -> MibView:
        raise KeyError("home_agent")

    req = GetNext(session_id=42, packet_id=3, ranges=(SearchRange(MIP_MIB),))
    resp = decode_pdu(s.receive(encode_pdu(req), broken))
    assert isinstance(resp, Response) and resp.error == ResponseError.GEN_ERR
    assert s.state.value == "open" and s.view_errors == ["KeyError: 'home_agent'"]
    resp = decode_pdu(s.receive(encode_pdu(req), ha_view))
    assert isinstance(resp, Response) and resp.error == ResponseError.NO_ERROR
