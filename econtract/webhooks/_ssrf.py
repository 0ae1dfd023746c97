"""Where the service may send an event: the URL rules and the address rules.

A subscription's URL is the caller's choice, and the service connects to it from inside the
government network: without rules, a subscription could make the service knock on an
internal system or a cloud metadata endpoint (server-side request forgery). So:

- the URL is absolute, ``https`` (``http`` only in development mode), without credentials
  or a fragment, at most :data:`MAX_URL_LENGTH` characters;
- every address its host resolves to must be public: loopback, private, link-local,
  metadata, shared, multicast, reserved and unspecified addresses are refused, unless
  ``settings.webhook_allowed_hosts`` names the host; development mode also allows loopback,
  so that a receiver on the same machine can be tested;
- the check runs when the subscription is made and again at every delivery, which connects
  to the very address it checked (resolving once), so that a name that later resolves
  elsewhere (DNS rebinding) is refused at delivery time.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from econtract.config import Settings
from econtract.errors import InvalidInputError

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata endpoints, named apart from link-local so that an answer says what it is.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class UnsafeURLError(InvalidInputError):
    """A subscription URL, or the address it resolves to, that the service will not call."""

    code = "unsafe-url"
    title = "The service will not send events to this URL."


@dataclass(frozen=True, kw_only=True)
class Target:
    """A checked destination: where to connect, and what to call it there."""

    url: str
    """The URL as the subscription names it."""
    host: str
    """Its host name (the TLS server name and the ``Host`` header)."""
    port: int
    address: IPAddress
    """The checked address the delivery connects to."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (one DNS answer, not cached here)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def address_class(address: IPAddress) -> str | None:
    """The class of an address the rules refuse (``loopback``, ``private``, …), or ``None``
    for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_class(address.ipv4_mapped)
    if address in METADATA_ADDRESSES:
        return "metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def check_url(url: str, settings: Settings) -> tuple[str, int]:
    """The host and port of an acceptable URL; :class:`UnsafeURLError` naming the rule
    otherwise. Does not resolve the host (see :func:`check_target`)."""

    def refuse(message: str) -> UnsafeURLError:
        return UnsafeURLError(message, errors=[("/url", message)])

    if len(url) > MAX_URL_LENGTH:
        raise refuse(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("The URL is not a valid absolute URL.") from None
    schemes = ("https",) if settings.mode == "production" else ("https", "http")
    if parts.scheme not in schemes:
        raise refuse(f"The URL's scheme must be {' or '.join(schemes)}, not {parts.scheme!r}.")
    if parts.username is not None or parts.password is not None:
        raise refuse("The URL must not carry credentials.")
    if parts.fragment:
        raise refuse("The URL must not have a fragment.")
    if not parts.hostname:
        raise refuse("The URL names no host.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_target(url: str, settings: Settings) -> Target:
    """Check ``url`` and every address its host resolves to now; return the address to
    connect to. :class:`UnsafeURLError` names the first address refused and its class."""
    host, port = check_url(url, settings)
    addresses = resolve(host, port)
    if not addresses:
        message = f"The host {host!r} does not resolve."
        raise UnsafeURLError(message, errors=[("/url", message)])
    allowed = host.lower() in {h.lower() for h in settings.webhook_allowed_hosts}
    for address in addresses:
        kind = address_class(address)
        if kind is None or allowed:
            continue
        if kind == "loopback" and settings.mode != "production":
            continue
        message = f"The host {host!r} resolves to {address}, a {kind} address."
        raise UnsafeURLError(message, errors=[("/url", message)])
    return Target(url=url, host=host, port=port, address=addresses[0])
