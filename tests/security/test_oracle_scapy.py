"""An independent encoder: scapy builds the request, hmac signs its bytes, we verify them;
and we sign, scapy dissects, hmac checks our authenticator over the documented span."""

from __future__ import annotations

import hmac
import struct

import pytest

from mip4.security.auth import sign, verify
from mip4.security.sa import SecurityAssociation
from mip4.wire.extensions import MobileHomeAuthExtension, MobileNodeNAIExtension
from mip4.wire.messages import RegistrationRequest, decode_message

from .helpers import rrq

mobileip = pytest.importorskip("scapy.layers.mobileip")
pytestmark = pytest.mark.oracle

SA = SecurityAssociation(0x1234, b"scapy oracle key")


def test_scapy_built_request_verifies() -> None:
    pkt = mobileip.MobileIP(type=1) / mobileip.MobileIPRRQ(
        flags=0x02, lifetime=600, homeaddr="10.1.2.3", haaddr="10.1.2.1",
        coaddr="198.51.100.7", id=0x0102030405060708,
    )  # fmt: skip
    body = bytes(pkt) + bytes([131, 5]) + b"n@x.y" + struct.pack("!BBI", 32, 20, SA.spi)
    raw = body + hmac.new(SA.key, body, "md5").digest()
    m = decode_message(raw)
    assert isinstance(m, RegistrationRequest)
    assert verify(m, 32, lambda spi: SA if spi == SA.spi else None).index == 1


def test_our_signature_checks_under_scapy_dissection() -> None:
    signed = sign(rrq(extensions=(MobileNodeNAIExtension(b"mn@x"),)), MobileHomeAuthExtension, SA)
    dissected = mobileip.MobileIP(signed.raw)[mobileip.MobileIPRRQ]
    assert dissected.id == 0x0123456789ABCDEF and str(dissected.homeaddr) == "10.0.0.5"
    tail = bytes(dissected.payload)  # scapy leaves the extensions undissected
    assert tail == signed.raw[24:]
    covered, auth = signed.raw[:-16], signed.raw[-16:]
    assert covered.endswith(struct.pack("!BBI", 32, 20, SA.spi))
    assert hmac.compare_digest(hmac.new(SA.key, covered, "md5").digest(), auth)
