"""``HaStatus.tunnelled``: what the home agent encapsulated or decapsulated, whichever plane
did it -- the demo's proof that the tunnel carried the traffic (``tests/system``)."""

from __future__ import annotations

from mip4.lab.backend import HaStatus


def test_decapsulated_counts_both_planes_and_what_the_program_forwarded() -> None:
    st = HaStatus(
        (),
        forwarder={"encapsulated": 3, "delivered_tun": 5, "delivered_link": 70},
        fast_path={"encap": 100, "decap": 20, "decap_forward": 400, "decap_visitor": 9000},
    )
    assert st.tunnelled("encapsulated") == 103
    # the user-space plane's, the program's handed to the stack and forwarded by it
    assert st.tunnelled("delivered_tun") == 425
    assert HaStatus(()).tunnelled("delivered_tun") == 0
