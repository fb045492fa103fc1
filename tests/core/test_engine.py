"""The one engine shape: the exception root, the error boundary, the Engine protocol."""

from __future__ import annotations

import random

import pytest

from mip4.core.actions import Action, Log
from mip4.core.counters import Counters
from mip4.core.engine import Engine, error_boundary, log_event, make_rng
from mip4.core.registration import ConfigError, Discard, ProtocolError, RegistrationDenied
from mip4.dataplane.errors import DropReason, PacketTooBig, TunnelError
from mip4.errors import Mip4Error
from mip4.security.auth import AuthenticationError, AuthFailure
from mip4.wire.codes import ReplyCode
from mip4.wire.errors import DecodeError, EncodeError, UnknownExtensionError

from .test_foreign_agent import make_fa
from .test_home_agent import make_ha

_LOG = Log("x.y")


def test_every_mip4_exception_derives_from_the_root_keeping_its_builtin_base() -> None:
    value_errors: tuple[type[Exception], ...] = (
        DecodeError,
        UnknownExtensionError,
        EncodeError,
        AuthenticationError,
        ConfigError,
        TunnelError,
        PacketTooBig,
    )
    for cls in value_errors:
        assert issubclass(cls, Mip4Error) and issubclass(cls, ValueError)
    for cls in (RegistrationDenied, Discard, ProtocolError):
        assert issubclass(cls, Mip4Error)
    # the wire codes they carry stay
    assert (
        RegistrationDenied(ReplyCode.HA_POORLY_FORMED_REQUEST, "x").code
        is ReplyCode.HA_POORLY_FORMED_REQUEST
    )
    assert TunnelError(DropReason.LOOP, "x").reason is DropReason.LOOP
    assert PacketTooBig(1500, 1480, 1460).next_hop_mtu == 1460
    assert DecodeError("short", 3).offset == 3
    assert AuthenticationError(AuthFailure.MISSING, 32).args


def _run(
    body_raises: BaseException | None,
    *,
    on_denied: bool = True,
    denied_raises: bool = False,
) -> tuple[list[Action], Counters, list[RegistrationDenied]]:
    counters = Counters()
    seen: list[RegistrationDenied] = []

    def body(out: list[Action]) -> None:
        out.append(_LOG)
        if body_raises is not None:
            raise body_raises

    def handler(d: RegistrationDenied) -> list[Action]:
        seen.append(d)
        if denied_raises:
            raise RuntimeError("reply failed")
        return [Log("xx.reply")]

    out = error_boundary(
        "xx", counters, body, who={"source": "1.2.3.4"}, on_denied=handler if on_denied else None
    )
    return out, counters, seen


def test_boundary_returns_the_body_actions() -> None:
    out, counters, seen = _run(None)
    assert out == [_LOG]
    assert counters.total_discarded == 0 and not seen


def test_boundary_discard_is_counted_and_logged() -> None:
    out, counters, _ = _run(Discard("decode_error", "short"))
    assert counters.discarded == {"decode_error": 1}
    assert out == [
        _LOG,
        Log("xx.discard", {"reason": "decode_error", "detail": "short", "source": "1.2.3.4"}),
    ]


def test_boundary_protocol_error() -> None:
    out, counters, _ = _run(ProtocolError("no transition"))
    assert counters.discarded == {"protocol_error": 1}
    assert out[1] == Log("xx.protocol_error", {"detail": "no transition", "source": "1.2.3.4"})


def test_boundary_any_other_exception_is_an_internal_error() -> None:
    out, counters, _ = _run(KeyError("boom"))
    assert counters.discarded == {"internal_error": 1}
    assert out[1].event == "xx.internal_error"  # type: ignore[union-attr]


def test_boundary_hands_a_denial_to_the_role() -> None:
    denial = RegistrationDenied(ReplyCode.HA_POORLY_FORMED_REQUEST, "bad")
    out, counters, seen = _run(denial)
    assert seen == [denial]
    assert out == [_LOG, Log("xx.reply")]
    assert counters.total_discarded == 0


def test_boundary_without_a_denial_handler_and_with_a_failing_one() -> None:
    denial = RegistrationDenied(ReplyCode.HA_POORLY_FORMED_REQUEST, "bad")
    out, counters, _ = _run(denial, on_denied=False)
    assert counters.discarded == {"internal_error": 1}
    out, counters, seen = _run(denial, denied_raises=True)
    assert seen == [denial] and counters.discarded == {"internal_error": 1}
    assert out[-1].event == "xx.internal_error"  # type: ignore[union-attr]


def test_boundary_lets_base_exceptions_through() -> None:
    with pytest.raises(KeyboardInterrupt):
        _run(KeyboardInterrupt())


def test_log_event_names_are_role_dot_snake_case() -> None:
    assert log_event("fa", "visitor_expired") == "fa.visitor_expired"
    for role, name in (("mn", "link-up"), ("MN", "state"), ("fa", "Discard"), ("", "x")):
        with pytest.raises(ValueError):
            log_event(role, name)


def test_make_rng() -> None:
    r = random.Random(1)
    assert make_rng(r) is r
    assert isinstance(make_rng(None), random.SystemRandom)


def test_agents_are_engines() -> None:
    fa, ha = make_fa(), make_ha()
    engines: list[Engine] = [fa, ha]
    for e in engines:
        assert isinstance(e.counters, Counters)
        assert e.handle_timer(0.0) is not None
    # an unknown event type is a counted discard at the FA, nothing at the HA
    fa.handle(object(), 0.0)  # type: ignore[arg-type]
    assert fa.counters.discarded["unexpected_event"] == 1
    assert ha.handle(object(), 0.0) == []  # type: ignore[arg-type]


def test_engine_configuration_errors_are_mip4_errors() -> None:
    from ipaddress import IPv4Address, IPv4Network

    from mip4.core.discovery import AgentDiscovery
    from mip4.core.fa_config import ForeignAgentConfig
    from mip4.core.home_agent import HomeAgentConfig

    with pytest.raises(ConfigError):
        ForeignAgentConfig(links=())
    with pytest.raises(ConfigError):
        HomeAgentConfig(address=IPv4Address("10.9.0.1"), home_network=IPv4Network("10.0.0.0/24"))
    with pytest.raises(ConfigError):
        AgentDiscovery(initial_interval=0.5)
    assert issubclass(ConfigError, Mip4Error) and issubclass(ConfigError, ValueError)
