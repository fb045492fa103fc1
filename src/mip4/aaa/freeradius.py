"""A minimal FreeRADIUS 3.x configuration for mip4, generated as text (pure: no file I/O).

FreeRADIUS verifies the MN-AAA authenticator with its stock ``chap`` module (see
:mod:`mip4.security.mn_aaa`) and returns the home address, home agent and MN-HA SPI/key from
its ``users`` file; nothing of mip4 runs inside the server. The caller writes
:func:`config_files` into a directory ``D`` and starts ``freeradius -f -d D`` (or ``-X``).

What the configuration holds (and why):

* modules ``chap``, ``files``, ``pap``, ``detail`` and ``always ok``; authorize runs
  ``chap; files; pap`` and ``Auth-Type CHAP { chap }`` authenticates;
* ``Post-Auth-Type REJECT`` empties the reply: without it FreeRADIUS sends the users-file
  reply items (a key, an address) inside the Access-Reject;
* accounting goes to one ``detail`` file (:attr:`FreeRadiusConfig.detail_path`);
* RFC 3957 key derivation in ``post-auth`` (:data:`KEY_DERIVATION_POLICY`): for a
  subscriber with an MN-HA SPI and no static key, a fresh 16-byte nonce
  (``Mip4-Key-Nonce``) and the key HMAC-SHA1(Cleartext-Password, nonce || User-Name),
  computed by FreeRADIUS's own ``randstr``/``hex``/``hmacsha1`` expansions (module ``expr``);
  likewise an MN-FA key for a foreign agent's request (:data:`MN_FA_KEY_POLICY`);
* ``reject_delay = 0`` (tests and the lab want the answer now) and ``status_server = yes``;
* the local dictionary ``dictionary.mip4`` shipped in ``mip4/data`` (the typed-octets alias
  ``Mip4-MN-HA-Shared-Key`` of 3GPP2-MN-HA-Shared-Key), copied next to it by the caller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .attributes import MN_FA_KEY_ATTRIBUTES

#: the local dictionary's file name in the configuration directory
LOCAL_DICTIONARY = "dictionary.mip4"


@dataclass(frozen=True)
class Subscriber:
    """One mobile node in the ``users`` file, known by its NAI (RFC 2794)."""

    nai: str
    #: the MN-AAA shared secret (what CHAP verifies); never printed
    secret: bytes = field(repr=False)
    home_address: ipaddress.IPv4Address | None = None
    home_agent: ipaddress.IPv4Address | None = None
    mn_ha_spi: int | None = None
    #: the MN-HA key returned in 3GPP2-MN-HA-Shared-Key (encrypted on the wire); never printed
    mn_ha_key: bytes | None = field(default=None, repr=False)
    #: RFC 3957: with an SPI and no static key, the server derives the MN-HA key from the
    #: node's AAA key (its Cleartext-Password) and a fresh nonce at each Access-Accept
    #: (:data:`KEY_DERIVATION_POLICY`)
    derive_mn_ha_key: bool = False
    #: Session-Timeout (27): how long what the server gives (a derived key) lasts, seconds
    session_timeout: int | None = None
    #: RFC 3957 MN-FA keys: with an SPI, each Access-Accept to a foreign agent carries a
    #: fresh MN-FA key derived as the MN-HA one (its own nonce), with this SPI
    #: (:data:`MN_FA_KEY_POLICY`)
    mn_fa_spi: int | None = None

    def __post_init__(self) -> None:
        if self.derive_mn_ha_key and (self.mn_ha_key is not None or self.mn_ha_spi is None):
            raise ValueError(f"{self.nai}: derive_mn_ha_key needs an mn_ha_spi and no mn_ha_key")


@dataclass(frozen=True)
class RadiusClientEntry:
    """A NAS (foreign or home agent) allowed to ask, with its shared secret."""

    name: str
    address: ipaddress.IPv4Address | ipaddress.IPv4Network
    secret: str = field(repr=False)


@dataclass(frozen=True)
class FreeRadiusConfig:
    """Where the server listens and keeps its state; every path is inside ``directory``."""

    directory: str
    address: ipaddress.IPv4Address
    auth_port: int
    acct_port: int
    clients: tuple[RadiusClientEntry, ...]
    subscribers: tuple[Subscriber, ...]

    @property
    def detail_path(self) -> str:
        return f"{self.directory}/radacct/detail"

    @property
    def log_path(self) -> str:
        return f"{self.directory}/log/radius.log"

    @property
    def pid_path(self) -> str:
        return f"{self.directory}/run/radiusd.pid"

    #: sub-directories the caller creates before starting the server
    SUBDIRS = ("log", "run", "radacct")


def _quote(value: str) -> str:
    if any(c in value for c in '"\\\n\r'):
        raise ValueError(f"value {value!r} cannot be put in a FreeRADIUS string")
    return f'"{value}"'


def _secret_text(secret: bytes) -> str:
    try:
        text = secret.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("a FreeRADIUS Cleartext-Password must be printable ASCII") from None
    if not text.isprintable():
        raise ValueError("a FreeRADIUS Cleartext-Password must be printable ASCII")
    return _quote(text)


#: RFC 3957 in FreeRADIUS's ``unlang``: a subscriber whose reply has an MN-HA SPI and no key
#: gets a fresh Key Generation Nonce (16 random bytes) and the MN-HA key
#: HMAC-SHA1(AAA key, nonce || NAI), the AAA key being its Cleartext-Password
#: (:func:`mip4.security.aaa_keys.derive_key` computes the same).
KEY_DERIVATION_POLICY = """\
		if (&reply:3GPP2-MN-HA-SPI && !&reply:Mip4-MN-HA-Shared-Key) {
			update reply {
				&Mip4-Key-Nonce := "0x%{randstr:hhhhhhhhhhhhhhhh}"
			}
			update control {
				&Tmp-Octets-0 := "0x%{hex:&reply:Mip4-Key-Nonce}%{hex:&User-Name}"
			}
			update reply {
				&Mip4-MN-HA-Shared-Key := "0x%{hmacsha1:&control:Tmp-Octets-0 &control:Cleartext-Password}"
			}
		}
