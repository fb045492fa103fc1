"""RFC 3957 key distribution through the engines (issue 11, AAA keys): virtual clock, one
fake AAA server that derives the key exactly as the FreeRADIUS policy does. The mobile node
has its NAI and MN-AAA secret and no MN-HA key; the home agent has nothing for it."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from mip4.aaa.messages import AaaAnswer, AaaResult, Authorization
from mip4.core.actions import Log
from mip4.core.mn_keys import AaaKeys
from mip4.daemon import status
from mip4.security.aaa_keys import derive_key
from mip4.security.mn_aaa import radius_chap_ok
from mip4.wire.codes import ReplyCode
from mip4.wire.ext_keys import (
    AAAKeyGenNonce,
    MNFAKeyGenNonceReply,
    MNFAKeyGenNonceRequest,
    MNHAKeyGenNonceReply,
    MNHAKeyGenNonceRequest,
)
from mip4.wire.extensions import MobileForeignAuthExtension, MobileHomeAuthExtension
from mip4.wire.messages import RegistrationReply, RegistrationRequest

from .test_ha_aaa import GIVEN, NAI, SECRET, HaAaaWorld, replies_to_mn

A = IPv4Address
KEY_SPI = 5000


class KeysWorld(HaAaaWorld):
    """The node has no MN-HA key; the home agent's AAA server derives one per Accept."""

    def __init__(self, *, server_secret: bytes = SECRET, key_lifetime: int | None = 600) -> None:
        super().__init__()
        client = self.mn.client
        client.configured_sa = None
        client.keys = AaaKeys(NAI, SECRET)
        self.server_secret = server_secret
        self.key_lifetime = key_lifetime
        self.nonces: list[bytes] = []
        self.keys: list[bytes] = []

    def serve_aaa(self) -> None:
        for node in self.served:
            reqs = self.net.actions_of(node, AaaRequest)
            for req in reqs[self.served[node] :]:
                self.served[node] += 1
                self.asked[node].append(req)
                ok = radius_chap_ok(SECRET, req.chap_password, req.chap_challenge)
                auth = None
                if ok and node == "ha":
                    nonce = bytes([len(self.nonces) + 1]) * 16
                    key = derive_key(self.server_secret, nonce, NAI.encode())
                    self.nonces.append(nonce)
                    self.keys.append(key)
                    auth = Authorization(
                        home_address=GIVEN,
                        mn_ha_spi=KEY_SPI,
                        mn_ha_key=key,
                        key_nonce=nonce,
                        session_timeout=self.key_lifetime,
                    )
                elif ok:
                    auth = Authorization(home_agent=self.ha_config.address)
                result = AaaResult.ACCEPT if ok else AaaResult.REJECT
                self.net.inject(node, AaaAnswer(req.request_id, result, auth, server="r1"))

    def requests_to_ha(self) -> list[RegistrationRequest]:
        out = []
        for p in self.net.sent("fa1", RegistrationRequest) + self.net.sent(
            "fa2", RegistrationRequest
        ):
            msg = p.message
            assert isinstance(msg, RegistrationRequest)
            out.append(msg)
        return out

    def mn_logs(self) -> list[Log]:
        return self.net.actions_of("mn", Log)


from mip4.aaa.messages import AaaRequest  # noqa: E402


def test_node_without_mn_ha_key_registers_with_the_key_aaa_derived() -> None:
    w = KeysWorld(key_lifetime=None)
    w.move("A")
    w.run_serving(5)
    assert w.mn.registered and w.mn.home_address == GIVEN
    first = w.requests_to_ha()[0]
    assert any(isinstance(e, MNHAKeyGenNonceRequest) for e in first.extensions)
    assert not any(isinstance(e, MobileHomeAuthExtension) for e in first.extensions)
    replies = [p.message for p in w.net.sent("ha", RegistrationReply)]
    assert isinstance(replies[0], RegistrationReply) and replies[0].code == 0
    (ext,) = [e for e in replies[0].extensions if isinstance(e, MNHAKeyGenNonceReply)]
    assert isinstance(ext.body, AAAKeyGenNonce)
    assert ext.body.nonce == w.nonces[0] and ext.body.node_spi == KEY_SPI
    assert ext.lifetime == 0xFFFFFFFF  # no Session-Timeout: as long as the binding
    # the node derived the server's key and uses it from now on
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == w.keys[0] and keys.key.spi == KEY_SPI
    assert w.mn.client.sa.key == w.keys[0]
    assert w.mn.counters.snapshot()["events"]["aaa_keys"] == 1
    assert w.ha.counters.snapshot()["events"]["aaa_keys_issued"] == 1
    # re-registrations are signed with it; the home agent does not ask AAA again
    w.run_serving(3000)
    later = w.requests_to_ha()[1:]
    assert later and all(
        any(isinstance(e, MobileHomeAuthExtension) and e.spi == KEY_SPI for e in r.extensions)
        and not any(isinstance(e, MNHAKeyGenNonceRequest) for e in r.extensions)
        for r in later
    )
    assert len(w.asked["ha"]) == 1 and w.mn.registered
    # key material never in the status output nor in a log line of any engine
    for st in (status.mobile_node(w.mn, w.now), status.home_agent(w.ha, w.now)):
        text = repr(st) + str(st)
        assert w.keys[0].hex() not in text and repr(w.keys[0]) not in text
        assert repr(w.nonces[0]) not in text
    for node in ("mn", "ha", "fa1"):
        for log in w.net.actions_of(node, Log):
            text = repr(log)
            assert w.keys[0].hex() not in text and repr(w.keys[0]) not in text
            assert SECRET.decode() not in text


