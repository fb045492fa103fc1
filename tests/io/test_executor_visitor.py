"""The Linux executor's visitor path (foreign agent) against the counting stand-in for
netlink of ``test_executor``: a renewal that changes nothing does no kernel work and makes
no copy of the action; every field but the expiry, when it changes, is installed (issue 13,
like the home agent's "renewals do no kernel work")."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from typing import Any

import pytest

from mip4.core.actions import Encapsulation, InstallVisitor, RemoveVisitor

from .test_executor import _executor, _hoa

HA = IPv4Address("10.0.0.1")
COA = IPv4Address("10.9.0.1")
VIS = "vis0"
MAC = b"\x02\x00\x00\x00\x00\x10"


def _visitor(i: int, expires: float, **kw: Any) -> InstallVisitor:
    fields: dict[str, Any] = {
        "home_address": _hoa(i),
        "interface": VIS,
        "link_address": MAC,
        "home_agent": HA,
        "care_of_address": COA,
        "reverse_tunnel": True,
        "expires": expires,
    }
    fields.update(kw)
    return InstallVisitor(**fields)


def test_a_visitor_renewal_that_changes_nothing_does_no_kernel_work_and_no_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ex, nl = _executor()
    nl.links[VIS] = 3
    first = _visitor(0, 100.0)
    ex.execute(first)
    assert nl.calls["neigh replace"] + nl.calls["neigh add"] == 1
    # the visitor's route, the reverse table's default route (once), the rule
    assert nl.calls["route replace"] == 2 and nl.calls["rule add"] == 1
    made = nl.total()
    renewals = [_visitor(0, 100.0 + n) for n in range(1, 1001)]
    # every InstallVisitor made from here on is a copy made by the executor
    built = 0
    init = InstallVisitor.__init__

    def counting_init(self: InstallVisitor, *args: Any, **kw: Any) -> None:
        nonlocal built
        built += 1
        init(self, *args, **kw)

    monkeypatch.setattr(InstallVisitor, "__init__", counting_init)
    for renewal in renewals:
        ex.execute(renewal)
    monkeypatch.undo()
    assert built == 0  # no copy of the action per renewal
    assert nl.total() == made  # not one netlink request for 1,000 renewals
    assert ex.stats["visitor_unchanged"] == 1000
    assert ex.stats["visitor_installed"] == 1
    assert ex._visitors[int(_hoa(0))][0] is first  # nothing stored either
    assert ex.forwarder is not None
    assert int(_hoa(0)) in ex.forwarder.table.reverse
    # the removal still undoes what the first installation made
    ex.execute(RemoveVisitor(_hoa(0), VIS))
    assert int(_hoa(0)) not in ex.forwarder.table.reverse
    assert nl.calls["route del"] == 1 and nl.calls["rule del"] == 1


#: a changed value for every field of InstallVisitor but the home address (the key) and
#: the expiry (information only): a field added to the action without a value here fails
CHANGES: dict[str, object] = {
    "interface": "vis1",
    "link_address": b"\x02\x00\x00\x00\x00\x11",
    "home_agent": IPv4Address("10.0.0.2"),
    "care_of_address": IPv4Address("10.9.0.2"),
    "reverse_tunnel": False,
    "encapsulation": Encapsulation.GRE,
    "encapsulating_delivery": True,
}


@pytest.mark.parametrize(
    "name",
    [
        f.name
        for f in dataclasses.fields(InstallVisitor)
        if f.name not in ("home_address", "expires")
    ],
)
def test_a_visitor_renewal_that_changes_a_field_is_installed(name: str) -> None:
    ex, nl = _executor()
    nl.links.update({VIS: 3, "vis1": 4})
    ex.execute(_visitor(0, 100.0))
    before = nl.calls["route replace"]
    ex.execute(_visitor(0, 200.0, **{name: CHANGES[name]}))
    assert ex.stats["visitor_installed"] == 2
    assert ex.stats["visitor_unchanged"] == 0
    assert nl.calls["route replace"] == before + 1
    assert ex._visitors[int(_hoa(0))][0] == _visitor(0, 200.0, **{name: CHANGES[name]})


def test_the_fast_path_delivery_asks_the_interface_address_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the bpf fast path each new visitor's delivery carries the interface's own
    hardware address: asked of netlink once per interface, not once per visitor; the
    deliveries are those the per-visitor question gave."""
    from types import SimpleNamespace
    from typing import cast

    from mip4.io.bpf.agent import FastPath

    ex, nl = _executor()
    nl.links[VIS] = 3
    own = b"\x02\x00\x00\x00\x00\x01"
    asked: list[str] = []

    def link_address(ifname: str) -> bytes:
        asked.append(ifname)
        return own

    monkeypatch.setattr(ex.ns, "link_address", link_address)
    deliveries: list[object] = []

    def visitor(*args: object, delivery: object, reverse: object) -> Any:
        deliveries.append(delivery)
        return lambda: None

    ex.fast_path = cast(FastPath, SimpleNamespace(visitor=visitor))
    for i in range(100):
        ex.execute(_visitor(i, 100.0))
    assert asked == [VIS]  # once, for 100 first registrations
    from mip4.io.bpf.plane import Visitor

    assert deliveries == [Visitor(3, MAC, own)] * 100
