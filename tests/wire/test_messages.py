"""UDP-434 messages: byte-exact tables used both ways, malformed input, dispatch.

Every expected byte string was written by hand from the layout in the class docstring
(RFC section, or Wireshark where the RFC text could not be checked), never produced by our
encoder. ``h()`` drops ``#`` comments and whitespace, then reads hex.
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

import pytest

from mip4.wire import (
    MESSAGES,
    DecodeError,
    EncapsulatingDeliveryExtension,
    EncodeError,
    ExperimentalMessage,
    FastBindingAck,
    FastBindingUpdate,
    ForeignHomeAuthExtension,
    GenericNotification,
    GenericNotificationAck,
    HandoffReply,
    HandoffRequest,
    Message,
    MessageType,
    MobileHomeAuthExtension,
    RawExtension,
    RegionalRegistrationReply,
    RegionalRegistrationRequest,
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAck,
    RevocationAckFlags,
    RevocationFlags,
    RevocationSupportExtension,
    TunnelData,
    UDPTunnelRequestExtension,
    UnknownExtensionError,
    decode_message,
)


def h(text: str) -> bytes:
    """Hex with ``#`` comments and any whitespace."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return bytes.fromhex("".join("".join(lines).split()))


HOA = IPv4Address("192.0.2.10")  # c000020a
HA = IPv4Address("198.51.100.1")  # c6336401
COA = IPv4Address("203.0.113.5")  # cb007105
GFA = IPv4Address("203.0.113.254")  # cb0071fe
IDENT = 0x0123456789ABCDEF
MN_HA = MobileHomeAuthExtension(0x100, bytes(range(16)))
MN_HA_WIRE = "20 14 00000100 000102030405060708090a0b0c0d0e0f"
FA_HA = ForeignHomeAuthExtension(0x200, b"\x11" * 16)
FA_HA_WIRE = "22 14 00000200 11111111111111111111111111111111"
F = RegistrationFlags

