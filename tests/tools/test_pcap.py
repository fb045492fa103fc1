"""The pure-Python capture reader and writer (mip4.tools.pcap).

Independent checks: scapy reads what we write (checksums included), editcap converts our
pcap to pcapng / nanosecond pcap and we read those back, and hand-built link-layer headers
(SLL, SLL2, 802.1Q, loopback, raw) and byte orders exercise every reader branch.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mip4.tools import pcap
from tests.oracle.tshark import ensure_tshark

PAYLOAD = bytes(range(1, 30))


def _udp_packet(options: bytes = b"") -> bytes:
    return pcap.ipv4_udp("192.0.2.1", "192.0.2.2", PAYLOAD, sport=4321, options=options)


def _write(packets: list[tuple[float, bytes]], linktype: int = pcap.LinkType.ETHERNET) -> bytes:
    buf = io.BytesIO()
    pcap.write_pcap(buf, packets, linktype)
    return buf.getvalue()


def test_checksums_are_correct() -> None:
    pkt = _udp_packet(options=b"\x94\x04\x00\x00")  # router alert option
    assert pcap.internet_checksum(pkt[:24]) == 0  # header incl. options sums to zero
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, len(pkt) - 24)
    assert pcap.internet_checksum(pseudo + pkt[24:]) == 0
    icmp = pcap.ipv4_icmp("192.0.2.1", "224.0.0.1", b"\x0a\x00\xff\xff\x00\x00\x00\x00")
    assert pcap.internet_checksum(icmp[20:]) == 0
    assert icmp[22:24] != b"\xff\xff"


def test_checksum_known_vector() -> None:
    # RFC 1071 §3 example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
    assert pcap.internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@pytest.mark.parametrize("linktype", [pcap.LinkType.ETHERNET, pcap.LinkType.RAW])
def test_round_trip(linktype: int) -> None:
    pkts = [(1700000000.25, _udp_packet()), (1700000001.5, _udp_packet(b"\x01\x01\x01\x00"))]
    recs = list(pcap.read_capture(_write(pkts, linktype)))
    assert [r.number for r in recs] == [1, 2]
    assert [r.timestamp for r in recs] == [1700000000.25, 1700000001.5]
    for rec, (_, pkt) in zip(recs, pkts, strict=True):
        dgram = pcap.parse_frame(rec.linktype, rec.data)
        assert dgram is not None
        assert dgram.src == IPv4Address("192.0.2.1")
        assert dgram.dst == IPv4Address("192.0.2.2")
        assert dgram.options == pkt[20 : (pkt[0] & 0xF) * 4]
        udp = pcap.parse_udp(dgram)
        assert (udp.sport, udp.dport, udp.payload) == (4321, 434, PAYLOAD)
        assert rec.data[udp.offset : udp.offset + len(PAYLOAD)] == PAYLOAD


@pytest.mark.oracle
def test_scapy_reads_our_pcap(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    path = tmp_path / "x.pcap"
    path.write_bytes(_write([(1.0, _udp_packet(b"\x94\x04\x00\x00"))]))
    (p,) = scapy_all.rdpcap(str(path))
    ip = p[scapy_all.IP]
    assert (ip.src, ip.dst, ip.ihl) == ("192.0.2.1", "192.0.2.2", 6)
    udp = p[scapy_all.UDP]
    # scapy recomputes the checksums of a copy with them cleared: must match ours.
    raw = bytes(ip)
    ip2 = scapy_all.IP(raw)
    del ip2.chksum
    del ip2[scapy_all.UDP].chksum
    rebuilt = scapy_all.IP(bytes(ip2))
    assert rebuilt.chksum == ip.chksum
    assert rebuilt[scapy_all.UDP].chksum == udp.chksum
    assert bytes(udp.payload) == PAYLOAD


def _frames() -> list[tuple[float, bytes]]:
    return [(1700000000.0 + i / 8, _udp_packet()) for i in range(3)]


@pytest.mark.oracle
@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap"])
def test_read_editcap_conversions(tmp_path: Path, fmt: str) -> None:
    ensure_tshark()  # editcap comes with it
    if shutil.which("editcap") is None:
        pytest.skip("editcap is not installed (it ships with tshark's wireshark-common)")
    src = tmp_path / "in.pcap"
    dst = tmp_path / "out"
    src.write_bytes(_write(_frames()))
    subprocess.run(["editcap", "-F", fmt, str(src), str(dst)], check=True)
    data = dst.read_bytes()
    assert pcap.detect_format(data) == ("pcapng" if fmt == "pcapng" else "pcap")
    got = [(r.timestamp, r.data) for r in pcap.read_capture(data)]
    want = [(ts, pcap.ethernet(p)) for ts, p in _frames()]
    assert got == want


def test_pcapng_writer_round_trip() -> None:
    buf = io.BytesIO()
    pcap.write_pcapng(buf, _frames())
    got = [(r.timestamp, r.data) for r in pcap.read_capture(buf.getvalue())]
    assert got == [(ts, pcap.ethernet(p)) for ts, p in _frames()]


def _ng_block(endian: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def test_pcapng_big_endian_tsresol_and_simple_packet_block() -> None:
    e = ">"
    pkt = _udp_packet()
    shb = _ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack(e + "HH", 9, 1) + b"\x09\0\0\0" + struct.pack(e + "HH", 0, 0)  # 10^-9
    idb = _ng_block(e, 1, struct.pack(e + "HHI", pcap.LinkType.RAW, 0, 0) + opts)
    ts = 1_700_000_000_123_456_789
    epb = _ng_block(
        e, 6, struct.pack(e + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(pkt), len(pkt)) + pkt
    )
    spb = _ng_block(e, 3, struct.pack(e + "I", len(pkt)) + pkt)
    other = _ng_block(e, 5, b"stats")  # interface statistics: skipped
    recs = list(pcap.read_capture(shb + idb + epb + other + spb))
    assert [r.number for r in recs] == [1, 2]
    assert recs[0].timestamp == pytest.approx(1_700_000_000.123456789)
    assert recs[0].data == pkt and recs[1].data == pkt
    assert all(r.linktype == pcap.LinkType.RAW for r in recs)


def test_big_endian_pcap() -> None:
    pkt = _udp_packet()
    data = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, pcap.LinkType.RAW)
    data += struct.pack(">IIII", 10, 500000, len(pkt), len(pkt)) + pkt
    (rec,) = pcap.read_capture(data)
    assert rec.timestamp == 10.5 and rec.data == pkt


def _sll(pkt: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", 0x0800) + pkt


def _sll2(pkt: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + pkt


def _vlan(pkt: bytes) -> bytes:
    eth = pcap.ethernet(pkt)
    return eth[:12] + b"\x81\x00\x00\x05" + eth[12:]


def _loop(pkt: bytes) -> bytes:
    return struct.pack("<I", 2) + pkt


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (pcap.LinkType.LINUX_SLL, _sll),
        (pcap.LinkType.LINUX_SLL2, _sll2),
        (pcap.LinkType.ETHERNET, _vlan),
        (pcap.LinkType.NULL, _loop),
        (pcap.LinkType.IPV4, lambda p: p),
        (pcap.LinkType.RAW_BSD, lambda p: p),
    ],
)
def test_link_types(linktype: int, wrap: object) -> None:
    pkt = _udp_packet()
    frame = wrap(pkt)  # type: ignore[operator]
    dgram = pcap.parse_frame(linktype, frame)
    assert dgram is not None
    assert pcap.parse_udp(dgram).payload == PAYLOAD
    assert frame[dgram.offset + 8 :] == PAYLOAD


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [(pcap.LinkType.LINUX_SLL, _sll), (pcap.LinkType.LINUX_SLL2, _sll2)],
)
def test_tshark_agrees_on_cooked_headers(tmp_path: Path, linktype: int, wrap: object) -> None:
    """Our hand-built SLL/SLL2 headers are what tshark expects (so the reader test above
    is not testing a private format)."""
    tshark = ensure_tshark()
    path = tmp_path / "x.pcap"
    buf = io.BytesIO()
    w = pcap.PcapWriter(buf, linktype)
    w.write(wrap(_udp_packet()), 1.0)  # type: ignore[operator]
    path.write_bytes(buf.getvalue())
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "ip.src", "-e", "udp.dstport"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert out == ["192.0.2.1", "434"]


def test_non_ip_frames_are_skipped() -> None:
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28
    assert pcap.parse_frame(pcap.LinkType.ETHERNET, arp) is None


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"\x00" * 10, "Ethernet header cut short"),
        (pcap.ethernet(_udp_packet())[:30], "IPv4 header cut short"),
        (pcap.ethernet(_udp_packet())[:50], "IPv4 datagram cut short"),
        (pcap.ethernet(b"\x46" + _udp_packet()[1:21]), "options cut short"),
    ],
)
def test_malformed_frames_raise_frame_error(frame: bytes, match: str) -> None:
    with pytest.raises(pcap.FrameError, match=match) as info:
        pcap.parse_frame(pcap.LinkType.ETHERNET, frame)
    assert "frame offset" in str(info.value)


def test_bad_udp_length() -> None:
    pkt = bytearray(_udp_packet())
    pkt[24:26] = (200).to_bytes(2, "big")
    dgram = pcap.parse_ipv4(bytes(pkt))
    with pytest.raises(pcap.FrameError, match="UDP length 200") as info:
        pcap.parse_udp(dgram)
    assert info.value.offset == 24


def test_fragment_flags() -> None:
    pkt = bytearray(_udp_packet())
    pkt[6:8] = (0x2000).to_bytes(2, "big")  # MF, offset 0
    d = pcap.parse_ipv4(bytes(pkt))
    assert d.fragment and d.first_fragment
    pkt[6:8] = (0x0010).to_bytes(2, "big")
    d = pcap.parse_ipv4(bytes(pkt))
    assert d.fragment and not d.first_fragment


@pytest.mark.parametrize("cut", [3, 10, 17])
def test_file_cut_inside_last_record(cut: int) -> None:
    data = _write(_frames())
    recs = list(pcap.read_capture(data[:-cut]))
    assert len(recs) == 3
    assert [r.cut_short for r in recs] == [False, False, True]
    assert recs[0].data == pcap.ethernet(_frames()[0][1])


def test_file_cut_inside_record_header() -> None:
    data = _write(_frames()[:1])
    recs = list(pcap.read_capture(data + b"\0" * 7))
    assert [r.cut_short for r in recs] == [False, True]


def test_pcapng_cut_short() -> None:
    buf = io.BytesIO()
    pcap.write_pcapng(buf, _frames())
    recs = list(pcap.read_capture(buf.getvalue()[:-9]))
    assert [r.cut_short for r in recs] == [False, False, True]


def test_snaplen_truncated_record() -> None:
    buf = io.BytesIO()
    w = pcap.PcapWriter(buf, pcap.LinkType.RAW)
    pkt = _udp_packet()
    w.write(pkt[:30], 0.0, orig_len=len(pkt))
    (rec,) = pcap.read_capture(buf.getvalue())
    assert rec.orig_len == len(pkt) and not rec.cut_short
    with pytest.raises(pcap.FrameError, match="cut short"):
        pcap.parse_frame(rec.linktype, rec.data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"hello world", "not a pcap or pcapng"),
        (b"", "empty"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "global header cut short"),
        (b"\x0a\x0d\x0d\x0a\x1c\0\0\0\0\0\0\0", "bad byte-order magic"),
    ],
)
def test_not_a_capture(data: bytes, match: str) -> None:
    with pytest.raises(pcap.CaptureError, match=match):
        list(pcap.read_capture(data))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1).map(lambda us: us / 1e6 * 997),  # up to ~50 days
            st.binary(max_size=300),
            st.sampled_from([17, 1]),
        ),
        max_size=6,
    ),
    st.sampled_from(["pcap", "pcapng"]),
    st.sampled_from([pcap.LinkType.ETHERNET, pcap.LinkType.RAW]),
)
def test_write_read_round_trip(
    items: list[tuple[float, bytes, int]], fmt: str, linktype: int
) -> None:
    packets = [
        (ts, pcap.ipv4_udp("10.0.0.1", "10.0.0.2", p) if proto == 17 else
         pcap.ipv4_icmp("10.0.0.1", "10.0.0.2", b"\x09\x00\x00\x00" + p))
        for ts, p, proto in items
    ]  # fmt: skip
    buf = io.BytesIO()
    (pcap.write_pcap if fmt == "pcap" else pcap.write_pcapng)(buf, packets, linktype)
    recs = list(pcap.read_capture(buf.getvalue()))
    assert [r.number for r in recs] == list(range(1, len(packets) + 1))
    for rec, (ts, pkt), (_, payload, proto) in zip(recs, packets, items, strict=True):
        assert rec.timestamp == pytest.approx(ts, abs=1e-6)
        assert not rec.cut_short and rec.orig_len == len(rec.data)
        d = pcap.parse_frame(rec.linktype, rec.data)
        assert d is not None and d.protocol == proto and d.payload == pkt[20:]
        if proto == 17:
            assert pcap.parse_udp(d).payload == payload
        else:
            icmp = pcap.parse_icmp(d)
            assert icmp.message[4:] == payload and pcap.internet_checksum(icmp.message) == 0


def test_pcapng_two_interfaces_and_two_sections() -> None:
    """Interface ids are per section, and each interface has its own link type."""
    e = "<"
    pkt = _udp_packet()

    def shb() -> bytes:
        return _ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))

    def idb(linktype: int) -> bytes:
        return _ng_block(e, 1, struct.pack(e + "HHI", linktype, 0, 0))

    def epb(iface: int, frame: bytes) -> bytes:
        hdr = struct.pack(e + "IIIII", iface, 0, 1_000_000, len(frame), len(frame))
        return _ng_block(e, 6, hdr + frame)

    data = (
        shb() + idb(pcap.LinkType.ETHERNET) + idb(pcap.LinkType.RAW)
        + epb(1, pkt) + epb(0, pcap.ethernet(pkt))
        + shb() + idb(pcap.LinkType.LINUX_SLL2) + epb(0, _sll2(pkt))
    )  # fmt: skip
    recs = list(pcap.read_capture(data))
    assert [r.linktype for r in recs] == [
        pcap.LinkType.RAW, pcap.LinkType.ETHERNET, pcap.LinkType.LINUX_SLL2,
    ]  # fmt: skip
    for r in recs:
        assert r.timestamp == 1.0
        d = pcap.parse_frame(r.linktype, r.data)
        assert d is not None and pcap.parse_udp(d).payload == PAYLOAD


def test_ethernet_padding_is_not_payload() -> None:
    """Short frames are padded to 60 bytes on Ethernet: the IPv4 Total Length decides."""
    sol = pcap.ipv4_icmp("10.0.0.9", "224.0.0.2", b"\x0a\x00\x00\x00\x00\x00\x00\x00")
    frame = pcap.ethernet(sol)
    frame += b"\0" * (60 - len(frame))
    d = pcap.parse_frame(pcap.LinkType.ETHERNET, frame)
    assert d is not None and len(frame) == 60
    icmp = pcap.parse_icmp(d)
    assert icmp.message == sol[20:] and len(icmp.message) == 8


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(68, 1500), st.randoms())
def test_fragment_and_reassemble(payload: bytes, mtu: int, rnd: object) -> None:
    pkt = pcap.ipv4_udp("10.0.0.1", "10.0.0.2", payload, ident=99)
    frags = pcap.fragment(pkt, mtu)
    assert all(len(f) <= mtu and pcap.internet_checksum(f[:20]) == 0 for f in frags)
    order = list(range(len(frags)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    r = pcap.Reassembler()
    results = [r.add(pcap.parse_ipv4(frags[i]), i + 1) for i in order]
    *pending, done = results
    if len(frags) == 1:
        assert done is not None and not pcap.parse_ipv4(frags[0]).fragment
        return
    assert all(x is None for x in pending) and done is not None
    whole, frames = done
    assert whole.payload == pkt[20:] and sorted(frames) == list(range(1, len(frags) + 1))
    assert r.incomplete() == []


def test_reassembly_keeps_first_copy_and_reports_holes() -> None:
    pkt = pcap.ipv4_udp("10.0.0.1", "10.0.0.2", bytes(range(200)), ident=7)
    a, b, c = pcap.fragment(pkt, 100)
    r = pcap.Reassembler()
    assert r.add(pcap.parse_ipv4(a), 1) is None
    assert r.add(pcap.parse_ipv4(c), 2) is None  # hole in the middle
    assert [frames for _, frames in r.incomplete()] == [[1, 2]]
    forged = bytearray(a)
    forged[-1] ^= 0xFF  # a second copy of the first piece, different bytes: ignored
    assert r.add(pcap.parse_ipv4(bytes(forged)), 3) is None
    done = r.add(pcap.parse_ipv4(b), 4)
    assert done is not None and done[0].payload == pkt[20:] and done[1] == [1, 2, 3, 4]


def test_reassembler_bounds_pending_datagrams() -> None:
    r = pcap.Reassembler(max_pending=2)
    for ident in range(3):
        first = pcap.fragment(pcap.ipv4_udp("10.0.0.1", "10.0.0.2", bytes(300), ident=ident), 100)
        assert r.add(pcap.parse_ipv4(first[0]), ident + 1) is None
    assert [frames for _, frames in r.incomplete()] == [[1], [2], [3]]  # 1 was dropped
    assert r.dropped == [[1]]


def test_records_carry_their_file_offset_and_read_from_a_stream() -> None:
    frames = _frames()
    data = _write(frames)
    recs = list(pcap.read_capture(io.BytesIO(data)))
    offsets, pos = [], 24
    for _, pkt in frames:
        offsets.append(pos)
        pos += 16 + len(pcap.ethernet(pkt))
    assert [r.offset for r in recs] == offsets
    assert [r.data for r in recs] == [r.data for r in pcap.read_capture(data)]
    # the first bytes already read by the caller (format detection on a pipe)
    stream = io.BytesIO(data)
    head = stream.read(4)
    assert [r.data for r in pcap.read_capture(stream, head)] == [r.data for r in recs]


def test_pcapng_records_the_reader_cannot_take_are_problems_not_silence() -> None:
    e = "<"
    pkt = _udp_packet()
    shb = _ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    spb = _ng_block(e, 3, struct.pack(e + "I", len(pkt)) + pkt)  # before any interface
    idb = _ng_block(e, 1, struct.pack(e + "HHI", pcap.LinkType.RAW, 0, 0))
    epb7 = _ng_block(e, 6, struct.pack(e + "IIIII", 7, 0, 0, len(pkt), len(pkt)) + pkt)
    huge = _ng_block(e, 6, struct.pack(e + "IIIII", 0, 0, 0, 1 << 30, len(pkt)) + pkt)
    good = _ng_block(e, 6, struct.pack(e + "IIIII", 0, 0, 0, len(pkt), len(pkt)) + pkt)
    recs = list(pcap.read_capture(shb + spb + idb + epb7 + huge + good))
    assert [r.number for r in recs] == [1, 2, 3, 4]
    at = len(shb)
    assert recs[0].problem == f"simple packet block at file offset {at}, but this section " + (
        "declares no interface"
    )
    at += len(spb) + len(idb)
    assert recs[1].offset == at and "names interface 7" in (recs[1].problem or "")
    at += len(epb7)
    assert recs[2].offset == at and "captured length 1073741824" in (recs[2].problem or "")
    assert recs[3].problem is None and recs[3].data == pkt
    assert all(r.data == b"" for r in recs[:3])


def test_a_huge_pcap_record_is_not_read() -> None:
    class Endless(io.RawIOBase):
        """A stream that would never end: the reader must not try to read it whole."""

        asked = 0

        def readinto(self, b: Any) -> int:
            Endless.asked += len(b)
            b[:] = bytes(len(b))
            return len(b)

        def readable(self) -> bool:
            return True

    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, pcap.LinkType.RAW)
    rec = struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 40)
    stream = io.BufferedReader(Endless())
    (r,) = pcap.read_capture(stream, head + rec)
    assert r.problem is not None and r.offset == 24
    assert "captured length 4294967280 is larger than 262144 bytes" in r.problem
    assert Endless.asked < 1 << 20


def test_given_up_datagrams_are_handed_out_once() -> None:
    r = pcap.Reassembler(max_pending=1)
    for ident in range(3):
        first = pcap.fragment(pcap.ipv4_udp("10.0.0.1", "10.0.0.2", bytes(300), ident=ident), 100)
        r.add(pcap.parse_ipv4(first[0]), ident + 1)
    assert [(g.frames, g.reason) for g in r.take_given_up()] == [
        ([1], "more than 1 datagrams pending"),
        ([2], "more than 1 datagrams pending"),
    ]
    assert r.take_given_up() == [] and r.pending() == [[3]]
