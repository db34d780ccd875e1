"""The reference-URL guard (videogen.addresses): every spelling of a non-public address is refused,
ordinary public URLs pass unchanged. Generated spellings are in test_address_properties.py."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from videogen.addresses import canonical_host, check_public_https_url, embedded_ipv4, is_public_ip, public_addresses
from videogen.errors import RequestRejected
from videogen.intake import parse_request


def full_width(text: str) -> str:
    """The full-width form of ASCII letters and digits (U+FF10 onwards), which fetchers map back."""
    return "".join(chr(ord(c) - 0x20 + 0xFF00) if c.isalnum() else c for c in text)


REFUSED = {
    # IPv4 number forms a WHATWG fetcher reads as 127.0.0.1 / 0.0.0.0 / 169.254.169.254
    "two-part 127.1": "https://127.1/a.png",
    "three-part 127.0.1": "https://127.0.1/a.png",
    "hex 0x7f000001": "https://0x7f000001/a.png",
    "upper-case hex 0X7F000001": "https://0X7F000001/a.png",
    "decimal 2130706433": "https://2130706433/a.png",
    "zero 0": "https://0/a.png",
    "zero 0.0.0.0": "https://0.0.0.0/a.png",
    "metadata as hex 0xa9fea9fe": "https://0xa9fea9fe/latest/meta-data",
    "metadata dotted": "https://169.254.169.254/latest/meta-data",
    "metadata as decimal": "https://2852039166/latest/meta-data",
    "octal 0177.0.0.1": "https://0177.0.0.1/a.png",
    "zero-padded octal 000177.0.0.01": "https://000177.0.0.01/a.png",
    "zero-padded hex 0x00007f.1": "https://0x00007f.1/a.png",
    "mixed 0x7f.0.0.0x1": "https://0x7f.0.0.0x1/a.png",
    "trailing dot 127.0.0.1.": "https://127.0.0.1./a.png",
    "with port 127.0.0.1:443": "https://127.0.0.1:443/a.png",
    "private 10.0.0.5": "https://10.0.0.5/a.png",
    "private 172.16.0.1 as hex": "https://0xac100001/a.png",
    "private 192.168.1.1 as 192.168.257": "https://192.168.257/a.png",
    "CGNAT 100.64.0.1": "https://100.64.0.1/a.png",
    # IPv6 wrappings of IPv4
    "IPv4-mapped [::ffff:127.0.0.1]": "https://[::ffff:127.0.0.1]/a.png",
    "IPv4-mapped hex [::ffff:7f00:1]": "https://[::ffff:7f00:1]/a.png",
    "IPv4-mapped metadata [::ffff:169.254.169.254]": "https://[::ffff:169.254.169.254]/a.png",
    "IPv4-compatible [::127.0.0.1]": "https://[::127.0.0.1]/a.png",
    "IPv4-compatible expanded": "https://[0:0:0:0:0:0:7f00:1]/a.png",
    "NAT64 [64:ff9b::7f00:1]": "https://[64:ff9b::7f00:1]/a.png",
    "NAT64 dotted [64:ff9b::127.0.0.1]": "https://[64:ff9b::127.0.0.1]/a.png",
    "NAT64 of 10.0.0.1": "https://[64:ff9b::a00:1]/a.png",
    "local-use NAT64 [64:ff9b:1::7f00:1]": "https://[64:ff9b:1::7f00:1]/a.png",
    "local-use NAT64 of a public address": "https://[64:ff9b:1::808:808]/a.png",
    "6to4 of 127.0.0.1": "https://[2002:7f00:1::1]/a.png",
    "6to4 of 192.168.1.1": "https://[2002:c0a8:101::1]/a.png",
    "6to4 of 169.254.169.254": "https://[2002:a9fe:a9fe::]/a.png",
    "Teredo with a documentation client": "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.png",
    "loopback [::1]": "https://[::1]/a.png",
    "loopback expanded": "https://[0:0:0:0:0:0:0:1]/a.png",
    "unspecified [::]": "https://[::]/a.png",
    "ULA [fd00::1]": "https://[fd00::1]/a.png",
    "link-local [fe80::1]": "https://[fe80::1]/a.png",
    "link-local with a zone": "https://[fe80::1%25eth0]/a.png",
    "site-local [fec0::1]": "https://[fec0::1]/a.png",
    "multicast [ff0e::1]": "https://[ff0e::1]/a.png",
    "documentation [2001:db8::1]": "https://[2001:db8::1]/a.png",
    # Encodings of the host
    "percent-encoded %31%32%37.0.0.1": "https://%31%32%37.0.0.1/a.png",
    "percent-encoded dots": "https://127%2E0%2E0%2E1/a.png",
    "percent-encoded name %65xample.com": "https://%65xample.com/a.png",
    "full-width digits": f"https://{full_width('127.0.0.1')}/a.png",
    "ideographic full stops": "https://127\u30020\u30020\u30021/a.png",
    "full-width localhost": f"https://{full_width('localhost')}/a.png",
    "Unicode name (fetchers read punycode)": "https://bücher.example/a.png",
    "soft hyphen inside a name": "https://exam\u00adple.com/a.png",
    # Names
    "localhost": "https://localhost/a.png",
    "LOCALHOST trailing dot": "https://LOCALHOST./a.png",
    "sub.localhost": "https://app.localhost/a.png",
    "mDNS .local": "https://printer.local/a.png",
    "metadata.google.internal": "https://metadata.google.internal/computeMetadata/v1/",
    "home.arpa": "https://nas.home.arpa/a.png",
    "single label": "https://intranet/a.png",
    "numeric last label that is not an address": "https://example.123/a.png",
    # Structure of the URL
    "backslash before the host's end": "https://127.0.0.1\\.example.com/a.png",
    "backslash in the path": "https://example.com\\a.png",
    "CR": "https://exam\rple.com/a.png",
    "LF": "https://exam\nple.com/a.png",
    "TAB": "https://127.0.0.\t1/a.png",
    "space": "https://example.com/a b.png",
    "NUL": "https://example.com/\x00.png",
    "credentials": "https://user:pw@example.com/a.png",
    "user only": "https://user@example.com/a.png",
    "empty credentials": "https://@example.com/a.png",
    "credentials hiding the host": "https://example.com@127.0.0.1/a.png",
    "three slashes": "https:///example.com/a.png",
    "http": "http://example.com/a.png",
    "no host": "https://",
    "bad port": "https://example.com:99999/a.png",
}

ACCEPTED = [
    "https://example.com/a.png",
    "https://cdn.example.org:8443/x?y=1",
    "https://[2606:4700::1111]/i.png",
    "https://8.8.8.8/x.png",
    "https://Example.COM./a.png",
    "https://xn--bcher-kva.example/a.png",
    "https://example.com/b%C3%BCcher.png#frag",
    "https://[::ffff:8.8.8.8]/x.png",
    "https://[2002:808:808::1]/x.png",
]


@pytest.mark.parametrize("url", REFUSED.values(), ids=REFUSED.keys())
def test_every_spelling_of_a_non_public_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError) as info:
        check_public_https_url(url)
    assert str(info.value).startswith(("URL ", "fetchers disagree")), str(info.value)


@pytest.mark.parametrize("url", ACCEPTED)
def test_ordinary_public_urls_are_accepted_unchanged(url: str) -> None:
    assert check_public_https_url(url) == url
    assert parse_request({"prompt": "p", "input_references": [{"image_url": {"url": url}}]})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://0x7f000001/", "host 127.0.0.1 is not a public address (written '0x7f000001')"),
        ("https://[::ffff:127.0.0.1]/", "(wrapping 127.0.0.1) is not a public address"),
        (f"https://{full_width('localhost')}/", "host 'localhost' is not publicly reachable"),
        ("https://%65xample.com/", "fetchers disagree on this URL's host: '%65xample.com' as written, 'example.com'"),
        ("https://bücher.example/", "'xn--bcher-kva.example' as a WHATWG fetcher reads it"),
        ("https://a\tb.example/", "found U+0009 at position 9"),
        ("https://u:p@example.com/", "must not carry credentials"),
        ("http://example.com/", "must start with https://"),
        ("https://intranet/", "single-label name"),
    ],
)
def test_messages_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_public_https_url(url)
    assert message in str(info.value)


def test_messages_start_with_the_field_name() -> None:
    with pytest.raises(ValueError, match=r"^webhook_url host 127\.0\.0\.1 is not a public address"):
        check_public_https_url("https://127.1/", field_name="webhook_url")


def test_the_api_model_refuses_them_naming_the_field() -> None:
    for url in ("https://0x7f000001/a.png", "https://[64:ff9b::127.0.0.1]/a.png", "https://%31%32%37.0.0.1/"):
        with pytest.raises(RequestRejected) as info:
            parse_request({"prompt": "p", "input_references": [{"image_url": {"url": url}}]})
        assert [e.field for e in info.value.errors] == ["input_references[0].image_url.url"]
        assert "not a public address" in info.value.errors[0].message


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://127.1/", "127.0.0.1"),
        ("https://0x7f000001/", "127.0.0.1"),
        ("https://2130706433/", "127.0.0.1"),
        ("https://0/", "0.0.0.0"),
        ("https://0xa9fea9fe/", "169.254.169.254"),
        ("https://0177.0.0.1/", "127.0.0.1"),
        ("https://%31%32%37.0.0.1/", "127.0.0.1"),
        (f"https://{full_width('127.0.0.1')}/", "127.0.0.1"),
        ("https://[::127.0.0.1]/", "[::7f00:1]"),
        (f"https://{full_width('localhost')}/", "localhost"),
        ("https://127.0.0.1\\.example.com/", "127.0.0.1"),
        ("https://exa\nmple.com/", "example.com"),
        ("https://EXAMPLE.com:8443/x", "example.com"),
    ],
)
def test_canonical_host_is_what_a_whatwg_fetcher_connects_to(url: str, host: str) -> None:
    assert canonical_host(url) == host


@pytest.mark.parametrize("url", ["https://example.123/", "https://[fe80::1%25eth0]/", "not a url", "https://a:b:c/"])
def test_canonical_host_refuses_what_ada_cannot_parse(url: str) -> None:
    with pytest.raises(ValueError, match="is not a valid URL"):
        canonical_host(url)


NOT_PUBLIC_IPS = {
    "loopback": "127.0.0.1",
    "loopback range": "127.255.255.254",
    "this network 0/8": "0.1.2.3",
    "unspecified v4": "0.0.0.0",
    "private 10/8": "10.1.2.3",
    "private 172.16/12": "172.31.255.255",
    "private 192.168/16": "192.168.0.1",
    "link-local / metadata": "169.254.169.254",
    "CGNAT 100.64/10": "100.127.255.254",
    "multicast v4": "224.0.0.1",
    "multicast v4 global scope": "233.252.0.1",
    "broadcast": "255.255.255.255",
    "reserved 240/4": "240.0.0.1",
    "documentation TEST-NET-1": "192.0.2.1",
    "documentation TEST-NET-2": "198.51.100.1",
    "documentation TEST-NET-3": "203.0.113.1",
    "benchmarking 198.18/15": "198.18.0.1",
    "IETF protocol 192.0.0/24": "192.0.0.8",
    "6to4 relay anycast": "192.88.99.1",
    "loopback v6": "::1",
    "unspecified v6": "::",
    "ULA fc00::/7": "fc00::1",
    "ULA fd00::/8": "fdff:ffff::1",
    "link-local v6": "fe80::1",
    "link-local v6 with zone": "fe80::1%eth0",
    "site-local fec0::/10": "fec0::1",
    "multicast v6": "ff02::1",
    "multicast v6 global scope": "ff0e::1",
    "documentation v6": "2001:db8::1",
    "discard-only 100::/64": "100::1",
    "reserved ::/8 (SIIT ::ffff:0:0:0/96)": "::ffff:0:7f00:1",
    "mapped loopback": "::ffff:127.0.0.1",
    "mapped public but 0/8": "::ffff:0.0.0.1",
    "compatible private": "::10.0.0.1",
    "NAT64 loopback": "64:ff9b::127.0.0.1",
    "NAT64 CGNAT": "64:ff9b::100.64.0.1",
    "local-use NAT64": "64:ff9b:1::808:808",
    "6to4 of 10.0.0.1": "2002:a00:1::",
    "6to4 of 0.0.0.0": "2002::1",
    "Teredo with private client": "2001:0:808:808:0:0:f5ff:fffe",  # client = ~0xf5fffffe = 10.0.0.1
    "Teredo with private server": "2001:0:a00:1:0:0:f7f7:f7f7",  # server 10.0.0.1, client 8.8.8.8
}
PUBLIC_IPS = {
    "Google DNS": "8.8.8.8",
    "Cloudflare v6": "2606:4700::1111",
    "Quad9 v6": "2620:fe::fe",
    "mapped public": "::ffff:8.8.8.8",
    "NAT64 public": "64:ff9b::808:808",
    "6to4 public": "2002:808:808::1",
    "Teredo public server and client": "2001:0:808:808:0:0:f7f7:f7f7",
}


@pytest.mark.parametrize("ip", NOT_PUBLIC_IPS.values(), ids=NOT_PUBLIC_IPS.keys())
def test_non_public_ranges_are_refused(ip: str) -> None:
    assert not is_public_ip(ip)
    assert not is_public_ip(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", PUBLIC_IPS.values(), ids=PUBLIC_IPS.keys())
def test_public_addresses_and_their_wrappings_are_accepted(ip: str) -> None:
    assert is_public_ip(ip)


def test_embedded_ipv4_unwraps_each_form() -> None:
    def v4(ip: str) -> list[str]:
        return [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(ip))]

    assert v4("::ffff:127.0.0.1") == ["127.0.0.1"]
    assert v4("::127.0.0.1") == ["127.0.0.1"]
    assert v4("64:ff9b::a9fe:a9fe") == ["169.254.169.254"]
    assert v4("2002:c0a8:101::") == ["192.168.1.1"]
    assert v4("2001:0:4136:e378:8000:63bf:3fff:fdd2") == ["65.54.227.120", "192.0.2.45"]
    assert v4("2606:4700::1111") == []


def fake_resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        results: list[tuple[int, int, int, str, tuple[Any, ...]]] = []
        for address in table[host]:
            if ":" in address:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            results.append((results[-1][0], socket.SOCK_DGRAM, 17, "", results[-1][4]))
        return results

    return resolve


RESOLVER = fake_resolver(
    {
        "cdn.example.org": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "localtest.me": ["127.0.0.1"],
        "mixed.example.org": ["93.184.215.14", "10.0.0.7"],
        "mapped.example.org": ["::ffff:169.254.169.254"],
        "empty.example.org": [],
        "2606:4700::1111": ["2606:4700::1111"],
    }
)


def test_public_addresses_returns_every_address_once_when_all_are_public() -> None:
    assert public_addresses("cdn.example.org", 443, RESOLVER) == [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]
    assert public_addresses("[2606:4700::1111]", 443, RESOLVER) == ["2606:4700::1111"]


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("localtest.me", "resolves to 127.0.0.1, which is not a public address"),
        ("mixed.example.org", "resolves to 10.0.0.7, which is not a public address"),
        ("mapped.example.org", "resolves to ::ffff:169.254.169.254, which is not a public address"),
        ("empty.example.org", "resolves to no address"),
        ("nowhere.example.org", "does not resolve"),
    ],
)
def test_public_addresses_refuses_a_name_with_any_non_public_address(host: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        public_addresses(host, 443, RESOLVER)
    assert message in str(info.value)


def test_public_addresses_defaults_to_the_system_resolver_for_literals() -> None:
    # Literals resolve without a network; the default resolver is socket.getaddrinfo.
    assert public_addresses("8.8.8.8", 443) == ["8.8.8.8"]
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        public_addresses("127.0.0.1", 443)