SIMPLE_CASES: list[tuple[Message, bytes]] = [
    # RFC 5944 §3.3
    (
        RegistrationRequest(F.B | F.T, 1800, HOA, HA, COA, IDENT, (MN_HA,)),
        h(f"""01 42 0708        # type 1, flags B|T, lifetime 1800
              c000020a c6336401 cb007105  # HoA, HA, CoA
              0123456789abcdef  # identification
              {MN_HA_WIRE}"""),
    ),
    (
        RegistrationRequest(F(0), 0, HOA, HA, HOA, 1),
        h("01 00 0000 c000020a c6336401 c000020a 0000000000000001  # deregistration"),
    ),
    # RFC 5944 §3.4
    (
        RegistrationReply(0, 0xFFFF, HOA, HA, IDENT, (MN_HA,)),
        h(f"03 00 ffff c000020a c6336401 0123456789abcdef {MN_HA_WIRE}"),
    ),
    (
        RegistrationReply(133, 0, HOA, HA, IDENT),
        h("03 85 0000 c000020a c6336401 0123456789abcdef  # 133: identification mismatch"),
    ),
    # RFC 3519 §3.3: Type Next-Header Reserved(2) payload
    (
        TunnelData(4, h("4500 0014 0000 4000 4011 0000 c000020a c6336401")),
        h("""04 04 0000          # type 4, next header 4 (IP), reserved
             4500 0014 0000 4000 4011 0000 c000020a c6336401  # inner IPv4 header"""),
    ),
    (TunnelData(47, b"", reserved=0xABCD), h("04 2f abcd  # GRE, reserved kept, no payload")),
    # RFC 3543 §3.1 (Wireshark layout)
    (
        RegistrationRevocation(
            RevocationFlags.A | RevocationFlags.I, HOA, HA, COA, 0x01020304, (FA_HA,)
        ),
        h(f"""07 00 c000         # type 7, reserved, flags A|I
              c000020a           # home address
              c6336401           # home domain address
              cb007105           # foreign domain address
              01020304           # revocation identifier
              {FA_HA_WIRE}"""),
    ),
    # RFC 3543 §3.2 (Wireshark layout)
    (
        RevocationAck(RevocationAckFlags.I, HOA, 0x01020304, (FA_HA,), reserved=9),
        h(f"0f 09 8000 c000020a 01020304 {FA_HA_WIRE}"),
    ),
    # RFC 4881 (request-shaped, unverified)
    (
        HandoffRequest(0x81, 600, HOA, HA, COA, IDENT),
        h("10 81 0258 c000020a c6336401 cb007105 0123456789abcdef"),
    ),
    (
        HandoffReply(0, 600, HOA, HA, IDENT, (MN_HA,)),
        h(f"11 00 0258 c000020a c6336401 0123456789abcdef {MN_HA_WIRE}"),
    ),
    # RFC 4857 (request-shaped, GFA in the home agent field; unverified)
    (
        RegionalRegistrationRequest(F.S, 300, HOA, GFA, COA, IDENT),
        h("12 80 012c c000020a cb0071fe cb007105 0123456789abcdef"),
    ),
    (
        RegionalRegistrationReply(1, 300, HOA, GFA, IDENT),
        h("13 01 012c c000020a cb0071fe 0123456789abcdef"),
    ),
    # RFC 4988 (request/reply-shaped; unverified)
    (
        FastBindingUpdate(F.D | F.G, 10, HOA, HA, COA, IDENT, (MN_HA,)),
        h(f"14 28 000a c000020a c6336401 cb007105 0123456789abcdef {MN_HA_WIRE}"),
    ),
    (
        FastBindingAck(0, 10, HOA, HA, IDENT),
        h("15 00 000a c000020a c6336401 0123456789abcdef"),
    ),
    # RFC 6098 (unverified): Type Subtype MD Reserved/Code HoA HA CoA Identification
    (
        GenericNotification(1, 0, HOA, HA, COA, IDENT, (MN_HA,)),
        h(f"16 01 00 00 c000020a c6336401 cb007105 0123456789abcdef {MN_HA_WIRE}"),
    ),
    (
        GenericNotificationAck(1, 2, 128, HOA, HA, COA, IDENT),
        h("17 01 02 80 c000020a c6336401 cb007105 0123456789abcdef"),
    ),
    # RFC 4064: everything after Type is the experiment's
    (ExperimentalMessage(b"\x01\x02"), h("ff 0102")),
    (ExperimentalMessage(), h("ff")),
]


@pytest.mark.parametrize(("msg", "wire"), SIMPLE_CASES, ids=lambda v: type(v).__name__)
def test_encode(msg: Message, wire: bytes) -> None:
    assert msg.encode() == wire


@pytest.mark.parametrize(("msg", "wire"), SIMPLE_CASES, ids=lambda v: type(v).__name__)
def test_decode(msg: Message, wire: bytes) -> None:
    got = decode_message(wire)
    assert type(got) is type(msg)
    assert got == msg
    assert type(msg).decode(wire) == msg
    if hasattr(got, "raw"):
        assert got.raw == wire  # the bytes as received, for authenticators


def test_every_message_type_has_a_case() -> None:
    assert {type(m) for m, _ in SIMPLE_CASES} == set(MESSAGES.values())


def test_registry_matches_the_codes_table() -> None:
    assert set(MESSAGES) == {int(t) for t in MessageType}
    for t, cls in MESSAGES.items():
        assert t == cls.TYPE


def test_fixed_len_is_the_extension_offset() -> None:
    for msg, wire in SIMPLE_CASES:
        exts = getattr(msg, "extensions", ())
        if exts:
            ext_len = sum(len(e.encode()) for e in exts)
            assert len(wire) - ext_len == type(msg).FIXED_LEN  # type: ignore[attr-defined]


