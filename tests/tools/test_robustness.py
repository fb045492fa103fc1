"""Whatever the bytes, the decoder reports and carries on: it never raises for one message
or one frame (h11 ``fuzz/afl-server.py`` style, with hypothesis)."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.tools import pcap
from mip4.tools.decode import KeyRing, decode_all, decode_icmp, decode_udp, payloads_from_capture
from mip4.tools.render import render
from mip4.tools.sample import sample_packets

KEYS = KeyRing()
SAMPLE = [p for _, p in sample_packets()]
UDP_PAYLOADS = [p[28:] for p in SAMPLE if p[9] == 17]
ICMP_MESSAGES = [p[20:] for p in SAMPLE if p[9] == 1]


def _mutations(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Seed messages cut short, with bytes flipped, or random bytes."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 3))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data[: draw(st.integers(0, len(data)))])

    return st.one_of(mutate(), st.binary(max_size=80))


@settings(max_examples=400, deadline=None)
@given(_mutations(UDP_PAYLOADS))
def test_any_udp_payload_decodes_or_reports(data: bytes) -> None:
    out = decode_udp(data, KEYS)
    assert ("error" in out) != ("fields" in out and "extensions" in out) or out.get("discarded")
    if "error" in out:
        assert out["offset"] is None or 0 <= out["offset"] <= len(data)
    assert render(out)


@settings(max_examples=300, deadline=None)
@given(_mutations(ICMP_MESSAGES))
def test_any_icmp_message_decodes_or_reports(data: bytes) -> None:
    out = decode_icmp(data)
    assert ("error" in out) != ("fields" in out)
    assert render(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*SAMPLE, b"\x45" + bytes(30)]), min_size=1, max_size=5),
       st.data())  # fmt: skip
def test_damaged_capture_never_stops_the_decoder(packets: list[bytes], data: st.DataObject) -> None:
    buf = io.BytesIO()
    pcap.write_pcap(buf, [(float(i), p) for i, p in enumerate(packets)])
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(24, len(raw) - 1))  # keep the global header
        raw[i] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(24, len(raw)))]
    objs = list(decode_all(payloads_from_capture(bytes(raw)), KEYS))
    for o in objs:
        assert "frame" in o and render(o)
