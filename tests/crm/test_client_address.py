"""The client's address behind a reverse proxy: read from X-Forwarded-For only when the connection
comes from a trusted proxy, so two visitors behind one proxy are two clients, and a visitor cannot
pick the address that consent evidence records or that throttling counts."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from crm.api.throttling import ClientAnonRateThrottle
from privacy.models import ConsentRecord
from tests.conftest import DEMO_PASSWORD
from tests.privacy.factories import ConsentWordingFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/privacy/subscribe/"
PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]


@pytest.fixture
def signup_granted_at_once(settings):
    settings.PRIVACY_DOUBLE_OPT_IN = False
    ConsentWordingFactory(purpose_id="email_marketing", version="1", text="Newsletter")


def sign_up(client, email: str, **meta):
    return client.post(SIGNUP, {"email": email, "purposes": ["email_marketing"]}, **meta)


def evidence_address(email: str) -> str:
    return str(ConsentRecord.objects.get(customer__email=email).ip_address)


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(client, signup_granted_at_once):
    sign_up(
        client, "forger@example.com", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="1.2.3.4"
    )

    assert evidence_address("forger@example.com") == "198.51.100.7"


def test_behind_a_trusted_proxy_consent_evidence_records_the_visitor(
    client, signup_granted_at_once, behind_proxy
):
    sign_up(client, "visitor@example.com", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert evidence_address("visitor@example.com") == "203.0.113.9"


def test_behind_a_trusted_proxy_the_visitor_cannot_prepend_an_address_of_its_choice(
    client, signup_granted_at_once, behind_proxy
):
    # The visitor sends "X-Forwarded-For: 1.2.3.4"; the proxy appends the address it sees.
    sign_up(
        client,
        "forger@example.com",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.9, 203.0.113.9",
    )

    assert evidence_address("forger@example.com") == "203.0.113.9"


def test_a_visitor_reaching_the_app_directly_cannot_claim_another_address(
    client, signup_granted_at_once, behind_proxy
):
    sign_up(
        client, "direct@example.com", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="10.0.0.9"
    )

    assert evidence_address("direct@example.com") == "198.51.100.7"


def test_two_visitors_behind_one_proxy_are_limited_separately(client, settings, behind_proxy):
    settings.PRIVACY_SIGNUP_LIMIT_PER_HOUR = 1
    first = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    second = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.10"}

    sign_up(client, "a@example.com", **first)
    again = sign_up(client, "b@example.com", **first)
    other = sign_up(client, "c@example.com", **second)

    assert again.status_code == 429
    assert other.status_code == 302


def test_the_signup_api_limits_each_visitor_behind_the_proxy_on_its_own(settings, behind_proxy):
    settings.PRIVACY_SIGNUP_LIMIT_PER_HOUR = 1
    api = APIClient()
    body = {"email": "a@example.com", "purposes": ["email_marketing"]}

    api.post("/api/signups/", body, "json", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    again = api.post(
        "/api/signups/", body, "json", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    other = api.post(
        "/api/signups/", body, "json", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.10"
    )

    assert again.status_code == 429
    assert other.status_code == 202


def test_forging_the_header_does_not_escape_the_limit(client, settings, behind_proxy):
    settings.PRIVACY_SIGNUP_LIMIT_PER_HOUR = 1

    sign_up(client, "a@example.com", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="1.1.1.1")
    again = sign_up(
        client, "b@example.com", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="2.2.2.2"
    )

    assert again.status_code == 429


def test_sign_in_lockouts_count_per_visitor_behind_the_proxy(
    client, settings, sales_user, behind_proxy
):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    login = reverse("login")
    attacker = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.66"}
    owner = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.9"}

    for _ in range(2):
        client.post(login, {"username": sales_user.username, "password": "wrong"}, **attacker)
    locked = client.post(
        login, {"username": sales_user.username, "password": DEMO_PASSWORD}, **attacker
    )
    owner_signs_in = client.post(
        login, {"username": sales_user.username, "password": DEMO_PASSWORD}, **owner
    )

    assert locked.status_code == 429
    assert owner_signs_in.status_code == 302


class _Open(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [ClientAnonRateThrottle]

    def get(self, request):
        return Response({})


def test_api_rate_limits_count_per_visitor_behind_the_proxy(monkeypatch, behind_proxy):
    monkeypatch.setattr(ClientAnonRateThrottle, "THROTTLE_RATES", {"anon": "1/min"})
    view, factory = _Open.as_view(), APIRequestFactory()

    def call(visitor: str) -> int:
        request = factory.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=visitor)
        return view(request).status_code

    assert call("203.0.113.9") == 200
    assert call("203.0.113.9") == 429
    assert call("203.0.113.10") == 200
