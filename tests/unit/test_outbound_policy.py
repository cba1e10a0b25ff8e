"""The pure outbound policy: which locations the service's runs may fetch, in every spelling."""

from __future__ import annotations

import ipaddress

import pytest

from vmt.formats.outbound_policy import (
    REFUSED,
    OutboundRules,
    host_may_be_reached,
    parse_address,
    refusal,
)

SERVICE = OutboundRules()


@pytest.mark.parametrize(
    ("spelling", "meant"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0xA9FEA9FE", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("169.16689662", "169.254.169.254"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe"),
        ("[::ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_odd_spellings_are_read_as_inet_aton_reads_them(spelling: str, meant: str) -> None:
    assert parse_address(spelling) == ipaddress.ip_address(meant)


@pytest.mark.parametrize(
    "host", ["example.com", "1.2.3.4.5", "256.1.1.1", "0x", "08.1.1.1", "a.0x1", "", "1..2"]
)
def test_names_and_invalid_numbers_are_not_addresses(host: str) -> None:
    assert parse_address(host) is None


REFUSED_URLS = [
    "https://169.254.169.254/computeMetadata/v1/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://METADATA.google.internal./x",
    "https://metadata/x",
    "https://2852039166/x",
    "https://0xA9FEA9FE/x",
    "https://0251.0376.0251.0376/x",
    "https://[::ffff:169.254.169.254]/x",
    "https://[::ffff:a9fe:a9fe]/x",
    "https://[fd00:ec2::254]/x",
    "https://127.0.0.1/x",
    "https://127.1:8443/x",
    "https://localhost/x",
    "https://a.localhost/x",
    "https://[::1]/x",
    "https://0.0.0.0/x",
    "https://10.0.0.1/x",
    "https://172.16.5.4/x",
    "https://192.168.1.1/x",
    "https://100.64.0.1/x",
    "https://224.0.0.1/x",
    "https://[ff02::1]/x",
    "https://[fe80::1]/x",
    "https://[fc00::1]/x",
    "https://[2002:a9fe:a9fe::1]/x",
    "https://[64:ff9b::a9fe:a9fe]/x",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
    "http://example.com/a.jpg",
    "file:///etc/passwd",
    "/etc/passwd",
    "images/a.jpg",
    "ftp://example.com/a.jpg",
    "gopher://example.com/a",
    "https:///nohost",
]


@pytest.mark.parametrize("uri", REFUSED_URLS)
def test_the_service_refuses(uri: str) -> None:
    why = refusal(uri, SERVICE)
    assert why is not None and why.startswith(REFUSED)


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/a.jpg",
        "https://8.8.8.8/a.jpg",
        "gs://bucket/a.jpg",
        "https://[2606:4700::1]/",
    ],
)
def test_the_service_allows_public_https_and_gcs(uri: str) -> None:
    assert refusal(uri, SERVICE) is None


def test_a_refusal_never_says_what_the_location_is() -> None:
    assert refusal("https://169.254.169.254/x", SERVICE) == REFUSED
    assert refusal("https://metadata.google.internal/x", SERVICE) == REFUSED


def test_http_only_when_configured() -> None:
    assert refusal("http://example.com/a.jpg", OutboundRules.service(http=True)) is None
    assert refusal("http://10.0.0.1/a.jpg", OutboundRules.service(http=True)) is not None


def test_the_export_file_context_reads_local_files_and_any_address() -> None:
    rules = OutboundRules.export_file()
    for uri in ("/data/a.jpg", "file:///data/a.jpg", "http://127.0.0.1:8000/a.jpg", "a.jpg"):
        assert refusal(uri, rules) is None
    assert refusal("ftp://example.com/a", rules) is not None


def test_the_allowlist_opens_named_hosts_and_networks_only() -> None:
    rules = OutboundRules.service(["images.corp", "*.lan", "10.2.0.0/16", "127.0.0.1"])
    assert refusal("https://images.corp/a.jpg", rules) is None
    assert refusal("https://cam.office.lan/a.jpg", rules) is None
    assert refusal("https://10.2.3.4/a.jpg", rules) is None
    assert refusal("https://127.0.0.1:9000/a.jpg", rules) is None
    assert refusal("https://10.3.0.1/a.jpg", rules) is not None
    assert refusal("https://169.254.169.254/", rules) is not None
    assert refusal("https://other.corp/a.jpg", rules) is None  # a name: checked after DNS
    assert not rules.address_allowed(ipaddress.ip_address("192.168.0.1"))
    assert rules.address_allowed(ipaddress.ip_address("10.2.200.1"))
    assert rules.host_allowed("IMAGES.corp.") and not rules.host_allowed("evilimages.corp")


@pytest.mark.parametrize("entry", ["not a host", "http://x", "a/b/c", "10.0.0.0/40"])
def test_a_bad_allowlist_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        OutboundRules.service([entry])


def test_metadata_names_are_refused_before_dns() -> None:
    assert not host_may_be_reached("metadata.google.internal", SERVICE)
    assert host_may_be_reached("example.com", SERVICE)
