"""mip4.io.bpf: the tc-BPF tunnel data plane (issue 12), controlled from Python.

==========================  ===============================================================
:mod:`mip4.io.bpf.libbpf`   libbpf (Debian ``libbpf1``) through ctypes: object, programs,
                            maps, tc hooks, ``bpf_prog_test_run_opts``
:mod:`mip4.io.bpf.plane`    :class:`~mip4.io.bpf.plane.BpfPlane`: load the shipped object,
                            bindings/peers as map updates, tc attach with replace, pinning,
                            per-CPU counters; :func:`~mip4.io.bpf.plane.supports_bpf_plane`
:mod:`mip4.io.bpf.agent`    :class:`~mip4.io.bpf.agent.FastPath`: each role's fast path (home
                            agent, foreign agent, co-located mobile node) in front of the
                            user-space plane (``[io] dataplane``), driven by
                            :class:`~mip4.io.executor.LinuxExecutor`
==========================  ===============================================================

The C source is ``bpf/mip4_tunnel.bpf.c`` (GPL-2.0-only, like the object built from it,
``mip4/data/mip4_tunnel.bpf.o``); ``bpf/Makefile`` builds it. Nothing is imported here.
"""

#: Entries of each per-address map as the object declares them (``max_entries``; the
#: per-direction counters hold three times as many); ``BpfPlane(capacity=...)``, from
#: ``[io] fast_path_capacity``, sizes them otherwise, within these bounds: the smallest the
#: daemons accept, and the largest (16 M; the kernel's limit is far above what memory allows).
CAPACITY = 65536
MIN_CAPACITY, MAX_CAPACITY = 1024, 1 << 24
