"""Is this URL's host a public address, as the fetcher that will read it sees it?

Reference URLs are fetched by someone else (OpenRouter's provider, a browser, Node's fetch). Those read
URLs the WHATWG way, which accepts spellings a naive parser (urllib) takes for a name: `127.1`,
`0x7f000001`, `2130706433`, `0177.0.0.1`, `%31%32%37.0.0.1`, full-width digits, a backslash ending
the host, tabs and newlines dropped... all of them loopback. So hosts are judged as Ada (the WHATWG
parser in Node.js, via ada-url) reads them, IPv6 addresses that wrap an IPv4 one are judged by the
IPv4 address they reach, and a URL whose host two parsers read differently is refused outright.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ada_url import HostType, parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[tuple[int, int, int, str, tuple[Any, ...]]]]

# Names that only ever mean this machine or a local network (RFC 6761, RFC 6762, RFC 8375, and the
# `.internal` zone clouds use for instance metadata such as metadata.google.internal).
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")

# Ranges refused whatever ipaddress's is_global says in the running Python version (its tables changed
# in 3.11.x, 3.12.x and 3.13): the embedded-address forms are unwrapped before these are consulted.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "192.0.0.0/24",  # IETF protocol assignments; Python < 3.12.4 calls most of it global
        "255.255.255.255/32",  # limited broadcast
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated, RFC 7526)
        "fc00::/7",  # unique local (RFC 4193)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, RFC 3879); is_global is True for it in Python 3.11
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): the operator chooses where the IPv4 sits
    )
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible (RFC 4291 2.5.5.1)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)


def canonical_host(url: str) -> str:
    """The host a WHATWG fetcher connects to: `https://0x7f000001/` -> `127.0.0.1`, IPv6 in brackets."""
    try:
        return parse_url(url, attributes=("hostname",))["hostname"]
    except ValueError:
        raise ValueError(f"{url[:100]!r} is not a valid URL (WHATWG URL parsing)") from None


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address delivers to: IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96),
    6to4 (2002::/16) and Teredo (2001::/32: server and client). Empty for every other address."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address in _IPV4_COMPATIBLE or address in _NAT64:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def is_public_ip(ip: str | IPAddress) -> bool:
    """True only for a globally reachable unicast address. An IPv6 address that wraps IPv4 ones is
    judged by those; multicast, unspecified, reserved, loopback, private, CGNAT, link-local,
    site-local, unique-local, broadcast and documentation ranges are refused."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return False  # a zone (fe80::1%eth0) only means something on one machine
        if any(address in net for net in _NOT_PUBLIC):
            return False
        wrapped = embedded_ipv4(address)
        if wrapped:
            return all(is_public_ip(inner) for inner in wrapped)
    if (
        address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or any(address in net for net in _NOT_PUBLIC)
    ):
        return False
    return address.is_global


def check_public_https_url(url: str, *, field_name: str = "URL") -> str:
    """`url` unchanged if it is an https URL that every fetcher reads as the same public host; else
    ValueError saying what is wrong (`field_name` starts the message)."""
    for position, char in enumerate(url):
        if char == "\\" or char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            raise ValueError(
                f"{field_name} must not contain control characters, whitespace or backslashes "
                f"(found U+{ord(char):04X} at position {position})"
            )
    if url[:8].lower() != "https://":
        raise ValueError(f"{field_name} must start with https://")
    try:
        parsed = parse_url(url, attributes=("protocol", "username", "password", "hostname", "host_type"))
    except ValueError:
        raise ValueError(f"{field_name} is not a valid URL") from None
    try:
        naive = urlsplit(url)
        naive_host = naive.hostname or ""
    except ValueError as exc:
        raise ValueError(f"{field_name} is not a valid URL ({exc})") from None
    if parsed["protocol"] != "https:":
        raise ValueError(f"{field_name} must start with https://")
    if parsed["username"] or parsed["password"] or "@" in naive.netloc:
        raise ValueError(f"{field_name} must not carry credentials (user:password@)")

    host = parsed["hostname"].lower().rstrip(".")
    naive_host = naive_host.lower().rstrip(".")
    address: IPAddress | None = None
    if parsed["host_type"] == HostType.IPV4:  # includes names whose last label is a number: 127.1, 0x7f.1
        address = ipaddress.IPv4Address(host)
    elif parsed["host_type"] == HostType.IPV6:
        address = ipaddress.IPv6Address(host.strip("[]"))
    spelled = "" if naive_host == str(address or host) else f" (written {naive_host!r})"
    if address is not None:
        if not is_public_ip(address):
            wrapped = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else ()
            reaches = f" (wrapping {' and '.join(map(str, wrapped))})" if wrapped else ""
            raise ValueError(f"{field_name} host {address}{reaches} is not a public address{spelled}")
    elif host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        raise ValueError(f"{field_name} host {host!r} is not publicly reachable{spelled}")
    elif "." not in host:
        raise ValueError(f"{field_name} host {host!r} is a single-label name, which only resolves locally{spelled}")

    # A naive parser (urllib, and code like it that a provider may run) must read the same host as a
    # WHATWG fetcher. They differ only for spellings such as percent-encoding, full-width characters,
    # IPv4 number forms (hex, octal, fewer than four parts) or Unicode names (the fetcher reads
    # punycode): a legitimate caller never needs them (a Unicode name can be sent as its xn-- form),
    # and they are how guards are slipped past.
    if address is not None and parsed["host_type"] == HostType.IPV6:
        agree = _as_ip(naive_host) == address  # [::127.0.0.1] and [::7f00:1] are one address
    else:
        agree = naive_host == host
    if not agree:
        raise ValueError(
            f"fetchers disagree on this {field_name}'s host: {naive_host!r} as written, "
            f"{str(address or host)!r} as a WHATWG fetcher reads it; write the host as the latter"
        )
    return url


def public_addresses(host: str, port: int, resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Every address `host` resolves to, if all of them are public; else ValueError naming the first
    that is not. Connect to one of these (not to the name again) so a second lookup cannot answer
    differently. Pass the canonical host (canonical_host), not the URL's spelling of it."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        results = resolver(name, port)
    except OSError as exc:  # socket.gaierror
        raise ValueError(f"host {host!r} does not resolve ({exc})") from None
    addresses: list[str] = []
    for *_, sockaddr in results:
        text = str(sockaddr[0])
        address = _as_ip(text)
        if address is None or not is_public_ip(address):
            raise ValueError(f"host {host!r} resolves to {text}, which is not a public address")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise ValueError(f"host {host!r} resolves to no address")
    return addresses


def _as_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
