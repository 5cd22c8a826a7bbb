"""A campaign's settings are one list: the editor's steps, the API and the services offer the
same ones."""

import re

import pytest

from campaigns.api import CampaignSerializer
from campaigns.models import CAMPAIGN_SETTINGS
from campaigns.services import campaign_update

pytestmark = pytest.mark.django_db


def test_the_api_writes_exactly_the_settings_the_editor_shows(client, marketing_user, campaign):
    client.force_login(marketing_user)
    shown: list[str] = []
    for step in ("audience", "schedule"):
        page = client.get(f"/campaigns/{campaign.pk}/edit/{step}/")
        assert page.status_code == 200
        shown += re.findall(
            r'<div class="field[^"]*"\s+id="field-([a-z_]+)"', page.content.decode()
        )
    writable = {name for name, f in CampaignSerializer().fields.items() if not f.read_only}

    assert sorted(shown) == sorted(CAMPAIGN_SETTINGS)  # each setting on one step, once
    assert writable == set(CAMPAIGN_SETTINGS)


def test_the_services_take_every_setting_and_refuse_any_other(campaign, marketing_user):
    from django.core.exceptions import ValidationError

    current = {
        name: getattr(campaign, name) for name in CAMPAIGN_SETTINGS if "segments" not in name
    }
    campaign_update(campaign=campaign, actor=marketing_user, **current)

    with pytest.raises(ValidationError) as refused:
        campaign_update(campaign=campaign, actor=marketing_user, status="sent")
    assert refused.value.message_dict == {"status": ["unknown field"]}
