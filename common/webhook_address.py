"""Where the gateway may send webhooks: public addresses only (no SSRF).

An institution chooses its webhook URL, and the gateway POSTs to it from inside the
platform's network. Without a check, that URL could name the gateway itself, the
database, a department's internal service or the cloud metadata service
(``169.254.169.254``, Alibaba Cloud's ``100.100.100.200``).

Invariants:
- an address is allowed only when it is globally routable unicast: loopback, private,
  shared (CGNAT), link-local, unique-local, multicast, unspecified, reserved,
  documentation and benchmark ranges are refused, for IPv4 and IPv6, and IPv6 forms
  that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
  6to4, Teredo, NAT64 ``64:ff9b::/96``) are judged by the address they embed;
- a URL is checked at registration (syntax, scheme, names and literal addresses, and
  the addresses its name resolves to now) and again at every delivery after resolving,
  where the connection is made to the address that was checked (``Target.address``),
  never by resolving the name again (DNS rebinding);
- ``https`` is required unless the policy says otherwise (the dev default: a gateway
  whose own public URL is plain http on loopback);
- ``PolicyUnsafe…``: allowing private addresses exists for tests and a laptop demo; it
  is named unsafe and warns when used.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from common.errors import InvalidInput
from common.logging import get_logger
from common.settings import Settings

log = get_logger("webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as text.
Resolver = Callable[[str, int], Sequence[str]]
MAX_URL = 480
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_BLOCKED_NAMES = ("localhost", "localhost.localdomain", "metadata.google.internal")
_BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


class WebhookUrlInvalid(InvalidInput):
    code = "webhook_url_invalid"


class WebhookAddressForbidden(InvalidInput):
    """The webhook names or resolves to an address inside the platform's network."""

    code = "webhook_address_forbidden"


class WebhookHttpsRequired(InvalidInput):
    code = "webhook_https_required"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA); raises OSError when none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (
            address.ipv4_mapped
            or (address.teredo[1] if address.teredo else None)
            or address.sixtofour
        )
        if embedded is not None:
            reason = forbidden_reason(embedded)
            return None if reason is None else f"{reason} (embedded in an IPv6 address)"
        if address in _NAT64 or address in _IPV4_COMPATIBLE:
            return "an IPv6 form of an IPv4 address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved or non-global address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked webhook destination: connect to ``address``, speak to ``host``."""

    url: str
    scheme: str
    host: str  # as written in the URL (a name, or a literal address without brackets)
    port: int
    address: str  # the checked address to connect to

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = f"{literal}:{self.port}"
        return SplitResult(parts.scheme, netloc, parts.path or "/", parts.query, "").geturl()

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class WebhookPolicy:
    """What webhook URLs are acceptable. The default is the strict one."""

    require_https: bool = True
    unsafe_allow_private: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)

    def _parse(self, url: str) -> tuple[SplitResult, str, int]:
        if not isinstance(url, str) or not url or len(url) > MAX_URL:
            raise WebhookUrlInvalid(
                f"the webhook URL must be an http(s) URL of at most {MAX_URL} characters",
                field="webhook_url",
            )
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise WebhookUrlInvalid("the webhook URL contains whitespace", field="webhook_url")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise WebhookUrlInvalid("the webhook URL is malformed", field="webhook_url") from e
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookUrlInvalid("the webhook URL must be an http(s) URL", field="webhook_url")
        if parts.username is not None or parts.password is not None or parts.fragment:
            raise WebhookUrlInvalid(
                "the webhook URL may not carry credentials or a fragment", field="webhook_url"
            )
        if self.require_https and parts.scheme != "https":
            raise WebhookHttpsRequired(
                "the webhook URL must use https on this gateway", field="webhook_url"
            )
        host = parts.hostname.rstrip(".").lower()
        return parts, host, port or (443 if parts.scheme == "https" else 80)

    def _check_address(self, text: str) -> None:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone ids
        except ValueError as e:
            raise WebhookAddressForbidden(
                "the webhook host resolved to something that is not an address",
                field="webhook_url",
            ) from e
        if "%" in text:
            raise WebhookAddressForbidden(
                "the webhook host is a scoped (link-local) address", field="webhook_url"
            )
        reason = forbidden_reason(address)
        if reason is not None and not self.unsafe_allow_private:
            raise WebhookAddressForbidden(
                f"the webhook host is {reason}; webhooks go to public addresses only",
                field="webhook_url",
            )
        if reason is not None:
            log.warning("UNSAFE_WEBHOOK_PRIVATE_ADDRESS", reason=reason)

    def _literal(self, host: str) -> str | None:
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            return None

    def _check_name(self, host: str) -> None:
        if self.unsafe_allow_private:
            return
        if host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES):
            raise WebhookAddressForbidden(
                "the webhook host names the local network", field="webhook_url"
            )
        if host.replace(".", "").isdigit() or host.startswith("0x"):
            # 2130706433, 0x7f.1, 127.1: forms some resolvers read as IPv4 addresses.
            raise WebhookAddressForbidden(
                "write the webhook address in dotted-quad form", field="webhook_url"
            )

    def check_registration(self, url: str) -> str:
        """Check a URL an institution registers; returns it. A name that resolves now
        must resolve to public addresses only; one that does not resolve yet is
        accepted (every delivery checks again)."""
        _, host, port = self._parse(url)
        literal = self._literal(host)
        if literal is not None:
            self._check_address(literal)
            return url
        self._check_name(host)
        try:
            addresses = self.resolver(host, port)
        except OSError:
            return url
        for address in addresses:
            self._check_address(address)
        return url

    def target(self, url: str) -> Target:
        """Resolve and check a URL for one delivery: every address the name resolves
        to must be allowed; the first is the one to connect to. Raises InvalidInput
        (or its subclasses) when the URL may not be used now."""
        parts, host, port = self._parse(url)
        literal = self._literal(host)
        if literal is not None:
            self._check_address(literal)
            return Target(url, parts.scheme, host, port, literal)
        self._check_name(host)
        try:
            addresses = list(self.resolver(host, port))
        except OSError as e:
            raise WebhookUrlInvalid(
                "the webhook host does not resolve", code="webhook_unresolvable"
            ) from e
        if not addresses:
            raise WebhookUrlInvalid(
                "the webhook host does not resolve", code="webhook_unresolvable"
            )
        for address in addresses:
            self._check_address(address)
        return Target(url, parts.scheme, host, port, addresses[0].split("%", 1)[0])


def is_dev_url(public_url: str) -> bool:
    """A gateway on plain http at a loopback address: a developer's machine."""
    try:
        parts = urlsplit(public_url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def policy_for(settings: Settings, resolver: Resolver = system_resolver) -> WebhookPolicy:
    """The webhook policy a gateway with ``settings`` applies."""
    cfg = settings.config.consent
    require = cfg.webhook_require_https
    if require is None:
        require = not is_dev_url(settings.config.server.public_url)
    return WebhookPolicy(
        require_https=require,
        unsafe_allow_private=cfg.unsafe_webhook_private_addresses,
        resolver=resolver,
    )