def test_key_expires_and_the_node_asks_for_a_new_one() -> None:
    w = KeysWorld(key_lifetime=600)
    w.move("A")
    w.run_serving(1500)  # renewals after 600 s need a new key
    assert len(w.asked["ha"]) >= 2 and len(set(w.nonces)) == len(w.nonces)
    assert w.mn.registered
    keys = w.mn.client.keys
    assert keys is not None and keys.key is not None
    assert keys.key.association.key == w.keys[-1] != w.keys[0]
    (sa,) = w.ha.security_associations.for_peer(NAI)
    assert sa.key == w.keys[-1]


def test_mismatching_derived_key_is_detected_and_reported() -> None:
    w = KeysWorld(server_secret=b"not-the-nodes-aaa-key")
    w.move("A")
    w.run_serving(20)
    assert not w.mn.registered
    assert w.mn.counters.snapshot()["events"]["aaa_key_mismatch"] >= 1
    assert w.net.logs("mn", "mn.key_mismatch")
    keys = w.mn.client.keys
    assert keys is not None and keys.key is None


def test_a_reply_without_nonce_leaves_the_node_without_key() -> None:
    k = AaaKeys(NAI, SECRET)
    reply = RegistrationReply(0, 10, GIVEN, A("10.0.0.1"), 1)
    assert k.candidate(reply) is None
    ext = MNHAKeyGenNonceReply(1, 0xFFFFFFFF, AAAKeyGenNonce(2, KEY_SPI, 3, 2, b"n" * 16))
    offer = k.candidate(replace(reply, extensions=(ext,)))
    assert offer is not None and offer.lifetime is None
    k.install(offer, 0.0)
    assert k.current(1e9) is offer.association
    assert SECRET.decode() not in repr(k) and offer.association.key.hex() not in repr(offer)


# ----------------------------------------------------------------------------------------
# RFC 3957 MN-FA keys: the foreign agent learns the key from its Access-Accept
# ----------------------------------------------------------------------------------------

FA_KEY_SPI = 7000


class FaKeysWorld(KeysWorld):
    """As KeysWorld, and the foreign agents' Access-Accepts carry an MN-FA key derived from
    a nonce of their own (what FreeRADIUS's MN_FA_KEY_POLICY does)."""

    def __init__(self, *, fa_server_secret: bytes = SECRET) -> None:
        super().__init__(key_lifetime=None)
        self.fa_server_secret = fa_server_secret
        self.fa_keys: list[bytes] = []

    def serve_aaa(self) -> None:
        for node in ("fa1", "fa2"):
            reqs = self.net.actions_of(node, AaaRequest)
            for req in reqs[self.served[node] :]:
                self.served[node] += 1
                self.asked[node].append(req)
                ok = radius_chap_ok(SECRET, req.chap_password, req.chap_challenge)
                auth = None
                if ok:
                    nonce = bytes([0x80 + len(self.fa_keys)]) * 16
                    key = derive_key(self.fa_server_secret, nonce, NAI.encode())
                    self.fa_keys.append(key)
                    auth = Authorization(
                        home_agent=self.ha_config.address,
                        mn_fa_spi=FA_KEY_SPI,
                        mn_fa_key=key,
                        mn_fa_key_nonce=nonce,
                    )
                result = AaaResult.ACCEPT if ok else AaaResult.REJECT
                self.net.inject(node, AaaAnswer(req.request_id, result, auth, server="r1"))
        super().serve_aaa()  # the home agent's (and nothing left of the agents')

    def requests_at(self, fa: str) -> list[RegistrationRequest]:
        out = []
        for p in self.net.packets:
            if p.receiver == fa and isinstance(p.message, RegistrationRequest):
                out.append(p.message)
        return out


def mn_fa_spis(req: RegistrationRequest) -> list[int]:
    return [e.spi for e in req.extensions if isinstance(e, MobileForeignAuthExtension)]


