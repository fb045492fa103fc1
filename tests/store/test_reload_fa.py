"""SIGHUP on a foreign agent (issue 15): the pending-list limits and the request
requirements change in place, on the engine and in what its request checks read."""

from __future__ import annotations

from typing import Any

from mip4.core.actions import SendUdp
from mip4.core.foreign_agent import ForeignAgent
from mip4.daemon.config import parse_config
from mip4.daemon.reload import reload
from mip4.daemon.run import build_engine
from mip4.wire.codes import ReplyCode
from mip4.wire.messages import RegistrationReply

from ..core import test_foreign_agent as fat


def data(**fa: Any) -> dict[str, Any]:
    return {
        "foreign_agent": {
            "links": [{"interface": "vis0", "address": str(fat.FA_ADDR), "prefix_len": 24}],
            "advertise": False,
            **fa,
        },
        "security_associations": [
            {"peer": str(fat.HA), "spi": 0x2000, "key": (b"f" * 16).hex()},
            {"peer": str(fat.HOA), "spi": 0x3000, "key": (b"m" * 16).hex()},
        ],
    }


def test_fa_pending_limit_and_mn_fa_requirement_change_in_place() -> None:
    running = parse_config("fa", data(max_pending=1), "fa.toml")
    engine = build_engine(running)
    assert isinstance(engine, ForeignAgent)
    engine.handle(fat.from_mn(fat.request(mn_fa=fat.MN_FA_SA)), 0.0)  # pending: 1 of 1
    second = fat.from_mn(fat.request(hoa=fat.HOA2), src=fat.HOA2, mac=fat.MAC2)
    (send,) = fat.of(engine.handle(second, 0.1), SendUdp)
    assert RegistrationReply.decode(send.payload).code == ReplyCode.FA_INSUFFICIENT_RESOURCES

    new = parse_config(
        "fa", data(max_pending=5, pending_timeout=2.0, require_mn_fa_auth=True), "fa.toml"
    )
    r = reload(running, engine, new)
    assert set(r.applied) == {
        "foreign_agent.max_pending",
        "foreign_agent.pending_timeout",
        "foreign_agent.require_mn_fa_auth",
    }
    assert r.refused == ()
    assert engine.config.max_pending == 5 and r.config.file.foreign_agent.max_pending == 5  # type: ignore[union-attr]
    # the checks read the new limit: HOA2 is relayed now ... but MN-FA is now required,
    # and HOA2 sent none (67); with it (HOA's SA) a request is relayed, timing out at 2 s
    (send,) = fat.of(engine.handle(second, 0.2), SendUdp)
    assert RegistrationReply.decode(send.payload).code == ReplyCode.FA_MN_FAILED_AUTH
    engine.handle(fat.from_mn(fat.request(mn_fa=fat.MN_FA_SA, ident=fat.IDENT + 1)), 0.3)
    pending = engine.pending.get(fat.HOA)
    assert pending is not None and pending.expires == 0.3 + 2.0
    assert len(engine.pending) == 1


def test_fa_max_visitors_still_needs_a_restart() -> None:
    running = parse_config("fa", data(max_visitors=3), "fa.toml")
    engine = build_engine(running)
    assert isinstance(engine, ForeignAgent)
    r = reload(running, engine, parse_config("fa", data(max_visitors=4), "fa.toml"))
    assert r.refused == ("foreign_agent.max_visitors",) and r.applied == ()
    assert engine.config.max_visitors == 3


def test_fa_request_without_nai_refused_once_required() -> None:
    running = parse_config("fa", data(), "fa.toml")
    engine = build_engine(running)
    assert isinstance(engine, ForeignAgent)
    request = fat.from_mn(fat.request(mn_fa=fat.MN_FA_SA))
    (relayed,) = fat.of(engine.handle(request, 0.0), SendUdp)
    assert relayed.dst == fat.HA  # no NAI needed yet: relayed to the home agent
    r = reload(running, engine, parse_config("fa", data(require_nai=True), "fa.toml"))
    assert r.applied == ("foreign_agent.require_nai",)
    again = fat.from_mn(fat.request(mn_fa=fat.MN_FA_SA, ident=fat.IDENT + 1))
    (send,) = fat.of(engine.handle(again, 1.0), SendUdp)
    assert send.dst == fat.HOA  # answered to the node, not relayed: RFC 2794 code 97
    assert RegistrationReply.decode(send.payload).code == ReplyCode.FA_MISSING_NAI
