"""Network namespaces by name, outside any :class:`~mip4.io.netns.Netns`: entering one on the
calling thread (``setns(2)`` through ``ctypes``: Python 3.11 has no ``os.setns``), running a
function or a command in one, creating, listing and deleting them (the ``ip netns``
convention: a file under ``/run/netns``), and their sysctl values. Split out of
:mod:`mip4.io.netns` (which re-exports every name here), as h2 keeps its frame buffer apart
from the connection."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from .rtnl import NetnsError

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")

_libc: ctypes.CDLL | None = None


def _get_libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc


def _setns(fd: int) -> None:
    if _get_libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"setns: {os.strerror(err)}")


def netns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


def list_netns() -> list[str]:
    """Names of the namespaces under ``/run/netns``."""
    try:
        return sorted(p.name for p in NETNS_RUN_DIR.iterdir())
    except FileNotFoundError:
        return []


def netns_available() -> str | None:
    """``None`` when this process can create network namespaces, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (CAP_SYS_ADMIN) to create network namespaces"
    if not Path("/proc/self/ns/net").exists():
        return "the kernel has no network namespaces"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun"
    try:
        # iproute2 creates the namespaces and runs programs in them (create_netns, netns_exec)
        subprocess.run(["ip", "-V"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return "iproute2 (the ip command) is not installed"
    return None


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the block with the calling thread inside namespace ``name`` (``None``: stay).

    Sockets, TUN devices and ``/proc/sys/net`` files opened in the block belong to the
    namespace. The thread returns to its previous namespace even when the block raises.
    """
    if name is None:
        yield
        return
    try:
        target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError(errno.ENOENT, f"no network namespace {name!r}") from None
    try:
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(here)
        finally:
            os.close(here)
    finally:
        os.close(target)


def run_in_netns(
    name: str | None, func: Callable[..., T], *args: object, timeout: float = 30.0
) -> T:
    """Call ``func(*args)`` on a fresh thread that runs inside namespace ``name``.

    The caller's thread never changes namespace; the result (or exception) is handed back.
    ``timeout`` bounds the wait.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            with entered(name):
                result.append(func(*args))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{func!r} in namespace {name!r} did not return in {timeout} s")
    if error:
        raise error[0]
    return result[0]


def netns_exec(
    name: str | None,
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30.0,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (a list, no shell) inside namespace ``name`` and wait, bounded by
    ``timeout``; output is captured as text.

    ``ip netns exec`` because pyroute2 has no equivalent: it also gives the program a
    ``/sys`` of the namespace and the ``/etc/netns/NAME`` files, which a bare ``setns``
    before ``exec`` does not (Python 3.11 has no ``os.setns`` for a ``preexec_fn``
    either)."""
    cmd = ["ip", "netns", "exec", name, *argv] if name else list(argv)
    return subprocess.run(
        cmd, check=check, timeout=timeout, capture_output=True, text=True, input=input
    )


#: every namespace this process created (for leftover checks: a test session asserts that
#: none of them is left, without blaming it for namespaces of concurrent runs)
CREATED_HERE: set[str] = set()


def create_netns(name: str) -> None:
    if netns_path(name).exists():
        raise NetnsError(errno.EEXIST, f"network namespace {name!r} already exists")
    # ``ip netns add``: pyroute2's ``netns.create`` forks a child process to unshare, which
    # is no lighter than running ``ip`` and unsafe in a process with threads (the netlink
    # threads, an asyncio loop); both mount the namespace under /run/netns the same way
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=10)
    CREATED_HERE.add(name)


def netns_pids(name: str) -> list[int]:
    """Processes whose network namespace is ``name`` (pyroute2 compares the namespace
    of every process in /proc with the files under /run/netns)."""
    from pyroute2.netns import ns_pids

    pids: dict[str, list[int]] = ns_pids(str(NETNS_RUN_DIR))
    return sorted(pids.get(name, []))


def delete_netns(name: str, *, kill: bool = True) -> None:
    """Delete namespace ``name`` (no error if it is gone). With ``kill``, first terminate the
    processes still running in it (a namespace with processes outlives its name); each is
    signalled by its process id."""
    if not netns_path(name).exists():
        return
    if kill:
        for pid in netns_pids(name):
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
    from pyroute2.netns import remove

    with contextlib.suppress(FileNotFoundError):
        remove(name)  # unmount (detached) and unlink, as ``ip netns del`` does


def delete_by_prefix(prefix: str) -> list[str]:
    """Delete every namespace whose name starts with ``prefix``; returns their names."""
    if not prefix:
        raise ValueError("refusing to delete namespaces with an empty prefix")
    gone = [n for n in list_netns() if n.startswith(prefix)]
    for n in gone:
        delete_netns(n)
    return gone


# ----------------------------------------------------------------------------------------
# sysctl
# ----------------------------------------------------------------------------------------


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctl(key: str, netns: str | None = None) -> str:
    """Read ``key`` (``net.ipv4.ip_forward`` style; interface names may not contain dots)
    as seen from namespace ``netns``."""
    with entered(netns):
        return _sysctl_path(key).read_text().strip()


def write_sysctl(key: str, value: str | int, netns: str | None = None) -> str:
    """Write ``key`` in namespace ``netns``; returns the previous value."""
    with entered(netns):
        path = _sysctl_path(key)
        old = path.read_text().strip()
        path.write_text(f"{value}\n")
    return old


# ----------------------------------------------------------------------------------------
# A namespace and what we made in it
# ----------------------------------------------------------------------------------------
