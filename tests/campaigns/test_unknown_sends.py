"""Messages lost while being handed over (a worker stopped between the commit and the server's
answer) become "unknown": never counted as sent, never sent again on their own. The report, the
campaign page and the API count them with the reason, and a marketer may send them again after
a warning that some recipients may get the message twice."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign, Send
from campaigns.services import sends_sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def interrupted(launch, campaign, consenting_members):
    """A campaign whose worker was killed after it committed two messages for hand-over and
    before the server answered: two rows left "handing over" past the claim timeout, one row
    claimed but not handed over; the rest sent."""
    launch(campaign)
    lost = consenting_members[:2]
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Send.objects.filter(campaign=campaign, customer__in=lost).update(
        status=Send.Status.HANDING_OVER, sent_at=None, claimed_at=long_ago, attempts=1
    )
    Send.objects.filter(campaign=campaign, customer=consenting_members[2]).update(
        status=Send.Status.CLAIMED, sent_at=None, claimed_at=long_ago, attempts=1
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENDING, finished_at=None, dispatched_at=long_ago
    )
    mail.outbox = []
    return campaign


def test_after_a_crash_the_sweep_makes_stale_hand_overs_unknown_and_resends_only_what_never_left(
    interrupted, consenting_members, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sends_sweep()

    rows = {s.customer_id: s for s in Send.objects.filter(campaign=interrupted)}
    for customer in consenting_members[:2]:
        assert rows[customer.pk].status == Send.Status.UNKNOWN
        assert rows[customer.pk].sent_at is None
        assert "may or may not have arrived" in rows[customer.pk].reason
    # The claimed row had not been handed over: it went again, once.
    assert rows[consenting_members[2].pk].status == Send.Status.SENT
    assert [m.to for m in mail.outbox] == [[consenting_members[2].email]]
    interrupted.refresh_from_db()
    assert interrupted.status == Campaign.Status.SENT


def test_a_recent_hand_over_is_left_alone_until_its_timeout(interrupted, consenting_members):
    Send.objects.filter(campaign=interrupted, customer=consenting_members[0]).update(
        claimed_at=timezone.now()
    )

    sends_sweep()

    row = Send.objects.get(campaign=interrupted, customer=consenting_members[0])
    assert row.status == Send.Status.HANDING_OVER
    interrupted.refresh_from_db()
    assert interrupted.status == Campaign.Status.SENDING  # not done while one is in flight


@pytest.fixture
def with_unknown(interrupted, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sends_sweep()
    mail.outbox = []
    return interrupted


@pytest.fixture
def marketer(client, marketing_user):
    client.force_login(marketing_user)
    return client


def test_the_report_counts_unknown_sends_apart_from_sent_with_the_reason(marketer, with_unknown):
    html = marketer.get(f"/campaigns/{with_unknown.pk}/report/").content.decode()

    assert 'id="total-sent">3<' in html
    assert 'id="total-unknown">2<' in html
    assert "2 messages whose fate is unknown" in html
    assert "may or may not have arrived" in html
    assert 'id="resend-unknown"' in html


def test_the_campaign_page_shows_the_unknown_count_and_offers_to_send_them_again(
    marketer, with_unknown
):
    html = marketer.get(f"/campaigns/{with_unknown.pk}/").content.decode()

    assert 'id="progress-unknown">2<' in html
    assert "may or may not have arrived" in html
    assert "Send the unknown ones again" in html


def test_one_click_on_send_again_sends_nothing_and_warns_of_duplicates(marketer, with_unknown):
    response = marketer.post(f"/campaigns/{with_unknown.pk}/resend-unknown/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "will get the message twice" in html
    assert "<dt>Messages whose fate is unknown</dt>" in html
    assert mail.outbox == []
    assert Send.objects.filter(campaign=with_unknown, status=Send.Status.UNKNOWN).count() == 2


def test_confirming_sends_the_unknown_ones_again_with_consent_checked(
    marketer, with_unknown, consenting_members, django_capture_on_commit_callbacks
):
    from privacy.services import consent_withdraw

    consent_withdraw(customer=consenting_members[1], purpose="email_marketing", source="staff")

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer.post(
            f"/campaigns/{with_unknown.pk}/resend-unknown/", {"confirmed": "yes"}
        )

    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [[consenting_members[0].email]]
    rows = {s.customer_id: s for s in Send.objects.filter(campaign=with_unknown)}
    assert rows[consenting_members[0].pk].status == Send.Status.SENT
    assert rows[consenting_members[1].pk].status == Send.Status.SKIPPED
    with_unknown.refresh_from_db()
    assert with_unknown.status == Campaign.Status.SENT


def test_the_api_reports_unknown_sends_and_sends_them_again(
    api_client_for, marketing_user, with_unknown, django_capture_on_commit_callbacks
):
    api = api_client_for(marketing_user)

    report = api.get(f"/api/campaigns/{with_unknown.pk}/report/").json()
    assert report["progress"]["unknown"] == 2
    assert report["totals"]["unknown"] == 2 and report["totals"]["sent"] == 3
    assert any("may or may not have arrived" in r for r in report["unknown_reasons"])

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/campaigns/{with_unknown.pk}/resend-unknown/")
    assert response.status_code == 200
    assert len(mail.outbox) == 2
    again = api.post(f"/api/campaigns/{with_unknown.pk}/resend-unknown/")
    assert again.status_code == 400
    assert "status" in again.json()


def test_an_open_of_an_unknown_message_is_recorded(client, with_unknown, consenting_members):
    from campaigns.links import open_url

    row = Send.objects.get(campaign=with_unknown, customer=consenting_members[0])
    client.get(open_url(send_id=row.pk).removeprefix("http://testserver"))

    assert row.events.filter(kind="open").exists()
