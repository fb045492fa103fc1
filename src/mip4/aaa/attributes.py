"""The mapping between mip4's typed AAA messages and RADIUS attributes (pure).

Attribute names are those of mip4's client dictionary (``mip4/data/radius-dictionary``: the
RFC 2865/2866 names and FreeRADIUS's 3GPP2 names). Values are what pyrad takes and returns:
``str`` for text and addresses, ``int`` for integers, ``bytes`` for octets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address

from .messages import AaaRequest, AccountingRecord, Authorization

#: (attribute name, value) in the order they go on the wire
Attributes = list[tuple[str, str | int | bytes]]

#: RFC 2865 §5.6 Service-Type Framed-User
FRAMED_USER = 2
#: RFC 2866 §5.6 Acct-Authentic RADIUS
ACCT_AUTHENTIC_RADIUS = 1
_U32 = 1 << 32


def access_request_attributes(req: AaaRequest) -> Attributes:
    """RFC 4721 §7 through RFC 2865: User-Name = NAI, CHAP-Password, CHAP-Challenge."""
    attrs: Attributes = [
        ("User-Name", req.nai),
        ("CHAP-Password", req.chap_password),
        ("CHAP-Challenge", req.chap_challenge),
        ("Service-Type", FRAMED_USER),
    ]
    if req.nas_address is not None:
        attrs.append(("NAS-IP-Address", str(req.nas_address)))
        if req.foreign_agent:
            attrs.append(("3GPP2-Foreign-Agent-Address", str(req.nas_address)))
    if req.home_address != IPv4Address(0):
        attrs.append(("Framed-IP-Address", str(req.home_address)))
    if req.home_agent != IPv4Address(0):
        attrs.append(("3GPP2-Home-Agent-IP-Address", str(req.home_agent)))
    return attrs


def accounting_attributes(rec: AccountingRecord) -> Attributes:
    """RFC 2866 §5: status, session, the visitor's addresses and its counters (octet counts
    above 2**32 - 1 carry the excess in Acct-Input/Output-Gigawords, RFC 2869 §5.1)."""
    attrs: Attributes = [
        ("Acct-Status-Type", int(rec.status)),
        ("Acct-Session-Id", rec.session_id),
        ("User-Name", rec.nai),
        ("Acct-Authentic", ACCT_AUTHENTIC_RADIUS),
        ("Framed-IP-Address", str(rec.home_address)),
        ("3GPP2-Home-Agent-IP-Address", str(rec.home_agent)),
        ("Calling-Station-Id", str(rec.care_of_address)),
    ]
    if rec.nas_address is not None:
        attrs.append(("NAS-IP-Address", str(rec.nas_address)))
        attrs.append(("3GPP2-Foreign-Agent-Address", str(rec.nas_address)))
    if rec.radius_class is not None:
        attrs.append(("Class", rec.radius_class))
    if rec.status is not rec.status.START:
        attrs += [
            ("Acct-Session-Time", rec.session_time),
            ("Acct-Input-Octets", rec.input_octets % _U32),
            ("Acct-Output-Octets", rec.output_octets % _U32),
            ("Acct-Input-Packets", rec.input_packets % _U32),
            ("Acct-Output-Packets", rec.output_packets % _U32),
        ]
        if rec.input_octets >= _U32:
            attrs.append(("Acct-Input-Gigawords", rec.input_octets // _U32))
        if rec.output_octets >= _U32:
            attrs.append(("Acct-Output-Gigawords", rec.output_octets // _U32))
    if rec.terminate_cause is not None:
        attrs.append(("Acct-Terminate-Cause", int(rec.terminate_cause)))
    return attrs


def _one(attrs: Mapping[str, Sequence[object]], name: str) -> object | None:
    values = attrs.get(name)
    return values[0] if values else None


def _address(value: object | None, name: str) -> IPv4Address | None:
    if value is None:
        return None
    try:
        return IPv4Address(str(value))
    except ValueError:
        raise ValueError(f"{name}: not an IPv4 address: {value!r}") from None


def _int(value: object | None, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int):
        raise ValueError(f"{name}: not an integer: {type(value).__name__}")
    return value


def _octets(value: object | None, name: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes):
        # never put the value in the message: it may be a key
        raise ValueError(f"{name}: expected octets, got {type(value).__name__}")
    return value


#: RFC 3957 MN-FA keys: no shipped dictionary has attributes for them (3GPP2 carries only
#: MN-HA keys), so they are mip4 vendor attributes (32473, RFC 5612's documentation
#: number, as ``Mip4-Key-Nonce``). The same lines serve FreeRADIUS
#: (:func:`mip4.aaa.freeradius.dictionary_file`) and pyrad (a client dictionary that lacks
#: them never decodes them: the foreign agent then gets no MN-FA key).
MN_FA_KEY_ATTRIBUTES = """\
BEGIN-VENDOR	Mip4
ATTRIBUTE	Mip4-MN-FA-SPI				2	integer
ATTRIBUTE	Mip4-MN-FA-Key				3	octets	encrypt=2
ATTRIBUTE	Mip4-MN-FA-Key-Nonce			4	octets
END-VENDOR	Mip4
"""


def authorization_from_attributes(attrs: Mapping[str, Sequence[object]]) -> Authorization:
    """An Access-Accept's attributes (name -> decoded values, as pyrad gives them) as an
    :class:`Authorization`. Raises ``ValueError`` naming the attribute when one is malformed.
    """
    key = _octets(_one(attrs, "3GPP2-MN-HA-Shared-Key"), "3GPP2-MN-HA-Shared-Key")
    return Authorization(
        home_address=_address(_one(attrs, "Framed-IP-Address"), "Framed-IP-Address"),
        home_agent=_address(
            _one(attrs, "3GPP2-Home-Agent-IP-Address"), "3GPP2-Home-Agent-IP-Address"
        ),
        mn_ha_spi=_int(_one(attrs, "3GPP2-MN-HA-SPI"), "3GPP2-MN-HA-SPI"),
        mn_ha_key=key,
        session_timeout=_int(_one(attrs, "Session-Timeout"), "Session-Timeout"),
        radius_class=_octets(_one(attrs, "Class"), "Class"),
        key_nonce=_octets(_one(attrs, "Mip4-Key-Nonce"), "Mip4-Key-Nonce"),
        mn_fa_spi=_int(_one(attrs, "Mip4-MN-FA-SPI"), "Mip4-MN-FA-SPI"),
        mn_fa_key=_octets(_one(attrs, "Mip4-MN-FA-Key"), "Mip4-MN-FA-Key"),
        mn_fa_key_nonce=_octets(_one(attrs, "Mip4-MN-FA-Key-Nonce"), "Mip4-MN-FA-Key-Nonce"),
    )


def reply_message(attrs: Mapping[str, Sequence[object]]) -> str | None:
    values = attrs.get("Reply-Message")
    return "".join(str(v) for v in values) if values else None
