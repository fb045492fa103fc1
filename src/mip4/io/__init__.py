"""mip4.io: the only layer that touches sockets, TUN devices, netlink and the clock.

==========================  ===============================================================
:mod:`mip4.io.netns`        namespaces (enter per thread, run, exec), links, addresses,
                            routes, rules, neighbours, proxy neighbours, sysctls -- the one
                            typed netlink facade (pyroute2)
:mod:`mip4.io.tun`          TUN devices created inside a namespace (IFF_TUN|IFF_NO_PI,
                            non-blocking, IPv6 off), batch reads into one buffer
:mod:`mip4.io.rawsock`      raw IPv4 tunnel sockets (4/47/55, IP_HDRINCL), router discovery
                            send/capture, AF_PACKET delivery and gratuitous ARP, the UDP 434
                            socket (interface/destination/TTL/sender MAC), ICMP errors
:mod:`mip4.io.forwarder`    the user-space tunnel: TUN <-> dataplane <-> raw sockets
:mod:`mip4.io.linkmon`      rtnetlink link/address changes -> LinkUp / LinkDown
:mod:`mip4.io.driver`       EngineDriver: events in, one timer, actions out
:mod:`mip4.io.executor`     LinuxExecutor: the kernel recipe for every action
:mod:`mip4.io.undo`         typed records of every kernel object made, one undo stack per
                            owner (daemon, binding, visitor, attachment), the crash journal
:mod:`mip4.io.runtime`      NodeIO: one node's I/O assembled for a daemon
:mod:`mip4.io.radius`       the RADIUS client on asyncio (AAA)
:mod:`mip4.io.bpf`          the tc-BPF tunnel data plane, controlled from Python
==========================  ===============================================================

Nothing is imported here, so ``import mip4.io`` stays cheap.
"""
