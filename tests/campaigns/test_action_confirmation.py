"""Launching, cancelling and stopping a campaign are never one click: the marketer sees what is
about to happen and confirms. Actions that would do nothing are not offered."""

from decimal import Decimal

import pytest

from campaigns.models import Campaign, Send
from campaigns.services import promotion_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client, marketing_user):
    client.force_login(marketing_user)
    return client


def _act(marketer, campaign, action, **data):
    return marketer.post(f"/campaigns/{campaign.pk}/{action}/", data)


def test_one_click_on_launch_sends_nothing_and_shows_the_summary(
    marketer, campaign, consenting_members
):
    campaign.variants.update(subject="Spring sale")
    campaign.from_email = "news@shop.example"
    campaign.save(update_fields=["from_email"])

    response = _act(marketer, campaign, "launch")

    html = response.content.decode()
    assert response.status_code == 200
    for fact in ("Audience after exclusions", "Holdout", "Variants and split", "Sender",
                 "Promotion", "Send time"):  # fmt: skip
        assert f"<dt>{fact}</dt>" in html
    assert "5 recipients of 5 targeted" in html
    assert "A: 100% (“Spring sale”)" in html
    assert "news@shop.example" in html
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert not Send.objects.filter(campaign=campaign).exists()


def test_the_summary_names_the_promotion(marketer, marketing_user, campaign, consenting_members):
    promotion_set(campaign=campaign, actor=marketing_user, discount="percent", value=Decimal(15))

    html = _act(marketer, campaign, "launch").content.decode()

    assert "15%" in html and "a unique code per recipient" in html


def test_confirming_the_summary_launches(
    marketer, campaign, consenting_members, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(marketer, campaign, "launch", confirmed="yes")

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status in ("sending", "sent")


def test_one_click_on_cancel_cancels_nothing(marketer, campaign):
    response = _act(marketer, campaign, "cancel")

    assert response.status_code == 200 and 'id="confirmation"' in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    _act(marketer, campaign, "cancel", confirmed="yes")

    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"


def test_a_campaign_that_has_sent_everything_offers_no_pause_or_cancel(
    marketer, campaign, consenting_members, launch
):
    launch(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")  # before it is marked sent

    page = marketer.get(f"/campaigns/{campaign.pk}/").content.decode()
    refused = _act(marketer, campaign, "pause")

    assert 'id="pause"' not in page and 'id="cancel"' not in page
    assert refused.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"


def test_a_draft_offers_launch_through_the_review_and_cancel(marketer, campaign):
    page = marketer.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert 'id="review-launch"' in page and 'id="cancel"' in page
    assert 'id="pause"' not in page and 'id="resume"' not in page
