"""Property tests of the reference-URL guard: generated spellings of non-public addresses, in every
form a WHATWG fetcher accepts, are all refused; plain public addresses pass; and whatever the guard
accepts, a fetcher reads as a public address or a name."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videogen.addresses import canonical_host, check_public_https_url, is_public_ip

NON_PUBLIC_V4 = [
    ipaddress.IPv4Network(net)
    for net in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
] + [ipaddress.IPv4Network("0.0.0.0/8")]
# First octets whose whole /8 is ordinary public unicast (IANA's special-purpose registry), as an oracle
# independent of the code under test.
PUBLIC_FIRST_OCTETS = [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)]

FULL_WIDTH = {**{c: chr(0xFF10 + int(c)) for c in "0123456789"}, **{c: chr(0xFF41 + ord(c) - 97) for c in "abcdefx"}}
FULL_WIDTH.update({c.upper(): chr(0xFF21 + ord(c) - 97) for c in "abcdefx"})
FULL_WIDTH["."] = "\uff0e"  # full-width full stop; U+3002 (ideographic) maps to "." as well


def in_network(net: ipaddress.IPv4Network) -> st.SearchStrategy[ipaddress.IPv4Address]:
    return st.integers(int(net.network_address), int(net.broadcast_address)).map(ipaddress.IPv4Address)


non_public_v4 = st.sampled_from(NON_PUBLIC_V4).flatmap(in_network)
public_v4 = st.builds(
    lambda first, rest: ipaddress.IPv4Address((first << 24) | rest),
    st.sampled_from(PUBLIC_FIRST_OCTETS),
    st.integers(0, 2**24 - 1),
)
any_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


@st.composite
def number(draw: st.DrawFn, value: int) -> str:
    """One WHATWG IPv4 part: decimal, 0x hex (any case, zero-padded) or 0-prefixed octal (zero-padded)."""
    form = draw(st.sampled_from(["decimal", "hex", "octal"]))
    if form == "decimal":
        return str(value)  # no padding: a leading zero makes it octal
    if form == "hex":
        digits = f"{value:x}"
        digits = "0" * draw(st.integers(0, 3)) + digits
        digits = "".join(c.upper() if draw(st.booleans()) else c for c in digits)
        return draw(st.sampled_from(["0x", "0X"])) + digits
    return "0" * draw(st.integers(1, 3)) + f"{value:o}"


@st.composite
def whatwg_ipv4(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """`address` as 1-4 parts, the last absorbing the remaining bytes (127.1, 0x7f000001, 2130706433...)."""
    octets = address.packed
    parts = draw(st.integers(1, 4))
    values = [*octets[: parts - 1], int.from_bytes(octets[parts - 1 :], "big")]
    text = ".".join(draw(number(v)) for v in values)
    return text + ("." if draw(st.booleans()) else "")


@st.composite
def disguised(draw: st.DrawFn, host: str) -> str:
    """Full-width characters and percent-encoding sprinkled over `host` (a fetcher undoes both)."""
    out = []
    for char in host:
        if char in FULL_WIDTH and draw(st.integers(0, 3)) == 0:
            char = FULL_WIDTH[char]
        if draw(st.integers(0, 3)) == 0:
            encoded = quote(char, safe="")
            char = encoded if encoded != char else f"%{ord(char):02X}"
            char = char.lower() if draw(st.booleans()) else char
        out.append(char)
    return "".join(out)


@st.composite
def ipv6_wrapping(draw: st.DrawFn, inner: ipaddress.IPv4Address) -> str:
    """`inner` wrapped in IPv6 (mapped, compatible, NAT64, 6to4), compressed or expanded, any case,
    optionally with the embedded address in dotted form."""
    kind = draw(st.sampled_from(["mapped", "compatible", "nat64", "6to4"]))
    v4 = int(inner)
    value = {
        "mapped": (0xFFFF << 32) | v4,
        "compatible": v4,
        "nat64": (0x64FF9B << 96) | v4,
        "6to4": (0x2002 << 112) | (v4 << 80) | draw(st.integers(0, 2**80 - 1)),
    }[kind]
    groups = [f"{(value >> (112 - 16 * i)) & 0xFFFF:x}" for i in range(8)]
    groups = ["0" * draw(st.integers(0, 4 - len(g))) + g for g in groups]
    groups = ["".join(c.upper() if draw(st.booleans()) else c for c in g) for g in groups]
    head, tail = (groups[:6], [str(inner)]) if kind != "6to4" and draw(st.booleans()) else (groups, [])
    zeros = [i for i, g in enumerate(head) if int(g, 16) == 0]
    if zeros and draw(st.booleans()):  # "::" for any run of zero groups
        start = draw(st.sampled_from(zeros))
        end = start + 1
        while end in zeros and draw(st.booleans()):
            end += 1
        text = ":".join(head[:start]) + "::" + ":".join(head[end:] + tail)
    else:
        text = ":".join(head + tail)
    return f"[{text}]"


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), non_public_v4)
def test_every_whatwg_spelling_of_a_non_public_ipv4_is_refused(data: st.DataObject, ip: ipaddress.IPv4Address) -> None:
    spelled = data.draw(whatwg_ipv4(ip))
    host = data.draw(disguised(spelled)) if data.draw(st.booleans()) else spelled
    url = f"https://{host}/a.png"
    # The generator writes real spellings: a WHATWG fetcher reads this very address.
    assert canonical_host(url) == str(ip), url
    try:
        check_public_https_url(url)
    except ValueError:
        return
    raise AssertionError(f"{url} (a fetcher connects to {ip}) was accepted")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), non_public_v4)
def test_every_ipv6_wrapping_of_a_non_public_ipv4_is_refused(data: st.DataObject, ip: ipaddress.IPv4Address) -> None:
    host = data.draw(ipv6_wrapping(ip))
    url = f"https://{host}/a.png"
    canonical = ipaddress.IPv6Address(canonical_host(url).strip("[]"))  # a fetcher reads an IPv6 address
    assert canonical == ipaddress.IPv6Address(host.strip("[]")), url
    try:
        check_public_https_url(url)
    except ValueError:
        return
    raise AssertionError(f"{url} (wrapping {ip}) was accepted")


@given(public_v4, st.sampled_from(["", ":443", ":8443"]), st.sampled_from(["/", "/a.png", "/x/y.jpg?v=1"]))
def test_public_ipv4_in_dotted_decimal_is_accepted(ip: ipaddress.IPv4Address, port: str, path: str) -> None:
    url = f"https://{ip}{port}{path}"
    assert check_public_https_url(url) == url


HOST_PIECES = st.sampled_from(
    [*"0123456789abcdefxX.%[]:-", "\uff11", "\uff17", "\uff0e", "\u3002", "\uff58", "%2e", "%31"]
)


@st.composite
def random_host(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return "".join(draw(st.lists(HOST_PIECES, min_size=1, max_size=20)))
    if choice == 1:
        ip = draw(any_v4)
        return draw(disguised(draw(whatwg_ipv4(ip))))
    if choice == 2:
        return draw(ipv6_wrapping(draw(any_v4)))
    return draw(st.sampled_from(["example.com", "cdn.example.org", "x.localhost", "127.0.0.1.nip.io"]))


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(random_host())
def test_whatever_the_guard_accepts_a_fetcher_reads_as_a_public_address_or_a_name(host: str) -> None:
    url = f"https://{host}/a.png"
    try:
        check_public_https_url(url)
    except ValueError:
        return
    canonical = canonical_host(url).strip("[]")
    try:
        address = ipaddress.ip_address(canonical)
    except ValueError:
        assert "." in canonical and not canonical.rstrip(".").endswith("localhost"), url
        return
    assert is_public_ip(address), url
    if isinstance(address, ipaddress.IPv4Address):
        assert not any(address in net for net in NON_PUBLIC_V4), url
        assert host.rstrip(".") == canonical, f"{url}: accepted although written differently from {canonical}"
