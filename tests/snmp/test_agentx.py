"""The AgentX PDU codec (RFC 2741 §5, §6): byte-exact cases used both ways, round trips,
the other byte order, and malformed input."""

from __future__ import annotations

import struct

import pytest

from mip4.snmp.agentx import (
    Close,
    CloseReason,
    DecodeError,
    Get,
    GetBulk,
    GetNext,
    Notify,
    Open,
    Pdu,
    Ping,
    RawPdu,
    Register,
    Response,
    ResponseError,
    SearchRange,
    VarBind,
    VarType,
    decode_header,
    decode_pdu,
    encode_pdu,
)

MIP = (1, 3, 6, 1, 2, 1, 44)


def hdr(t: int, sid: int, tid: int, pid: int, length: int, flags: int = 0x10) -> bytes:
    return struct.pack("!BBBBIIII", 1, t, flags, 0, sid, tid, pid, length)


#: (PDU, octets): written out by hand from RFC 2741 §5 and §6
CASES: list[tuple[Pdu, bytes]] = [
    (
        # Open: timeout, 3 reserved, null OID, octet string "mip4" (length 4, no padding)
        Open(packet_id=1, timeout=5, id=(), description=b"mip4"),
        hdr(1, 0, 0, 1, 16) + bytes([5, 0, 0, 0]) + bytes(4) + struct.pack("!I", 4) + b"mip4",
    ),
    (
        # Register 1.3.6.1.2.1.44: prefix 2 ("1.3.6.1.2") and the two sub-ids 1, 44
        Register(session_id=7, packet_id=2, priority=127, subtree=MIP),
        hdr(3, 7, 0, 2, 16)
        + bytes([0, 127, 0, 0])
        + bytes([2, 2, 0, 0])
        + struct.pack("!II", 1, 44),
    ),
    (
        # GetNext over [mipMIB, mipMIB.2) with include=1
        GetNext(
            session_id=7,
            transaction_id=9,
            packet_id=3,
            ranges=(SearchRange(MIP, (*MIP, 2), include=True),),
        ),
        hdr(6, 7, 9, 3, 28)
        + bytes([2, 2, 1, 0])
        + struct.pack("!II", 1, 44)
        + bytes([3, 2, 0, 0])
        + struct.pack("!III", 1, 44, 2),
    ),
    (
        # Response: sysUpTime, error, index, IpAddress varbind (octet string of 4)
        Response(
            session_id=7,
            transaction_id=9,
            packet_id=3,
            varbinds=(VarBind(VarType.IP_ADDRESS, (*MIP, 1), b"\x0a\x00\x00\x05"),),
        ),
        hdr(18, 7, 9, 3, 36)
        + struct.pack("!IHH", 0, 0, 0)
        + struct.pack("!HH", 64, 0)
        + bytes([3, 2, 0, 0])
        + struct.pack("!III", 1, 44, 1)
        + struct.pack("!I", 4)
        + b"\x0a\x00\x00\x05",
    ),
    (
        # an octet string of 3 is padded to 4; an OID outside 1.3.6.1 has no prefix
        Response(varbinds=(VarBind(VarType.OCTET_STRING, (2, 5), b"abc"),)),
        hdr(18, 0, 0, 0, 32)
        + bytes(8)
        + struct.pack("!HH", 4, 0)
        + bytes([2, 0, 0, 0])
        + struct.pack("!II", 2, 5)
        + struct.pack("!I", 3)
        + b"abc\x00",
    ),
    (Ping(session_id=7, packet_id=4), hdr(13, 7, 0, 4, 0)),
    (Close(session_id=7, packet_id=5), hdr(2, 7, 0, 5, 4) + bytes([5, 0, 0, 0])),
]


@pytest.mark.parametrize(("pdu", "octets"), CASES)
def test_byte_exact_both_ways(pdu: Pdu, octets: bytes) -> None:
    assert encode_pdu(pdu) == octets
    assert decode_pdu(octets) == pdu


