"""Every page of the product, as each role, on demo data: each one answers, passes axe-core
without a serious or critical violation, and lands in the screenshot gallery (tests/e2e/audit.py
checks and photographs every page a browser test visits).

The walk starts from the main navigation and the user menu, and follows the links inside `main`
two levels further, once per kind of page (`/customers/12/` and `/customers/13/` are one
kind). The public pages a customer reaches from an email are walked at a phone's width.
"""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.management import call_command

from campaigns.links import unsubscribe_url
from campaigns.models import Send
from crm.demo.seeding import DEMO_PASSWORD
from customers.models import Customer
from insights.services.surveys import survey_create, survey_send, survey_token
from privacy.links import preference_url
from privacy.models import RequestType
from segments.models import Membership, Segment
from tests.campaigns.factories import CampaignFactory, VariantFactory, consent_grant_all
from tests.e2e.audit import page_name
from tests.privacy.factories import DataSubjectRequestFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEMO_DAY = dt.date.today()
# Links not followed: downloads, the API, Django's admin beyond its index (its own pages), and
# links that start work (an export) rather than show a page.
SKIPPED = re.compile(r"(\.csv|\.json|/api/|/export/|/exports/|/download|/admin/.+|/logout/)")
MAX_DEPTH = 2
# Pages every role's walk must reach, by the name the gallery gives them.
EXPECTED = {
    "sales": {"home", "customers", "customers-id", "customers-accounts", "customers-accounts-id",
              "deals", "segments", "segments-id"},
    "marketing": {"home", "customers", "segments", "segments-id", "campaigns", "campaigns-id",
                  "insights", "deals"},
    "privacy": {"home", "customers", "customers-accounts", "privacy", "privacy-requests-id",
                "privacy-audit"},
    "admin": {"home", "customers", "deals", "segments", "campaigns", "insights", "privacy",
              "admin"},
}  # fmt: skip


@pytest.fixture
def product(settings):
    """The demo: staff in every role, 120 customers with purchases, deals and segments; plus a
    sent survey (a sent campaign with its links), a draft campaign and a data-subject request."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    mail.outbox = []
    call_command("seed_demo", customers=120, seed=3, verbosity=0)
    segment = Segment.objects.filter(memberships__isnull=False).order_by("pk").distinct().first()
    members = Customer.objects.filter(
        pk__in=Membership.objects.filter(segment=segment).values("customer")
    )[:5]
    consent_grant_all(members)
    survey = survey_create(actor=None, name="Spring pulse", kind="nps", segment=segment,
                           question="How likely are you to recommend us to a friend?")  # fmt: skip
    survey_send(survey=survey, actor=None)
    draft = CampaignFactory(name="Summer preview", goal="Show the summer range")
    draft.target_segments.add(segment)
    VariantFactory(campaign=draft, name="A", subject="Summer is near, {{ customer.first_name }}")
    DataSubjectRequestFactory(customer=members[0], type=RequestType.ACCESS)
    return {"survey": survey, "customer": members[0]}


def sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def links_on(page, selector: str) -> list[str]:
    hrefs = page.eval_on_selector_all(
        selector,
        "(links) => links.filter((a) => !a.hasAttribute('download')).map((a) => a.href)",
    )
    origin = urlsplit(page.url)._replace(path="", query="", fragment="").geturl()
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if not href.startswith(origin) or SKIPPED.search(parts.path):
            continue
        found.append(parts._replace(fragment="").geturl())
    return found


def visit(page, url: str, *, refused_ok: bool = False) -> int:
    """Open the page; it answers, or (a link found on a page) refuses with 403/404."""
    response = page.goto(url)
    assert response is not None, url
    allowed = (403, 404) if refused_ok else ()
    assert response.status < 400 or response.status in allowed, f"{url}: {response.status}"
    return response.status


@pytest.mark.parametrize("role", ["sales", "marketing", "privacy", "admin"])
def test_every_page_of_the_navigation_as_each_role(page, product, role):
    page.set_default_timeout(30000)
    sign_in(page, role)
    start = links_on(page, "#mainnav a, .usermenu-panel a") + [page.url]
    # Breadth first from the navigation, two links deep, each kind of page once.
    visited: dict[str, str] = {}
    refused = []
    queue = [(url, 0) for url in start]
    while queue:
        url, depth = queue.pop(0)
        name = page_name(url, None)
        if name in visited:
            continue
        visited[name] = url
        if visit(page, url, refused_ok=depth > 0) >= 400:
            refused.append(url)
            continue
        if depth < MAX_DEPTH:
            queue += [(link, depth + 1) for link in links_on(page, "main a[href]")]
    print(f"{role}: {len(visited)} pages; links refused to this role: {refused}")
    missing = EXPECTED[role] - set(visited)
    assert not missing, f"the walk did not reach {sorted(missing)}; it saw {sorted(visited)}"


def test_public_pages_at_phone_width(browser, live_server, product):
    send = Send.objects.filter(campaign=product["survey"].campaign, status="sent").first()
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    pages = [
        "/login/",
        "/privacy/subscribe/",
        preference_url(customer_id=product["customer"].pk),
        unsubscribe_url(send_id=send.pk),
        f"/insights/survey/{survey_token(send_id=send.pk)}/",
        "/no-such-page/",
    ]
    for url in pages:
        path = urlsplit(url)._replace(scheme="", netloc="").geturl()
        response = page.goto(path)
        assert response is not None
        assert page.evaluate("document.documentElement.scrollWidth") <= 391, path

    # On a phone, the recipient unsubscribes with one tap and reads that it is done.
    page.goto(urlsplit(unsubscribe_url(send_id=send.pk)).path)
    page.click("#confirm-unsubscribe")
    page.locator("#unsubscribed").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    context.close()  # the page reached is checked before the context closes
