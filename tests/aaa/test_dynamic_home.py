"""A mobile node given neither its home address, nor its home agent, nor an MN-HA key
(issue 11, acceptance 4: what ``mip4 lab demo --aaa`` runs), on the virtual clock: only its
NAI, its MN-AAA secret and -- to know its home link before its first registration -- the
home network (``home_subnet``). Home Agent 0.0.0.0 (RFC 4433: the home AAA server picks the
home agent), home address 0.0.0.0 (RFC 2794: assigned), keys from AAA (RFC 3957).

* at home at start it knows it is home and sends nothing it cannot sign;
* it learns its home address and its home agent from the accepted reply and keeps both
  across moves (foreign agents, co-located), and its home network from the address;
* back home it deregisters with the key it was given, then releases address and agent;
* every Mobile IP request it sends is authenticated (MN-HA or MN-AAA).
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network
from types import SimpleNamespace
from typing import cast

import pytest

from mip4.core.actions import Action, Log
from mip4.core.events import LinkUp
from mip4.core.mn_state import MnState
from mip4.core.mobile_node import MobileNode, MobileNodeConfig
from mip4.daemon.driving import DaemonExecutor
from mip4.daemon.run import follow_home_address
from mip4.io.driver import Executor
from mip4.io.linkmon import LinkMonitor, _Link
from mip4.io.runtime import NodeIO
from mip4.wire.ext_auth import GeneralizedAuthExtension
from mip4.wire.ext_keys import AAAKeyGenNonce, MNHAKeyGenNonceReply
from mip4.wire.ext_mobility import DynamicHAExtension, DynamicHASubtype
from mip4.wire.extensions import MobileHomeAuthExtension
from mip4.wire.messages import RegistrationReply, RegistrationRequest
from tests.core.netsim import HA_ADDR, HOME_NET, MN_COLOCATED, UNIX0

from .test_ha_aaa import GIVEN, NAI, SECRET
from .test_keys_engine import KEY_SPI, KeysWorld

A = IPv4Address
ZERO = A(0)


class DynamicWorld(KeysWorld):
    """KeysWorld with the node of the AAA demo: NAI, MN-AAA secret, Home Agent 0.0.0.0,
    no home address, no key; ``home_subnet`` as given."""

    def __init__(self, home_subnet: IPv4Network | None = HOME_NET) -> None:
        super().__init__(key_lifetime=None)
        self.mn_config = MobileNodeConfig(
            home_address=ZERO,
            home_agent=ZERO,
            nai=NAI,
            mn_aaa_secret=SECRET,
            home_subnet=home_subnet,
        )
        self.net.nodes["mn"].engine = MobileNode(self.mn_config, None, UNIX0, rng=random.Random(7))

    def go(self, where: str) -> None:
        """Move the node; its interface keeps the address AAA gives it (as in the lab,
        where the home link's address is the node's home address)."""
        net = self.net
        if net.nodes["mn"].interfaces["mn0"].link is not None:
            net.link_down("mn", "mn0")
        if where == "home":
            net.link_up("mn", "mn0", "home", GIVEN, 24)
        elif where == "C":
            net.link_up("mn", "mn0", "C", MN_COLOCATED, 24, on_link=self.mn.home_address)
        else:
            net.link_up("mn", "mn0", where, None, None, on_link=self.mn.home_address)

    def requests(self) -> list[RegistrationRequest]:
        out = []
        for p in self.net.sent("mn", RegistrationRequest):
            assert isinstance(p.message, RegistrationRequest)
            out.append(p.message)
        return out


def authenticated(req: RegistrationRequest) -> bool:
    return any(
        isinstance(e, MobileHomeAuthExtension | GeneralizedAuthExtension) for e in req.extensions
    )


def test_node_without_home_address_agent_or_key_roams_and_comes_home() -> None:
    w = DynamicWorld()
    assert w.mn.client.home_network == HOME_NET  # from home_subnet, before anything
    # at home at start: home, and nothing sent (no key to sign a deregistration with)
    w.go("home")
    w.run_serving(w.now + 5)
    assert w.mn.at_home and w.mn.state is MnState.AT_HOME
    assert w.requests() == []
    assert w.net.logs("mn", "mn.deregistration_skipped")
    assert w.mn.counters.snapshot()["events"]["deregistrations_skipped"] == 1
    # at FA1: Home Agent 0.0.0.0, home address 0.0.0.0; AAA names the home agent
    w.go("A")
    w.run_serving(w.now + 5)
    assert w.mn.registered and not w.mn.at_home
    first = w.requests()[0]
    assert first.home_agent == ZERO and first.home_address == ZERO
    assert w.mn.home_address == GIVEN and w.mn.home_agent == HA_ADDR
    assert w.mn.client.home_network == IPv4Network((GIVEN, 24), strict=False)
    # kept across moves: FA2, then co-located on C (straight to the home agent)
    w.go("B")
    w.run_serving(w.now + 5)
    assert w.mn.registered and (w.mn.home_address, w.mn.home_agent) == (GIVEN, HA_ADDR)
    w.go("C")
    w.run_serving(w.now + 5)
    assert w.mn.registered and w.mn.care_of_address == MN_COLOCATED
    colocated = w.requests()[-1]
    assert (colocated.home_agent, colocated.home_address) == (HA_ADDR, GIVEN)
    assert [p.action.dst for p in w.net.sent("mn", RegistrationRequest)][-1] == HA_ADDR
    assert (w.mn.home_address, w.mn.home_agent) == (GIVEN, HA_ADDR)
    # home again: a deregistration signed with the key AAA gave, then both released
    w.go("home")
    w.run_serving(w.now + 5)
    assert w.mn.at_home and w.mn.state is MnState.AT_HOME
    dereg = w.requests()[-1]
    assert dereg.lifetime == 0 and dereg.home_address == GIVEN
    assert any(
        isinstance(e, MobileHomeAuthExtension) and e.spi == KEY_SPI for e in dereg.extensions
    )
    assert w.bindings() == []
    assert w.mn.home_address == ZERO and w.mn.home_agent == ZERO
    assert w.net.logs("mn", "mn.home_agent_released")
    # every request the node sent was authenticated (MN-HA or MN-AAA)
    assert all(authenticated(r) for r in w.requests()), w.requests()
    # and it is still home (home_subnet) after the release
    assert w.mn.client.home_network == HOME_NET


def test_without_home_subnet_the_home_network_comes_from_the_assigned_address() -> None:
    w = DynamicWorld(home_subnet=None)
    assert w.mn.client.home_network is None  # nothing known: no home link to recognise
    w.go("A")
    w.run_serving(w.now + 5)
    assert w.mn.registered and w.mn.home_address == GIVEN
    assert w.mn.client.home_network == IPv4Network((GIVEN, 24), strict=False)
    w.go("home")  # its assigned address on the link: home
    w.run_serving(w.now + 5)
    assert w.mn.at_home and w.mn.state is MnState.AT_HOME
    assert w.bindings() == []


def test_key_less_node_at_home_with_a_configured_home_agent_sends_nothing() -> None:
    """The demo's previous node (home agent configured, no key): at home at start it no
    longer sends the unauthenticated deregistration the home agent denied with 131."""
    w = KeysWorld()
    w.net.link_up("mn", "mn0", "home", GIVEN, 24)
    w.run_serving(w.now + 5)
    assert w.mn.at_home and w.mn.state is MnState.AT_HOME
    assert w.net.sent("mn", RegistrationRequest) == []
    assert not w.net.logs("mn", "mn.gave_up")


def test_home_subnet_must_hold_a_configured_home_address() -> None:
    with pytest.raises(ValueError, match="home_subnet"):
        MobileNodeConfig(home_address=A("10.9.0.5"), home_agent=A("10.9.0.1"), home_subnet=HOME_NET)
    cfg = MobileNodeConfig(
        home_address=A("10.0.0.5"), home_agent=HA_ADDR, home_subnet=IPv4Network("10.0.0.0/16")
    )
    assert cfg.home_subnet is not None


def test_daemon_link_monitor_ignores_the_assigned_home_address() -> None:
    """``mip4 mn``: once the home agent assigns the address (``mn.home_address_assigned``),
    the link monitor no longer reports it -- else the home address, kept on the interface,
    reads as a co-located care-of address on every link (RFC 2794 + the daemon's link
    monitor, :func:`mip4.daemon.run.follow_home_address`)."""
    mon = LinkMonitor.__new__(LinkMonitor)  # no netlink socket: only the filtering
    mon.ignore_addresses = frozenset({ZERO})
    io = cast(NodeIO, SimpleNamespace(linkmon=mon))
    done: list[Action] = []
    inner = SimpleNamespace(execute=done.append)
    ex = DaemonExecutor(cast(Executor, inner), home_address_assigned=follow_home_address(io))
    link = _Link("mn0", True, [(GIVEN, 24), (MN_COLOCATED, 24)])
    assert mon._link_up(link) == LinkUp("mn0", GIVEN, 24)  # before: the home address
    ex.execute(Log("mn.home_address_assigned", {"home_address": GIVEN}))
    assert GIVEN in mon.ignore_addresses
    assert mon._link_up(link) == LinkUp("mn0", MN_COLOCATED, 24)  # the care-of address
    ex.execute(Log("mn.home_address_released", {"home_address": GIVEN}))
    assert GIVEN in mon.ignore_addresses  # never a care-of address
    assert follow_home_address(cast(NodeIO, SimpleNamespace(linkmon=None))) is None


HA2 = A("10.0.0.2")


def test_redirect_of_a_node_that_asked_for_a_key_carries_the_nonce() -> None:
    """RFC 4433 + RFC 3957: a 143 to a request that asked for an MN-HA key is signed with
    the key AAA issued for it; the reply carries that key's nonce (43), so the node can
    verify it and follow the redirection (without it: "no SA for SPI", the node stuck)."""
    w = KeysWorld(key_lifetime=None)
    w.net.operate("ha", lambda ha, now: ha.redirect(NAI, HA2, now))
    w.move("A")
    w.run_serving(w.now + 3)
    (redirected,) = [
        p.message
        for p in w.net.sent("ha", RegistrationReply)
        if isinstance(p.message, RegistrationReply) and p.message.code == 143
    ][:1]
    assert isinstance(redirected, RegistrationReply)
    nonce = [e for e in redirected.extensions if isinstance(e, MNHAKeyGenNonceReply)]
    assert nonce and isinstance(nonce[0].body, AAAKeyGenNonce)
    assert nonce[0].body.nonce == w.nonces[0]
    (ext,) = [e for e in redirected.extensions if isinstance(e, DynamicHAExtension)]
    assert ext.subtype == DynamicHASubtype.REDIRECTED_HA and ext.home_agent == HA2
    # the node verified it with the key of the nonce and went to the other home agent
    assert not [log for log in w.net.logs("mn", "mn.discard") if log.fields.get("code") == 143]
    assert w.mn.home_agent == HA2
    assert w.mn.counters.snapshot()["events"]["redirects"] == 1
    later = [r for r in w.requests_to_ha() if r.home_agent == HA2]
    assert later, w.requests_to_ha()


def test_a_link_up_with_no_address_is_never_a_colocated_care_of_address() -> None:
    """A link that comes up with 0.0.0.0 (not configured yet; here: the home link of a node
    whose address AAA assigns) is no care-of address: the node used to register
    co-located with care-of address 0.0.0.0, got 134 and gave up. It now solicits."""
    from tests.aaa.test_colocated_challenge import requests_from_mn
    from tests.aaa.test_keys_engine import KeysWorld

    w = KeysWorld(key_lifetime=None)
    w.move("A")
    w.run_serving(10)
    assert w.mn.registered
    sent = len(requests_from_mn(w))
    w.move("home")  # netsim gives the node its configured home address: 0.0.0.0
    w.run_serving(100)
    assert all(int(r.care_of_address) != 0 for r in requests_from_mn(w)[sent:])
    assert w.mn.state is not MnState.FAILED