@pytest.mark.parametrize(
    "pdu",
    [
        Get(session_id=1, ranges=(SearchRange((*MIP, 1, 1, 1, 0)),)),
        GetBulk(
            session_id=1,
            non_repeaters=1,
            max_repetitions=10,
            ranges=(SearchRange(MIP), SearchRange((*MIP, 1, 6), (*MIP, 1, 7))),
        ),
        GetNext(context=b"ctx", ranges=(SearchRange((1, 3, 6, 1, 4, 1, 99999)),)),
        Notify(
            session_id=3,
            varbinds=(
                VarBind(VarType.TIME_TICKS, (1, 3, 6, 1, 2, 1, 1, 3, 0), 12345),
                VarBind(VarType.OBJECT_IDENTIFIER, (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), MIP),
                VarBind(VarType.INTEGER, (*MIP, 9), -5),
                VarBind(VarType.COUNTER32, (*MIP, 10), 0xFFFFFFFF),
                VarBind(VarType.GAUGE32, (*MIP, 11), 7),
                VarBind(VarType.COUNTER64, (*MIP, 12), 1 << 40),
                VarBind(VarType.NULL, (*MIP, 13)),
                VarBind(VarType.END_OF_MIB_VIEW, (*MIP, 14)),
            ),
        ),
        Response(error=ResponseError.NOT_WRITABLE, index=1),
        Register(session_id=2, subtree=MIP, range_subid=7, upper_bound=9),
    ],
)
def test_round_trip(pdu: Pdu) -> None:
    assert decode_pdu(encode_pdu(pdu)) == pdu


def test_little_endian_input() -> None:
    """A master may send host byte order (NETWORK_BYTE_ORDER clear, RFC 2741 §6.1)."""
    payload = bytes([2, 2, 1, 0]) + struct.pack("<II", 1, 44) + bytes(4)
    data = struct.pack("<BBBBIIII", 1, 6, 0, 0, 7, 9, 3, len(payload)) + payload
    assert decode_pdu(data) == GetNext(
        session_id=7, transaction_id=9, packet_id=3, ranges=(SearchRange(MIP, (), True),)
    )


def test_set_family_decodes_raw() -> None:
    data = hdr(8, 1, 2, 3, 4) + b"\x00\x00\x00\x00"
    pdu = decode_pdu(data)
    assert isinstance(pdu, RawPdu) and pdu.type == 8 and pdu.payload == bytes(4)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        hdr(6, 0, 0, 0, 0)[:19],
        struct.pack("!BBBBIIII", 2, 6, 0x10, 0, 0, 0, 0, 0),  # version 2
        hdr(6, 0, 0, 0, 3) + b"abc",  # payload not a multiple of 4
        hdr(6, 0, 0, 0, 8) + bytes([5, 0, 0, 0]) + bytes(4),  # OID cut short
        hdr(99, 0, 0, 0, 0),  # unknown type
        hdr(2, 0, 0, 0, 4) + bytes([77, 0, 0, 0]),  # unknown close reason
        hdr(13, 0, 0, 0, 4) + bytes(4),  # trailing octets
        hdr(13, 0, 0, 0, 4),  # shorter than the header says
    ],
)
def test_malformed_input_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_pdu(data)


def test_every_truncation_of_a_valid_pdu_raises() -> None:
    data = encode_pdu(CASES[3][0])
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_pdu(data[:n])


def test_header_alone() -> None:
    h = decode_header(hdr(18, 1, 2, 3, 8) + bytes(8))
    assert (h.type, h.session_id, h.transaction_id, h.packet_id, h.payload_length) == (
        18,
        1,
        2,
        3,
        8,
    )


def test_close_reasons() -> None:
    assert decode_pdu(encode_pdu(Close(reason=CloseReason.BY_MANAGER))) == Close(
        reason=CloseReason.BY_MANAGER
    )
