"""``mip4 decode``: JSON output on captures the test builds, verification, robustness, inputs.

The captures are built here with our encoder and pcap writer; the expected JSON objects are
written out by hand from the values the test put in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mip4.cli import COMMANDS, build_parser, main
from mip4.security.auth import sign, sign_mn_aaa
from mip4.security.sa import Algorithm, SecurityAssociation
from mip4.tools import pcap
from mip4.tools.decode import parse_hex, parse_key
from mip4.wire.ext_vendor import CriticalVendorExtension
from mip4.wire.extensions import (
    MobileForeignAuthExtension,
    MobileForeignChallengeExtension,
    MobileHomeAuthExtension,
    MobileNodeNAIExtension,
    RawExtension,
)
from mip4.wire.icmp import (
    AgentAdvertisement,
    AgentFlags,
    MobilityAgentAdvertisementExtension,
    RouterAddress,
)
from mip4.wire.messages import (
    RegistrationFlags,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationFlags,
    TunnelData,
)

KEY_HA = bytes.fromhex("00112233445566778899aabbccddeeff")
KEY_FA = b"another-128-bit!"
SA_HA = SecurityAssociation(300, KEY_HA)
SA_FA = SecurityAssociation(301, KEY_FA, Algorithm.KEYED_MD5)
KEYS = [f"300={KEY_HA.hex()}", f"301={KEY_FA.hex()}:keyed-md5"]
KEY_ARGS = [arg for k in KEYS for arg in ("--key", k)]
MN, HA, FA = "10.9.0.7", "10.9.0.1", "10.8.0.1"
T = 1_800_000_000.5


def _rrq(lifetime: int = 600) -> RegistrationRequest:
    rrq = RegistrationRequest(
        flags=RegistrationFlags.S | RegistrationFlags.T,
        lifetime=lifetime,
        home_address=IPv4Address(MN),
        home_agent=IPv4Address(HA),
        care_of_address=IPv4Address(FA),
        identification=0x0102030405060708,
        extensions=(MobileNodeNAIExtension(b"joe@example.org"), RawExtension(200, b"\x01\x02")),
    )
    return sign(sign(rrq, MobileHomeAuthExtension, SA_HA), MobileForeignAuthExtension, SA_FA)


def _rrp() -> RegistrationReply:
    rrp = RegistrationReply(
        code=136,
        lifetime=0,
        home_address=IPv4Address(MN),
        home_agent=IPv4Address(HA),
        identification=0x0A0B0C0D0E0F1011,
    )
    return sign(rrp, MobileHomeAuthExtension, SA_HA)


def _adv() -> bytes:
    return AgentAdvertisement(
        code=16,
        lifetime=300,
        router_addresses=(RouterAddress(IPv4Address(FA), 5),),
        extensions=(
            MobilityAgentAdvertisementExtension(
                7, 900, AgentFlags.R | AgentFlags.F, (IPv4Address(FA),)
            ),
        ),
    ).encode()


def _packets() -> list[tuple[float, bytes]]:
    good = _rrq().raw
    tampered = bytearray(good)
    tampered[-1] ^= 0x01  # last byte of the MN-FA authenticator
    return [
        (T, pcap.ipv4_udp(MN, FA, good, sport=5000)),
        (T + 1, pcap.ipv4_udp(MN, FA, bytes(tampered), sport=5000)),
        (T + 2, pcap.ipv4_udp(MN, FA, good[:30], sport=5000)),  # cut inside the NAI
        (T + 3, pcap.ipv4_udp(MN, FA, b"", sport=5000)[:26]),  # IP/UDP itself cut short
        (T + 4, pcap.ipv4_udp(MN, FA, b"\x01\x00\x00", sport=53, dport=53)),  # not port 434
        (T + 5, pcap.ipv4_udp(HA, FA, _rrp().raw)),
        (T + 6, pcap.ipv4_icmp(FA, "224.0.0.1", _adv(), fix_checksum=False)),
    ]


def _capture(tmp_path: Path, fmt: str = "pcap") -> Path:
    path = tmp_path / f"cap.{fmt}"
    with path.open("wb") as f:
        (pcap.write_pcap if fmt == "pcap" else pcap.write_pcapng)(f, _packets())
    return path


def _run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    status = main(["decode", "--json", *argv])
    out = capsys.readouterr().out
    return status, [json.loads(line) for line in out.splitlines()]


EXPECTED_RRQ_FIELDS = {
    "flags": 0x82,
    "flags_names": ["S", "T"],
    "lifetime": 600,
    "home_address": MN,
    "home_agent": HA,
    "care_of_address": FA,
    "identification": 0x0102030405060708,
    # top bit clear: NTP era 1 (RFC 4330 §3), which starts 2036-02-07 06:28:16 UTC;
    # 0x01020304 s after that, plus 0x05060708 / 2**32 s
    "identification_ntp": (
        dt.datetime(2036, 2, 7, 6, 28, 16, tzinfo=dt.UTC)
        + dt.timedelta(seconds=0x01020304, microseconds=round(0x05060708 / 2**32 * 1e6))
    ).isoformat(timespec="microseconds"),
}


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_capture_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    status, objs = _run_json(capsys, str(_capture(tmp_path, fmt)), *KEY_ARGS)
    assert status == 0
    # frame 5 (port 53) is not Mobile IP: skipped; every other frame is reported
    assert [o["frame"] for o in objs] == [1, 2, 3, 4, 6, 7]

    first = objs[0]
    assert first["src"] == MN and first["dst"] == FA
    assert (first["sport"], first["dport"]) == (5000, 434)
    assert first["time"] == pytest.approx(T)
    assert first["payload_offset"] == 14 + 20 + 8
    assert (first["type"], first["name"], first["protocol"]) == (1, "registration_request", "udp")
    assert first["fields"] == EXPECTED_RRQ_FIELDS
    exts = first["extensions"]
    assert [(e["type"], e["name"]) for e in exts] == [
        (131, "mn_nai"),
        (200, "unknown extension 200"),
        (32, "mn_ha_auth"),
        (33, "mn_fa_auth"),
    ]
    assert exts[0]["fields"] == {"nai": b"joe@example.org".hex(), "nai_text": "joe@example.org"}
    assert exts[0]["offset"] == 24
    assert exts[1]["skipped"] is True and exts[1]["fields"]["data"] == "0102"
    assert exts[2]["fields"]["spi"] == 300 and exts[2]["verified"] is True
    assert exts[3]["fields"]["spi"] == 301 and exts[3]["verified"] is True
    rrq = _rrq()
    assert exts[2]["fields"]["authenticator"] == rrq.extensions[2].authenticator.hex()  # type: ignore[attr-defined]

    tampered = objs[1]["extensions"]
    assert tampered[2]["verified"] is True  # MN-HA does not cover the MN-FA bytes
    assert tampered[3]["verified"] is False
    assert "does not match" in tampered[3]["reason"]

    cut = objs[2]
    assert cut["frame"] == 3 and cut["type"] == 1
    assert "overruns" in cut["error"] and cut["offset"] == 24
    assert cut["frame_offset"] == 42 + 24

    assert objs[3]["frame"] == 4 and "IPv4 datagram cut short" in objs[3]["error"]

    rrp = objs[4]
    assert rrp["name"] == "registration_reply"
    assert rrp["fields"]["code"] == 136
    assert rrp["fields"]["code_name"] == "ha_unknown_ha_address"
    assert rrp["fields"]["identification"] == 0x0A0B0C0D0E0F1011
    assert rrp["length"] == 20 + 22
    assert rrp["extensions"][0]["verified"] is True

    adv = objs[5]
    assert (adv["protocol"], adv["type"], adv["name"]) == ("icmp", 9, "agent_advertisement")
    assert adv["fields"]["code"] == 16 and adv["fields"]["lifetime"] == 300
    assert adv["fields"]["router_addresses"] == [{"address": FA, "preference": 5}]
    (maa,) = adv["extensions"]
    assert maa["type"] == 16 and maa["offset"] == 16  # after 8 + 8 * 1 router address bytes
    assert maa["fields"] == {
        "sequence": 7,
        "registration_lifetime": 900,
        "flags": 0x9000,
        "flags_names": ["R", "F"],
        "care_of_addresses": [FA],
    }


def test_without_keys_verified_is_null(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, objs = _run_json(capsys, str(_capture(tmp_path)), "--key", KEYS[0])
    exts = objs[0]["extensions"]
    assert exts[2]["verified"] is True
    assert exts[3]["verified"] is None
    assert exts[3]["reason"] == "no key given for SPI 301"


def test_wrong_key_and_wrong_algorithm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = str(_capture(tmp_path))
    _, objs = _run_json(capsys, cap, "--key", f"300={'00' * 16}", "--key", f"301={KEY_FA.hex()}")
    exts = objs[0]["extensions"]
    assert exts[2]["verified"] is False  # wrong key
    assert exts[3]["verified"] is False  # right key, HMAC instead of keyed MD5


def test_strict_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = str(_capture(tmp_path))
    assert main(["decode", cap, "--strict", *KEY_ARGS]) == 3
    capsys.readouterr()
    good = tmp_path / "good.pcap"
    with good.open("wb") as f:
        pcap.write_pcap(f, [_packets()[0]])
    assert main(["decode", str(good), "--strict", *KEY_ARGS]) == 0


def test_hex_argument(capsys: pytest.CaptureFixture[str]) -> None:
    raw = _rrp().raw
    spaced = " ".join(raw[i : i + 4].hex() for i in range(0, len(raw), 4))
    status, (obj,) = _run_json(capsys, "--hex", spaced, "--key", KEYS[0])
    assert status == 0
    assert "frame" not in obj
    assert obj["fields"]["home_address"] == MN
    assert obj["extensions"][0]["verified"] is True


def test_hex_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(_rrq().raw.hex() + "\n"))
    _, (obj,) = _run_json(capsys, "--hex")
    assert obj["fields"] == EXPECTED_RRQ_FIELDS
    assert [e["verified"] for e in obj["extensions"] if "verified" in e] == [None, None]


def test_hex_of_whole_ip_packet(capsys: pytest.CaptureFixture[str]) -> None:
    pkt = pcap.ipv4_udp(MN, FA, _rrq().raw, sport=5000)
    _, (obj,) = _run_json(capsys, "--hex", pkt.hex())
    assert (obj["src"], obj["dst"], obj["sport"]) == (MN, FA, 5000)
    assert obj["fields"] == EXPECTED_RRQ_FIELDS


def test_raw_file_and_icmp_raw_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "rrq.bin"
    f.write_bytes(_rrq().raw)
    _, (obj,) = _run_json(capsys, str(f))
    assert obj["fields"] == EXPECTED_RRQ_FIELDS
    g = tmp_path / "adv.bin"
    g.write_bytes(_adv())
    _, (adv,) = _run_json(capsys, str(g))
    assert adv["protocol"] == "icmp" and adv["extensions"][0]["fields"]["sequence"] == 7


def test_unknown_non_skippable_extension(capsys: pytest.CaptureFixture[str]) -> None:
    raw = _rrq().raw
    bad = raw[:24] + bytes((99, 1, 0)) + raw[24:]
    status, (obj,) = _run_json(capsys, "--hex", bad.hex())
    assert status == 0
    assert obj["discarded"] is True
    assert obj["unknown_extension_type"] == 99
    assert obj["note"] == "would be discarded (RFC 5944 §1.9)"
    assert obj["offset"] == 24
    assert obj["fields"] == EXPECTED_RRQ_FIELDS  # the fixed part is still shown


def test_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["decode", str(_capture(tmp_path)), *KEY_ARGS])
    out = capsys.readouterr().out
    assert status == 0
    assert "frame 1 " in out and "registration_request" in out
    assert "verified: true" in out and "verified: false" in out  # the words of --json
    assert "nai: 'joe@example.org'" in out
    assert "flags: 0x82 [S T]" in out
    assert "ERROR: extension 131" in out and "[frame offset 66]" in out
    assert out.rstrip().endswith("not checked")


def test_bad_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.pcap"
    assert main(["decode", str(missing)]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "no such file" in err


@pytest.mark.parametrize(
    ("argv", "needle", "status"),
    [
        (["--hex", "01zz"], "not hex", 1),
        (["--hex", "012"], "odd number of hex digits", 1),
        # a bad command line is 2, as the help says (issue 9 item 12)
        (["--key", "300"], "expected SPI=HEX", 2),
        (["--key", "x=00"], "not a number", 2),
        (["--key", "300=00:sha1"], "unknown algorithm", 2),
        ([], "no input", 2),
    ],
)
def test_bad_inputs(
    argv: list[str], needle: str, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv and argv[0] == "--key":
        argv = ["--hex", "01", *argv]
    assert main(["decode", *argv]) == status
    assert needle in capsys.readouterr().err


def test_corrupt_capture_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.pcapng"
    f.write_bytes(b"\x0a\x0d\x0d\x0a\x1c\0\0\0\xde\xad\xbe\xef")
    assert main(["decode", str(f)]) == 1
    err = capsys.readouterr().err
    assert str(f) in err and "byte-order magic" in err


def test_truncated_capture_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _capture(tmp_path)
    f.write_bytes(f.read_bytes()[:-10])
    status, objs = _run_json(capsys, str(f))
    assert status == 0
    assert objs[-1]["frame"] == 7 and "error" in objs[-1]
    assert objs[-2]["frame"] == 6 and "error" not in objs[-2]


def test_parse_helpers() -> None:
    assert parse_hex("0x01:02 03\n04") == b"\x01\x02\x03\x04"
    k = parse_key("0x100=0A0b:KEYED-MD5")
    assert (k.spi, k.key, k.algorithm) == (256, b"\x0a\x0b", Algorithm.KEYED_MD5)


def test_cli_registry() -> None:
    """Every module in COMMANDS registers at least one subcommand; ours parse."""
    assert "mip4.tools.decode_cmd" in COMMANDS
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"decode", "demo", "bench"} <= set(sub.choices)
    assert len(sub.choices) >= len(COMMANDS)
    for argv in (["decode", "x.pcap"], ["demo"], ["bench", "codec"]):
        assert callable(parser.parse_args(argv).func)
    only_ours = build_parser(("mip4.tools.demo",))
    (sub,) = [a for a in only_ours._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == {"demo"}


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    objs = [json.loads(x) for x in lines[1:]]
    assert len(objs) == 12
    verified = [e["verified"] for o in objs for e in o.get("extensions", ()) if "verified" in e]
    assert verified.count(True) == 11 and verified.count(False) == 2 and None not in verified
    assert [e["type"] for e in objs[3]["extensions"]] == [131, 132, 32, 137, 34]
    assert [o["type"] for o in objs[-2:]] == [7, 15]
    assert objs[7]["frame"] == 8 and "error" in objs[7]
    assert objs[8]["discarded"] is True


def test_bundled_sample_is_up_to_date(tmp_path: Path) -> None:
    from mip4.tools.sample import sample_path, write_sample

    fresh = tmp_path / "sample.pcap"
    write_sample(fresh)
    assert fresh.read_bytes() == sample_path().read_bytes(), (
        "src/mip4/data/sample.pcap is stale: run python -m mip4.tools.sample"
    )


def test_console_script_bad_file(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mip4")
    if not exe.exists():
        pytest.skip("mip4 console script not installed in this environment")
    r = subprocess.run(
        [str(exe), "decode", str(tmp_path / "missing.pcap")], capture_output=True, text=True
    )
    assert r.returncode == 1
    assert "missing.pcap: no such file" in r.stderr


def test_mn_aaa_chap_verification(capsys: pytest.CaptureFixture[str]) -> None:
    """SPI 2 (CHAP_SPI): ``--key 2=SECRET`` checks the MN-AAA authenticator (RFC 4721 §7)."""
    msg = RegistrationRequest(
        flags=RegistrationFlags.T,
        lifetime=300,
        home_address=IPv4Address(MN),
        home_agent=IPv4Address(HA),
        care_of_address=IPv4Address(FA),
        identification=1,
        extensions=(
            MobileNodeNAIExtension(b"joe@example.org"),
            MobileForeignChallengeExtension(b"\x11" * 16),
        ),
    )
    raw = sign_mn_aaa(msg, 2, b"chap secret").raw
    _, (good,) = _run_json(capsys, "--hex", raw.hex(), "--key", f"2={b'chap secret'.hex()}")
    assert good["extensions"][2]["name"] == "generalized_auth"
    assert good["extensions"][2]["fields"]["spi"] == 2
    assert good["extensions"][2]["verified"] is True
    _, (bad,) = _run_json(capsys, "--hex", raw.hex(), "--key", f"2={b'wrong'.hex()}")
    assert bad["extensions"][2]["verified"] is False


def test_reserved_spi_is_not_checked(capsys: pytest.CaptureFixture[str]) -> None:
    raw = _rrp().raw
    patched = raw[:22] + (200).to_bytes(4, "big") + raw[26:]  # MN-HA SPI 300 -> 200
    _, (obj,) = _run_json(capsys, "--hex", patched.hex(), "--key", f"200={KEY_HA.hex()}")
    ext = obj["extensions"][0]
    assert ext["fields"]["spi"] == 200
    assert ext["verified"] is None and "reserved" in ext["reason"]


def test_icmp_unknown_non_skippable_extension(capsys: pytest.CaptureFixture[str]) -> None:
    adv = bytearray(_adv() + b"\x32\x01\x00")  # extension 50: unknown, non-skippable
    adv[2:4] = b"\0\0"
    adv[2:4] = pcap.internet_checksum(bytes(adv)).to_bytes(2, "big")
    _, (obj,) = _run_json(capsys, "--hex", bytes(adv).hex())
    assert obj["protocol"] == "icmp" and obj["discarded"] is True
    assert obj["unknown_extension_type"] == 50
    assert obj["note"] == "would be discarded (RFC 5944 §1.9)"


def test_icmp_bad_checksum_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    adv = bytearray(_adv())
    adv[-1] ^= 0xFF
    status, (obj,) = _run_json(capsys, "--hex", bytes(adv).hex())
    assert status == 0 and "checksum" in obj["error"] and obj["offset"] == 2


def test_other_message_types(capsys: pytest.CaptureFixture[str]) -> None:
    """Every UDP-434 message class decodes through the tool with its own fields."""
    rev = RegistrationRevocation(
        flags=RevocationFlags.A,
        home_address=IPv4Address(MN),
        home_domain_address=IPv4Address(HA),
        foreign_domain_address=IPv4Address(FA),
        revocation_id=77,
    )
    _, (obj,) = _run_json(capsys, "--hex", rev.encode().hex())
    assert (obj["type"], obj["name"]) == (7, "registration_revocation")
    assert obj["fields"]["flags_names"] == ["A"]
    assert obj["fields"]["foreign_domain_address"] == FA
    assert obj["fields"]["revocation_id"] == 77
    inner = pcap.ipv4_udp(MN, "192.0.2.99", b"data", sport=1, dport=2)
    td = TunnelData(next_header=4, payload=inner)
    _, (obj,) = _run_json(capsys, "--hex", td.encode().hex())
    assert obj["name"] == "tunnel_data" and obj["extensions"] == []
    assert obj["fields"]["payload"] == inner.hex()
    assert obj["inner"] == {"src": MN, "dst": "192.0.2.99", "protocol": 17, "length": 32}
    bad = TunnelData(next_header=4, payload=b"\x45" + bytes(10))
    _, (obj,) = _run_json(capsys, "--hex", bad.encode().hex())
    assert "IPv4 header cut short" in obj["inner"]["error"]


def test_capture_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _capture(tmp_path, "pcapng").read_bytes()

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin())
    status, objs = _run_json(capsys, "-", *KEY_ARGS)
    assert status == 0
    assert [o["frame"] for o in objs] == [1, 2, 3, 4, 6, 7]


def _big_rrq() -> bytes:
    """A request too big for one 576-byte datagram (a 1200-byte CVSE)."""
    rrq = RegistrationRequest(
        flags=RegistrationFlags.T,
        lifetime=600,
        home_address=IPv4Address(MN),
        home_agent=IPv4Address(HA),
        care_of_address=IPv4Address(FA),
        identification=7,
        extensions=(CriticalVendorExtension(vendor_id=9, vendor_type=1, value=bytes(1200)),),
    )
    return sign(rrq, MobileHomeAuthExtension, SA_HA).raw


def test_fragmented_request_is_reassembled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _big_rrq()
    frags = pcap.fragment(pcap.ipv4_udp(MN, FA, raw, sport=5000, ident=0x4242), 576)
    assert len(frags) == 3
    other = pcap.ipv4_udp(HA, FA, _rrp().raw)
    packets = [(T, frags[2]), (T + 1, other), (T + 2, frags[0]), (T + 3, frags[1])]
    path = tmp_path / "frag.pcap"
    with path.open("wb") as f:
        pcap.write_pcap(f, packets)
    _, objs = _run_json(capsys, str(path), *KEY_ARGS)
    assert [o["frame"] for o in objs] == [2, 4]
    big = objs[1]
    assert big["reassembled_from"] == [1, 3, 4]
    assert "frame_offset" not in big and "payload_offset" not in big
    assert big["length"] == len(raw)
    assert big["extensions"][0]["fields"]["value"] == "00" * 1200
    assert big["extensions"][1]["verified"] is True


def test_missing_fragment_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frags = pcap.fragment(pcap.ipv4_udp(MN, FA, _big_rrq(), ident=0x4343), 576)
    path = tmp_path / "frag.pcap"
    with path.open("wb") as f:
        pcap.write_pcap(f, [(T, frags[0]), (T + 1, frags[2])])
    status, (obj,) = _run_json(capsys, str(path))
    assert status == 0
    assert obj["fragments"] == [1, 2] and "never completed" in obj["error"]
