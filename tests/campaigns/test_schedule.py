"""Scheduling: a send time in the campaign's time zone, and the beat that starts it."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.tasks import campaigns_due_task

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def test_schedule_step_reads_the_time_in_the_chosen_time_zone(client, marketing_user, campaign):
    client.force_login(marketing_user)
    form = client.get(f"/campaigns/{campaign.pk}/edit/schedule/").context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data.update({"send_at": "2030-03-01T09:00", "time_zone": "Europe/Berlin",
                 "attribution_days": 7, "frequency_cap_count": 0, "frequency_cap_days": 7,
                 "holdout_percent": 0, "target_segments": [s.pk for s in
                                                           campaign.target_segments.all()]})  # fmt: skip
    data = {k: v for k, v in data.items() if v is not None and v != "" and v is not False}

    response = client.post(f"/campaigns/{campaign.pk}/edit/schedule/", data)

    assert response.status_code == 302, response.context["form"].errors
    campaign.refresh_from_db()
    assert campaign.send_at == dt.datetime(2030, 3, 1, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    page = client.get(f"/campaigns/{campaign.pk}/edit/schedule/").content.decode()
    assert 'value="2030-03-01 09:00:00"' in page  # shown again as typed


def test_schedule_step_names_an_unknown_time_zone(client, marketing_user, campaign):
    client.force_login(marketing_user)

    response = client.post(f"/campaigns/{campaign.pk}/edit/schedule/",
                           {"name": campaign.name, "channel": "email", "kind": "broadcast",
                            "send_at": "2030-03-01T09:00", "time_zone": "Mars/Olympus",
                            "attribution_days": 7, "frequency_cap_count": 0,
                            "frequency_cap_days": 7, "holdout_percent": 0})  # fmt: skip

    assert response.status_code == 200
    assert "Unknown time zone &#x27;Mars/Olympus&#x27;" in response.content.decode()


def test_api_send_time_without_offset_is_in_the_campaign_time_zone(
    api_client_for, marketing_user, campaign
):
    api = api_client_for(marketing_user)

    naive = api.patch(f"/api/campaigns/{campaign.pk}/",
                      {"send_at": "2030-07-01T09:00:00", "time_zone": "America/New_York"},
                      format="json")  # fmt: skip
    campaign.refresh_from_db()
    local = campaign.send_at
    explicit = api.patch(f"/api/campaigns/{campaign.pk}/",
                         {"send_at": "2030-07-01T09:00:00+00:00"}, format="json")  # fmt: skip
    campaign.refresh_from_db()

    assert naive.status_code == explicit.status_code == 200
    assert local == dt.datetime(2030, 7, 1, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert campaign.send_at == dt.datetime(2030, 7, 1, 9, 0, tzinfo=UTC)


def test_beat_starts_a_scheduled_campaign_when_its_time_has_come(
    campaign, consenting_members, launch, django_capture_on_commit_callbacks
):
    campaign.send_at = timezone.now() + dt.timedelta(hours=1)
    campaign.save()
    launch(campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED

    with django_capture_on_commit_callbacks(execute=True):
        early = campaigns_due_task()
    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        due = campaigns_due_task()

    assert early["started"] == 0
    assert due["started"] == 1
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
    assert len(mail.outbox) == len(consenting_members)