def test_extensions_of_every_kind_in_a_revocation() -> None:
    rev = RegistrationRevocation(
        RevocationFlags(0),
        HOA,
        HA,
        COA,
        7,
        (RevocationSupportExtension(5), RawExtension(201, b"x"), FA_HA),
    )
    wire = h(f"""07 00 0000 c000020a c6336401 cb007105 00000007
                 89 06 0000 00000005   # revocation support, timestamp 5
                 c9 01 78              # unknown skippable 201, kept
                 {FA_HA_WIRE}""")
    assert rev.encode() == wire
    assert decode_message(wire) == rev


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(("msg", "wire"), SIMPLE_CASES, ids=lambda v: type(v).__name__)
def test_short_fixed_part(msg: Message, wire: bytes) -> None:
    cut = wire[: type(msg).FIXED_LEN - 1]  # type: ignore[attr-defined]
    with pytest.raises(DecodeError) as e:
        type(msg).decode(cut)
    assert e.value.offset == len(cut)
    assert type(msg).__name__ in str(e.value)
    if cut:  # through the dispatcher too
        with pytest.raises(DecodeError) as e2:
            decode_message(cut)
        assert e2.value.offset == len(cut)


@pytest.mark.parametrize("cls", list(MESSAGES.values()), ids=lambda c: c.__name__)
def test_class_decode_checks_the_type_byte(cls: type[Message]) -> None:
    wrong = 2  # unassigned
    with pytest.raises(DecodeError) as e:
        cls.decode(bytes((wrong,)) + bytes(40))
    assert e.value.offset == 0
    assert "type 2" in str(e.value)


@pytest.mark.parametrize("t", [0, 2, 5, 6, 8, 14, 24, 27, 128, 254])
def test_unknown_message_type_is_named(t: int) -> None:
    with pytest.raises(DecodeError) as e:
        decode_message(bytes((t,)) + bytes(30))
    assert f"unknown Mobile IP message type {t}" in str(e.value)
    assert e.value.offset == 0


def test_empty_message() -> None:
    with pytest.raises(DecodeError) as e:
        decode_message(b"")
    assert e.value.offset == 0


REQ_FIXED = "01 00 0708 c000020a c6336401 cb007105 0123456789abcdef"


def test_extension_overrun_names_its_offset() -> None:
    with pytest.raises(DecodeError) as e:
        decode_message(h(REQ_FIXED + " 20 14 00000100 0001"))
    assert e.value.offset == 24


def test_bad_extension_body_names_its_offset() -> None:
    with pytest.raises(DecodeError) as e:
        decode_message(h(f"{REQ_FIXED} 82 00 8b 04 01 c6336401"))  # dynamic HA too short
    assert e.value.offset == 26


def test_truncated_extension_header_in_a_revocation_ack() -> None:
    with pytest.raises(DecodeError) as e:
        decode_message(h("0f 00 8000 c000020a 01020304 22"))
    assert e.value.offset == 12


@pytest.mark.parametrize(
    ("fixed", "offset"),
    [
        (REQ_FIXED, 24),
        ("03 00 0708 c000020a c6336401 0123456789abcdef", 20),
        ("07 00 0000 c000020a c6336401 cb007105 00000001", 20),
        ("0f 00 0000 c000020a 00000001", 12),
        ("12 00 0708 c000020a c6336401 cb007105 0123456789abcdef", 24),
        ("16 00 00 00 c000020a c6336401 cb007105 0123456789abcdef", 24),
    ],
)
def test_unknown_non_skippable_extension_discards(fixed: str, offset: int) -> None:
    with pytest.raises(UnknownExtensionError) as e:
        decode_message(h(fixed + " 31 00"))  # 49: not implemented, non-skippable
    assert e.value.ext_type == 49
    assert e.value.offset == offset


def test_unknown_skippable_extension_round_trips() -> None:
    wire = h(f"{REQ_FIXED} 93 03 010203 {MN_HA_WIRE}")  # 147, PMIPv4 skippable: not ours
    msg = decode_message(wire)
    assert isinstance(msg, RegistrationRequest)
    assert msg.extensions == (RawExtension(147, b"\x01\x02\x03"), MN_HA)
    assert msg.encode() == wire


# ---------------------------------------------------------------- encode-side checks


