"""mip4: a complete Mobile IPv4 suite (RFC 5944 and the MIP4 working group's extensions).

Layers (see ``docs/architecture.md``):

- :mod:`mip4.wire` -- the codec: one frozen dataclass per message and extension.
- :mod:`mip4.security` -- security associations, authenticators, replay protection.
- :mod:`mip4.core` -- sans-IO state machines for the mobile node, foreign and home agent.
- :mod:`mip4.dataplane` -- pure encapsulation and decapsulation.
- :mod:`mip4.io` -- the only layer that touches sockets, TUN devices and netlink.
"""

__version__ = "0.1.0"
