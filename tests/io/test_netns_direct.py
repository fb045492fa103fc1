"""Issue 13: routes and neighbour entries added or replaced through the direct netlink
socket (:class:`mip4.io.netns.RtnlSocket`) are the kernel objects pyroute2 makes for the
same arguments (``ip -d`` is the oracle), with no hop to pyroute2's thread, and errors
carry the errno as pyroute2's do."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from functools import partial

import pytest

from mip4.io.netns import Netns, netns_exec
from mip4.io.nlthread import NetlinkThread
from mip4.io.rtnl import NetlinkRequestError, RtnlSocket

pytestmark = pytest.mark.lab

MakeNetns = Callable[[str], Netns]


def _ip(ns: Netns, *args: str) -> str:
    return netns_exec(ns.name, ["ip", *args]).stdout


def _setup(make_netns: MakeNetns) -> tuple[Netns, int]:
    ns = make_netns("a")
    ns.add_veth("v0", "v1")
    ns.set_up("v0")
    ns.set_up("v1")
    ns.add_address("v0", "10.9.0.1/24")
    return ns, ns.index("v0")


def _no_thread(ipr: NetlinkThread, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError(f"pyroute2 asked for {args} {kwargs}")

    monkeypatch.setattr(ipr, "_run", refuse)


def test_routes_are_what_pyroute2_makes(
    make_netns: MakeNetns, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, idx = _setup(make_netns)
    ipr = ns.ipr
    shapes: list[dict[str, object]] = [
        {"dst": "10.1.0.1", "dst_len": 32, "oif": idx},
        {"dst": "10.1.0.1", "dst_len": 32, "oif": idx, "table": 100},
        {"dst": "10.1.0.1", "dst_len": 32, "oif": idx, "table": 1000},
        {"dst": "10.1.0.1", "dst_len": 32, "oif": idx, "gateway": "10.9.0.5", "flags": 4},
        {"dst": "10.1.0.1", "dst_len": 32, "oif": idx, "prefsrc": "10.9.0.1"},
        {"dst": "10.1.8.0", "dst_len": 24, "gateway": "10.9.0.7"},
        {"dst": "0.0.0.0", "dst_len": 0, "gateway": "10.9.0.5", "oif": idx, "proto": 4},
        {"dst": "0.0.0.0", "dst_len": 0, "gateway": "10.9.0.5", "table": 77},
    ]
    for spec in shapes:
        assert RtnlSocket.takes("route", "replace", spec)
        table = str(spec.get("table", 254))
        ipr._call("route", "replace", **spec)  # pyroute2
        theirs = _ip(ns, "-d", "route", "show", "table", table)
        _ip(ns, "route", "flush", "table", table, "proto", "static")
        with monkeypatch.context() as m:
            _no_thread(ipr, m)
            ipr.route("replace", **spec)
        ours = _ip(ns, "-d", "route", "show", "table", table)
        _ip(ns, "route", "flush", "table", table, "proto", "static")
        assert ours == theirs and "proto static" in ours, spec


def test_neighbours_are_what_pyroute2_makes(
    make_netns: MakeNetns, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, idx = _setup(make_netns)
    ipr = ns.ipr
    shapes: list[tuple[dict[str, object], tuple[str, ...]]] = [
        ({"dst": "10.9.0.7", "ifindex": idx, "lladdr": "02:00:00:00:00:07", "state": 0x80}, ()),
        ({"dst": "10.9.0.8", "ifindex": idx, "flags": 8}, ("proxy",)),
        ({"dst": "10.9.0.9", "ifindex": idx, "lladdr": "02:00:00:00:00:09"}, ()),
    ]
    for spec, extra in shapes:
        assert RtnlSocket.takes("neigh", "replace", spec)
        ipr._call("neigh", "replace", **spec)
        theirs = _ip(ns, "-d", "neigh", "show", *extra, "to", str(spec["dst"]))
        _ip(ns, "neigh", "del", *extra, str(spec["dst"]), "dev", "v0")
        with monkeypatch.context() as m:
            _no_thread(ipr, m)
            ipr.neigh("replace", **spec)
        ours = _ip(ns, "-d", "neigh", "show", *extra, "to", str(spec["dst"]))
        _ip(ns, "neigh", "del", *extra, str(spec["dst"]), "dev", "v0")
        assert ours == theirs and ours.strip(), spec


def test_errors_carry_the_errno(make_netns: MakeNetns) -> None:
    ns, idx = _setup(make_netns)
    ipr = ns.ipr
    ipr.route("add", dst="10.1.0.1", dst_len=32, oif=idx)
    with pytest.raises(NetlinkRequestError) as e:
        ipr.route("add", dst="10.1.0.1", dst_len=32, oif=idx)
    assert e.value.code == errno.EEXIST
    with pytest.raises(Exception) as theirs:  # pyroute2's NetlinkError, the same code
        ipr._call("route", "add", dst="10.1.0.1", dst_len=32, oif=idx)
    assert getattr(theirs.value, "code", None) == errno.EEXIST
    with pytest.raises(NetlinkRequestError) as e:
        ipr.route("replace", dst="10.1.0.2", dst_len=32, oif=idx + 1000)
    assert e.value.code == errno.ENODEV
    # a request after an error is answered as usual
    ipr.neigh("replace", dst="10.9.0.8", ifindex=idx, flags=8)
    assert "10.9.0.8" in _ip(ns, "neigh", "show", "proxy")


def _outcome(call: Callable[[], object], ns: Netns, *show: str) -> tuple[object, ...]:
    try:
        call()
    except Exception as e:
        return ("error", getattr(e, "code", None), _ip(ns, *show))
    return ("done", _ip(ns, *show))


def test_deletions_do_what_pyroute2_does(
    make_netns: MakeNetns, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, idx = _setup(make_netns)
    ipr = ns.ipr
    host = {"dst": "10.1.0.1", "dst_len": 32, "oif": idx}
    onlink = {"dst": "10.9.0.0", "dst_len": 24}
    cases: list[tuple[dict[str, object] | None, dict[str, object], str]] = [
        (host, {**host, "scope": 255, "table": 254}, "254"),
        (host, {"dst": "10.1.0.1", "dst_len": 32, "scope": 255, "table": 254}, "254"),
        (host, {**host, "scope": 255, "table": 254, "gateway": "10.9.0.9"}, "254"),
        (host, {"dst": "10.1.0.1", "dst_len": 32, "table": 254}, "254"),  # scope 0 matches
        ({**host, "table": 1000}, {**host, "scope": 255, "table": 1000}, "1000"),
        (None, {**onlink, "scope": 255, "table": 254, "oif": idx}, "254"),  # the kernel's
        (None, {**onlink, "table": 254, "oif": idx}, "254"),  # scope 0: not a link route
        (None, {"dst": "10.1.0.2", "dst_len": 32, "scope": 255, "table": 254}, "254"),
    ]
    for made, spec, table in cases:
        assert RtnlSocket.takes("route", "del", spec)
        results = []
        for direct in (False, True):
            if made is not None:
                ipr._call("route", "replace", **made)
            show: tuple[str, ...] = ("route", "show", "table", table)
            with monkeypatch.context() as m:
                if direct:
                    _no_thread(ipr, m)
                    results.append(_outcome(partial(ipr.route, "del", **spec), ns, *show))
                else:
                    results.append(_outcome(partial(ipr._call, "route", "del", **spec), ns, *show))
            # put things back as they were before the case
            _ip(ns, "route", "flush", "table", table, "proto", "static")
            _ip(ns, "addr", "flush", "dev", "v0")
            ns.add_address("v0", "10.9.0.1/24")
        assert results[0] == results[1], (spec, results)
    neighbours: list[tuple[dict[str, object] | None, dict[str, object], tuple[str, ...]]] = [
        (
            {"dst": "10.9.0.7", "ifindex": idx, "lladdr": "02:00:00:00:00:07"},
            {"dst": "10.9.0.7", "ifindex": idx},
            (),
        ),
        (
            {"dst": "10.9.0.8", "ifindex": idx, "flags": 8},
            {"dst": "10.9.0.8", "ifindex": idx, "flags": 8},
            ("proxy",),
        ),
        (None, {"dst": "10.9.0.9", "ifindex": idx, "flags": 8}, ("proxy",)),
    ]
    for made_n, spec, extra in neighbours:
        assert RtnlSocket.takes("neigh", "del", spec)
        results = []
        for direct in (False, True):
            if made_n is not None:
                ipr._call("neigh", "replace", **made_n)
            show = ("neigh", "show", *extra, "dev", "v0")
            with monkeypatch.context() as m:
                if direct:
                    _no_thread(ipr, m)
                    results.append(_outcome(partial(ipr.neigh, "del", **spec), ns, *show))
                else:
                    results.append(_outcome(partial(ipr._call, "neigh", "del", **spec), ns, *show))
        assert results[0] == results[1], (spec, results)


def test_other_requests_still_go_to_pyroute2() -> None:
    assert not RtnlSocket.takes("route", "replace", {"dst": "10.1.0.0/24"})
    assert not RtnlSocket.takes("route", "replace", {"dst": "0.0.0.0", "metrics": {"mtu": 1400}})
    assert not RtnlSocket.takes("neigh", "replace", {"dst": "10.1.0.1", "NDA_FLAGS_EXT": 1})
    assert not RtnlSocket.takes("neigh", "dump", {})
    assert not RtnlSocket.takes("rule", "add", {"dst": "10.1.0.1"})


def test_direct_requests_cost_less_cpu(make_netns: MakeNetns) -> None:
    """Prints the CPU per request both ways (a benchmark figure, not a pass mark beyond
    'less')."""
    ns, idx = _setup(make_netns)
    ipr = ns.ipr
    n = 200

    def cpu(call: Callable[[int], object]) -> float:
        t = time.process_time()
        for i in range(n):
            call(i)
        return (time.process_time() - t) / n * 1e6

    theirs = cpu(lambda i: ipr._call("route", "replace", dst=f"10.2.{i}.1", dst_len=32, oif=idx))
    ours = cpu(lambda i: ipr.route("replace", dst=f"10.3.{i}.1", dst_len=32, oif=idx))
    print(f"\nroute replace: pyroute2 {theirs:.0f} us CPU, direct {ours:.0f} us CPU")
    assert ours < theirs
