"""Login throttling (django-axes): wrong passwords lock a username and an address out of both
login pages, the lockout says so, an admin unlocks, and behind a proxy each client counts alone."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import UserFactory
from workbench.core.client_ip import client_ip

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"
LIMIT = 3
LOGIN_PAGES = ["login", "admin:login"]


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def login(client: Client, page: str, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        reverse(page), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_wrong_passwords_lock_the_username_even_with_the_right_one(page) -> None:
    user = UserFactory(is_staff=True)
    client = Client()
    for attempt in range(1, LIMIT + 1):
        response = login(client, page, user.username, "wrong")
        assert response.status_code == (429 if attempt == LIMIT else 200)  # the last locks
        assert not logged_in(client)
    # The right password no longer opens it, from here or from another address.
    for address in ("10.0.0.1", "10.9.9.9"):
        response = login(client, page, user.username, PASSWORD, address)
        assert response.status_code == 429 and not logged_in(client)
        html = response.content.decode()
        assert "Login locked" in html and "Too many failed logins" in html
        assert 'href="/"' in html  # the site's own page, styled, not a bare text
    # Someone else, from another address, is not affected.
    other = UserFactory(is_staff=True)
    assert login(client, page, other.username, PASSWORD, "10.9.9.9").status_code == 302


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_wrong_passwords_lock_the_address_for_every_username(page) -> None:
    client = Client()
    for n in range(LIMIT):
        login(client, page, f"guess-{n}", "wrong", "10.0.0.7")
    user = UserFactory(is_staff=True)
    assert login(client, page, user.username, PASSWORD, "10.0.0.7").status_code == 429
    assert login(client, page, user.username, PASSWORD, "10.0.0.8").status_code == 302


def test_an_admin_unlocks_a_locked_login_in_the_admin(admin_client) -> None:
    user = UserFactory()
    client = Client()
    for _ in range(LIMIT):
        login(client, "login", user.username, "wrong")
    assert login(client, "login", user.username, PASSWORD).status_code == 429
    attempts = AccessAttempt.objects.filter(username=user.username)
    assert attempts.exists()
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert user.username in admin_client.get(changelist).content.decode()
    response = admin_client.post(
        changelist,
        {
            "action": "delete_selected",
            "_selected_action": [a.pk for a in attempts],
            "post": "yes",
        },
    )
    assert response.status_code == 302 and not AccessAttempt.objects.exists()
    assert login(client, "login", user.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_behind_a_proxy_each_client_counts_alone(settings) -> None:
    """One proxy address for all: the forwarded address (the proxy's own entry) is counted, so
    one client's failures lock neither the proxy nor its other clients."""
    settings.CLIENT_IP_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    client = Client()
    for n in range(LIMIT):
        client.post(
            reverse("login"),
            {"username": f"guess-{n}", "password": "wrong"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR="203.0.113.5",
        )
    user = UserFactory()
    blocked = client.post(
        reverse("login"),
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR=proxy,
        # A spoofed entry on the left does not hide the address the proxy saw.
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5",
    )
    assert blocked.status_code == 429
    allowed = client.post(
        reverse("login"),
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.6",
    )
    assert allowed.status_code == 302


def test_client_ip_reads_only_what_trusted_proxies_wrote(settings) -> None:
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1, 2.2.2.2")
    settings.CLIENT_IP_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"  # no proxy configured: the header is ignored
    settings.CLIENT_IP_PROXY_COUNT = 1
    assert client_ip(request) == "2.2.2.2"
    settings.CLIENT_IP_PROXY_COUNT = 2
    assert client_ip(request) == "1.1.1.1"
    settings.CLIENT_IP_PROXY_COUNT = 3  # fewer entries than proxies: the socket's address
    assert client_ip(request) == "10.0.0.1"
    settings.CLIENT_IP_PROXY_COUNT = 1
    junk = factory.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_ip(junk) == "10.0.0.1"