def test_foreign_agent_learns_the_mn_fa_key_from_aaa_and_the_node_derives_it() -> None:
    w = FaKeysWorld()
    w.move("A")
    w.run_serving(10)
    assert w.mn.registered
    first = w.requests_at("fa1")[0]
    assert any(isinstance(e, MNFAKeyGenNonceRequest) for e in first.extensions)
    assert mn_fa_spis(first) == []
    # the reply the node got: the nonce (41) after MN-HA, then MN-FA with the new key
    (reply,) = [
        p.message
        for p in w.net.packets
        if p.sender == "fa1" and p.receiver == "mn" and isinstance(p.message, RegistrationReply)
    ][:1]
    assert isinstance(reply, RegistrationReply) and reply.code == 0
    kinds = [type(e).__name__ for e in reply.extensions]
    assert kinds[-2:] == ["MNFAKeyGenNonceReply", "MobileForeignAuthExtension"]
    (ext,) = [e for e in reply.extensions if isinstance(e, MNFAKeyGenNonceReply)]
    assert isinstance(ext.body, AAAKeyGenNonce) and ext.body.node_spi == FA_KEY_SPI
    # both ends hold the same key
    fa_key = w.mn.client.fa_key
    assert fa_key is not None and fa_key[0] == A("192.168.1.1")
    assert fa_key[1].key == w.fa_keys[0] and fa_key[1].spi == FA_KEY_SPI
    (sa,) = w.fa1.security_associations.for_peer(NAI)
    assert sa.key == w.fa_keys[0]
    assert w.mn.counters.snapshot()["events"]["aaa_fa_keys"] == 1
    # renewals are signed with it (MN-FA, checked by the agent) and ask for no other
    w.run_serving(3000)
    later = w.requests_at("fa1")[1:]
    assert later and all(mn_fa_spis(r) == [FA_KEY_SPI] for r in later)
    assert not any(isinstance(e, MNFAKeyGenNonceRequest) for r in later for e in r.extensions)
    assert w.mn.registered and len(w.fa_keys) == len(w.asked["fa1"])
    # never in a log line
    for node in ("mn", "fa1"):
        for log in w.net.actions_of(node, Log):
            assert w.fa_keys[0].hex() not in repr(log) and repr(w.fa_keys[0]) not in repr(log)


def test_back_at_the_agent_the_node_asks_again_and_the_new_key_replaces_the_old() -> None:
    w = FaKeysWorld()
    w.move("A")
    w.run_serving(10)
    w.move("B")  # the key was for FA1's visitor entry: forgotten by the node
    w.run_serving(20)
    assert w.mn.registered and w.mn.client.fa_key is not None
    assert w.mn.client.fa_key[0] == A("192.168.2.1")
    w.move("A")  # FA1 still has the old visitor and key; the node has none for it
    w.run_serving(30)
    assert w.mn.registered
    back = w.requests_at("fa1")[-1]
    assert any(isinstance(e, MNFAKeyGenNonceRequest) for e in back.extensions)
    (sa,) = w.fa1.security_associations.for_peer(NAI)
    fa_key = w.mn.client.fa_key
    assert fa_key is not None and sa.key == fa_key[1].key == w.fa_keys[-1] != w.fa_keys[0]


def test_the_learnt_key_goes_with_the_visitor() -> None:
    w = FaKeysWorld()
    w.move("A")
    w.run_serving(10)
    assert w.fa1.security_associations.for_peer(NAI)
    w.net.set_up("mn", False)
    w.run_serving(1900)  # the visitor expires
    assert len(w.fa1.visitors) == 0 and w.fa1.security_associations.for_peer(NAI) == []


def test_foreign_agent_restart_the_node_asks_for_a_new_mn_fa_key() -> None:
    w = FaKeysWorld()
    w.move("A")
    w.run_serving(10)
    w.net.reboot("fa1")  # its visitor list and the key from AAA are gone
    w.run_serving(2000)
    assert ReplyCode.FA_MN_FAILED_AUTH in replies_to_mn(w)
    assert w.mn.registered
    assert w.mn.counters.snapshot()["events"]["aaa_fa_key_fallbacks"] == 1
    fa_key = w.mn.client.fa_key
    (sa,) = w.fa1.security_associations.for_peer(NAI)
    assert fa_key is not None and fa_key[1].key == sa.key != w.fa_keys[0]


def test_a_mismatching_mn_fa_key_is_detected_and_not_used() -> None:
    w = FaKeysWorld(fa_server_secret=b"not-the-nodes-aaa-key")
    w.move("A")
    w.run_serving(10)
    assert w.mn.registered  # the home agent accepted; only the FA's key is wrong
    assert w.mn.client.fa_key is None
    assert w.mn.counters.snapshot()["events"]["aaa_fa_key_mismatch"] >= 1
    assert w.net.logs("mn", "mn.fa_key_mismatch")
    # the node keeps asking, the agent (whose only key is one from AAA) keeps answering
    w.run_serving(3000)
    assert w.mn.registered
