"""The home agent's fast path keeps a managed neighbour entry for each tunnel exit's next
hop (:meth:`FastPath.keep_neighbour`). A second binding behind the same care-of address asks
the kernel for no route: the next hop found for the first is kept while an entry made for it
is held (a pyroute2 route lookup costs ~0.3 ms, most of a first registration on the bpf
plane); once the last holder is gone the entry is deleted and the next binding asks again.
No kernel here: the namespace is a recording stand-in."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from mip4.io.bpf.agent import FastPath

COA = IPv4Address("10.2.0.2")
OTHER = IPv4Address("10.3.0.2")


class RecordingIpr:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def route(self, cmd: str, **kw: Any) -> list[dict[str, Any]]:
        self.calls.append(("route", cmd, kw))
        # both exits through ifindex 7, each its own next hop (on-link)
        return [{"RTA_OIF": 7, "RTA_GATEWAY": None, "type": 1}]

    def neigh(self, cmd: str, **kw: Any) -> list[dict[str, Any]]:
        self.calls.append(("neigh", cmd, kw))
        return []


class RecordingNs:
    def __init__(self) -> None:
        self.ipr = RecordingIpr()


def fast_path() -> tuple[FastPath, RecordingIpr]:
    fp = FastPath(plane=None, netns=None, ifindexes=())  # type: ignore[arg-type]
    ns = RecordingNs()
    fp._ns = ns  # type: ignore[assignment]
    return fp, ns.ipr


def lookups(ipr: RecordingIpr) -> int:
    return sum(1 for kind, cmd, _ in ipr.calls if (kind, cmd) == ("route", "get"))


def test_bindings_behind_one_care_of_address_ask_for_one_route() -> None:
    fp, ipr = fast_path()
    for i in range(50):
        fp.keep_neighbour(("binding", IPv4Address(0x0A010000 + i)), COA)
    assert lookups(ipr) == 1
    made = [kw for kind, cmd, kw in ipr.calls if (kind, cmd) == ("neigh", "replace")]
    assert [m["dst"] for m in made] == [str(COA)]
    # another exit: its own lookup and entry
    fp.keep_neighbour(("binding", IPv4Address("10.1.1.1")), OTHER)
    assert lookups(ipr) == 2


def test_the_next_hop_is_asked_again_once_its_entry_is_gone() -> None:
    fp, ipr = fast_path()
    a, b = ("binding", IPv4Address("10.1.0.5")), ("binding", IPv4Address("10.1.0.6"))
    fp.keep_neighbour(a, COA)
    fp.keep_neighbour(b, COA)
    fp._release_neighbours(a)  # b still holds the entry: kept, and the next hop with it
    assert not [c for c in ipr.calls if c[:2] == ("neigh", "del")]
    fp.keep_neighbour(a, COA)
    assert lookups(ipr) == 1
    fp._release_neighbours(a)
    fp._release_neighbours(b)  # the last holder: the entry is deleted
    assert [kw["dst"] for kind, cmd, kw in ipr.calls if (kind, cmd) == ("neigh", "del")] == [
        str(COA)
    ]
    fp.keep_neighbour(a, COA)  # routes may have changed meanwhile: asked again
    assert lookups(ipr) == 2
