"""Attack tests: a subscription cannot make the service call inside the network (SSRF)."""

from __future__ import annotations

import ipaddress

import pytest
from sqlalchemy import select

from econtract import webhooks
from econtract.config import Settings
from econtract.models import Delivery
from econtract.services import Services
from econtract.webhooks import UnsafeURLError, _ssrf, check_target
from tests.licences import issue_example
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import later, revoke, subscribe, use


def production(settings: Settings, *allowed: str) -> Settings:
    return settings.model_copy(
        update={"mode": "production", "webhook_allowed_hosts": list(allowed)}
    )


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    """Every name resolves to ``addresses`` (the resolver, not the network, is replaced)."""
    answer = [ipaddress.ip_address(a) for a in addresses]
    monkeypatch.setattr(_ssrf, "resolve", lambda host, port: answer)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://169.254.10.1/hook", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://localhost/hook", "loopback"),
    ],
)
def test_production_refuses_an_inside_address_naming_its_class(
    settings: Settings, url: str, kind: str
) -> None:
    with pytest.raises(UnsafeURLError, match=f"a {kind} address"):
        check_target(url, production(settings))


def test_production_refuses_a_name_that_resolves_inside(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One public address does not excuse another that is inside.
    resolving_to(monkeypatch, "93.184.215.14", "10.0.0.7")
    with pytest.raises(UnsafeURLError, match=r"10\.0\.0\.7, a private address"):
        check_target("https://hooks.example.com/x", production(settings))


def test_production_refuses_plain_http(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    resolving_to(monkeypatch, "93.184.215.14")
    with pytest.raises(UnsafeURLError, match="scheme must be https"):
        check_target("http://hooks.example.com/x", production(settings))


def test_a_url_with_credentials_is_refused(settings: Settings) -> None:
    with pytest.raises(UnsafeURLError, match="credentials"):
        check_target("https://user:secret@hooks.example.com/x", settings)


def test_an_allow_listed_host_may_resolve_inside(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolving_to(monkeypatch, "10.20.0.5")
    allowing = production(settings, "hooks.gov.internal")
    target = check_target("https://hooks.gov.internal/x", allowing)
    assert target.address == ipaddress.ip_address("10.20.0.5")
    with pytest.raises(UnsafeURLError, match="private"):
        check_target("https://other.gov.internal/x", allowing)


def test_a_public_address_is_accepted(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    resolving_to(monkeypatch, "93.184.215.14")
    assert check_target("https://hooks.example.com/x", production(settings)).port == 443


def test_development_allows_loopback_but_not_private(settings: Settings) -> None:
    assert check_target("http://127.0.0.1:8080/x", settings).host == "127.0.0.1"
    with pytest.raises(UnsafeURLError, match="private"):
        check_target("http://10.0.0.1/x", settings)


def revoked_for_a_name(
    services: Services, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A used licence revoked, owed to a subscription that names the receiver by a host name
    resolving to loopback; return the receiver's port."""
    port = receiver.url.split(":")[2].split("/")[0]
    resolving_to(monkeypatch, "127.0.0.1")
    certificate = issue_example(services)
    use(services, certificate)
    subscribe(services, f"http://hooks.example.com:{port}/hook")
    revoke(services, certificate)
    return port


def test_a_name_that_resolves_inside_at_delivery_time_is_not_called(
    initialised: Services, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name was public (here: loopback, allowed in development) when
    the subscription was made, and points inside when the event is sent."""
    revoked_for_a_name(initialised, receiver, monkeypatch)
    resolving_to(monkeypatch, "10.0.0.9")

    report = webhooks.run_round(initialised, clock=later())
    assert (report.attempted, report.delivered) == (1, 0)
    assert receiver.received == []
    with initialised.sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.status == "failed"
    assert "10.0.0.9, a private address" in (delivery.last_error or "")


def test_the_delivery_connects_to_the_address_it_checked(
    initialised: Services, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = revoked_for_a_name(initialised, receiver, monkeypatch)
    assert webhooks.run_round(initialised, clock=later()).delivered == 1
    [got] = receiver.received
    # The name the subscription gave, carried to the address that was checked.
    assert got.headers["Host"] == f"hooks.example.com:{port}"
