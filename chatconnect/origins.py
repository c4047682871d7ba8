"""Allowed-domain patterns of a client, the Origin check and CORS of the public routes."""

import re
from functools import lru_cache

from flask import g, request

from .errors import ApiError
from .validation import Invalid

LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
PATTERN = re.compile(rf"(\*\.)?({LABEL}(?:\.{LABEL})*)(?::([1-9][0-9]{{0,4}}))?")
ORIGIN = re.compile(rf"(https?)://({LABEL}(?:\.{LABEL})*)(?::([1-9][0-9]{{0,4}}))?")
DEFAULT_PORTS = {"http": 80, "https": 443}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Visitor-Token, If-None-Match, Last-Event-ID",
    "Access-Control-Max-Age": "600",
}


def normalize_domain_pattern(value) -> str:
    """`example.com`, `*.example.com` or either with `:port`, lower-cased.

    Internationalised names are written in punycode (`xn--…`), as browsers send them."""
    if not isinstance(value, str) or not value.isascii():
        raise Invalid("must be a host name such as example.com or *.example.com "
                      "(internationalised names in punycode)")
    pattern = value.lower()
    match = PATTERN.fullmatch(pattern)
    if not match or len(pattern) > 253 or (match[3] and int(match[3]) > 65535):
        raise Invalid("must be a host name such as example.com or *.example.com, "
                      "optionally with :port, and no scheme or path")
    return pattern


def _origin_host_port(origin: str):
    """(host, port) of `scheme://host[:port]` whose host is a host name (or an IPv4 address),
    or None. Checked strictly before any pattern is tried: a suffix match alone would let
    `https://evil.com%2f.example.com` or `https://.example.com` pass for `*.example.com`."""
    match = ORIGIN.fullmatch(origin.lower())
    if not match or len(match[2]) > 253:
        return None
    port = int(match[3]) if match[3] else DEFAULT_PORTS[match[1]]
    return (match[2], port) if port <= 65535 else None


def origin_allowed(patterns, origin: str) -> bool:
    """Does `origin` (scheme://host[:port]) match one of the patterns? No patterns: any origin."""
    if not patterns:
        return True
    host_port = _origin_host_port(origin)
    if host_port is None:
        return False
    host, port = host_port
    for pattern in patterns:
        name, _, pattern_port = pattern.partition(":")
        if pattern_port and int(pattern_port) != port:
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]):
                return True
        elif host == name:
            return True
    return False


# Every page view of a customer site asks with the same few (patterns, Origin) pairs.
_origin_allowed_cached = lru_cache(maxsize=4096)(origin_allowed)


def check_public_origin(allowed_domains) -> None:
    """403 unless the request's Origin (if any) is allowed; remember it for the CORS echo."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if not _origin_allowed_cached(tuple(allowed_domains), origin):
        raise ApiError(403, "forbidden", "this site is not allowed to use this widget")
    g.cors_origin = origin


def add_cors_headers(response):
    """after_request of public blueprints: echo an allowed Origin, never allow credentials."""
    # No public view sets Vary itself (and a second Vary line would still be valid). Werkzeug's
    # header lookups raise and catch an exception per miss: on the hottest route, only adds.
    headers = response.headers
    headers.add("Vary", "Origin")
    origin = g.get("cors_origin")
    if origin:
        headers.add("Access-Control-Allow-Origin", origin)
        if response.status_code >= 400:  # refusals are the answers with a Retry-After
            # Not a CORS-safelisted response header: without this the widget could not read it.
            headers.add("Access-Control-Expose-Headers", "Retry-After")
        if request.method == "OPTIONS":
            headers.update(PREFLIGHT_HEADERS)
    return response
