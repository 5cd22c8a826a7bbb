"""The live audience estimate of the editor: exact for a saved campaign (the split launch will
draw), and said to be about so many in the holdout for a campaign not saved yet."""

from decimal import Decimal

import pytest

from campaigns.models import Campaign, Send
from tests.campaigns.factories import consent_grant_all, members_add
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SETTINGS = {"channel": "email", "consent_purpose": "email_marketing", "frequency_cap_count": 0,
            "frequency_cap_days": 7}  # fmt: skip


@pytest.fixture
def audience_of_hundred(segment):
    """100 consenting members of the segment and 20 who never consented."""
    consenting = CustomerFactory.create_batch(100)
    members_add(segment, consenting + CustomerFactory.create_batch(20))
    consent_grant_all(consenting)
    return consenting


def test_unsaved_campaign_shows_about_the_expected_holdout(
    client, marketing_user, segment, audience_of_hundred
):
    client.force_login(marketing_user)

    response = client.get("/campaigns/audience-size/",
                          {**SETTINGS, "holdout_percent": "12.5", "target_segments": [segment.pk]})  # fmt: skip

    page = response.content.decode()
    estimate = response.context["estimate"]
    assert (estimate["targeted"], estimate["recipients"], estimate["holdout"]) == (120, 88, 12)
    assert estimate["holdout_estimated"] is True
    assert 'About <strong id="audience-recipients">88</strong>' in page
    assert 'about <span id="audience-holdout">12</span> in the holdout' in page
    assert 'id="audience-holdout-estimated"' in page
    assert not Campaign.objects.exists()


def test_unsaved_campaign_without_a_holdout_is_exact(
    client, marketing_user, segment, audience_of_hundred
):
    client.force_login(marketing_user)

    response = client.get("/campaigns/audience-size/",
                          {**SETTINGS, "holdout_percent": "0", "target_segments": [segment.pk]})  # fmt: skip

    assert response.context["estimate"]["holdout_estimated"] is False
    assert "about" not in response.content.decode().lower()


def test_saved_campaign_estimate_is_the_split_launch_draws(
    client, marketing_user, campaign, segment, audience_of_hundred, launch
):
    client.force_login(marketing_user)
    on_screen = {**SETTINGS, "holdout_percent": "30", "target_segments": [segment.pk]}

    response = client.get(f"/campaigns/{campaign.pk}/audience-size/", on_screen)
    client.post(f"/campaigns/{campaign.pk}/edit/audience/", {**on_screen, "name": campaign.name,
                "kind": "broadcast", "attribution_days": 7, "time_zone": "UTC"})  # fmt: skip
    campaign.refresh_from_db()
    launch(campaign)

    estimate = response.context["estimate"]
    assert campaign.holdout_percent == Decimal("30")
    assert estimate["holdout_estimated"] is False
    assert "about" not in response.content.decode().lower()
    assert estimate["holdout"] == Send.objects.filter(campaign=campaign, is_holdout=True).count()
    assert (
        estimate["recipients"]
        == Send.objects.filter(campaign=campaign)
        .exclude(status__in=[Send.Status.EXCLUDED, Send.Status.HOLDOUT])
        .count()
    )


def test_review_of_a_saved_campaign_is_exact(client, marketing_user, campaign, audience_of_hundred):
    Campaign.objects.filter(pk=campaign.pk).update(holdout_percent=Decimal("25"))
    client.force_login(marketing_user)

    page = client.get(f"/campaigns/{campaign.pk}/edit/review/").content.decode()

    assert 'id="audience-holdout"' in page and 'id="audience-holdout-estimated"' not in page


def test_api_estimate_of_unsaved_settings_says_the_holdout_is_expected(
    api_client_for, marketing_user, segment, audience_of_hundred
):
    api = api_client_for(marketing_user)

    response = api.post("/api/campaigns/audience-estimate/",
                        {"target_segments": [segment.pk], "holdout_percent": "10"}, format="json")  # fmt: skip

    assert response.json() == {"targeted": 120, "recipients": 90, "holdout": 10,
                               "excluded": {"no_consent": 20}, "holdout_estimated": True}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"), [("frequency_cap_count", 71697923773080), ("frequency_cap_days", 10**9)]
)
def test_api_estimate_refuses_a_frequency_cap_beyond_the_campaigns_bounds(
    api_client_for, marketing_user, segment, field, value
):
    api = api_client_for(marketing_user)

    response = api.post("/api/campaigns/audience-estimate/",
                        {"target_segments": [segment.pk], field: value}, format="json")  # fmt: skip

    assert response.status_code == 400
    assert list(response.json()) == [field]
