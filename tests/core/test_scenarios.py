"""System tests of the three engines in the in-memory network (tests/core/netsim.py)."""

from __future__ import annotations

from mip4.core.actions import AtHome, GratuitousArp, InstallBinding, ProxyArp, RemoveBinding
from mip4.core.mobile_node import MnState
from mip4.wire.messages import RegistrationReply, RegistrationRequest

from .netsim import HA_ADDR, MN_COLOCATED, MN_HOME, World


def test_colocated_registration_and_return_home() -> None:
    w = World()
    w.move("C")
    assert w.mn.registered and w.mn.care_of_address == MN_COLOCATED
    (b,) = w.bindings()
    assert b.care_of_address == MN_COLOCATED and b.home_address == MN_HOME
    assert w.net.actions_of("ha", ProxyArp)[-1].enable
    assert w.net.actions_of("ha", InstallBinding)[-1].care_of_address == MN_COLOCATED
    w.advance(5)
    w.move("home")
    assert w.mn.state is MnState.AT_HOME
    assert w.bindings() == []
    assert w.net.actions_of("mn", AtHome)
    assert w.net.actions_of("mn", GratuitousArp)[-1].address == MN_HOME
    assert w.net.actions_of("ha", RemoveBinding)
    assert not w.net.actions_of("ha", ProxyArp)[-1].enable
    replies = w.net.sent("ha", RegistrationReply)
    assert all(p.receiver == "mn" and not p.dropped for p in replies)


def test_registration_at_home_deregisters() -> None:
    w = World()
    w.move("home")
    (p,) = w.net.sent("mn", RegistrationRequest)
    req = p.message
    assert isinstance(req, RegistrationRequest)
    assert req.lifetime == 0 and req.care_of_address == MN_HOME and p.receiver == "ha"
    assert w.mn.state is MnState.AT_HOME
    assert w.mn.home_agent == HA_ADDR
