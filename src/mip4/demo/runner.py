"""Starting the instruments in the lab's namespaces and collecting what they report.

The orchestrator passes a ``popen(node, argv, **kw)`` callable — :meth:`mip4.lab.Lab.popen`
fits (``ip netns exec <ns> argv``, which execs, so the process it returns *is* the
instrument and a SIGTERM reaches it). Locally, for tests, :func:`local_popen` ignores the node.

* :class:`InstrumentProcess` — one ``python -m mip4.demo.<module>`` process; a reader thread
  drains its stdout into events (so the pipe never fills), :meth:`~InstrumentProcess.stop`
  asks it to finish (SIGTERM), :meth:`~InstrumentProcess.report` waits for its ``report``.
* :class:`StreamPair` — a traffic server and client: the server starts first, the client when
  the server listens; ``stop()`` stops the client, and the server follows on its own once
  the client's direction has ended (both half-close cleanly).
* :class:`ProbePair` — a probe receiver (echoing) and a sender.

Everything is bounded: each wait has a timeout, and :meth:`InstrumentProcess.close` kills a
process that did not end.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .report import ConnectionSpec
from .traffic import TrafficReport

Popen = Callable[..., "subprocess.Popen[bytes]"]


def local_popen(node: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
    """Run ``argv`` here (no namespace): for tests and trying the instruments on loopback."""
    return subprocess.Popen(list(argv), **kw)


class InstrumentError(RuntimeError):
    pass


class InstrumentProcess:
    """One instrument process and the JSON events it prints."""

    def __init__(self, popen: Popen, node: str, module: str, args: Sequence[str]) -> None:
        self.node = node
        self.module = module
        self.argv = [sys.executable, "-m", f"mip4.demo.{module}", *args]
        self.proc = popen(
            node,
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self.latest: dict[str, dict[str, Any]] = {}
        self._cursor: dict[str, int] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def __repr__(self) -> str:
        return f"<{self.module} on {self.node}, pid {self.proc.pid}>"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._queue.put(event)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if len(self._stderr) < 200:
                self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def _take(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None at the end of output; raises ``queue.Empty`` on timeout."""
        event = self._queue.get(timeout=max(0.0, timeout))
        if event is not None:
            self.events.append(event)
            self.latest[str(event.get("event"))] = event
        else:
            self._queue.put(None)  # stay at the end for later callers
        return event

    def poll_events(self) -> list[dict[str, Any]]:
        """Events that arrived since the last call, without waiting."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                event = self._take(0)
            except queue.Empty:
                return out
            if event is None:
                return out
            out.append(event)

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait (bounded) for the next event of ``kind``: each call returns a later one."""
        start = self._cursor.get(kind, 0)
        for i in range(start, len(self.events)):
            if self.events[i].get("event") == kind:
                self._cursor[kind] = i + 1
                return self.events[i]
        self._cursor[kind] = len(self.events)
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._take(deadline - time.monotonic())
            except queue.Empty:
                raise InstrumentError(f"{self!r}: no {kind!r} event in {timeout:g} s") from None
            if event is None:
                raise InstrumentError(
                    f"{self!r} exited ({self.proc.wait()}) before a {kind!r} event:"
                    f" {self.stderr.strip()[-500:]}"
                )
            if event.get("event") == kind:
                self._cursor[kind] = len(self.events)
                return event

    def stop(self) -> None:
        """Ask the instrument to finish cleanly and report (SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def report(self, timeout: float = 30.0) -> dict[str, Any] | None:
        """Wait (bounded) for the ``report`` event; None when the process ended without one
        or did not report in time (it is then killed)."""
        try:
            event = self.wait_event("report", timeout)
        except InstrumentError:
            self.close()
            return None
        event = {k: v for k, v in event.items() if k != "event"}
        self.proc.wait(timeout=5)
        return event

    def close(self) -> None:
        """Kill the process if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


