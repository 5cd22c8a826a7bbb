"""Each role's dashboard: marketers see campaign results, segment growth and upcoming sends,
privacy officers the request queue, deadlines, erasures and consent withdrawals, sales staff
their own widgets; each built from a fixed number of statements."""

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, MessageEvent, Send
from privacy.models import DataSubjectRequest, ErasureLog, Law, RequestStatus, RequestType
from privacy.services import ConsentChange, consent_record_many
from segments.models import RefreshRun
from tests.campaigns.factories import CampaignFactory
from tests.customers.factories import CustomerFactory
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the privacy activity figures are cached for ten minutes
    yield
    cache.clear()


def _sent_campaign(name: str, *, recipients: int, opened: int, clicked: int) -> Campaign:
    now = timezone.now()
    campaign = CampaignFactory(name=name, status=Campaign.Status.SENT, launched_at=now)
    customers = CustomerFactory.create_batch(recipients)
    sends = Send.objects.bulk_create(
        [
            Send(
                campaign=campaign, customer=c, status=Send.Status.SENT, created_at=now, sent_at=now
            )
            for c in customers
        ]
    )
    MessageEvent.objects.bulk_create(
        [MessageEvent(send=s, kind=MessageEvent.Kind.OPEN, at=now) for s in sends[:opened]]
        + [MessageEvent(send=s, kind=MessageEvent.Kind.CLICK, at=now) for s in sends[:clicked]]
    )
    return campaign


def _grown_segment(name: str, *, before: int, now: int):
    segment = SegmentFactory(name=name, member_count=now)
    run = RefreshRun.objects.create(segment=segment, status=RefreshRun.Status.DONE, size=before)
    RefreshRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(weeks=6))
    return segment


def _request(*, deadline: dt.date, status: str = RequestStatus.RECEIVED, **extra):
    return DataSubjectRequest.objects.create(
        customer=extra.pop("customer", None) or CustomerFactory(),
        type=extra.pop("type", RequestType.ACCESS),
        law=Law.GDPR,
        received_on=deadline - dt.timedelta(days=30),
        deadline=deadline,
        status=status,
        **extra,
    )


def test_marketer_sees_campaign_results_as_rates_and_revenue(client, marketing_user):
    campaign = _sent_campaign("Spring sale", recipients=8, opened=4, clicked=2)
    client.force_login(marketing_user)

    page = client.get(reverse("dashboard")).content.decode()

    assert 'data-testid="dashboard-campaign-results"' in page
    row = page[page.index(f'data-campaign="{campaign.pk}"') :]
    assert "Spring sale" in row[:600]
    assert '<td class="num open-rate">50.0%</td>' in row
    assert '<td class="num click-rate">25.0%</td>' in row
    assert '<td class="num revenue">€0.00</td>' in row


def test_marketer_sees_the_growth_of_the_largest_segments(client, marketing_user):
    segment = _grown_segment("Germany", before=200, now=250)
    client.force_login(marketing_user)

    response = client.get(reverse("dashboard"))

    page = response.content.decode()
    growth = next(c for c in response.context["cards"] if c["key"] == "segment-growth")
    line = growth["context"]["lines"][0]
    assert (line["segment"], line["first"], line["now"], line["change"]) == (segment, 200, 250, 50)
    assert line["change_rate"] == pytest.approx(0.25)
    assert 'id="segment-growth-chart"' in page and 'role="img"' in page
    assert (
        'aria-describedby="segment-growth-figures"' in page
        and 'id="segment-growth-figures"' in page
    )
    assert "+25.0%" in page
    assert 'id="segment-growth-data"' in page


def test_marketer_sees_the_sends_scheduled_next_soonest_first(client, marketing_user):
    segment = SegmentFactory(name="Newsletter readers", member_count=1200)
    CampaignFactory(name="Later", status=Campaign.Status.SCHEDULED,
                            send_at=timezone.now() + dt.timedelta(days=5))  # fmt: skip
    sooner = CampaignFactory(name="Sooner", status=Campaign.Status.SCHEDULED,
                             send_at=timezone.now() + dt.timedelta(days=1))  # fmt: skip
    sooner.target_segments.add(segment)
    CampaignFactory(name="Only a draft")
    client.force_login(marketing_user)

    response = client.get(reverse("dashboard"))

    upcoming = next(c for c in response.context["cards"] if c["key"] == "upcoming-sends")
    assert [c.name for c in upcoming["context"]["campaigns"]] == ["Sooner", "Later"]
    page = response.content.decode()
    card = page[page.index('data-testid="dashboard-upcoming-sends"') :]
    assert "Newsletter readers" in card and "1,200" in card and "Only a draft" not in card


def test_marketer_sees_no_sales_widgets(client, marketing_user):
    client.force_login(marketing_user)

    page = client.get(reverse("dashboard")).content.decode()

    assert "My follow-ups due" not in page and 'id="revenue-data"' not in page
    assert "dashboard-privacy-requests" not in page


