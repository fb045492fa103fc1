"""libbpf (Debian's ``libbpf1``, ABI ≥ 1.0) through ctypes: the few calls the tc-BPF plane
needs, nothing more -- object open/load/close, program type and fd, map fd and pin path, map
element operations, the tc hook API, ``bpf_prog_test_run_opts``, the CPU count, and a BPF ring
buffer's consumer (``ring_buffer__new`` and its kin: libbpf maps the ring and reads its records;
the caller's :data:`RING_BUFFER_SAMPLE_FN` gets each one).

No ELF is parsed here: libbpf reads the object. Every libbpf ≥ 1.0 call returns ``-errno``
(integers) or ``NULL`` with ``errno`` set (pointers); :func:`check` turns both into
:class:`BpfError` (an ``OSError``) naming the call, with the last lines libbpf logged (the
verifier's complaint, for a load) attached.

The option structs carry their own size (``sz``) first, as libbpf ≥ 1.0 requires; their
layouts follow ``/usr/include/bpf/libbpf.h`` and ``bpf.h`` of libbpf 1.1.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections import deque
from typing import Any  # Any: ctypes function signatures and the libbpf print callback

from mip4.errors import Mip4Error

log = logging.getLogger("mip4.bpf")

LIBBPF_SONAME = "libbpf.so.1"

BPF_PROG_TYPE_SCHED_CLS = 3
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_TC_INGRESS = 1
BPF_TC_EGRESS = 2
BPF_TC_F_REPLACE = 1


class BpfError(Mip4Error, OSError):
    """A libbpf call failed (``errno`` set); ``log`` holds libbpf's last messages."""

    def __init__(self, err: int, call: str, log_lines: list[str] | None = None) -> None:
        text = f"{call}: {os.strerror(err)}"
        if log_lines:
            text += "\nlibbpf said:\n" + "".join(log_lines)
        super().__init__(err, text)
        self.call = call
        self.log = log_lines or []


class BpfUnavailable(Mip4Error, RuntimeError):
    """libbpf (``libbpf.so.1``) cannot be loaded on this machine."""


class BpfTcHook(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
    ]


class BpfTcOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    ]


class BpfTestRunOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class SkBuff(ctypes.Structure):
    """``struct __sk_buff`` (uapi ``linux/bpf.h``), the context of a tc program; a test run
    accepts only some fields (mark, priority, ifindex, ingress_ifindex, cb, tstamp,
    wire_len, gso_segs, gso_size, hwtstamp) and wants the rest zero."""

    _fields_ = [
        ("len", ctypes.c_uint32),
        ("pkt_type", ctypes.c_uint32),
        ("mark", ctypes.c_uint32),
        ("queue_mapping", ctypes.c_uint32),
        ("protocol", ctypes.c_uint32),
        ("vlan_present", ctypes.c_uint32),
        ("vlan_tci", ctypes.c_uint32),
        ("vlan_proto", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
        ("ingress_ifindex", ctypes.c_uint32),
        ("ifindex", ctypes.c_uint32),
        ("tc_index", ctypes.c_uint32),
        ("cb", ctypes.c_uint32 * 5),
        ("hash", ctypes.c_uint32),
        ("tc_classid", ctypes.c_uint32),
        ("data", ctypes.c_uint32),
        ("data_end", ctypes.c_uint32),
        ("napi_id", ctypes.c_uint32),
        ("family", ctypes.c_uint32),
        ("remote_ip4", ctypes.c_uint32),
        ("local_ip4", ctypes.c_uint32),
        ("remote_ip6", ctypes.c_uint32 * 4),
        ("local_ip6", ctypes.c_uint32 * 4),
        ("remote_port", ctypes.c_uint32),
        ("local_port", ctypes.c_uint32),
        ("data_meta", ctypes.c_uint32),
        ("flow_keys", ctypes.c_uint64),
        ("tstamp", ctypes.c_uint64),
        ("wire_len", ctypes.c_uint32),
        ("gso_segs", ctypes.c_uint32),
        ("sk", ctypes.c_uint64),
        ("gso_size", ctypes.c_uint32),
        ("tstamp_type", ctypes.c_uint8),
        ("_pad", ctypes.c_uint8 * 3),
        ("hwtstamp", ctypes.c_uint64),
    ]


_P = ctypes.c_void_p
_I = ctypes.c_int
_S = ctypes.c_char_p
_SIGS: dict[str, tuple[Any, list[Any]]] = {
    "bpf_object__open_file": (_P, [_S, _P]),
    "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__find_program_by_name": (_P, [_P, _S]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__find_map_by_name": (_P, [_P, _S]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_program__name": (_S, [_P]),
    "bpf_program__set_type": (_I, [_P, _I]),
    "bpf_program__fd": (_I, [_P]),
    "bpf_map__name": (_S, [_P]),
    "bpf_map__fd": (_I, [_P]),
    "bpf_map__set_pin_path": (_I, [_P, _S]),
    "bpf_map__unpin": (_I, [_P, _S]),
    "bpf_map__key_size": (ctypes.c_uint32, [_P]),
    "bpf_map__value_size": (ctypes.c_uint32, [_P]),
    "bpf_map__max_entries": (ctypes.c_uint32, [_P]),
    "bpf_map__set_max_entries": (_I, [_P, ctypes.c_uint32]),
    "bpf_map__map_flags": (ctypes.c_uint32, [_P]),
    "bpf_map__set_map_flags": (_I, [_P, ctypes.c_uint32]),
    "bpf_map__type": (_I, [_P]),
    "bpf_map_update_elem": (_I, [_I, _P, _P, ctypes.c_uint64]),
    "bpf_map_lookup_elem": (_I, [_I, _P, _P]),
    "bpf_map_delete_elem": (_I, [_I, _P]),
    "bpf_map_get_next_key": (_I, [_I, _P, _P]),
    "bpf_tc_hook_create": (_I, [_P]),
    "bpf_tc_hook_destroy": (_I, [_P]),
    "bpf_tc_attach": (_I, [_P, _P]),
    "bpf_tc_detach": (_I, [_P, _P]),
    "bpf_tc_query": (_I, [_P, _P]),
    "bpf_prog_test_run_opts": (_I, [_I, _P]),
    "libbpf_num_possible_cpus": (_I, []),
    # struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb,
    #                                      void *ctx, const struct ring_buffer_opts *opts)
    "ring_buffer__new": (_P, [_I, _P, _P, _P]),
    "ring_buffer__consume": (_I, [_P]),
    "ring_buffer__epoll_fd": (_I, [_P]),
    "ring_buffer__free": (None, [_P]),
    "libbpf_set_print": (_P, [_P]),
}

#: ``int (*)(enum libbpf_print_level, const char *fmt, va_list ap)``; on x86-64 and arm64
#: a ``va_list`` argument is passed as a pointer.
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

#: ``int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)``: one record of a
#: ring buffer (``data``: its ``size`` bytes, valid during the call). A negative return
#: stops ``ring_buffer__consume`` after this record (consumed), which returns it.
RING_BUFFER_SAMPLE_FN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)

#: libbpf's last messages, for the error of a failed call.
LOG_TAIL: deque[str] = deque(maxlen=60)

_LIBBPF_INFO = 1  # enum libbpf_print_level: WARN 0, INFO 1, DEBUG 2
_lib: ctypes.CDLL | None = None
_printer: Any = None


_vsnprintf = ctypes.CDLL(None).vsnprintf
_vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_vsnprintf.restype = ctypes.c_int


def _on_print(level: int, fmt: bytes | None, ap: int | None) -> int:
    if fmt is None:
        return 0
    buf = ctypes.create_string_buffer(1024)
    _vsnprintf(buf, len(buf), fmt, ap)
    line = buf.value.decode("utf-8", "replace")
    if level <= _LIBBPF_INFO:  # warnings and the verifier's log, not the debug chatter
        LOG_TAIL.append(line)
    log.debug("libbpf: %s", line.rstrip())
    return 0


def lib() -> ctypes.CDLL:
    """The loaded libbpf, its prototypes declared and its log routed to ``mip4.bpf``."""
    global _lib, _printer
    if _lib is not None:
        return _lib
    try:
        cdll = ctypes.CDLL(LIBBPF_SONAME, use_errno=True)
    except OSError as e:
        raise BpfUnavailable(f"{LIBBPF_SONAME} not found (Debian package libbpf1): {e}") from e
    for name, (res, args) in _SIGS.items():
        fn = getattr(cdll, name)
        fn.restype = res
        fn.argtypes = args
    _printer = _PRINT_FN(_on_print)
    cdll.libbpf_set_print(ctypes.cast(_printer, ctypes.c_void_p))
    _lib = cdll
    return cdll


def check(rc: int, call: str) -> int:
    """``rc`` if non-negative, else :class:`BpfError` for ``-rc``."""
    if rc < 0:
        raise BpfError(-rc, call, list(LOG_TAIL))
    return rc


def check_ptr(ptr: int | None, call: str) -> int:
    """``ptr`` if not NULL, else :class:`BpfError` for ``errno``."""
    if not ptr:
        err = ctypes.get_errno() or errno.EINVAL
        raise BpfError(err, call, list(LOG_TAIL))
    return ptr


__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_NOEXIST",
    "BPF_PROG_TYPE_SCHED_CLS",
    "BPF_TC_EGRESS",
    "BPF_TC_F_REPLACE",
    "BPF_TC_INGRESS",
    "RING_BUFFER_SAMPLE_FN",
    "BpfError",
    "BpfTcHook",
    "BpfTcOpts",
    "BpfTestRunOpts",
    "BpfUnavailable",
    "SkBuff",
    "check",
    "check_ptr",
    "lib",
]
