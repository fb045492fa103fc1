"""Capture helpers for the lab: ``tshark`` on every bridge (:class:`Capture`) and a
temporary nftables table in a node (:func:`nft_table`), for the control-message and
failure checks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .build import Lab


class Capture:
    """``tshark`` on every bridge of the lab (in the switch namespace), writing a pcapng;
    bounded by ``duration`` seconds. ``with Capture(lab, path, 60): ...`` stops it (SIGINT,
    then kill) on the way out."""

    def __init__(self, lab: Lab, path: Path, duration: float = 120.0) -> None:
        self.lab = lab
        self.path = path
        argv = ["tshark", "-q", "-n"]
        for net in lab.topology.net_keys():
            argv += ["-i", lab.bridge(net)]
        argv += ["-w", str(path), "-a", f"duration:{int(duration)}"]
        self.proc = lab.popen(
            lab.topology.switch,
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.stderr = b""
        # tshark says "Capturing on ..." once every interface is open
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not _capturing(path):
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=5)
        self.stderr = err or b""

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _capturing(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_size > 0
    return False


@contextlib.contextmanager
def nft_table(lab: Lab, node: str, name: str, body: str, family: str = "ip") -> Iterator[None]:
    """An nftables table ``family name { body }`` in ``node`` (``sw``: the switch, whose
    ``bridge`` family sees every frame on a link) for the block; always deleted."""
    subprocess.run(
        ["ip", "netns", "exec", lab.ns(node), "nft", "-f", "-"],
        input=f"table {family} {name} {{\n{body}\n}}\n",
        text=True,
        check=True,
        timeout=10,
    )
    try:
        yield
    finally:
        subprocess.run(
            ["ip", "netns", "exec", lab.ns(node), "nft", "delete", "table", family, name],
            check=False,
            timeout=10,
            capture_output=True,
        )
