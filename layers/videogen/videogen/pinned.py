"""A request to a URL a caller chose, pinned to the address that was checked.

Reference preflight and outbound webhooks both fetch URLs that callers choose, so neither may be usable
to reach inside the network: the host is judged as a WHATWG fetcher reads it
(addresses.check_public_https_url), resolved once (addresses.public_addresses: every address public), and
the connection goes to that checked address, the name kept only for TLS (SNI, certificate) and ``Host``,
so a second lookup (DNS rebinding) cannot answer differently. Each redirect hop is a new URL to pin.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from ada_url import parse_url

from videogen.addresses import Resolver, canonical_host, check_public_https_url, public_addresses


@dataclass(frozen=True)
class PinnedUrl:
    target: str  # the URL with the checked address in place of the name
    name: str  # for TLS (SNI, certificate) and Host
    host_header: str

    @property
    def extensions(self) -> dict[str, str]:
        """httpx request extensions: the name for SNI and certificate checks (httpcore's sni_hostname)."""
        return {"sni_hostname": self.name}


def pin(url: str, resolver: Resolver, *, allow_private: bool = False) -> PinnedUrl:
    """Check ``url`` and resolve its host once; ValueError says what is wrong. ``allow_private`` (local mode
    and tests only) lets loopback, private addresses and plain http through."""
    if allow_private:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
    else:
        check_public_https_url(url, field_name="URL")
    parts = parse_url(url, attributes=("protocol", "hostname", "port", "pathname", "search"))
    host = canonical_host(url)
    scheme = parts["protocol"].rstrip(":")
    port = int(parts["port"]) if parts["port"] else (443 if scheme == "https" else 80)
    literal = host.strip("[]")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(literal)
    except ValueError:
        ip = None
    if ip is not None:
        address = literal  # already judged by check_public_https_url
    elif allow_private:
        address = str(resolver(host, port)[0][4][0])
    else:
        address = public_addresses(host, port, resolver)[0]
    shown = f"[{address}]" if ":" in address else address
    default = (scheme, port) in (("https", 443), ("http", 80))
    host_header = host if default else f"{host}:{port}"
    return PinnedUrl(f"{scheme}://{shown}:{port}{parts['pathname']}{parts['search']}", literal, host_header)


_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """One TLS context for every pinned request of the process (building one per client costs more than a
    loopback fetch), with httpx's own CA bundle."""
    global _tls
    with _tls_lock:
        if _tls is None:
            import certifi

            _tls = ssl.create_default_context(cafile=certifi.where())
        return _tls