def test_privacy_officer_sees_the_queue_by_status_and_the_deadlines(client, privacy_user):
    today = timezone.localdate()
    overdue = _request(deadline=today - dt.timedelta(days=3))
    due = _request(deadline=today + dt.timedelta(days=2), status=RequestStatus.IN_PROGRESS)
    far = _request(deadline=today + dt.timedelta(days=25), status=RequestStatus.VERIFYING)
    _request(deadline=today + dt.timedelta(days=1), status=RequestStatus.REJECTED,
             rejection_reason="Not the person", handled_at=timezone.now())  # fmt: skip
    client.force_login(privacy_user)

    response = client.get(reverse("dashboard"))

    queue = next(c for c in response.context["cards"] if c["key"] == "privacy-requests")["context"]
    by_status = {line["status"]: line["count"] for line in queue["by_status"]}
    assert by_status == {"received": 1, "verifying": 1, "in_progress": 1, "completed": 0,
                         "rejected": 1}  # fmt: skip
    assert (queue["open"], queue["overdue"], queue["due_this_week"]) == (3, 1, 1)
    deadlines = next(c for c in response.context["cards"] if c["key"] == "privacy-deadlines")
    assert [r.pk for r in deadlines["context"]["requests"]] == [overdue.pk, due.pk]
    page = response.content.decode()
    assert "3 days overdue" in page
    assert f'data-request="{far.pk}"' not in page


def test_privacy_officer_sees_recent_erasures_and_consent_withdrawals(client, privacy_user):
    customers = CustomerFactory.create_batch(3)
    consent_record_many(changes=[ConsentChange(customer_id=c.pk, purpose="email_marketing",
                                               state="granted") for c in customers], source="import")  # fmt: skip
    consent_record_many(changes=[ConsentChange(customer_id=customers[0].pk, purpose="email_marketing",
                                               state="withdrawn")], source="staff")  # fmt: skip
    ErasureLog.objects.create(customer_id=999, reason="request", erased_at=timezone.now())
    ErasureLog.objects.create(customer_id=998, reason="request",
                              erased_at=timezone.now() - dt.timedelta(days=90))  # fmt: skip
    client.force_login(privacy_user)

    page = client.get(reverse("dashboard")).content.decode()

    assert '<span class="value" id="recent-erasures">1</span>' in page
    assert '<span class="value" id="recent-withdrawals">1</span>' in page
    row = page[page.index('data-purpose="email_marketing"') :]
    assert (
        '<span class="badge withdrawn">1</span>' in row
        and '<span class="badge granted">3</span>' in row
    )
    assert "My follow-ups due" not in page and "dashboard-campaign-results" not in page


def test_salesperson_sees_only_the_sales_widgets(client, sales_user):
    client.force_login(sales_user)

    page = client.get(reverse("dashboard")).content.decode()

    assert "My follow-ups due" in page and 'id="revenue-data"' in page
    for card in ("campaign-results", "segment-growth", "upcoming-sends", "privacy-deadlines"):
        assert f"dashboard-{card}" not in page


def test_administrator_sees_every_role_dashboard(client, superuser):
    client.force_login(superuser)

    page = client.get(reverse("dashboard")).content.decode()

    for part in ("dashboard-sales", "dashboard-campaign-results", "dashboard-segment-growth",
                 "dashboard-privacy-requests", "dashboard-privacy-deadlines"):  # fmt: skip
        assert part in page


def test_sales_revenue_card_keeps_its_own_height(client, sales_user):
    client.force_login(sales_user)

    page = client.get(reverse("dashboard")).content.decode()
    css = Path(finders.find("crm/app.css")).read_text()

    assert 'class="grid grid-2 dashboard-grid" data-testid="dashboard-sales"' in page
    assert ".dashboard-grid { align-items: start;" in css


def test_marketing_dashboard_statements_do_not_grow_with_campaigns_and_segments(
    client, marketing_user, django_assert_max_num_queries
):
    for i in range(6):
        _sent_campaign(f"Campaign {i}", recipients=3, opened=1, clicked=1)
        _grown_segment(f"Segment {i}", before=10 * i, now=10 * i + 5)
        CampaignFactory(status=Campaign.Status.SCHEDULED,
                        send_at=timezone.now() + dt.timedelta(days=i + 1))  # fmt: skip
    client.force_login(marketing_user)
    client.get(reverse("dashboard"))  # the session and the user's roles

    with django_assert_max_num_queries(13):
        response = client.get(reverse("dashboard"))

    assert response.status_code == 200


def test_privacy_dashboard_statements_do_not_grow_with_requests(
    client, privacy_user, django_assert_max_num_queries
):
    today = timezone.localdate()
    for i in range(10):
        _request(deadline=today + dt.timedelta(days=i - 3))
    client.force_login(privacy_user)
    client.get(reverse("dashboard"))
    cache.clear()

    with django_assert_max_num_queries(9):
        response = client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert len(response.context["cards"]) == 3
