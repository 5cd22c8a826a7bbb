"""Fixtures shared by every test: users in each role and API clients signed in as them."""

import os

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from crm.roles import Role

# The processes the tests start (Celery workers, commands) read only the environment the tests
# give them, never a developer's .env (crm/settings.py skips it for pytest itself).
os.environ["CRM_IGNORE_DOTENV"] = "1"

DEMO_PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def _no_login_lockouts(settings):
    """Login throttling has its own tests; elsewhere repeated sign-ins must not lock anyone out."""
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Transactional tests (browser, real worker) end with a flush that also removes the rows
    data migrations created: role groups and consent purposes. Put them back before each one."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
        from crm.roles import roles_sync
        from privacy.services import purposes_ensure

        roles_sync()
        purposes_ensure()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.3 s per user; tests need working passwords, not slow ones."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *roles: str, **extra):
        user = django_user_model.objects.create_user(
            username=username, password=DEMO_PASSWORD, email=f"{username}@staff.example", **extra
        )
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def sales_user(make_user):
    return make_user("sam.sales", Role.SALES)


@pytest.fixture
def other_sales_user(make_user):
    return make_user("olga.sales", Role.SALES)


@pytest.fixture
def marketing_user(make_user):
    return make_user("mia.marketing", Role.MARKETING)


@pytest.fixture
def privacy_user(make_user):
    return make_user("pia.privacy", Role.PRIVACY)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        username="ada.admin", password=DEMO_PASSWORD, email="ada@staff.example"
    )


@pytest.fixture
def api_client_for():
    def make(user) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return make
