"""The subscriber table (CSV security associations for many nodes, issue 13): what it
accepts, every error naming the file and the line, and ``[subscribers] file`` in a daemon
configuration (added to the TOML associations, a duplicate named by line, one line and exit
2 on the command line)."""

from __future__ import annotations

import hmac
import itertools
from array import array
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from mip4.core.home_agent import HomeAgent
from mip4.core.registration import ConfigError
from mip4.daemon.config import load_config
from mip4.daemon.reload import reload
from mip4.daemon.run import build_engine, main
from mip4.security.sa import (
    DEFAULT_REPLAY_TOLERANCE,
    Algorithm,
    ReplayMethod,
    SecurityAssociation,
    SecurityAssociations,
)
from mip4.security.sa_table import (
    Associations,
    TableError,
    _address,
    _lines,
    load_table,
    parse_table,
)

KEY = "00112233445566778899aabbccddeeff"
HA = '[home_agent]\naddress = "10.1.0.2"\nhome_network = "10.1.0.0/24"\n'


def test_a_table_with_defaults_and_optional_columns() -> None:
    text = (
        "# subscribers\n\npeer,spi,key\n"
        f"10.1.0.16,65536,{KEY}\n"
        f" 10.1.0.17 , 65537 , {KEY.upper()[:30]}:ff \n"
    )
    rows = list(parse_table(text, "s.csv"))
    assert [(n, str(p), sa.spi) for n, p, sa in rows] == [
        (4, "10.1.0.16", 65536),
        (5, "10.1.0.17", 65537),
    ]
    sa = rows[0][2]
    assert sa.key == bytes.fromhex(KEY)
    assert sa.algorithm is Algorithm.HMAC_MD5 and sa.replay is ReplayMethod.TIMESTAMPS
    assert sa.spi_covered and sa.replay_tolerance == 7.0
    assert sa.authenticator(b"x") == hmac.digest(sa.key, b"x", "md5")

    text = (
        "spi_covered,replay_tolerance,replay,algorithm,key,spi,peer\n"
        f"false,3.5,nonces,keyed-md5,{KEY},300,192.0.2.1\n"
    )
    ((_, peer, sa),) = parse_table(text, "s.csv")
    assert peer == IPv4Address("192.0.2.1") and sa.spi == 300
    assert sa.algorithm is Algorithm.KEYED_MD5 and sa.replay is ReplayMethod.NONCES
    assert not sa.spi_covered and sa.replay_tolerance == 3.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"^s\.csv: no header line"),
        ("# only a comment\n", r"^s\.csv: no header line"),
        ("peer,spi\n", r"^s\.csv:1: header: missing column 'key'"),
        ("peer,spi,key,colour\n", r"^s\.csv:1: header: unknown column 'colour'"),
        ("peer,spi,key,spi\n", r"^s\.csv:1: header: a column named twice"),
        (f"peer,spi,key\n10.0.0.1,300,{KEY},x\n", r"^s\.csv:2: 4 values for 3 columns"),
        (f"peer,spi,key\n\n10.0.0.300,300,{KEY}\n", r"^s\.csv:3: peer: .*10\.0\.0\.300"),
        (f"peer,spi,key\n10.0.0.1,12,{KEY}\n", r"^s\.csv:2: spi: SPI 12 is reserved"),
        (f"peer,spi,key\n10.0.0.1,-3,{KEY}\n", r"^s\.csv:2: spi: '-3' is not a number"),
        (f"peer,spi,key\n10.0.0.1,{2**32},{KEY}\n", r"^s\.csv:2: spi: .*32 bits"),
        ("peer,spi,key\n10.0.0.1,300,\n", r"^s\.csv:2: key: empty key"),
        ("peer,spi,key\n10.0.0.1,300,xyz0\n", r"^s\.csv:2: key: not hexadecimal"),
        ("peer,spi,key\n10.0.0.1,300,abc\n", r"^s\.csv:2: key: odd number"),
        (
            f"peer,spi,key,algorithm\n10.0.0.1,300,{KEY},sha1\n",
            r"^s\.csv:2: algorithm: 'sha1' is not one of hmac-md5, keyed-md5",
        ),
        (f"peer,spi,key,replay\n10.0.0.1,300,{KEY},never\n", r"^s\.csv:2: replay: 'never'"),
        (
            f"peer,spi,key,replay_tolerance\n10.0.0.1,300,{KEY},-1\n",
            r"^s\.csv:2: replay_tolerance: -1\.0 must be >= 0",
        ),
        (
            f"peer,spi,key,replay_tolerance\n10.0.0.1,300,{KEY},nan\n",
            r"^s\.csv:2: replay_tolerance: nan must be >= 0",
        ),
        (f"peer,spi,key,spi_covered\n10.0.0.1,300,{KEY},yes\n", r"^s\.csv:2: spi_covered:"),
    ],
)
def test_every_bad_line_is_named(text: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        list(parse_table(text, "s.csv"))


def test_a_duplicate_is_named_by_its_line() -> None:
    store = SecurityAssociations()
    text = f"peer,spi,key\n10.0.0.1,300,{KEY}\n10.0.0.1,301,{KEY}\n10.0.0.1,300,{KEY}\n"
    with pytest.raises(TableError, match=r"^s\.csv:4: peer 10\.0\.0\.1: SPI 300 already"):
        load_table(text, "s.csv", store)


def _files(tmp_path: Path, table: str, toml_extra: str = "") -> Path:
    (tmp_path / "subs.csv").write_text(table)
    cfg = tmp_path / "ha.toml"
    cfg.write_text(
        HA
        + toml_extra
        + '[subscribers]\nfile = "subs.csv"\n'
        + f'[[security_associations]]\npeer = "10.1.0.9"\nspi = 256\nkey = "{KEY}"\n'
    )
    return cfg


def test_the_daemon_configuration_adds_the_table_to_the_toml_associations(
    tmp_path: Path,
) -> None:
    rows = "".join(f"10.1.0.{16 + i},{65536 + i},{KEY}\n" for i in range(200))
    cfg = load_config("ha", _files(tmp_path, "peer,spi,key\n" + rows))
    store = cfg.store()
    assert len(store) == 201
    assert store.get(IPv4Address("10.1.0.9"), 256) is not None
    assert store.get(IPv4Address("10.1.0.215"), 65536 + 199) is not None
    assert cfg.warnings == ()
    # the store parsing built, once (not indexed twice); after it a new one, the same
    again = cfg.store()
    assert again is not store and list(again) == list(store)
    assert [(p, sa.spi) for p, sa in cfg.associations] == [(p, sa.spi) for p, sa in store]


@pytest.mark.parametrize("block", [0, 1, 2, 7, 1 << 16])
def test_lines_are_read_a_block_at_a_time_as_splitlines_reads_them(block: int) -> None:
    """The table is read a block at a time (a million lines are not a million strings at
    once): the lines, and so the line numbers of errors, are ``splitlines``' own."""
    texts = ["", "a", "a\n", "a\r\nb\rc\x0bd\n\ne", "x\n" * 10, "\r\n\r\n", "a\x1cb\u2028"]
    texts += ["".join("ab\n\r\x0c "[(i * 7 + j * 3) % 6] for j in range(i)) for i in range(60)]
    for text in texts:
        assert list(_lines(text, block)) == text.splitlines(), (text, block)


def test_table_rows_get_the_checks_of_toml_associations_by_line(tmp_path: Path) -> None:
    bad = f"peer,spi,key\n10.1.0.16,300,{KEY}\n10.1.0.255,301,{KEY}\n"
    with pytest.raises(ConfigError, match=r"subs\.csv:3: peer: 10\.1\.0\.255 is the broadcast"):
        load_config("ha", _files(tmp_path, bad))
    dup = f"peer,spi,key\n10.1.0.9,256,{KEY}\n"
    with pytest.raises(ConfigError, match=r"ha\.toml: .*subs\.csv:2: peer 10\.1\.0\.9: SPI 256"):
        load_config("ha", _files(tmp_path, dup))
    # a warning per kind, summarised: not one line per row
    short = "peer,spi,key\n" + "".join(f"10.1.0.{16 + i},{300 + i},0011\n" for i in range(50))
    cfg = load_config("ha", _files(tmp_path, short))
    (warning,) = cfg.warnings
    assert "subs.csv:2: key: a 16-bit key" in warning and "(and 49 more lines" in warning


def test_a_bad_table_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _files(tmp_path, f"peer,spi,key\n10.1.0.16,12,{KEY}\n")
    assert main("ha", str(cfg), check_only=True) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "subs.csv:2: spi: SPI 12 is reserved" in err
    assert "Traceback" not in err
    (tmp_path / "subs.csv").unlink()
    assert main("ha", str(cfg), check_only=True) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "subscribers.file: cannot read" in err


def _pair(peer: str, spi: int, key: str = KEY) -> tuple[IPv4Address, SecurityAssociation]:
    return IPv4Address(peer), SecurityAssociation(spi, bytes.fromhex(key))


def test_associations_are_the_pairs_then_the_table_rows_in_order() -> None:
    """A configuration's associations keep a subscriber table's rows as two columns (12
    bytes a row); read back they are the same pairs, in file order, and compare as the
    tuple of those pairs did."""
    toml = [_pair("10.1.0.9", 256)]
    rows = [_pair("10.1.0.16", 65536), _pair("10.1.0.17", 65537, "ff" * 16)]
    a = Associations(toml, array("I", [int(p) for p, _ in rows]), [sa for _, sa in rows])
    pairs = tuple(toml + rows)
    assert len(a) == 3 and tuple(a) == pairs and list(a) == list(pairs)
    assert a == pairs and pairs == a and a != pairs[:2] and a != ()
    assert a[0] == pairs[0] and a[2] == pairs[2] and a[-1] == pairs[2] and a[-3] == pairs[0]
    assert a[1:] == pairs[1:] and a[::-1] == pairs[::-1]
    with pytest.raises(IndexError):
        a[3]
    with pytest.raises(IndexError):
        a[-4]
    same = Associations(toml, array("I", [int(p) for p, _ in rows]), [sa for _, sa in rows])
    assert a == same and hash(a) == hash(same)
    rekeyed = Associations(toml, array("I", [int(p) for p, _ in rows]), [rows[0][1], toml[0][1]])
    assert a != rekeyed and rekeyed != pairs
    assert Associations() == () and len(Associations()) == 0
    with pytest.raises(ValueError):
        Associations((), array("I", [1]), [])


def test_a_reload_applies_a_changed_table_to_the_running_store(tmp_path: Path) -> None:
    """SIGHUP with a changed subscriber table (issue 15's reload): a row rekeyed, one
    removed, one added -- in the engine's own store; the same table again changes nothing."""
    rows = "".join(f"10.1.0.{16 + i},{65536 + i},{KEY}\n" for i in range(3))
    running = load_config("ha", _files(tmp_path, "peer,spi,key\n" + rows))
    engine = build_engine(running)
    assert isinstance(engine, HomeAgent)
    store = engine.security_associations
    assert isinstance(store, SecurityAssociations) and len(store) == 4
    other = "ff" * 16
    changed = f"10.1.0.16,65536,{KEY}\n10.1.0.17,65537,{other}\n10.1.0.30,70000,{KEY}\n"
    r = reload(running, engine, load_config("ha", _files(tmp_path, "peer,spi,key\n" + changed)))
    assert r.applied == ("security_associations",) and r.refused == ()
    assert engine.security_associations is store and len(store) == 4
    rekeyed = store.get(IPv4Address("10.1.0.17"), 65537)
    assert rekeyed is not None and rekeyed.key == bytes.fromhex(other)
    assert store.get(IPv4Address("10.1.0.18"), 65538) is None
    assert store.get(IPv4Address("10.1.0.30"), 70000) is not None
    again = load_config("ha", _files(tmp_path, "peer,spi,key\n" + changed))
    assert reload(r.config, engine, again).applied == ()


def test_table_rows_are_not_indexed_by_key_and_still_sign_with_their_key() -> None:
    """A million rows, one key per node as a rule: no key index entry each (issue 13);
    rows that share a key after all sign with it (the table of the last keys used), and a
    TOML association with that key keeps its index entry."""
    store = SecurityAssociations()
    store.add(IPv4Address("10.1.0.9"), SecurityAssociation(256, bytes.fromhex(KEY)))
    rows = (
        f"peer,spi,key\n10.1.0.16,65536,{KEY}\n10.1.0.17,65537,{KEY}\n10.1.0.18,65538,{'ab' * 16}\n"
    )
    added = load_table(rows, "s.csv", store)
    assert len(store) == 4 and list(store._keys) == [bytes.fromhex(KEY)]
    data = b"registration request bytes"
    for _line, _peer, sa in added:
        assert sa.authenticator(data) == hmac.digest(sa.key, data, "md5")
    store.remove(IPv4Address("10.1.0.16"), 65536)  # a row's removal leaves the index alone
    assert list(store._keys) == [bytes.fromhex(KEY)]


def test_the_usual_three_columns_give_what_every_column_gives() -> None:
    """``peer,spi,key`` (read without a dict per row) and the same rows with every optional
    column at its default: equal associations, equal peers, equal line numbers."""
    rows = [f"10.1.0.{16 + i},{65536 + i},{KEY[:-2]}{i:02x}" for i in range(20)]
    usual = list(parse_table("peer,spi,key\n" + "\n".join(rows), "s.csv"))
    full = "peer,spi,key,algorithm,replay,replay_tolerance,spi_covered\n" + "\n".join(
        f"{row},hmac-md5,timestamps,{DEFAULT_REPLAY_TOLERANCE},true" for row in rows
    )
    assert usual == list(parse_table(full, "s.csv")) and len(usual) == 20
    assert usual[0][0] == 2 and usual[0][1] == IPv4Address("10.1.0.16")


@pytest.mark.parametrize(
    ("toml_extra", "row", "error", "warning"),
    [
        ("", "10.1.0.16", None, None),  # a usual home address: nothing to say
        ("", "10.9.0.7", None, "subs.csv:3: peer: 10.9.0.7 is outside home_network"),
        ("", "10.1.0.2", "subs.csv:3: peer: 10.1.0.2 is the home agent's own address", None),
        ("", "10.1.0.0", "subs.csv:3: peer: 10.1.0.0 is the network address", None),
        # with home_addresses, 10.1.0.17 (line 2) is not served; 10.1.0.20 is
        (
            'home_addresses = ["10.1.0.20"]\n',
            "10.1.0.20",
            None,
            "subs.csv:2: peer: 10.1.0.17 is in the home network but not in home_agent.home_",
        ),
        (
            'home_addresses = ["10.1.0.20"]\n',
            "10.1.0.16",
            None,
            "subs.csv:2: peer: 10.1.0.17 is in the home network but not in home_agent.home_",
        ),
    ],
)
def test_each_row_gets_the_home_agent_checks(
    tmp_path: Path, toml_extra: str, row: str, error: str | None, warning: str | None
) -> None:
    """The usual rows are passed on integers (a million rows); every other row gets the
    checks ``[[security_associations]]`` get, named by its line."""
    (tmp_path / "subs.csv").write_text(f"peer,spi,key\n10.1.0.17,70000,{KEY}\n{row},65536,{KEY}\n")
    conf = tmp_path / "ha.toml"
    conf.write_text(
        HA.replace("[home_agent]\n", "[home_agent]\n" + toml_extra)
        + '[subscribers]\nfile = "subs.csv"\n'
    )
    if error is not None:
        with pytest.raises(ConfigError) as raised:
            load_config("ha", conf)
        assert error in str(raised.value)
        return
    warnings = load_config("ha", conf).warnings
    if warning is None:
        assert warnings == ()
        return
    (only,) = warnings
    assert warning in only
    if row == "10.1.0.16" and toml_extra:  # the two rows, one kind: one line
        assert only.endswith("(and 1 more lines like it)")
    else:
        assert "more lines like it" not in only


def test_a_peer_is_read_as_ipv4address_reads_it() -> None:
    """The table's quick reading of a dotted quad accepts and refuses what
    ``IPv4Address`` does, with its error (leading zeros, octets over 255, other forms)."""
    words = ["0", "00", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256"]
    words += ["300", "010", "a", "", " 1", "+1", "1_0", "٣"]
    cases = ["1.2.3.4\n", "1.2.3.4 ", "", "1.2.3", "1.2.3.4.5", "4294967295"]
    cases += [".".join(t) for t in itertools.product(words[:6], words[6:12], words, words[::3])]
    for text in cases:
        try:
            want: object = IPv4Address(text)
        except ValueError as e:
            want = str(e)
        try:
            got: object = _address(text)
        except ValueError as e:
            got = str(e)
        assert got == want, text
