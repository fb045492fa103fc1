"""``mip4 bench engine``: one small table size measured in this process (the figures are
there and plausible, every registration was accepted, the mass expiry emptied the table),
the report prints the ratios, and bad arguments give one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

from mip4.tools.bench_registrations.engine import child, format_report


def test_one_size_measures_every_figure() -> None:
    out = child(300, renew_nodes=200, rounds=2, clock="cpu", baseline=True)
    assert out["bindings"] == 300 and out["renew_nodes"] == 200
    for key in ("first_rate", "renew_rate", "decode_verify_rate"):
        assert out[key] > 100, key
    # the engine does more than decoding and verifying
    assert out["renew_rate"] < out["decode_verify_rate"]
    assert out["expiry_calls"] >= 300 // 128
    assert out["rss_mib"] > 0 and out["gc_full_ms"] >= 0
    text = format_report(
        {"python": "3", "cpus": 2, "load": 1.0, "clock": "cpu", "sizes": [out, out]}
    )
    assert "1.00x" in text and "decode+verify" in text and "300" in text


def test_bad_arguments_exit_2_with_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mip4.tools.bench_registrations.engine", "--bindings", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--bindings" in r.stderr


def test_the_daemon_freezes_what_survives_older_collections() -> None:
    import gc

    from mip4.daemon.run import freeze_survivors

    before = gc.get_freeze_count()
    gc.callbacks.append(freeze_survivors)
    try:
        keep = [[i] for i in range(1000)]
        gc.collect(0)
        young = gc.get_freeze_count()
        gc.collect(1)
        assert gc.get_freeze_count() >= before + 1000 and young == before
        assert len(keep) == 1000
    finally:
        gc.callbacks.remove(freeze_survivors)
        gc.unfreeze()


def test_renewals_in_a_shuffled_order_over_the_whole_table() -> None:
    out = child(300, renew_nodes=50, rounds=1, clock="cpu", baseline=False, order="random")
    assert out["order"] == "random" and out["renew_nodes"] == 50 and out["renew_rate"] > 100
    text = format_report(
        {"python": "3", "cpus": 2, "load": 1.0, "clock": "cpu", "sizes": [out, out]}
    )
    assert "order random" in text


def test_the_sas_as_table_rows_or_as_objects() -> None:
    """Every registration is accepted with either store (the renewals' rate is only there
    when every one of them was); the report says which."""
    for store in ("table", "objects"):
        out = child(200, renew_nodes=50, rounds=1, clock="cpu", baseline=False, sa_store=store)
        assert out["sa_store"] == store and out["first_rate"] > 100 and out["renew_rate"] > 100
        text = format_report(
            {"python": "3", "cpus": 2, "load": 1.0, "clock": "cpu", "sizes": [out, out]}
        )
        assert f"SAs as {store}" in text
