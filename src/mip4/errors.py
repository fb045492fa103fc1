"""The root of every mip4 exception (the h2 ``exceptions.py`` pattern: one ``H2Error``).

``except Mip4Error`` catches anything mip4 raises on purpose; a bare ``Exception`` that is not
a :class:`Mip4Error` is a bug. This module is stdlib-only and imports nothing from mip4, so
every layer (``wire`` at the bottom included) may import it.

The tree (each class lives next to the code that raises it; the wire codes they carry stay
with them):

.. code-block:: text

    Mip4Error(Exception)
    ├── mip4.wire.errors.DecodeError(ValueError)          malformed bytes, with an offset
    │   └── mip4.wire.errors.UnknownExtensionError        RFC 5944 §1.9 type 0-127: discard
    ├── mip4.wire.errors.EncodeError(ValueError)          a field the wire cannot represent
    ├── mip4.security.auth.AuthenticationError(ValueError) an authenticator was not accepted
    ├── mip4.core.registration.RegistrationDenied         deny with a ReplyCode (the reply)
    ├── mip4.core.registration.Discard                    silently discard, counted by reason
    ├── mip4.core.registration.ProtocolError              no (state, input) transition
    ├── mip4.core.registration.ConfigError(ValueError)    a configuration value, file and key
    └── mip4.dataplane.errors.TunnelError(ValueError)     a packet the tunnel rules refuse
        └── mip4.dataplane.errors.PacketTooBig            RFC 2003 §5.1, carries the MTU

The I/O shell, the daemons, the lab and the tools re-base their own exceptions on
:class:`Mip4Error` in their modules (keeping ``OSError``/``RuntimeError`` bases where they
have them).
"""

from __future__ import annotations

__all__ = ["Mip4Error"]


class Mip4Error(Exception):
    """Base class of every exception mip4 raises on purpose."""