@dataclass
class StreamPair:
    """A verified TCP stream between two nodes: ``spec.server`` listens, ``spec.client``
    connects to ``address``."""

    spec: ConnectionSpec
    server: InstrumentProcess
    client: InstrumentProcess

    @classmethod
    def start(
        cls,
        popen: Popen,
        spec: ConnectionSpec,
        *,
        address: str,
        port: int,
        seed: int,
        listen: str = "0.0.0.0",
        bind: str | None = None,
        duration: float = 120.0,
        rate: float | None = 200_000,
        progress: float | None = 1.0,
        options: Sequence[str] = (),
        connect_timeout: float = 15.0,
        connect_port: int | None = None,
    ) -> StreamPair:
        """Start the server on ``spec.server`` (listening on ``listen:port``; port 0 picks
        one) and, once it listens, the client on ``spec.client``, connecting to
        ``address:connect_port`` (default: the port the server listens on) from ``bind`` if
        given; return when both ends are connected. ``duration`` is a safety bound: stop the
        pair yourself with :meth:`stop`."""
        common = [
            "--name", spec.name, "--seed", str(seed), "--duration", str(duration),
            "--rate", str(rate or 0), "--connect-timeout", str(connect_timeout), *options,
        ]  # fmt: skip
        if progress:
            common += ["--progress", str(progress)]
        server = InstrumentProcess(
            popen,
            spec.server,
            "traffic",
            ["server", "--listen", listen, "--port", str(port), *common],
        )
        try:
            listening = server.wait_event("listening", timeout=10)
            target = connect_port or int(listening["port"])
            client_args = ["client", "--connect", address, "--port", str(target), *common]
            if bind:
                client_args += ["--bind", bind]
            client = InstrumentProcess(popen, spec.client, "traffic", client_args)
        except BaseException:
            server.close()
            raise
        pair = cls(spec, server, client)
        try:
            client.wait_event("connected", timeout=connect_timeout + 5)
            server.wait_event("connected", timeout=5)
        except BaseException:
            pair.close()
            raise
        return pair

    def progress(self) -> dict[str, dict[str, Any]]:
        """The latest progress event of each end (``"client"``, ``"server"``), if any."""
        out = {}
        for role, proc in (("client", self.client), ("server", self.server)):
            proc.poll_events()
            if "progress" in proc.latest:
                out[role] = proc.latest["progress"]
        return out

    def ended(self) -> bool:
        """True once either end's process has exited (before :meth:`stop`: it broke)."""
        return self.client.proc.poll() is not None or self.server.proc.poll() is not None

    def progress_line(self) -> str:
        """One line for a live display, e.g.
        ``cn dials mn: cn → mn 1.2 MB, mn → cn 1.1 MB verified``."""
        p = self.progress()
        parts = []
        for sender, receiver, role in (
            (self.spec.client, self.spec.server, "server"),
            (self.spec.server, self.spec.client, "client"),
        ):
            event = p.get(role)
            if event is None:
                parts.append(f"{sender} → {receiver} -")
                continue
            bad = f" ({event['mismatched']} MISMATCHED)" if event.get("mismatched") else ""
            parts.append(f"{sender} → {receiver} {event['verified'] / 1e6:.1f} MB{bad}")
        state = " [ENDED]" if self.ended() else ""
        return f"{self.spec.name}: {', '.join(parts)} verified{state}"

    def stop(self) -> None:
        """Stop sending on the client; the server follows when it sees the client's FIN."""
        self.client.stop()

    def reports(
        self, timeout: float = 60.0
    ) -> tuple[ConnectionSpec, TrafficReport | None, TrafficReport | None]:
        """Wait for both ends (bounded), as :func:`mip4.demo.report.build_report` takes them."""
        c = self.client.report(timeout)
        s = self.server.report(timeout)
        if s is None and c is not None:
            self.server.stop()
            s = self.server.report(5)
        return (
            self.spec,
            TrafficReport.from_dict(c) if c else None,
            TrafficReport.from_dict(s) if s else None,
        )

    def close(self) -> None:
        self.client.close()
        self.server.close()


@dataclass
class ProbePair:
    """UDP probes from ``sender_node`` to ``address:port`` on ``receiver_node`` (echoing)."""

    receiver: InstrumentProcess
    sender: InstrumentProcess

    @classmethod
    def start(
        cls,
        popen: Popen,
        *,
        sender_node: str,
        receiver_node: str,
        address: str,
        port: int,
        interval: float = 0.01,
        duration: float = 120.0,
        listen: str = "0.0.0.0",
        bind: str | None = None,
        send_port: int | None = None,
    ) -> ProbePair:
        """Start the receiver (on ``listen:port``, echoing) on ``receiver_node``, then the
        sender on ``sender_node`` towards ``address:send_port`` (default: the port the
        receiver listens on; ``port`` 0 picks one). ``duration`` bounds the sender
        (stop it earlier with :meth:`stop`); the receiver runs until :meth:`reports`."""
        receiver = InstrumentProcess(
            popen,
            receiver_node,
            "probe",
            [
                "recv",
                "--listen",
                listen,
                "--port",
                str(port),
                "--echo",
                "--realtime",
                "--duration",
                str(duration + 30),
            ],
        )
        try:
            listening = receiver.wait_event("listening", timeout=10)
            target = send_port or int(listening["port"])
            args = ["send", "--to", address, "--port", str(target), "--interval", str(interval),
                    "--duration", str(duration), "--realtime"]  # fmt: skip
            if bind:
                args += ["--bind", bind]
            sender = InstrumentProcess(popen, sender_node, "probe", args)
        except BaseException:
            receiver.close()
            raise
        return cls(receiver, sender)

    def stop(self) -> None:
        self.sender.stop()

    def reports(self, timeout: float = 30.0) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """``(sender report, receiver report)``: the receiver is stopped once the sender has
        reported (its linger lets the last probes arrive)."""
        s = self.sender.report(timeout)
        self.receiver.stop()
        r = self.receiver.report(timeout)
        return s, r

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()
