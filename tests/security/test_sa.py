"""Security associations and their store."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from mip4.security.sa import (
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
    SecurityAssociationStore,
    lookup_for,
)


@pytest.mark.parametrize("spi", [0, 1, 2, 3, 100, 255])
def test_reserved_spi_rejected(spi: int) -> None:
    with pytest.raises(ValueError, match=r"SPI \d+ is reserved.*RFC 5944"):
        SecurityAssociation(spi, b"k" * 16)


@pytest.mark.parametrize("spi", [-1, 2**32, 2**40])
def test_spi_out_of_range(spi: int) -> None:
    with pytest.raises(ValueError, match="32 bits"):
        SecurityAssociation(spi, b"k" * 16)


@pytest.mark.parametrize("spi", [256, 257, 0x12345678, 2**32 - 1])
def test_valid_spi(spi: int) -> None:
    sa = SecurityAssociation(spi, b"k" * 16)
    assert sa.spi == spi
    assert sa.algorithm is Algorithm.HMAC_MD5
    assert sa.replay is ReplayMethod.TIMESTAMPS
    assert sa.replay_tolerance == 7.0


def test_empty_key_rejected() -> None:
    with pytest.raises(ValueError, match="key must not be empty"):
        SecurityAssociation(256, b"")


def test_bad_fields_rejected() -> None:
    with pytest.raises(ValueError, match="key must be bytes"):
        SecurityAssociation(256, "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown authentication algorithm"):
        SecurityAssociation(256, b"k", algorithm=9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="replay_tolerance"):
        SecurityAssociation(256, b"k", replay_tolerance=-1)
    with pytest.raises(ValueError, match="replay_tolerance"):
        SecurityAssociation(256, b"k", replay_tolerance=float("nan"))
    with pytest.raises(ValueError, match="replay must be"):
        SecurityAssociation(256, b"k", replay="timestamps")  # type: ignore[arg-type]


def test_algorithm_int_coerced_and_key_hidden() -> None:
    sa = SecurityAssociation(300, bytearray(b"secretkey"), algorithm=2)  # type: ignore[arg-type]
    assert sa.algorithm is Algorithm.KEYED_MD5
    assert isinstance(sa.key, bytes)
    assert "secretkey" not in repr(sa)
    assert "9 bytes" in repr(sa)


def test_store() -> None:
    store = SecurityAssociations()
    assert isinstance(store, SecurityAssociationStore)
    a, b = IPv4Address("10.0.0.5"), IPv4Address("10.0.0.6")
    sa1 = SecurityAssociation(256, b"one")
    sa2 = SecurityAssociation(257, b"two")
    store.add(a, sa1)
    store.add(a, sa2)
    store.add(b, sa1)
    assert len(store) == 3
    assert store.get(a, 256) is sa1
    assert store.get(a, 999) is None
    assert store.get(IPv4Address("10.0.0.9"), 256) is None
    with pytest.raises(ValueError, match="already has"):
        store.add(a, SecurityAssociation(256, b"other"))
    store.replace(a, SecurityAssociation(256, b"rekeyed"))
    assert store.get(a, 256) == SecurityAssociation(256, b"rekeyed")
    assert sorted(sa.spi for sa in store.for_peer(a)) == [256, 257]
    assert sorted((str(p), sa.spi) for p, sa in store) == [
        ("10.0.0.5", 256),
        ("10.0.0.5", 257),
        ("10.0.0.6", 256),
    ]
    lookup = store.lookup(b)
    assert lookup(256) is sa1 and lookup(257) is None
    assert lookup_for(store, a)(257) is sa2
    assert store.remove(a, 257) is sa2
    assert store.remove(a, 257) is None
    assert len(store) == 2
    with pytest.raises(TypeError):
        store.add(a, "not an sa")  # type: ignore[arg-type]


def test_authenticator_method_and_pickling() -> None:
    import copy
    import hashlib
    import hmac
    import pickle

    data = b"registration bytes"
    sa = SecurityAssociation(256, b"key")
    assert sa.authenticator(data) == hmac.new(b"key", data, "md5").digest()
    assert sa.authenticator(data) == sa.authenticator(data)  # cached state is not consumed
    old = SecurityAssociation(256, b"key", algorithm=Algorithm.KEYED_MD5)
    assert old.authenticator(data) == hashlib.md5(b"key" + data + b"key").digest()
    for clone in (pickle.loads(pickle.dumps(sa)), copy.deepcopy(sa), copy.copy(sa)):
        assert clone == sa and clone.authenticator(data) == sa.authenticator(data)
    assert pickle.loads(pickle.dumps(old)).authenticator(data) == old.authenticator(data)


def test_rfc2002_flag_survives_pickling() -> None:
    import pickle

    sa = SecurityAssociation(256, b"key", spi_covered=False)
    clone = pickle.loads(pickle.dumps(sa))
    assert clone == sa and clone.spi_covered is False
    assert SecurityAssociation(256, b"key") != sa
