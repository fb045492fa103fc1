"""What a lab scenario runs (:class:`Settings`) and the :class:`Backend` protocol its agents
run behind, with the normalised status every backend reports (:class:`MnStatus`,
:class:`HaStatus`): the in-process engines (:mod:`mip4.lab.inprocess`) and the daemons
(:mod:`mip4.lab.daemons`) answer the same way, so :class:`~mip4.lab.scenario.Scenario` does
not care which runs.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Protocol

from mip4.core.actions import Encapsulation

ENCAPSULATIONS = {
    "ipip": Encapsulation.IPIP,
    "minimal": Encapsulation.MINIMAL,
    "gre": Encapsulation.GRE,
}
#: the agents, in start order
AGENTS = ("ha", "fa1", "fa2", "mn")
#: issue 14: the mobile node's handover modes (``[handover] mode``)
HANDOVER_MODES = ("base", "low-latency", "fast")


class ScenarioError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    """What a scenario runs."""

    lab_id: str
    #: RFC 3024 reverse tunnelling (the MN's T bit); with it the router filters ingress
    reverse_tunnel: bool = True
    #: ``ipip``, ``minimal`` or ``gre``: the encapsulation the mobile node asks for
    encapsulation: str = "ipip"
    #: registration lifetime the mobile node asks for, seconds
    lifetime: int = 300
    #: agent advertisement interval, seconds
    advertisement_interval: float = 1.0
    #: how long a registration may take after a move, seconds
    register_within: float = 15.0
    #: RFC 2827 ingress filtering on the router (default: on when reverse tunnelling)
    ingress_filter: bool | None = None
    #: the mobile node's B bit: home-link broadcasts are forwarded to it (RFC 5944 §4.3)
    broadcast: bool = False
    #: issue 10: the lab's FreeRADIUS decides; the mobile node has an NAI and no home
    #: address (the daemons backend only; see :mod:`mip4.lab.configs`)
    aaa: bool = False
    #: issue 14: the mobile node's handover mode (``base``, ``low-latency``, ``fast``):
    #: the agents get ``[handoff]``, the node ``[handover]``, and every move to a
    #: foreign agent's network is announced in advance (:meth:`Lab.move` ``anticipate``);
    #: ``None``: neither (base RFC 5944, nothing announced)
    handover: str | None = None
    #: issue 14: seconds between the announcement and the link switch
    anticipation_lead: float = 0.1

    def __post_init__(self) -> None:
        if self.encapsulation not in ENCAPSULATIONS:
            raise ValueError(
                f"encapsulation {self.encapsulation!r}: one of {', '.join(ENCAPSULATIONS)}"
            )
        if self.handover is not None and self.handover not in HANDOVER_MODES:
            raise ValueError(f"handover {self.handover!r}: one of {', '.join(HANDOVER_MODES)}")

    @property
    def filtered(self) -> bool:
        return self.reverse_tunnel if self.ingress_filter is None else self.ingress_filter


# -- what the agents report -----------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """One accepted registration (or deregistration: ``care_of_address`` None), as the
    mobile node saw it: ``at`` is ``time.time()`` of the acceptance, ``rtt_ms`` the time
    from sending the request (its last transmission) to accepting the reply."""

    at: float
    care_of_address: str | None
    rtt_ms: float


@dataclass(frozen=True)
class MnStatus:
    state: str
    registered: bool
    at_home: bool
    care_of_address: str | None
    registrations: tuple[Registration, ...] = ()
    failure_reason: str | None = None
    #: ``time.time()`` of every link-up the mobile node saw (the kernel's link detection)
    link_ups: tuple[float, ...] = ()


@dataclass(frozen=True)
class HaBinding:
    home_address: str
    care_of_address: str
    encapsulation: str
    reverse_tunnel: bool
    #: the home agent holding it (the AAA lab has two; ``None``: the lab's one)
    home_agent: str | None = None


@dataclass(frozen=True)
class HaStatus:
    bindings: tuple[HaBinding, ...]
    #: the tunnel forwarder's counters (``encapsulated``, ``delivered_link``, ...)
    forwarder: dict[str, int] = field(default_factory=dict)
    #: issue 12: the bpf fast path's outcome counters (``encap``, ``decap``, ...), empty
    #: on the user-space plane
    fast_path: dict[str, int] = field(default_factory=dict)

    def tunnelled(self, what: str = "encapsulated") -> int:
        """Datagrams the home agent encapsulated (``"encapsulated"``) or decapsulated from
        a reverse tunnel (``"delivered_tun"``), whichever plane did it: on the bpf plane
        what its program forwarded after decapsulating (``decap_forward``) and what it
        handed to the stack (``decap``)."""
        fast = {"encapsulated": ("encap",), "delivered_tun": ("decap", "decap_forward")}[what]
        return self.forwarder.get(what, 0) + sum(self.fast_path.get(k, 0) for k in fast)


class Backend(Protocol):
    """Runs the mobility agents of a lab."""

    def start(self) -> None: ...

    def mn_status(self) -> MnStatus: ...

    def ha_status(self) -> HaStatus: ...

    def forwarder_stats(self, node: str) -> dict[str, int]: ...

    def restart(self, node: str, sig: int = signal.SIGTERM, *, down_for: float = 0.0) -> None:
        """Stop ``node``'s agent (``SIGKILL``: without any clean-up) and start it again."""

    def close(self) -> None: ...