"""  # noqa: E501 (one unlang line)


#: RFC 3957 MN-FA keys in ``unlang``: for a subscriber with an MN-FA SPI, an Access-Request
#: from a foreign agent (3GPP2-Foreign-Agent-Address, which mip4's foreign agents send) gets
#: a fresh nonce (``Mip4-MN-FA-Key-Nonce``) and the key HMAC-SHA1(AAA key, nonce || NAI)
#: (``Mip4-MN-FA-Key``); other requests (a home agent's) get no MN-FA SPI.
MN_FA_KEY_POLICY = """\
		if (&reply:Mip4-MN-FA-SPI && &request:3GPP2-Foreign-Agent-Address) {
			update reply {
				&Mip4-MN-FA-Key-Nonce := "0x%{randstr:hhhhhhhhhhhhhhhh}"
			}
			update control {
				&Tmp-Octets-1 := "0x%{hex:&reply:Mip4-MN-FA-Key-Nonce}%{hex:&User-Name}"
			}
			update reply {
				&Mip4-MN-FA-Key := "0x%{hmacsha1:&control:Tmp-Octets-1 &control:Cleartext-Password}"
			}
		}
		else {
			update reply {
				&Mip4-MN-FA-SPI !* ANY
			}
		}
"""


def radiusd_conf(cfg: FreeRadiusConfig) -> str:
    d = cfg.directory
    return f"""\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}/log
raddbdir = {d}
radacctdir = {d}/radacct
name = freeradius
confdir = {d}
modconfdir = {d}/mods-config
run_dir = {d}/run
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {cfg.pid_path}
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
	destination = files
	file = {cfg.log_path}
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}}
proxy_requests = no
$INCLUDE clients.conf
thread pool {{
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}}
modules {{
	chap {{
	}}
	pap {{
		normalise = yes
	}}
	files {{
		filename = {d}/users
	}}
	detail {{
		filename = {cfg.detail_path}
		escape_filenames = no
		permissions = 0600
		header = "%t"
	}}
	always ok {{
		rcode = ok
	}}
	expr {{
	}}
}}
server default {{
	listen {{
		type = auth
		ipaddr = {cfg.address}
		port = {cfg.auth_port}
	}}
	listen {{
		type = acct
		ipaddr = {cfg.address}
		port = {cfg.acct_port}
	}}
	authorize {{
		chap
		files
		pap
	}}
	authenticate {{
		Auth-Type CHAP {{
			chap
		}}
		Auth-Type PAP {{
			pap
		}}
	}}
	preacct {{
		ok
	}}
	accounting {{
		detail
		ok
	}}
	post-auth {{
{KEY_DERIVATION_POLICY}{MN_FA_KEY_POLICY}		ok
		Post-Auth-Type REJECT {{
			update reply {{
				&reply: !* ANY
			}}
		}}
	}}
}}
"""


def clients_conf(cfg: FreeRadiusConfig) -> str:
    out = []
    for c in cfg.clients:
        out.append(
            f"client {c.name} {{\n\tipaddr = {c.address}\n\tsecret = {_quote(c.secret)}\n"
            "\trequire_message_authenticator = no\n}\n"
        )
    return "".join(out)


def users_file(cfg: FreeRadiusConfig) -> str:
    out = []
    for s in cfg.subscribers:
        replies = []
        if s.home_address is not None:
            replies.append(f"Framed-IP-Address = {s.home_address}")
        if s.home_agent is not None:
            replies.append(f"3GPP2-Home-Agent-IP-Address = {s.home_agent}")
        if s.mn_ha_spi is not None:
            replies.append(f"3GPP2-MN-HA-SPI = {s.mn_ha_spi}")
        if s.mn_ha_key is not None:
            replies.append(f"Mip4-MN-HA-Shared-Key = 0x{s.mn_ha_key.hex()}")
        if s.session_timeout is not None:
            replies.append(f"Session-Timeout = {s.session_timeout}")
        if s.mn_fa_spi is not None:
            replies.append(f"Mip4-MN-FA-SPI = {s.mn_fa_spi}")
        head = f"{_quote(s.nai)} Cleartext-Password := {_secret_text(s.secret)}\n"
        out.append(head + ",\n".join(f"\t{r}" for r in replies) + "\n\n")
    return "".join(out)


def dictionary_file() -> str:
    """``dictionary`` in the configuration directory: pulls in the local one, then the
    RFC 3957 MN-FA key attributes (:data:`mip4.aaa.attributes.MN_FA_KEY_ATTRIBUTES`)."""
    return f"$INCLUDE {LOCAL_DICTIONARY}\n{MN_FA_KEY_ATTRIBUTES}"


def config_files(cfg: FreeRadiusConfig) -> dict[str, str]:
    """File name (relative to ``cfg.directory``) -> contents, except :data:`LOCAL_DICTIONARY`
    (ship it from ``mip4/data/freeradius-dictionary.mip4``)."""
    return {
        "radiusd.conf": radiusd_conf(cfg),
        "clients.conf": clients_conf(cfg),
        "users": users_file(cfg),
        "dictionary": dictionary_file(),
    }
