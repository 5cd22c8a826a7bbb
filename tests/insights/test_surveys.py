"""Satisfaction surveys: sent through the campaign machinery, answered with one click through
a signed link, counted in the KPIs, usable in rules, exported and erased with the person."""

import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from campaigns.models import Send
from customers.models import Event
from insights.kpi import METRIC_KEYS, figure, kpi_counts
from insights.models import SURVEY_EVENT, CustomerSatisfaction
from insights.services import survey_create, survey_send
from insights.services.surveys import survey_token
from privacy.registry import personal_data_for
from segments.compiler import compile_rule
from tests.campaigns.factories import consent_grant_all, members_add
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CAMPAIGNS_SITE_URL = "http://testserver"
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    mail.outbox = []


@pytest.fixture
def readers():
    """A segment of three: two consent to email marketing, one does not."""
    segment = StaticSegmentFactory(name="Readers")
    consenting = CustomerFactory.create_batch(2)
    silent = CustomerFactory()
    members_add(segment, [*consenting, silent])
    consent_grant_all(consenting)
    return segment, consenting, silent


@pytest.fixture
def sent_survey(readers, marketing_user, django_capture_on_commit_callbacks):
    segment, _consenting, _silent = readers
    survey = survey_create(actor=marketing_user, name="Pulse", kind="nps", segment=segment,
                           question="How likely are you to recommend us?")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        survey_send(survey=survey, actor=marketing_user)
    return survey


def _survey_links(message) -> list[str]:
    return re.findall(r"http://testserver/insights/survey/[^/\s]+/", message.body)


def test_a_survey_goes_only_to_members_who_consented_each_with_their_own_link(sent_survey, readers):
    _segment, consenting, silent = readers

    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in consenting)
    links = {tuple(_survey_links(m)) for m in mail.outbox}
    assert len(links) == 2 and all(len(found) == 1 for found in links)
    assert not Send.objects.filter(customer=silent, status=Send.Status.SENT).exists()
    html = mail.outbox[0].alternatives[0][0]
    assert html.count("/campaigns/t/c/") >= 11  # the 0..10 buttons, through the click tracker


def test_one_click_on_a_score_records_it_as_an_event_and_the_latest_nps(client, sent_survey):
    send = Send.objects.filter(campaign=sent_survey.campaign, status="sent").first()
    link = _survey_links(next(m for m in mail.outbox if m.to[0] == send.customer.email))[0]

    page = client.get(link.replace("http://testserver", "") + "?score=9")

    assert page.status_code == 200 and "is recorded" in page.content.decode()
    event = Event.objects.get(customer=send.customer, type=SURVEY_EVENT)
    assert event.properties["score"] == 9 and event.properties["kind"] == "nps"
    latest = CustomerSatisfaction.objects.get(customer=send.customer)
    assert (latest.nps_score, latest.nps_class) == (9, "promoter")


def test_a_second_click_and_a_comment_change_the_same_answer(client, sent_survey):
    send = Send.objects.filter(campaign=sent_survey.campaign, status="sent").first()
    url = f"/insights/survey/{survey_token(send_id=send.pk)}/"

    client.get(url + "?score=9")
    client.post(url, {"score": "3", "comment": "Late delivery"})

    event = Event.objects.get(customer=send.customer, type=SURVEY_EVENT)
    assert (event.properties["score"], event.properties["comment"]) == (3, "Late delivery")
    assert CustomerSatisfaction.objects.get(customer=send.customer).nps_class == "detractor"


@pytest.mark.parametrize("score", ["11", "-1", "nine", ""])
def test_a_score_outside_the_scale_is_refused_and_nothing_recorded(client, sent_survey, score):
    send = Send.objects.filter(campaign=sent_survey.campaign, status="sent").first()

    page = client.get(f"/insights/survey/{survey_token(send_id=send.pk)}/?score={score}")

    assert page.status_code == 400
    assert not Event.objects.filter(type=SURVEY_EVENT).exists()


def test_a_forged_or_changed_link_records_nothing(client, sent_survey):
    send = Send.objects.filter(campaign=sent_survey.campaign, status="sent").first()
    token = survey_token(send_id=send.pk)

    changed = client.get(f"/insights/survey/{token[:-2]}xx/?score=10")
    another_salt = client.get(f"/insights/survey/{token.replace(':', ':x', 1)}/?score=10")

    assert changed.status_code == 400 and another_salt.status_code == 400
    assert not Event.objects.filter(type=SURVEY_EVENT).exists()


def test_a_link_of_an_erased_customer_shows_a_neutral_page(client, sent_survey):
    send = Send.objects.filter(campaign=sent_survey.campaign, status="sent").first()
    from django.utils import timezone

    send.customer.erased_at = timezone.now()
    send.customer.save(update_fields=["erased_at"])

    page = client.get(f"/insights/survey/{survey_token(send_id=send.pk)}/?score=10")

    assert "closed" in page.content.decode()
    assert not Event.objects.filter(type=SURVEY_EVENT).exists()


def test_answers_show_as_nps_in_the_segments_kpis_and_select_by_rule(client, sent_survey, readers):
    segment, (first, second), _silent = readers
    for customer, score in ((first, 10), (second, 2)):
        send = Send.objects.get(campaign=sent_survey.campaign, customer=customer)
        client.get(f"/insights/survey/{survey_token(send_id=send.pk)}/?score={score}")
    from django.utils import timezone

    from insights.kpi import Period

    counts = kpi_counts(segment_id=segment.pk, period=Period(days=7, end=timezone.localdate()))

    assert figure(METRIC_KEYS["nps"], counts["segment"]["current"]).value == 0.0
    detractors = compile_rule({"field": "nps_class", "op": "eq", "value": "detractor"})
    assert list(detractors.values_list("pk", flat=True)) == [second.pk]
    fans = compile_rule({"field": "nps_score", "op": "gte", "value": 9})
    assert list(fans.values_list("pk", flat=True)) == [first.pk]
    unanswered = compile_rule({"field": "nps_score", "op": "is_empty"})
    assert first.pk not in unanswered.values_list("pk", flat=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("question", "{{ customer.email }}"), ("question", ""), ("name", "{% load x %}"),
     ("kind", "ces"), ("question", "x" * 301)],
)  # fmt: skip
def test_a_survey_that_is_not_one_is_refused_naming_the_field(
    marketing_user, readers, field, value
):
    segment, *_ = readers
    fields = {"name": "Pulse", "kind": "nps", "question": "Recommend us?", "segment": segment}

    with pytest.raises(ValidationError) as refused:
        survey_create(actor=marketing_user, **{**fields, field: value})

    assert field in refused.value.message_dict


def test_survey_scores_are_personal_data_exported_and_erased():
    registered = personal_data_for(CustomerSatisfaction)

    assert registered is not None and registered.erase == "delete"
