"""Which addresses a webhook may reach: the guard against server-side request forgery.

A webhook URL is the customer's to choose, so without a guard anyone with an account could
make our servers POST to the metadata service (169.254.169.254), the database host or a
loopback port. The host is resolved, every address that is not public is refused, and the
caller connects to the very address that was checked, so a DNS answer that changes between
the check and the connection (rebinding) cannot switch it."""

import ipaddress
import socket
from urllib.parse import urlsplit

# IPv6 forms that carry an IPv4 address inside; the embedded address is what gets reached.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class Refused(ValueError):
    """The URL may not be called; the message says why, for the error and the delivery log."""


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Reachable on the public internet, and not a loopback, private (RFC 1918), link-local,
    shared (CGNAT), unique-local, unspecified, reserved or multicast address."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return False
        embedded = address.sixtofour or (address.teredo and address.teredo[1])
        if address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


def url_host_port(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; the host without brackets, lower-cased."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("must be an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("has an invalid port") from None
    return parts.scheme, host, port


def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`, in the resolver's order, all of them allowed.

    Raises Refused when the host does not resolve, or resolves to no allowed address."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise Refused(f"the host {host} does not resolve") from None
        candidates = []
        for info in infos:
            # An IPv6 answer may carry a zone (fe80::1%eth0), which is link-local anyway.
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if address not in candidates:
                candidates.append(address)
    allowed = [str(a) for a in candidates if allow_private or is_public(a)]
    if not allowed:
        raise Refused(f"the host {host} resolves to a non-public address "
                      f"({', '.join(map(str, candidates))})")
    return allowed
