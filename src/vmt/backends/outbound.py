"""The enforcing half of the outbound policy (``vmt.formats.outbound_policy``): an urllib3 pool
whose connections resolve the host themselves and connect only to addresses the rules allow,
so the address checked is the address used (no second DNS answer between check and connect),
on every connection, redirect hops included.

``rules_for(settings)`` gives the service context's rules from ``VMT_OUTBOUND_ALLOW`` and
``VMT_OUTBOUND_ALLOW_HTTP``; ``OutboundRules.export_file()`` is for CLI runs on an export file.
"""

from __future__ import annotations

import socket
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from vmt.config import Settings
from vmt.errors import ConfigError
from vmt.formats.outbound_policy import REFUSED, OutboundRules, host_may_be_reached, parse_address


class LocationRefused(Exception):
    """A location the outbound policy does not allow; the text never says what it resolved
    to, nor whether anything answers there."""

    def __init__(self, detail: str = REFUSED) -> None:
        super().__init__(detail)
        self.detail = detail


def rules_for(settings: Settings) -> OutboundRules:
    """The service context's rules (runs made by a webhook, the API, a Labelbox model run).
    Raises ``ConfigError`` for an allowlist entry that is not a host, address or network."""
    try:
        return OutboundRules.service(settings.outbound_allow, http=settings.outbound_allow_http)
    except ValueError as exc:
        raise ConfigError(f"VMT_OUTBOUND_ALLOW: {exc}") from exc


def allowed_addresses(host: str, port: int, rules: OutboundRules) -> list[tuple[Any, ...]]:
    """``getaddrinfo(host, port)`` when every address it gives is allowed. Raises
    ``LocationRefused`` (one refused address refuses the host: a name answering both a public
    and a private address is not tried) or ``socket.gaierror``."""
    if not host_may_be_reached(host, rules):
        raise LocationRefused
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if rules.any_address or rules.host_allowed(host):
        return infos
    for info in infos:
        address = parse_address(str(info[4][0]))
        if address is None or not rules.address_allowed(address):
            raise LocationRefused
    return infos


def _connect(conn: HTTPConnection, rules: OutboundRules) -> socket.socket:
    """``HTTPConnection._new_conn`` with the policy: resolve, check, connect to what was checked."""
    try:
        infos = allowed_addresses(conn._dns_host, conn.port or 80, rules)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    error: OSError | None = None
    for info in infos:
        try:
            return connection.create_connection(
                (info[4][0], info[4][1]),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"connection to {conn.host} timed out") from exc
        except OSError as exc:
            error = exc
    raise NewConnectionError(conn, f"failed to establish a new connection: {error}")


def guarded_pool_manager(rules: OutboundRules, **kwargs: Any) -> urllib3.PoolManager:
    """A ``urllib3.PoolManager`` (``kwargs`` as its own) whose every connection obeys ``rules``."""

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, rules)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, rules)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}
    return manager
