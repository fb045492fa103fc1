"""The throughput plot: PNG through matplotlib, the hand-written SVG fallback, and the
automatic choice between them."""

from __future__ import annotations

import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from mip4.demo import plot as plot_mod
from mip4.demo.plot import _ticks, plot, plot_data, render_svg
from mip4.demo.report import DemoReport

from . import sample

SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def test_plot_data_is_relative_to_the_start() -> None:
    d = plot_data(sample.sample_report())
    assert len(d.series) == 4 and d.series[0].label == "cn dials mn: cn → mn"
    assert [m.at for m in d.markers] == pytest.approx([4.0, 9.0, 14.0, 19.0])
    assert d.markers[0].until == pytest.approx(4.35)
    assert d.markers[0].label == "→ a  CoA 10.2.0.2" and d.markers[3].label == "→ home"
    # 20 kB per 100 ms is 1.6 Mbit/s
    assert max(y for _t, y in d.series[0].points[:30]) == pytest.approx(1.6)
    assert d.gaps[0][0] == pytest.approx(4.0, abs=0.02) and d.gaps[0][2] == pytest.approx(610)
    assert d.duration == pytest.approx(sample.DURATION)


@pytest.mark.skipif(not plot_mod.matplotlib_available(), reason="matplotlib not installed")
def test_png(tmp_path: Path) -> None:
    out = plot(sample.sample_report(), tmp_path / "demo.png")
    assert out == tmp_path / "demo.png"
    data = out.read_bytes()
    assert _png_size(data) == (1200, 650)
    assert len(data) > 20_000  # lines, labels and bars, not an empty canvas


@pytest.mark.skipif(not plot_mod.matplotlib_available(), reason="matplotlib not installed")
def test_png_without_probes_has_one_panel(tmp_path: Path) -> None:
    report = sample.sample_report(probe_sender=None)
    out = plot(report, tmp_path / "demo.png", backend="png")
    assert _png_size(out.read_bytes()) == (1200, 500)


def _svg_root(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return root


def test_svg_parses_and_marks_every_move(tmp_path: Path) -> None:
    out = plot(sample.sample_report(), tmp_path / "demo.svg")
    root = _svg_root(out)
    lines = root.findall(f".//{SVG}line[@class='move']")
    labels = [t.text for t in root.findall(f".//{SVG}text[@class='move-label']")]
    assert len(lines) == 4
    assert labels == ["→ a  CoA 10.2.0.2", "→ b  CoA 10.3.0.2", "→ c  CoA 10.4.0.100", "→ home"]
    assert len(root.findall(f".//{SVG}rect[@class='move-span']")) == 4
    assert len(root.findall(f".//{SVG}polyline[@class='series']")) == 4
    assert len(root.findall(f".//{SVG}rect[@class='gap']")) == 4
    # the move lines sit at 4, 9, 14 and 19 s of 24 on the 910-pixel-wide plot area
    xs = [float(line.get("x1", "nan")) for line in lines]
    assert xs == pytest.approx([70 + 910 * t / 24 for t in (4, 9, 14, 19)], abs=0.1)
    series = root.find(f".//{SVG}polyline[@class='series']")
    assert series is not None
    assert len(series.get("points", "").split()) == int(sample.DURATION / sample.IV)


def test_svg_escapes_text() -> None:
    d = plot_data(sample.sample_report(title="a <b> & c"))
    root = ET.fromstring(render_svg(d))
    assert root.findtext(f"{SVG}title") == "a <b> & c"


def test_png_falls_back_to_svg_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plot_mod, "matplotlib_available", lambda: False)
    out = plot(sample.sample_report(), tmp_path / "demo.png")
    assert out == tmp_path / "demo.svg" and not (tmp_path / "demo.png").exists()
    assert len(_svg_root(out).findall(f".//{SVG}line[@class='move']")) == 4


def test_matplotlib_detection_sees_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    assert plot_mod.matplotlib_available() is False


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown plot backend"):
        plot(sample.sample_report(), tmp_path / "x.png", backend="gif")


def test_ticks() -> None:
    assert _ticks(24) == [0, 5, 10, 15, 20]
    assert _ticks(1.0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert _ticks(3.3) == [0, 1, 2, 3]
    assert _ticks(0) == [0.0]


def test_command_line(tmp_path: Path) -> None:
    src = tmp_path / "r.json"
    sample.sample_report().write_json(src)
    run = subprocess.run(
        [sys.executable, "-m", "mip4.demo.plot", str(src), str(tmp_path / "p.svg")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(tmp_path / "p.svg")
    _svg_root(tmp_path / "p.svg")


def _short_gaps() -> DemoReport:
    """The sample run with probe gaps as short as a fast handover makes them (66-96 ms)."""
    r = sample.sample_report()
    gaps = tuple(
        (sample.T0 + start + 0.066 + 0.01 * i, 66.0 + 10 * i)
        for i, (_f, _t, start, *_rest) in enumerate(sample.MOVES)
    )
    return replace(r, probe_gaps=gaps)


@pytest.mark.skipif(not plot_mod.matplotlib_available(), reason="matplotlib not installed")
def test_png_every_probe_gap_bar_is_visible(tmp_path: Path) -> None:
    """The gap bars are not drawn in the move lines' colour and width at the same instants,
    where they vanished (issue 9, item 21): each of the four is a visible bar of its own."""
    import matplotlib.image

    out = plot(_short_gaps(), tmp_path / "demo.png", backend="png")
    pixels = matplotlib.image.imread(str(out))
    h = pixels.shape[0]
    lower = pixels[int(h * 0.66) : int(h * 0.86), :, :3]  # the gap panel, not the legend
    r, g, b = lower[..., 0], lower[..., 1], lower[..., 2]
    bar = (b > r + 0.2) & (b > g + 0.2)  # bluish: neither the red moves nor white/grey
    columns = [bool(bar[:, x].any()) for x in range(bar.shape[1])]
    runs, width = [], 0
    for on in [*columns, False]:
        if on:
            width += 1
        elif width:
            runs.append(width)
            width = 0
    assert len(runs) == 4, runs
    assert min(runs) >= 4, runs


def test_svg_gap_bars_are_distinct_and_wide_enough(tmp_path: Path) -> None:
    root = _svg_root(plot(_short_gaps(), tmp_path / "demo.svg"))
    bars = root.findall(f".//{SVG}rect[@class='gap']")
    assert len(bars) == 4
    for bar in bars:
        assert bar.get("fill") != plot_mod.MOVE_COLOR
        assert float(bar.get("width", "0")) >= 4.0


def test_fine_timelines_are_drawn_as_100_ms_averages() -> None:
    """The demo records 10 ms timelines (so a TCP stall is measured to 10 ms); the plot
    averages them over 100 ms, as it drew the 100 ms timelines before."""
    coarse = sample.sample_report()
    fine_dirs = []
    for c in coarse.connections:
        dirs = tuple(
            replace(
                d,
                interval=0.01,
                counts=tuple(n // 10 for n in d.counts for _ in range(10)),
            )
            for d in c.directions
        )
        fine_dirs.append(replace(c, directions=dirs))
    fine = replace(coarse, connections=tuple(fine_dirs))
    a, b = plot_data(coarse).series, plot_data(fine).series
    assert [len(s.points) for s in b] == [len(s.points) for s in a]
    for sa, sb in zip(a, b, strict=True):
        assert [t for t, _ in sb.points] == pytest.approx([t for t, _ in sa.points])
        assert [v for _, v in sb.points] == pytest.approx([v for _, v in sa.points], abs=1e-3)
