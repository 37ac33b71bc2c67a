"""Outbound requests to a URL someone else chose: ``https`` to public addresses only, except hosts listed.

A camera picture URL comes from an answer we do not control. Fetched blindly, it reaches any host,
port and path our process can: a loopback admin port, the cloud metadata address, the store's LAN.
``OutboundPolicy`` says what may be fetched; ``guarded_session`` enforces it where it cannot be dodged:
the connection resolves the name itself, refuses it unless *every* address is public (a name that
answers one public and one private address is refused, not tried in turn), and connects to the
address it checked, so a second DNS answer (rebinding) is never asked for. Redirects are the caller's
to follow, each hop through ``check_url`` again. Hosts listed in the policy (the demo's and tests'
loopback stand-ins) may use ``http`` and any address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util import connection as urllib3_connection
from urllib3.util.retry import Retry

from core.http_deadline import DeadlineAdapter, WatchedHTTPConnection, WatchedHTTPSConnection, mount_deadlines

AddrInfo = tuple[Any, ...]
Resolver = Callable[[str, int], Sequence[AddrInfo]]


class OutboundRefused(ValueError):
    """The URL or the address behind it may not be fetched; the message names the host, never the path."""


def _resolve(host: str, port: int) -> Sequence[AddrInfo]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) is link-local anyway
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    # is_global excludes private, loopback, link-local, shared (100.64/10), reserved and documentation ranges.
    return ip.is_global and not ip.is_multicast


def _entry(text: str) -> tuple[str, int | None]:
    """``host`` or ``host:port`` (``[v6]:port``), lower-cased; a port of None stands for any port."""
    parsed = urlsplit("//" + text.strip())
    if not parsed.hostname or parsed.path or parsed.query or parsed.username:
        raise ValueError(f"not a host or host:port: {text!r}")
    return parsed.hostname.lower(), parsed.port


@dataclass(frozen=True)
class OutboundPolicy:
    """``listed``: ``host`` or ``host:port`` entries that may use ``http`` and private or loopback addresses."""

    listed: tuple[tuple[str, int | None], ...] = ()
    resolve: Resolver = _resolve

    @classmethod
    def of(cls, hosts: Iterable[str], *, resolve: Resolver = _resolve) -> OutboundPolicy:
        return cls(tuple(_entry(h) for h in hosts if h.strip()), resolve)

    def is_listed(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        return any(host == h and (p is None or p == port) for h, p in self.listed)

    def check_url(self, url: str) -> None:
        """Refuse a URL that is not ``https`` (``http`` for a listed host only) or names no host."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise OutboundRefused("picture link has an unreadable port") from None
        if not host:
            raise OutboundRefused("picture link names no host")
        if scheme == "https" or (scheme == "http" and self.is_listed(host, port)):
            return
        raise OutboundRefused(f"picture link to {host} is not https and the host is not listed")

    def addresses(self, host: str, port: int) -> list[AddrInfo]:
        """The addresses to connect to: all of them public, or the host listed; refused otherwise."""
        try:
            found = list(self.resolve(host, port))
        except socket.gaierror as exc:
            raise OutboundRefused(f"picture host {host} does not resolve") from exc
        if not found:
            raise OutboundRefused(f"picture host {host} does not resolve")
        if self.is_listed(host, port):
            return found
        private = [info[4][0] for info in found if not _is_public(info[4][0])]
        if private:
            raise OutboundRefused(f"picture host {host} resolves to a private, loopback or link-local address")
        return found


class _GuardedConnection:
    """Mixed into urllib3's connections: resolve, check, and connect to the very address checked."""

    policy: ClassVar[OutboundPolicy]

    def _new_conn(self: Any) -> socket.socket:
        addresses = type(self).policy.addresses(self._dns_host, self.port)
        failure: OSError | None = None
        for _family, _type, _proto, _name, sockaddr in addresses:
            try:
                # An address literal: create_connection's own lookup cannot ask DNS again.
                return urllib3_connection.create_connection(
                    (sockaddr[0], self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                failure = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {failure}")


def _adapter_for(policy: OutboundPolicy, max_retries: Retry | int) -> DeadlineAdapter:
    http_conn = type("GuardedHTTPConnection", (_GuardedConnection, WatchedHTTPConnection), {"policy": policy})
    https_conn = type("GuardedHTTPSConnection", (_GuardedConnection, WatchedHTTPSConnection), {"policy": policy})
    pools: dict[str, type[HTTPConnectionPool]] = {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }

    class GuardedAdapter(DeadlineAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            raise OutboundRefused("picture downloads do not go through a proxy")

    return GuardedAdapter(max_retries=max_retries)


def guarded_session(policy: OutboundPolicy, *, max_retries: Retry | int = 0) -> requests.Session:
    """A session whose connections obey ``policy`` and end at ``total_deadline``; no proxy. Redirects: pass
    ``allow_redirects=False`` and check each ``Location`` with ``policy.check_url`` before following it."""
    session = mount_deadlines(requests.Session(), _adapter_for(policy, max_retries))
    # A proxy from the environment would be the address connected to, and the check would judge the proxy.
    session.trust_env = False
    return session
