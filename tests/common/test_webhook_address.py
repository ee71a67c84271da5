"""Webhook destinations: public addresses only, https unless dev, names checked after
resolving (SSRF), with a resolver the tests control."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from common.errors import InvalidInput
from common.settings import Settings
from common.webhook_address import WebhookPolicy, forbidden_reason, is_dev_url, policy_for
from keys.jwk import public_jwk
from registry import Registry

FORBIDDEN = [
    "127.0.0.1",
    "127.8.9.10",
    "0.0.0.0",  # noqa: S104 -- an address refused here, nothing binds to it
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata (AWS, Azure, GCP, Tencent)
    "100.100.100.200",  # Alibaba Cloud metadata (shared address space)
    "100.64.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
]
ALLOWED = ["8.8.8.8", "101.226.4.6", "2001:4860:4860::8888", "2400:3200::1"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_addresses_inside_any_network_are_forbidden(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def _never(host: str, port: int) -> list[str]:
    raise AssertionError("a literal address needs no resolver")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the finding: it was accepted
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:8600/v1/webhook",
        "https://[::1]/hook",
        "https://[::ffff:7f00:1]/hook",
        "https://[fe80::1%25eth0]/hook",
        "https://10.0.0.5/hook",
        "https://localhost/hook",
        "https://gateway.localhost/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://2130706433/hook",  # 127.0.0.1 as one number
        "https://0x7f.1/hook",
    ],
)
def test_registration_refuses_internal_addresses(url: str) -> None:
    with pytest.raises(InvalidInput) as e:
        WebhookPolicy(require_https=False, resolver=_never).check_registration(url)
    assert e.value.code == "webhook_address_forbidden"


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://x/", "https://", "https://user:pw@bank.example/h", "x" * 600],
)
def test_registration_refuses_what_is_not_an_https_url(url: str) -> None:
    with pytest.raises(InvalidInput) as e:
        WebhookPolicy(resolver=_never).check_registration(url)
    assert e.value.code in ("webhook_url_invalid", "webhook_https_required")


def test_a_name_that_resolves_to_a_private_address_is_refused_at_registration() -> None:
    def dns(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.bank.example", 443)
        return ["8.8.8.8", "10.0.0.7"]  # one bad answer is enough

    with pytest.raises(InvalidInput) as e:
        WebhookPolicy(resolver=dns).check_registration("https://hooks.bank.example/x")
    assert e.value.code == "webhook_address_forbidden"


def test_https_is_required_unless_the_gateway_is_a_dev_instance(
    make_settings: Callable[..., Settings],
) -> None:
    def public(host: str, port: int) -> list[str]:
        return ["8.8.8.8"]

    with pytest.raises(InvalidInput) as e:
        WebhookPolicy(resolver=public).check_registration("http://hooks.bank.example/x")
    assert e.value.code == "webhook_https_required"
    assert WebhookPolicy(resolver=public).check_registration("https://hooks.bank.example/x")
    assert is_dev_url("http://127.0.0.1:8600") and is_dev_url("http://localhost:9000/")
    assert not is_dev_url("https://127.0.0.1") and not is_dev_url("http://gateway.example")
    prod = make_settings(server={"public_url": "https://credit.example.gov.cn"})
    dev = make_settings()
    forced = make_settings(consent={"webhook_require_https": True})
    assert policy_for(prod).require_https and policy_for(forced).require_https
    assert not policy_for(dev).require_https
    assert not policy_for(dev).unsafe_allow_private


def test_the_delivery_check_uses_a_fresh_answer_and_pins_it() -> None:
    answers = [["8.8.8.8"], ["169.254.169.254"]]
    policy = WebhookPolicy(resolver=lambda host, port: answers.pop(0))
    target = policy.target("https://hooks.bank.example:8443/x?y=1")
    assert target.address == "8.8.8.8"
    assert target.pinned_url() == "https://8.8.8.8:8443/x?y=1"
    assert target.host_header() == "hooks.bank.example:8443"
    with pytest.raises(InvalidInput) as e:
        policy.target("https://hooks.bank.example:8443/x?y=1")
    assert e.value.code == "webhook_address_forbidden"


def test_the_registry_applies_the_policy(engine: Engine) -> None:
    registry = Registry(engine)  # the default policy is the strict one
    key = public_jwk(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(InvalidInput) as e:
        registry.add_institution(
            "bank", name="b", jwk=key, webhook_url="http://169.254.169.254/latest/meta-data"
        )
    assert e.value.code in ("webhook_https_required", "webhook_address_forbidden")
    assert registry.institutions() == []
    registry.add_institution("bank", name="b", jwk=key)
    with pytest.raises(InvalidInput) as e:
        registry.set_webhook("bank", "https://169.254.169.254/latest/meta-data")
    assert e.value.code == "webhook_address_forbidden"
    assert registry.institution("bank").webhook_url is None
