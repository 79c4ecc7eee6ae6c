"""Sessions and their users read in plain statements behave as Django's: who is logged in,
who is not any more, and sessions opened under Django's own backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"


def logged_in(client) -> bool:
    response = client.get(reverse("labeling:project_list"))
    assert response.status_code in (200, 302)
    return response.status_code == 200


def test_a_password_login_opens_a_session_read_in_two_plain_statements(client) -> None:
    user = UserFactory()
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_backend"] == "workbench.core.auth.ModelBackend"
    with CaptureQueriesContext(connection) as queries:
        assert logged_in(client)
    session, user_row = queries[0]["sql"], queries[1]["sql"]
    assert session.startswith('SELECT "session_key", "session_data", "expire_date" FROM')
    assert user_row.startswith('SELECT "id", "password"') and "auth_user" in user_row


def test_nobody_is_logged_in_by_an_expired_session_or_as_an_inactive_user(client) -> None:
    user = UserFactory()
    client.force_login(user)
    assert logged_in(client)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert not logged_in(client)
    client.force_login(user)
    assert logged_in(client)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert not logged_in(client)


def test_a_new_password_or_a_logout_ends_the_session(client) -> None:
    user = UserFactory()
    client.force_login(user)
    user.set_password("another one entirely")
    user.save()
    assert not logged_in(client)  # the session's hash no longer matches
    client.force_login(user)
    assert client.post(reverse("logout")).status_code == 302
    assert not logged_in(client) and not Session.objects.exists()


def test_sessions_opened_under_djangos_backend_still_work(client) -> None:
    client.force_login(UserFactory(), backend="django.contrib.auth.backends.ModelBackend")
    assert logged_in(client)
