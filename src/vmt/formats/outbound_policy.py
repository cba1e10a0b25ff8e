"""Which user-supplied locations (a data row's ``row_data``, a pool row's image) may be fetched:
the pure half of the outbound policy; ``vmt.backends.outbound`` enforces it at connect time.

Two contexts:

- ``OutboundRules()`` (runs made by the service, the API, a Labelbox model run): ``https`` and
  ``gs://`` only (``http`` when ``http=True``); no local path or ``file://``; every address a
  name resolves to must be public: loopback, link-local (cloud metadata ``169.254.169.254``),
  private, shared (``100.64/10``), multicast, reserved and unspecified ranges are refused, in
  IPv4 and IPv6, IPv4-mapped (``::ffff:a.b.c.d``), 6to4, Teredo and NAT64 forms included. Host
  names and networks in the allowlist are let through (images on a team's private hosts).
- ``OutboundRules.export_file()`` (a CLI run on an export file the operator chose): local paths,
  ``file://``, ``http`` and any address.

Odd spellings of IPv4 (``2852039166``, ``0xA9FEA9FE``, ``0251.0376.0251.0376``, ``169.254.43518``)
are read as ``inet_aton`` reads them, so a literal host is judged by the address it means. Pure:
no DNS, no sockets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vmt.formats.image_uri import scheme

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "metadata.azure.com"}
)
"""Cloud metadata servers' names, refused before any DNS look-up (their addresses are too)."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
REFUSED = "refused by the outbound policy"
"""The one text of every refusal: it never says why, nor what the location resolved to."""


@dataclass(frozen=True, slots=True)
class OutboundRules:
    """What a fetch may reach. ``any_address``: no address check (the export-file context)."""

    local_files: bool = False
    http: bool = False
    any_address: bool = False
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def export_file(cls) -> OutboundRules:
        """A CLI run on an export file: local paths, ``file://``, http(s), gs://, any address."""
        return cls(local_files=True, http=True, any_address=True)

    @classmethod
    def service(cls, allowlist: Iterable[str] = (), *, http: bool = False) -> OutboundRules:
        """The service's rules with ``allowlist`` entries: host names (``images.corp``, or
        ``*.corp`` for every name under it), addresses or networks (``10.2.0.0/16``). Raises
        ``ValueError`` for an entry that is none of these."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in allowlist:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if not _is_host_name(entry.removeprefix("*.")):
                    raise ValueError(f"not a host name, address or network: {raw!r}") from None
                hosts.add(entry)
        return cls(http=http, allow_hosts=frozenset(hosts), allow_networks=tuple(networks))

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` (a name) is on the allowlist: its addresses are not checked."""
        name = host.lower().rstrip(".")
        if name in self.allow_hosts:
            return True
        return any(
            entry.startswith("*.") and name.endswith(entry[1:]) for entry in self.allow_hosts
        )

    def address_allowed(self, address: IPAddress) -> bool:
        """True for a public address, or one in an allowlisted network."""
        if self.any_address:
            return True
        if any(address in network for network in self.allow_networks):
            return True
        return all(_public(candidate) for candidate in _embedded(address))


def refusal(uri: str, rules: OutboundRules) -> str | None:
    """Why ``uri`` may not be fetched under ``rules`` (a text fit for any message: it names
    the scheme at most), or None when it may be, subject to the connect-time address check."""
    kind = scheme(uri)
    if kind in ("", "file"):
        return None if rules.local_files else f"{REFUSED}: local files are not read here"
    if kind == "gs":
        return None
    if kind not in ("http", "https"):
        return f"{REFUSED}: {kind}:// is not fetched"
    if kind == "http" and not rules.http:
        return f"{REFUSED}: http:// is not fetched here (https only)"
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        return f"{REFUSED}: not a valid URL"
    if not host:
        return f"{REFUSED}: no host"
    return None if host_may_be_reached(host, rules) else REFUSED


def host_may_be_reached(host: str, rules: OutboundRules) -> bool:
    """The check possible before DNS: metadata names and literal addresses (in any
    spelling). A name that passes is checked again on each address it resolves to."""
    if rules.any_address or rules.host_allowed(host):
        return True
    name = host.lower().rstrip(".")
    if name in METADATA_HOSTS or name == "localhost" or name.endswith(".localhost"):
        return False
    literal = parse_address(name)
    return literal is None or rules.address_allowed(literal)


def parse_address(host: str) -> IPAddress | None:
    """The address a literal host means, in any spelling ``inet_aton`` or ``inet_pton``
    accept (``[::1]``, ``::ffff:127.0.0.1``, ``2130706433``, ``0x7f.1``, ``017700000001``);
    None for a name."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    return _inet_aton(text)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _c_integer(part)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, number in enumerate(head):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _c_integer(part: str) -> int | None:
    """``part`` as C's ``strtoul(part, 0)`` reads it: 0x hex, leading-0 octal, or decimal."""
    try:
        if part.lower().startswith("0x"):
            return int(part[2:], 16) if part[2:].isalnum() else None
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def _embedded(address: IPAddress) -> list[IPAddress]:
    """``address`` and every IPv4 address it carries (mapped, 6to4, Teredo, NAT64)."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None or address.sixtofour is not None or address in _NAT64
    ):
        return True  # judged by the IPv4 address it carries
    return address.is_global and not address.is_multicast


def _is_host_name(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return bool(text) and all(
        label and len(label) <= 63 and all(ch.isalnum() or ch == "-" for ch in label)
        for label in labels
    )