@pytest.mark.parametrize(
    "build",
    [
        lambda: RegistrationRequest(F(0), 1 << 16, HOA, HA, COA, 0),
        lambda: RegistrationRequest(F(0), 0, HOA, HA, COA, 1 << 64),
        lambda: RegistrationRequest(F(0), 0, "192.0.2.1", HA, COA, 0),  # type: ignore[arg-type]
        lambda: RegistrationReply(256, 0, HOA, HA, 0),
        lambda: RegistrationReply(0, 0, HOA, HA, 0, [MN_HA]),  # type: ignore[arg-type]
        lambda: TunnelData(256, b""),
        lambda: RegistrationRevocation(RevocationFlags(0), HOA, HA, COA, 1 << 32),
        lambda: RevocationAck(1 << 16, HOA, 0),
        lambda: HandoffRequest(0x100, 0, HOA, HA, COA, 0),
        lambda: FastBindingAck(0, -1, HOA, HA, 0),
        lambda: GenericNotification(0, 256, HOA, HA, COA, 0),
        lambda: GenericNotificationAck(0, 0, -1, HOA, HA, COA, 0),
        lambda: GenericNotification(0, 0, HOA, HA, COA, 0, reserved=256),
    ],
)
def test_out_of_range_raises_encode_error(build: object) -> None:
    with pytest.raises(EncodeError):
        build()  # type: ignore[operator]


def test_raw_takes_no_part_in_equality() -> None:
    wire = SIMPLE_CASES[0][1]
    decoded = RegistrationRequest.decode(wire)
    built = SIMPLE_CASES[0][0]
    assert decoded.raw == wire and not built.raw  # type: ignore[attr-defined]
    assert decoded == built
    assert dataclasses.replace(decoded, extensions=()) != built


def test_generic_notification_reserved_is_kept() -> None:
    wire = h("16 02 01 5a c000020a c6336401 cb007105 0000000000000009")
    note = decode_message(wire)
    assert note == GenericNotification(2, 1, HOA, HA, COA, 9, reserved=0x5A)
    assert note.encode() == wire


def test_delivery_style_in_a_request() -> None:
    rrq = RegistrationRequest(
        F.T,
        1800,
        HOA,
        HA,
        COA,
        IDENT,
        (UDPTunnelRequestExtension(0, 4), EncapsulatingDeliveryExtension(), MN_HA),
    )
    wire = h(f"""01 02 0708 c000020a c6336401 cb007105 0123456789abcdef
                 90 06 00 00 00 04 0000    # UDP tunnel request, IP-in-IP
                 82 00                     # encapsulating delivery style
                 {MN_HA_WIRE}""")
    assert rrq.encode() == wire
    assert decode_message(wire) == rrq


def test_hot_decoders_skip_the_checking_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    """RRQ, RRP and the extensions every registration carries are built without
    ``__init__``/``__post_init__`` (the decode speed target); the checks are for encoding."""
    from mip4.wire import (
        GeneralizedAuthExtension,
        MobileForeignChallengeExtension,
        MobileNodeNAIExtension,
    )

    def boom(self: object) -> None:
        raise AssertionError(f"{type(self).__name__}.__post_init__ ran while decoding")

    hot = (
        RegistrationRequest,
        RegistrationReply,
        MobileHomeAuthExtension,
        ForeignHomeAuthExtension,
        GeneralizedAuthExtension,
        MobileNodeNAIExtension,
        MobileForeignChallengeExtension,
    )
    for cls in hot:
        monkeypatch.setattr(cls, "__post_init__", boom)
    wire = h(f"""{REQ_FIXED}
                 83 02 6d6e            # NAI "mn"
                 84 04 01020304        # MN-FA challenge
                 24 01 0008 00000002 deadbeef  # MN-AAA
                 {MN_HA_WIRE} {FA_HA_WIRE}""")
    assert len(decode_message(wire).extensions) == 5  # type: ignore[attr-defined]
    reply = h(f"03 00 0708 c000020a c6336401 0123456789abcdef {MN_HA_WIRE}")
    assert decode_message(reply).extensions == (MN_HA,)  # type: ignore[attr-defined]
